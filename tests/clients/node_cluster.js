#!/usr/bin/env node
// The cluster clients of node-redis (`createCluster`) and ioredis
// (`Redis.Cluster`) against a netdb cluster, through the node at
// HOST:PORT: keys of many slots, a one-slot MGET, a counter, and every
// member seen. Prints one line a step and `ok`; a wrong answer fails the
// run with exit status 1. (Not run against redis-server: a Redis without
// cluster mode refuses CLUSTER SLOTS.)
//
// Usage: node node_cluster.js HOST:PORT

'use strict';

const assert = require('node:assert/strict');
const { createCluster } = require('redis');
const IORedis = require('ioredis');

function expect(label, got, want) {
  console.log(`${label}: ${JSON.stringify(got)}`);
  assert.deepStrictEqual(got, want, label);
}

const KEYS = Array.from({ length: 40 }, (_, i) => `cluster-key-${i}`);

async function nodeRedis(host, port) {
  const c = createCluster({ rootNodes: [{ url: `redis://${host}:${port}` }] });
  const errors = [];
  c.on('error', (e) => errors.push(e));
  await c.connect();
  for (const [i, k] of KEYS.entries()) await c.set(k, String(i));
  expect('node-redis values', await Promise.all(KEYS.map((k) => c.get(k))), KEYS.map((_, i) => String(i)));
  await c.set('{tag}a', '1');
  await c.set('{tag}b', '2');
  expect('node-redis mget of one slot', await c.mGet(['{tag}a', '{tag}b']), ['1', '2']);
  await c.set('cluster-counter', '1');
  expect('node-redis incr', await c.incr('cluster-counter'), 2);
  expect('node-redis masters', c.masters.length >= 1, true);
  for (const k of [...KEYS, '{tag}a', '{tag}b', 'cluster-counter']) await c.del(k);
  await c.quit();
  expect('node-redis connection errors', errors.map((e) => e.message), []);
}

async function ioredis(host, port) {
  const c = new IORedis.Cluster([{ host, port }]);
  for (const [i, k] of KEYS.entries()) await c.set(k, i);
  expect('ioredis values', await Promise.all(KEYS.map((k) => c.get(k))), KEYS.map((_, i) => String(i)));
  await c.mset('{tag}a', '1', '{tag}b', '2');
  expect('ioredis mget of one slot', await c.mget('{tag}a', '{tag}b'), ['1', '2']);
  const piped = await c.pipeline().set('cluster-counter', 1).incr('cluster-counter').exec();
  expect('ioredis pipeline', piped, [[null, 'OK'], [null, 2]]);
  expect('ioredis every member', c.nodes('all').length >= 2, true);
  for (const k of [...KEYS, '{tag}a', '{tag}b', 'cluster-counter']) await c.del(k);
  await c.quit();
}

async function main() {
  const [address] = process.argv.slice(2);
  if (!address || !address.includes(':')) {
    console.error('usage: node node_cluster.js HOST:PORT');
    return 2;
  }
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon);
  const port = Number(address.slice(colon + 1));
  console.log(`node-redis ${require('redis/package.json').version}, ioredis ${require('ioredis/package.json').version}, cluster clients`);
  await nodeRedis(host, port);
  await ioredis(host, port);
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
