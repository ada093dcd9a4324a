#!/usr/bin/env python3
"""Fork-less BGSAVE under load (issue 6's benchmark).

Loads N keys with V-byte values into flowkv, then runs a SET load (redis-benchmark, 50
clients, random keys of the same keyspace) twice: once alone, once with a BGSAVE started a
second in. Reports the peak extra RSS while the snapshot runs (as a share of the dataset's
RSS), the load's p99 latency with and without the snapshot, and how long flowkv and
redis-server take to load the resulting dump.rdb.

usage: scripts/bgsave_bench.py [--flowkv target/release/flowkv-server] [--keys 5000000]
       [--value 100] [--requests 2000000]
Needs redis-server, redis-cli and redis-benchmark on PATH (Debian: redis-server redis-tools).
"""
import argparse
import os
import shutil
import subprocess
import tempfile
import threading
import time

from collection_bench import enc, free_port, load, rss_kb, start


def info(port, field):
    out = subprocess.run(["redis-cli", "-p", str(port), "info", "persistence"],
                         capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def set_load(port, keys, value, requests, out):
    """Runs redis-benchmark SET and stores (rps, p99 ms) in `out`."""
    csv = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set", "-n", str(requests),
                          "-r", str(keys), "-d", str(value), "-c", "50", "--csv"],
                         capture_output=True, text=True).stdout
    row = [c.strip('"') for c in csv.strip().splitlines()[-1].split(",")]
    out["rps"], out["p99"] = float(row[1]), float(row[6])


def time_to_ready(cmd, port):
    """Seconds from start until PING answers PONG (not -LOADING)."""
    started = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while True:
        r = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
        if r.stdout.strip() == "PONG":
            return time.time() - started, proc
        if proc.poll() is not None:
            raise SystemExit("server exited while loading: %s" % cmd)
        time.sleep(0.01)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flowkv", default="target/release/flowkv-server")
    ap.add_argument("--keys", type=int, default=5000000)
    ap.add_argument("--value", type=int, default=100)
    ap.add_argument("--requests", type=int, default=2000000)
    a = ap.parse_args()
    flowkv = os.path.abspath(a.flowkv)
    d = tempfile.mkdtemp(prefix="bgsave-bench-")
    port = free_port()
    base = [flowkv, "--save", "", "--dir", d]
    srv = start(base, port)
    try:
        rss0 = rss_kb(srv.pid)
        payload = b"x" * a.value
        load(port, (enc(b"SET", b"key:%d" % i, payload) for i in range(a.keys)), 1)
        time.sleep(1)
        dataset_kb = rss_kb(srv.pid) - rss0
        print("dataset: %d keys x %d bytes, RSS %.0f MB" % (a.keys, a.value, dataset_kb / 1024))

        alone = {}
        set_load(port, a.keys, a.value, a.requests, alone)
        print("SET load alone: %.0f rps, p99 %.2f ms" % (alone["rps"], alone["p99"]))

        during = {}
        t = threading.Thread(target=set_load, args=(port, a.keys, a.value, a.requests, during))
        t.start()
        time.sleep(1)
        before = rss_kb(srv.pid)
        started = time.time()
        subprocess.run(["redis-cli", "-p", str(port), "bgsave"], capture_output=True)
        peak = before
        while info(port, "rdb_bgsave_in_progress") != "0":
            peak = max(peak, rss_kb(srv.pid))
            time.sleep(0.01)
        took = time.time() - started
        t.join()
        print("BGSAVE: %.1f s, status %s, peak extra RSS %.1f MB = %.1f%% of the dataset"
              % (took, info(port, "rdb_last_bgsave_status"), (peak - before) / 1024,
                 100.0 * (peak - before) / max(dataset_kb, 1)))
        print("SET load during BGSAVE: %.0f rps, p99 %.2f ms (alone: p99 %.2f ms)"
              % (during["rps"], during["p99"], alone["p99"]))
    finally:
        srv.kill()
        srv.wait()

    rdb = os.path.join(d, "dump.rdb")
    print("dump.rdb: %.0f MB" % (os.path.getsize(rdb) / 1e6))
    times = {}
    for name, cmd in (("flowkv", base), ("redis", ["redis-server", "--save", "", "--dir", d,
                                                    "--appendonly", "no"])):
        p = free_port()
        times[name], proc = time_to_ready(cmd + ["--port", str(p), "--bind", "127.0.0.1"], p)
        proc.kill()
        proc.wait()
    print("load time: flowkv %.2f s, redis %.2f s, ratio %.2f"
          % (times["flowkv"], times["redis"], times["flowkv"] / times["redis"]))
    shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
