#!/usr/bin/env python3
"""Memory per key of keys with a TTL: flowkv against redis-server.

compare.sh (../shared/tools/bench) has no TTL dataset, so this loads both servers the way
its benchutil.py does (one pipelined connection, batches of 2000, no DEBUG commands), with
`SET key:%012d <value> EX 3600`, and reports the growth of RSS (summed over the server's
process group) and of INFO used_memory per key, and the ratio flowkv/redis.

usage: scripts/memory_bench.py [--flowkv target/release/flowkv-server] [--redis redis-server]
                               [--keys 1000000] [--value-size 10] [--ttl 3600] [--no-ttl]
"""
import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, "/work/shared/tools/bench")
import benchutil  # noqa: E402  (RESP reader, RSS and used_memory probes)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def gen(n, valsize, ttl):
    val = b"x" * valsize
    tail = b"" if ttl is None else b"$2\r\nEX\r\n$%d\r\n%d\r\n" % (len(str(ttl)), ttl)
    head = b"*%d\r\n$3\r\nSET\r\n$16\r\n" % (3 if ttl is None else 5)
    tmpl = head + b"key:%012d\r\n$" + str(valsize).encode() + b"\r\n" + val + b"\r\n" + tail
    for i in range(n):
        yield tmpl % i


def load(port, n, valsize, ttl, batch=2000):
    s = benchutil.connect(port, timeout=60.0)
    r = benchutil.Reader(s)
    g = gen(n, valsize, ttl)
    sent = 0
    while sent < n:
        chunk = [next(g) for _ in range(min(batch, n - sent))]
        s.sendall(b"".join(chunk))
        for _ in chunk:
            v, err = r.read()
            if err:
                raise SystemExit("error reply while loading: %r" % (v,))
        sent += len(chunk)
    s.close()


def measure(cmd, args):
    port = free_port()
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.Popen(cmd.format(port=port, dir=d), shell=True, cwd=d,
                             start_new_session=True, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        try:
            for _ in range(300):
                try:
                    if benchutil.command(port, "PING", timeout=1.0)[0] == "PONG":
                        break
                except OSError:
                    pass
                time.sleep(0.1)
            time.sleep(0.5)
            rss0 = benchutil.procstat(p.pid)[0]
            used0 = benchutil.usedmem(port)
            load(port, args.keys, args.value_size, args.ttl)
            time.sleep(1.0)
            rss1 = benchutil.procstat(p.pid)[0]
            used1 = benchutil.usedmem(port)
            dbsize = benchutil.command(port, "DBSIZE")[0]
            if int(dbsize) != args.keys:
                raise SystemExit("%s: DBSIZE %r after loading %d keys" % (cmd, dbsize, args.keys))
        finally:
            os.killpg(p.pid, signal.SIGTERM)
            p.wait()
    rss = (rss1 - rss0) * 1024 / args.keys
    used = None if used0 is None or used1 is None else (used1 - used0) / args.keys
    return rss, used


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--flowkv", default="target/release/flowkv-server")
    ap.add_argument("--redis", default="redis-server")
    ap.add_argument("--keys", type=int, default=1_000_000)
    ap.add_argument("--value-size", type=int, default=10)
    ap.add_argument("--ttl", type=int, default=3600)
    ap.add_argument("--no-ttl", dest="ttl", action="store_const", const=None)
    args = ap.parse_args()
    servers = [
        ("redis", args.redis + " --port {port} --save '' --appendonly no"),
        ("flowkv", os.path.abspath(args.flowkv) + " --port {port} --threads 1"),
    ]
    res = {}
    for name, cmd in servers:
        res[name] = measure(cmd, args)
    what = "%d keys, %d-byte values, %s" % (
        args.keys, args.value_size, "no TTL" if args.ttl is None else "EX %d" % args.ttl)
    print("memory per key (%s)" % what)
    print("%-8s %10s %10s" % ("", "RSS B/key", "used B/key"))
    for name, (rss, used) in res.items():
        print("%-8s %10.1f %10s" % (name, rss, "NA" if used is None else "%.1f" % used))
    (ra, ua), (rb, ub) = res["redis"], res["flowkv"]
    print("ratio flowkv/redis: RSS %.2f, used %s" % (
        rb / ra, "NA" if ua is None or ub is None else "%.2f" % (ub / ua)))


if __name__ == "__main__":
    main()
