#!/usr/bin/env node
// What an application does with node-redis (`redis`) and ioredis at
// startup and in use, against the server at HOST:PORT: each library with
// its default protocol (RESP3: both send HELLO 3) and with RESP2.
//
// Every reply is checked against what Redis 7 answers; a wrong one fails
// the run with a message and exit status 1. Each step also prints one
// line, the same against Redis and against netdb, so two runs can be
// compared with `diff`. The server's databases 0 and 1 are flushed.
//
// Usage: node node_client.js HOST:PORT

'use strict';

const assert = require('node:assert/strict');
const { createClient, WatchError } = require('redis');
const IORedis = require('ioredis');

function show(label, value) {
  console.log(`${label}: ${JSON.stringify(value)}`);
}

function expect(label, got, want) {
  show(label, got);
  assert.deepStrictEqual(got, want, label);
}

function check(label, condition, detail) {
  show(label, Boolean(condition));
  assert.ok(condition, `${label}: ${JSON.stringify(detail)}`);
}

function between(label, got, low, high) {
  check(label, got >= low && got <= high, got);
}

/** Awaits `promise`, which must reject with a server error; returns its
 * message. */
async function errorOf(label, promise) {
  let got;
  try {
    got = await promise;
  } catch (e) {
    return e.message;
  }
  throw new assert.AssertionError({ message: `${label}: no error, got ${JSON.stringify(got)}` });
}

/** INFO's text as `{field: value}`, every line of every section. */
function parseInfo(text) {
  const fields = {};
  for (const line of text.split('\r\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const colon = line.indexOf(':');
    assert.ok(colon > 0, `an INFO line without a colon: ${JSON.stringify(line)}`);
    fields[line.slice(0, colon)] = line.slice(colon + 1);
  }
  return fields;
}

async function nodeRedis(host, port, RESP) {
  console.log(`--- node-redis RESP${RESP ?? ' default'}`);
  const options = { socket: { host, port, connectTimeout: 20000 }, name: 'app' };
  if (RESP !== undefined) options.RESP = RESP;
  const errors = [];
  const open = async (extra = {}) => {
    const c = createClient({ ...options, ...extra });
    c.on('error', (e) => errors.push(e));
    await c.connect();
    return c;
  };
  const r = await open();
  await r.flushDb();

  // Startup.
  expect('ping', await r.ping(), 'PONG');
  expect('client getname', await r.clientGetName(), 'app');
  const info = await r.clientInfo();
  expect('client info name', info.name, 'app');
  // Every field of Redis's line, as numbers where Redis has numbers.
  for (const field of ['age', 'idle', 'sub', 'psub', 'qbuf', 'omem', 'totMem']) {
    check(`client info ${field}`, Number.isInteger(info[field]), info);
  }
  // CLIENT SETINFO, which node-redis sends, is Redis 7.2's: a server
  // before it refuses it (node-redis goes on) and shows no lib-name.
  check('client info lib-name', [undefined, 'node-redis'].includes(info.libName), info);
  check('client id', (await r.clientId()) > 0);
  expect('echo', await r.echo('hi'), 'hi');

  // Strings.
  expect('set', await r.set('s:a', '1'), 'OK');
  expect('get', await r.get('s:a'), '1');
  expect('get missing', await r.get('s:missing'), null);
  expect('set nx existing', await r.set('s:a', '2', { condition: 'NX' }), null);
  expect('set nx new', await r.set('s:b', '2', { condition: 'NX' }), 'OK');
  expect('set xx missing', await r.set('s:c', '3', { condition: 'XX' }), null);
  expect('set get', await r.set('s:b', '23', { GET: true }), '2');
  expect('set ex', await r.set('s:ex', 'v', { expiration: { type: 'EX', value: 100 } }), 'OK');
  between('ttl', await r.ttl('s:ex'), 98, 100);
  expect('set px', await r.set('s:px', 'v', { expiration: { type: 'PX', value: 100000 } }), 'OK');
  between('pttl', await r.pTTL('s:px'), 98000, 100000);
  expect('set keepttl', await r.set('s:ex', 'w', { expiration: 'KEEPTTL' }), 'OK');
  between('ttl kept', await r.ttl('s:ex'), 98, 100);
  expect('setnx', [await r.setNX('s:nx', '1'), await r.setNX('s:nx', '2')], [1, 0]);
  expect('setex', await r.setEx('s:setex', 50, 'v'), 'OK');
  expect('mset', await r.mSet({ 'm:1': 'a', 'm:2': 'b', 'm:3': 'c' }), 'OK');
  expect('mget', await r.mGet(['m:1', 'm:missing', 'm:3']), ['a', null, 'c']);
  expect('exists', await r.exists(['m:1', 'm:2', 'm:missing']), 2);
  expect('del', await r.del(['m:1', 'm:2', 'm:missing']), 2);
  expect('type', [await r.type('s:a'), await r.type('s:missing')], ['string', 'none']);
  expect('append', [await r.append('s:app', 'hello'), await r.append('s:app', ' world')], [5, 11]);
  expect('strlen', await r.strLen('s:app'), 11);
  expect('getrange', await r.getRange('s:app', -5, -1), 'world');
  expect('setrange', await r.setRange('s:app', 6, 'WORLD'), 11);
  expect('get after setrange', await r.get('s:app'), 'hello WORLD');
  expect('getdel', [await r.getDel('s:a'), await r.getDel('s:a')], ['1', null]);
  await r.set('s:gx', 'v');
  expect('getex', await r.getEx('s:gx', { type: 'EX', value: 100 }), 'v');
  between('ttl after getex', await r.ttl('s:gx'), 98, 100);
  expect('getex persist', await r.getEx('s:gx', { type: 'PERSIST' }), 'v');
  expect('ttl after persist', await r.ttl('s:gx'), -1);
  expect('getset', [await r.getSet('s:gs', '1'), await r.getSet('s:gs', '2')], [null, '1']);

  // Counters.
  expect('incr', [await r.incr('c:n'), await r.incr('c:n')], [1, 2]);
  expect('incrby decr decrby', [await r.incrBy('c:n', 10), await r.decr('c:n'), await r.decrBy('c:n', 5)], [12, 11, 6]);
  expect('incrbyfloat', await r.incrByFloat('c:f', 1.5), '1.5');
  await r.set('c:bad', 'abc');
  expect('incr not an integer', await errorOf('incr not an integer', r.incr('c:bad')),
    'ERR value is not an integer or out of range');
  expect('incrbyfloat not a float', await errorOf('incrbyfloat not a float', r.incrByFloat('c:bad', 1)),
    'ERR value is not a valid float');

  // Expiry.
  await r.set('e:k', 'v');
  expect('ttl none and missing', [await r.ttl('e:k'), await r.ttl('e:missing')], [-1, -2]);
  expect('expire', await r.expire('e:k', 100), 1);
  expect('expire nx', await r.expire('e:k', 200, 'NX'), 0);
  expect('pexpire', await r.pExpire('e:k', 150000), 1);
  between('pttl', await r.pTTL('e:k'), 148000, 150000);
  expect('persist', [await r.persist('e:k'), await r.persist('e:k')], [1, 0]);

  // Pipelines: commands sent together without a transaction, and MULTI/EXEC.
  const piped = await Promise.all([r.set('p:a', '1'), r.incr('p:a'), r.get('p:a'), r.del('p:a')]);
  expect('pipelined promises', piped, ['OK', 2, '2', 1]);
  expect('multi execAsPipeline',
    await r.multi().set('p:b', '1').incr('p:b').get('p:b').execAsPipeline(), ['OK', 2, '2']);
  expect('multi exec',
    await r.multi().set('p:t', '1').incrBy('p:t', 5).get('p:t').ttl('p:t').exec(), ['OK', 6, '6', -1]);
  // Long ones, sent in one write: the server must answer every command
  // without waiting for more bytes.
  const long = r.multi();
  for (let i = 0; i < 5000; i++) long.incr('p:long');
  const counted = await long.exec();
  expect('long multi', [counted.length, counted[4999]], [5000, 5000]);
  const pongs = await Promise.all(Array.from({ length: 5000 }, () => r.ping()));
  expect('5000 pings at once', pongs.every((p) => p === 'PONG'), true);
  const failing = await r.multi().set('p:x', 'abc').incr('p:x').set('p:y', 'after').exec()
    .then((replies) => replies, (e) => e);
  show('multi exec with a failing command', failing instanceof Error ? failing.constructor.name : failing);
  check('the failing command is reported', failing instanceof Error, failing);
  expect('the rest ran', await r.get('p:y'), 'after');

  // WATCH on a connection of its own; another connection writes the key,
  // so EXEC answers null and node-redis rejects with WatchError.
  const watcher = await open();
  await r.set('p:w', '0');
  await watcher.watch('p:w');
  const value = Number(await watcher.get('p:w'));
  await r.set('p:w', '100');
  const conflict = await watcher.multi().set('p:w', String(value + 1)).exec().then(
    (replies) => replies, (e) => e);
  show('watch conflict', conflict instanceof WatchError ? 'WatchError' : conflict);
  check('WatchError', conflict instanceof WatchError, conflict);
  expect('the other write stands', await r.get('p:w'), '100');
  await watcher.watch('p:w');
  expect('watch without conflict', await watcher.multi().incr('p:w').exec(), [101]);
  await watcher.close();

  // SCAN.
  const keys = [];
  for (let i = 0; i < 120; i++) keys.push(`scan:${i}`);
  await r.mSet(Object.fromEntries(keys.map((k) => [k, 'v'])));
  await r.mSet({ 'other:1': 'v', 'other:2': 'v' });
  const found = new Set();
  for await (const batch of r.scanIterator({ MATCH: 'scan:*', COUNT: 7 })) {
    for (const k of batch) found.add(k);
  }
  expect('scanIterator', [...found].sort(), [...keys].sort());
  const typed = new Set();
  for await (const batch of r.scanIterator({ MATCH: 'other:*', TYPE: 'string' })) {
    for (const k of batch) typed.add(k);
  }
  expect('scanIterator type', typed.size, 2);

  // Another database.
  const r1 = await open({ database: 1 });
  expect('db1 flushdb', await r1.flushDb(), 'OK');
  await r.set('db:k', 'zero');
  await r1.set('db:k', 'one');
  expect('databases apart', [await r.get('db:k'), await r1.get('db:k')], ['zero', 'one']);
  expect('db1 dbsize', await r1.dbSize(), 1);
  expect('db1 multi', await r1.multi().set('db:t', '1').get('db:t').exec(), ['OK', '1']);
  expect('db1 multi stayed in db1', await r.exists('db:t'), 0);
  // reset() sends RESET, then the handshake again, back to database 1.
  await r1.select(0);
  await r1.reset();
  expect('db1 after reset', await r1.get('db:k'), 'one');
  expect('name after reset', await r1.clientGetName(), 'app');
  await r1.flushDb();
  expect('db0 kept', await r.get('db:k'), 'zero');
  await r1.close();

  // Server.
  const [seconds, micros] = await r.time();
  check('time', Math.abs(Number(seconds) + Number(micros) / 1e6 - Date.now() / 1000) < 5, [seconds, micros]);
  await r.flushDb();
  await r.mSet({ 'i:1': 'a', 'i:2': 'b' });
  expect('dbsize', await r.dbSize(), 2);
  for (const section of [undefined, 'all', 'everything', 'keyspace', 'stats', 'commandstats']) {
    const text = await r.info(section);
    check(`info ${section ?? 'default'}`, typeof text === 'string' && parseInfo(text), text);
  }
  const fields = parseInfo(await r.info());
  check('info redis_version', 'redis_version' in fields, Object.keys(fields));
  expect('info keyspace db0', fields.db0.split(',')[0], 'keys=2');
  expect('info role', [fields.role, fields.connected_slaves], ['master', '0']);
  expect('role', await r.role(), { role: 'master', replicationOffest: 0, replicas: [] });
  expect('config get', await r.configGet('databases'), { databases: '16' });
  expect('config get maxmemory-policy', await r.configGet('maxmemory-policy'),
    { 'maxmemory-policy': 'noeviction' });
  check('command count', (await r.commandCount()) > 10);
  const [getInfo] = await r.commandInfo(['get']);
  expect('command info get', [getInfo.name, getInfo.arity], ['get', 2]);
  check('command docs get', 'get' in (await r.commandDocs(['get'])));
  expect('unknown command', await errorOf('unknown command', r.sendCommand(['NOSUCHCOMMAND', 'x'])),
    "ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' ");
  expect('flushdb', await r.flushDb(), 'OK');
  expect('dbsize after flushdb', await r.dbSize(), 0);
  await r.close();
  expect('connection errors', errors.map((e) => e.message), []);
}

async function ioredis(host, port, protocol) {
  console.log(`--- ioredis protocol ${protocol ?? 'default'}`);
  const options = {
    host, port, connectionName: 'app', connectTimeout: 20000, maxRetriesPerRequest: 0,
  };
  if (protocol !== undefined) options.protocol = protocol;
  const errors = [];
  const open = async (extra = {}) => {
    const c = new IORedis({ ...options, ...extra, lazyConnect: true });
    c.on('error', (e) => errors.push(e));
    await c.connect();
    return c;
  };
  const r = await open();
  await r.flushdb();

  // Startup.
  expect('ping', await r.ping(), 'PONG');
  expect('client getname', await r.client('GETNAME'), 'app');
  check('client id', (await r.client('ID')) > 0);

  // Strings.
  expect('set', await r.set('s:a', '1'), 'OK');
  expect('get', await r.get('s:a'), '1');
  expect('get missing', await r.get('s:missing'), null);
  expect('set nx', [await r.set('s:a', '2', 'NX'), await r.set('s:b', '2', 'NX')], [null, 'OK']);
  expect('set xx', await r.set('s:c', '3', 'XX'), null);
  expect('set get', await r.set('s:b', '23', 'GET'), '2');
  expect('set ex', await r.set('s:ex', 'v', 'EX', 100), 'OK');
  between('ttl', await r.ttl('s:ex'), 98, 100);
  expect('set px nx', await r.set('s:px', 'v', 'PX', 100000, 'NX'), 'OK');
  between('pttl', await r.pttl('s:px'), 98000, 100000);
  expect('set keepttl', await r.set('s:ex', 'w', 'KEEPTTL'), 'OK');
  between('ttl kept', await r.ttl('s:ex'), 98, 100);
  expect('setnx setex', [await r.setnx('s:nx', '1'), await r.setex('s:setex', 50, 'v')], [1, 'OK']);
  expect('mset', await r.mset({ 'm:1': 'a', 'm:2': 'b' }), 'OK');
  expect('mget', await r.mget('m:1', 'm:missing', 'm:2'), ['a', null, 'b']);
  expect('exists del', [await r.exists('m:1', 'm:2'), await r.del('m:1', 'm:2')], [2, 2]);
  expect('append strlen', [await r.append('s:app', 'hello'), await r.strlen('s:app')], [5, 5]);
  expect('getrange setrange', [await r.getrange('s:app', 1, 3), await r.setrange('s:app', 0, 'J')], ['ell', 5]);
  expect('getdel', await r.getdel('s:app'), 'Jello');
  expect('getex', [await r.set('s:gx', 'v'), await r.getex('s:gx', 'EX', 100)], ['OK', 'v']);
  expect('getset', await r.getset('s:gx', 'w'), 'v');
  const bytes = Buffer.from([0xff, 0x00, 0xfe]);
  await r.set('s:bin', bytes);
  expect('binary value', (await r.getBuffer('s:bin')).equals(bytes), true);

  // Counters and errors.
  expect('counters', [await r.incr('c:n'), await r.incrby('c:n', 10), await r.decr('c:n'),
    await r.decrby('c:n', 2)], [1, 11, 10, 8]);
  expect('incrbyfloat', await r.incrbyfloat('c:f', '2.5'), '2.5');
  await r.set('c:bad', 'abc');
  expect('incr not an integer', await errorOf('incr not an integer', r.incr('c:bad')),
    'ERR value is not an integer or out of range');

  // Expiry.
  await r.set('e:k', 'v');
  expect('expire', await r.expire('e:k', 100), 1);
  between('ttl', await r.ttl('e:k'), 98, 100);
  expect('persist', await r.persist('e:k'), 1);
  expect('ttl after persist', await r.ttl('e:k'), -1);

  // Pipelines: replies come as [error, result] pairs.
  expect('pipeline', await r.pipeline().set('p:a', '1').incr('p:a').get('p:a').exec(),
    [[null, 'OK'], [null, 2], [null, '2']]);
  expect('multi', await r.multi().set('p:t', '1').incrby('p:t', 4).get('p:t').exec(),
    [[null, 'OK'], [null, 5], [null, '5']]);
  const longPipe = r.pipeline();
  for (let i = 0; i < 5000; i++) longPipe.ping();
  expect('long pipeline of pings', (await longPipe.exec()).length, 5000);
  const withError = await r.multi().set('p:x', 'abc').incr('p:x').exec();
  expect('multi with a failing command', withError.map(([e, v]) => (e ? e.message : v)),
    ['OK', 'ERR value is not an integer or out of range']);
  // WATCH, then another connection writes: EXEC answers null.
  const other = await open();
  await r.set('p:w', '0');
  await r.watch('p:w');
  await other.set('p:w', '100');
  expect('watch conflict', await r.multi().set('p:w', '1').exec(), null);
  expect('the other write stands', await r.get('p:w'), '100');
  await r.watch('p:w');
  expect('watch without conflict', await r.multi().incr('p:w').exec(), [[null, 101]]);
  await other.quit();

  // SCAN as a stream.
  const keys = [];
  for (let i = 0; i < 120; i++) keys.push(`scan:${i}`);
  await r.mset(Object.fromEntries(keys.map((k) => [k, 'v'])));
  const found = new Set();
  await new Promise((resolve, reject) => {
    r.scanStream({ match: 'scan:*', count: 7 })
      .on('data', (batch) => batch.forEach((k) => found.add(k)))
      .on('end', resolve)
      .on('error', reject);
  });
  expect('scanStream', [...found].sort(), [...keys].sort());

  // Another database.
  const r1 = await open({ db: 1 });
  await r1.flushdb();
  await r.set('db:k', 'zero');
  await r1.set('db:k', 'one');
  expect('databases apart', [await r.get('db:k'), await r1.get('db:k')], ['zero', 'one']);
  expect('db1 dbsize', await r1.dbsize(), 1);
  await r1.flushdb();
  expect('db0 kept', await r.get('db:k'), 'zero');
  await r1.quit();

  // Server.
  const [seconds] = await r.time();
  check('time', Math.abs(Number(seconds) - Date.now() / 1000) < 5, seconds);
  const fields = parseInfo(await r.info('everything'));
  check('info parses', 'redis_version' in fields, Object.keys(fields));
  expect('info role', fields.role, 'master');
  expect('role', await r.role(), ['master', 0, []]);
  // ioredis gives RESP3's maps in RESP2's shape unless told otherwise.
  expect('config get', await r.config('GET', 'databases'), ['databases', '16']);
  check('command count', (await r.command('COUNT')) > 10);
  expect('unknown command', await errorOf('unknown command', r.call('NOSUCHCOMMAND', 'x')),
    "ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' ");
  expect('flushdb', await r.flushdb(), 'OK');
  expect('dbsize', await r.dbsize(), 0);
  await r.quit();
  expect('connection errors', errors.map((e) => e.message), []);
}

async function main() {
  const [address] = process.argv.slice(2);
  if (!address || !address.includes(':')) {
    console.error('usage: node node_client.js HOST:PORT');
    return 2;
  }
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon);
  const port = Number(address.slice(colon + 1));
  console.log(`node-redis ${require('redis/package.json').version}, ioredis ${require('ioredis/package.json').version}`);
  await nodeRedis(host, port, undefined);
  await nodeRedis(host, port, 2);
  await ioredis(host, port, undefined);
  await ioredis(host, port, 2);
  console.log('ok');
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(`FAILED: ${e.stack || e}`);
    process.exit(1);
  },
);
