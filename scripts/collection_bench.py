#!/usr/bin/env python3
"""Collection workloads the shared compare.sh does not cover, run against redis-server and
flowkv side by side (one core each): ZRANGE key 0 M-1 and XADD (3 small fields) throughput
via redis-benchmark, and memory (growth of RSS and used_memory while loading) for N sorted
sets of M members and for one stream of E entries with 3 small fields.

usage: scripts/collection_bench.py [--flowkv target/release/flowkv-server]
       [--zsets 100000] [--members 100] [--stream-entries 1000000] [--requests 200000]
       [--rounds 5]
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


def load(port, commands, lines_per_reply):
    """Sends the encoded commands through one connection, 500 per pipelined batch, reading
    the replies (each `lines_per_reply` CRLF-terminated lines) before the next batch."""
    s = socket.create_connection(("127.0.0.1", port))
    batch = []
    for c in commands:
        batch.append(c)
        if len(batch) == 500:
            send_batch(s, batch, lines_per_reply)
            batch = []
    if batch:
        send_batch(s, batch, lines_per_reply)
    s.close()


def send_batch(s, batch, lines_per_reply):
    s.sendall(b"".join(batch))
    got, buf = 0, b""
    while got < len(batch) * lines_per_reply:
        chunk = s.recv(65536)
        buf += chunk
        got = buf.count(b"\r\n")


def zsets(n, m):
    for i in range(n):
        args = [b"ZADD", b"zset:%09d" % i]
        for j in range(m):
            args += [b"%d" % (i * m + j), b"member:%05d" % j]
        yield enc(*args)


def stream(entries):
    for i in range(entries):
        yield enc(b"XADD", b"stream", b"*", b"sensor", b"%d" % (i % 1000),
                  b"temp", b"%d" % (i % 97), b"ok", b"1")


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


def rps(port, requests, *command):
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-n", str(requests), "-c", "50",
                          "-q"] + list(command), capture_output=True, text=True).stdout
    # The last progress line reads "zrange zr 0 99: 51546.39 requests per second, ...".
    final = out.replace("\r", "\n").strip().splitlines()[-1]
    return float(final.split(": ")[1].split()[0])


def zrange_rps(port, m, requests):
    subprocess.run(["redis-cli", "-p", str(port), "del", "zr"], capture_output=True)
    args = ["redis-cli", "-p", str(port), "zadd", "zr"]
    for j in range(m):
        args += [str(j), "member:%05d" % j]
    subprocess.run(args, capture_output=True)
    return rps(port, requests, "zrange", "zr", "0", str(m - 1))


def xadd_rps(port, requests):
    subprocess.run(["redis-cli", "-p", str(port), "del", "xb"], capture_output=True)
    return rps(port, requests, "xadd", "xb", "*", "sensor", "17", "temp", "21", "ok", "1")


def compare_rps(name, ports, rounds, run):
    """Back-to-back runs, alternating servers, median of per-round ratios (absolute numbers
    drift on a shared machine; ratios of neighbours don't much)."""
    ratios, got = [], {"redis": [], "flowkv": []}
    for r in range(rounds):
        order = ("redis", "flowkv") if r % 2 == 0 else ("flowkv", "redis")
        for server in order:
            got[server].append(run(ports[server]))
        ratios.append(got["flowkv"][-1] / got["redis"][-1])
    ratios.sort()
    print("%s rps (median): redis %.0f flowkv %.0f; ratio median %.2f (min %.2f max %.2f)"
          % (name, sorted(got["redis"])[rounds // 2], sorted(got["flowkv"])[rounds // 2],
             ratios[rounds // 2], ratios[0], ratios[-1]))


def compare_memory(name, procs, ports, commands, lines_per_reply):
    mem = {}
    for server in ("redis", "flowkv"):
        before = (rss_kb(procs[server].pid), info_field(ports[server], "used_memory"))
        load(ports[server], commands(), lines_per_reply)
        time.sleep(1)
        mem[server] = (rss_kb(procs[server].pid) - before[0],
                       info_field(ports[server], "used_memory") - before[1])
    r, f = mem["redis"], mem["flowkv"]
    print("%s, RSS growth KB: redis %d flowkv %d ratio %.2f" % (name, r[0], f[0], f[0] / r[0]))
    print("%s, used_memory growth: redis %d flowkv %d ratio %.2f"
          % (name, r[1], f[1], f[1] / r[1]))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flowkv", default="target/release/flowkv-server")
    ap.add_argument("--zsets", type=int, default=100000)
    ap.add_argument("--members", type=int, default=100)
    ap.add_argument("--stream-entries", type=int, default=1000000)
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
        compare_rps("ZRANGE 0 %d" % (a.members - 1), ports, a.rounds,
                    lambda p: zrange_rps(p, a.members, a.requests))
        compare_rps("XADD * (3 fields)", ports, a.rounds, lambda p: xadd_rps(p, a.requests))
        compare_memory("%d zsets x %d members" % (a.zsets, a.members), procs, ports,
                       lambda: zsets(a.zsets, a.members), 1)
        compare_memory("stream of %d entries x 3 fields" % a.stream_entries, procs, ports,
                       lambda: stream(a.stream_entries), 2)
    finally:
        for p in procs.values():
            p.kill()
            p.wait()


if __name__ == "__main__":
    main()
