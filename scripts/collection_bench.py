#!/usr/bin/env python3
"""Collection workloads the shared compare.sh does not cover, run against redis-server and
flowkv side by side (one core each): memory for N sorted sets of M members (growth of RSS
and used_memory while loading), and ZRANGE key 0 M-1 throughput via redis-benchmark.

usage: scripts/collection_bench.py [--flowkv target/release/flowkv-server]
       [--zsets 100000] [--members 100] [--requests 200000] [--rounds 5]
Prints one line per measurement with the flowkv/redis ratio. Needs redis-server and
redis-benchmark on PATH (Debian: redis-server redis-tools).
"""
import argparse
import os
import socket
import subprocess
import tempfile
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def enc(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def start(cmd, port):
    d = tempfile.mkdtemp(prefix="collbench-")
    p = subprocess.Popen(cmd + ["--port", str(port), "--bind", "127.0.0.1"], cwd=d,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return p
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start: %s" % cmd)


def load_zsets(port, n, m):
    s = socket.create_connection(("127.0.0.1", port))
    batch, pending = [], 0
    for i in range(n):
        args = [b"ZADD", b"zset:%09d" % i]
        for j in range(m):
            args += [b"%d" % (i * m + j), b"member:%05d" % j]
        batch.append(enc(*args))
        pending += 1
        if len(batch) == 500 or i == n - 1:
            s.sendall(b"".join(batch))
            batch = []
            got = 0
            buf = b""
            while got < pending:
                buf += s.recv(65536)
                got = buf.count(b"\r\n")
            pending = 0
    s.close()


def info_field(port, field):
    out = subprocess.run(["redis-cli", "-p", str(port), "info", "memory"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith(field + ":"):
            return int(line.split(":")[1])
    return 0


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def zrange_rps(port, m, requests):
    subprocess.run(["redis-cli", "-p", str(port), "del", "zr"], capture_output=True)
    args = ["redis-cli", "-p", str(port), "zadd", "zr"]
    for j in range(m):
        args += [str(j), "member:%05d" % j]
    subprocess.run(args, capture_output=True)
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-n", str(requests), "-c", "50",
                          "-q", "zrange", "zr", "0", str(m - 1)],
                         capture_output=True, text=True).stdout
    # The last progress line reads "zrange zr 0 99: 51546.39 requests per second, ...".
    final = out.replace("\r", "\n").strip().splitlines()[-1]
    return float(final.split(": ")[1].split()[0])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flowkv", default="target/release/flowkv-server")
    ap.add_argument("--zsets", type=int, default=100000)
    ap.add_argument("--members", type=int, default=100)
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--rounds", type=int, default=5)
    a = ap.parse_args()
    servers = {
        "redis": ["redis-server", "--save", "", "--appendonly", "no"],
        "flowkv": [os.path.abspath(a.flowkv), "--threads", "1"],
    }
    procs, ports = {}, {}
    for name, cmd in servers.items():
        ports[name] = free_port()
        procs[name] = start(cmd, ports[name])
    try:
        # Throughput: back-to-back runs, alternating servers, median of per-round ratios
        # (absolute numbers drift on a shared machine; ratios of neighbours don't much).
        ratios, rps = [], {"redis": [], "flowkv": []}
        for _ in range(a.rounds):
            for name in ("redis", "flowkv"):
                rps[name].append(zrange_rps(ports[name], a.members, a.requests))
            ratios.append(rps["flowkv"][-1] / rps["redis"][-1])
        ratios.sort()
        print("ZRANGE 0 %d rps (median): redis %.0f flowkv %.0f; ratio median %.2f (min %.2f max %.2f)"
              % (a.members - 1, sorted(rps["redis"])[a.rounds // 2],
                 sorted(rps["flowkv"])[a.rounds // 2], ratios[a.rounds // 2], ratios[0], ratios[-1]))
        mem = {}
        for name in ("redis", "flowkv"):
            before = (rss_kb(procs[name].pid), info_field(ports[name], "used_memory"))
            load_zsets(ports[name], a.zsets, a.members)
            time.sleep(1)
            mem[name] = (rss_kb(procs[name].pid) - before[0],
                         info_field(ports[name], "used_memory") - before[1])
        r, f = mem["redis"], mem["flowkv"]
        print("%d zsets x %d members, RSS growth KB: redis %d flowkv %d ratio %.2f"
              % (a.zsets, a.members, r[0], f[0], f[0] / r[0]))
        print("%d zsets x %d members, used_memory growth: redis %d flowkv %d ratio %.2f"
              % (a.zsets, a.members, r[1], f[1], f[1] / r[1]))
    finally:
        for p in procs.values():
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
