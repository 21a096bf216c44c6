#!/usr/bin/env python3
"""Raw Redis-protocol clients for the shell benches (idle_memory.sh,
slow_reader.sh), driven over stdin and stdout; the standard library only.

  idle PORT COUNT
      Opens COUNT connections to 127.0.0.1:PORT, sends PING on each and
      reads its +PONG (so each is a client the server has served once),
      prints `ready COUNT`, and keeps them open and silent until stdin
      ends; then closes them and exits.

  slow PORT gets N | mget N
      Sends, in one write, N pipelined `GET big` (gets) or one
      `MGET big big ...` naming `big` N times (mget), reads nothing, and
      prints `sent BYTES`. On a line `drain LENGTH` on stdin (LENGTH: the
      value of `big` in bytes) it reads until the whole answer has come,
      the server closes the connection, or nothing comes for 10 s, and
      prints `read BYTES of WHOLE end=complete|eof|reset|stalled`.

Errors go to stderr with a non-zero exit.
"""

import socket
import sys

STALL_SECS = 10


def command(*args):
    """One command in the Redis protocol."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(out)


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def read_exactly(sock, n):
    got = b""
    while len(got) < n:
        chunk = sock.recv(n - len(got))
        if not chunk:
            raise ConnectionError("closed after %d of %d bytes" % (len(got), n))
        got += chunk
    return got


def idle(port, count):
    socks = []
    for _ in range(count):
        socks.append(connect(port))
    for sock in socks:
        sock.sendall(b"PING\r\n")
    for i, sock in enumerate(socks):
        reply = read_exactly(sock, 7)
        if reply != b"+PONG\r\n":
            raise ConnectionError("connection %d answered %r" % (i, reply))
    print("ready %d" % count, flush=True)
    sys.stdin.read()
    for sock in socks:
        sock.close()


def slow(port, kind, n):
    sock = connect(port)
    if kind == "gets":
        request = command(b"GET", b"big") * n
    elif kind == "mget":
        request = command(b"MGET", *([b"big"] * n))
    else:
        raise ValueError("unknown kind %r (gets, mget)" % kind)
    sock.sendall(request)
    print("sent %d" % len(request), flush=True)
    line = sys.stdin.readline().split()
    if len(line) != 2 or line[0] != "drain":
        return
    length = int(line[1])
    bulk = len(b"$%d\r\n" % length) + length + 2
    whole = n * bulk if kind == "gets" else len(b"*%d\r\n" % n) + n * bulk
    sock.settimeout(STALL_SECS)
    got, end = 0, "complete"
    while got < whole:
        try:
            chunk = sock.recv(min(1 << 20, whole - got))
        except ConnectionResetError:
            end = "reset"
            break
        except socket.timeout:
            end = "stalled"
            break
        if not chunk:
            end = "eof"
            break
        got += len(chunk)
    print("read %d of %d end=%s" % (got, whole, end), flush=True)
    sock.close()


def main():
    args = sys.argv[1:]
    if len(args) == 3 and args[0] == "idle":
        idle(int(args[1]), int(args[2]))
    elif len(args) == 4 and args[0] == "slow":
        slow(int(args[1]), args[2], int(args[3]))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError) as e:
        print("raw_clients.py: %s" % e, file=sys.stderr)
        sys.exit(1)
