#!/usr/bin/env python3
"""Cache-stampede scenario: many clients read a hot key the moment it expires, and the value
takes RECOMPUTE_MS to rebuild. Compares the usual client-side pattern with CACHE.*:

  lock:   GET; on a miss SET lock NX PX; the lock holder recomputes, SETs the value PX and
          DELs the lock; the others poll GET every POLL_MS until the value is back.
  cache:  CACHE.GET key WAIT ms; the lease winner recomputes and CACHE.FILLs; the others
          block server-side until the fill (no grace: nothing stale to serve).
  cache+grace: the same with a stale grace period: the others get the stale value at once.

Reports, per scenario and summed over rounds: recomputes, round trips, client latency
p50/p99 (from the moment all clients start). Standalone: a small RESP client, no packages.

usage: scripts/stampede_bench.py [--flowkv target/release/flowkv-server] [--clients 200]
       [--rounds 5] [--recompute-ms 100] [--poll-ms 10]
"""
import argparse
import os
import socket
import statistics
import subprocess
import tempfile
import threading
import time


class Conn:
    """A minimal blocking RESP2 client."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.f = self.s.makefile("rb")
        self.trips = 0

    def cmd(self, *args):
        parts = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(parts))
        self.trips += 1
        return self.read()

    def read(self):
        line = self.f.readline()
        kind, rest = line[:1], line[1:-2]
        if kind in (b"+", b"-"):
            return rest.decode() if kind == b"+" else RuntimeError(rest.decode())
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.f.read(n + 2)[:-2]
            return data
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise RuntimeError("bad reply %r" % line)


def lock_client(c, key, recompute_s, poll_s, ttl_ms):
    """GET + SET NX lock + poll. Returns whether this client recomputed."""
    while True:
        if c.cmd("GET", key) is not None:
            return False
        if c.cmd("SET", key + ":lock", "1", "NX", "PX", 5000) == "OK":
            time.sleep(recompute_s)
            c.cmd("SET", key, "fresh", "PX", ttl_ms)
            c.cmd("DEL", key + ":lock")
            return True
        time.sleep(poll_s)


def cache_client(c, key, recompute_s, poll_s, ttl_ms, grace_ms):
    """CACHE.GET with server-side waiting. Returns whether this client recomputed."""
    while True:
        r = c.cmd("CACHE.GET", key, "WAIT", 5000)
        if r is None:  # the wait ran out (lease ended): read again
            continue
        status, _value, token, _ttl = r
        if status in ("HIT", "STALE"):
            return False
        if status == "WIN":
            time.sleep(recompute_s)
            c.cmd("CACHE.FILL", key, token, "fresh", ttl_ms, "GRACE", grace_ms)
            return True
        time.sleep(poll_s)  # PENDING without WAIT cannot happen here


def prepare(c, mode, key):
    """Leaves `key` just expired (lock) or stale (cache modes)."""
    c.cmd("DEL", key, key + ":lock")
    if mode == "lock":
        c.cmd("SET", key, "old", "PX", 50)
    else:
        grace = 60000 if mode == "cache+grace" else 0
        _, _, token, _ = c.cmd("CACHE.GET", key)
        c.cmd("CACHE.FILL", key, token, "old", 50, "GRACE", grace)
    time.sleep(0.1)


def run_round(port, conns, mode, key, args):
    barrier = threading.Barrier(len(conns) + 1)
    results = [None] * len(conns)
    recompute_s, poll_s = args.recompute_ms / 1000, args.poll_ms / 1000
    grace = 60000 if mode == "cache+grace" else 0

    def worker(i, c):
        barrier.wait()
        t0 = time.perf_counter()
        if mode == "lock":
            rec = lock_client(c, key, recompute_s, poll_s, 60000)
        else:
            rec = cache_client(c, key, recompute_s, poll_s, 60000, grace)
        results[i] = (rec, time.perf_counter() - t0)

    threads = [threading.Thread(target=worker, args=(i, c)) for i, c in enumerate(conns)]
    for t in threads:
        t.start()
    barrier.wait()
    for t in threads:
        t.join()
    return results


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flowkv", default="target/release/flowkv-server")
    ap.add_argument("--port", type=int, default=21860)
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--recompute-ms", type=int, default=100)
    ap.add_argument("--poll-ms", type=int, default=10)
    args = ap.parse_args()

    d = tempfile.mkdtemp()
    srv = subprocess.Popen(
        [args.flowkv, "--port", str(args.port), "--save", "", "--dir", d],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                admin = Conn(args.port)
                break
            except OSError:
                time.sleep(0.1)
        conns = [Conn(args.port) for _ in range(args.clients)]
        print("%d clients, %d rounds, recompute %d ms, lock poll %d ms"
              % (args.clients, args.rounds, args.recompute_ms, args.poll_ms))
        print("%-12s %10s %12s %9s %9s" % ("scenario", "recomputes", "round trips",
                                           "p50 ms", "p99 ms"))
        for mode in ("lock", "cache", "cache+grace"):
            recomputes, lat = 0, []
            for c in conns:
                c.trips = 0
            for r in range(args.rounds):
                key = "hot:%s:%d" % (mode, r)
                prepare(admin, mode, key)
                res = run_round(args.port, conns, mode, key, args)
                recomputes += sum(1 for rec, _ in res if rec)
                lat.extend(t for _, t in res)
            lat.sort()
            p50 = statistics.median(lat) * 1000
            p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
            trips = sum(c.trips for c in conns)
            print("%-12s %10d %12d %9.1f %9.1f" % (mode, recomputes, trips, p50, p99))
    finally:
        srv.terminate()
        srv.wait()
        os.system("rm -rf " + d)


if __name__ == "__main__":
    main()
