#!/usr/bin/env python3
"""Soak test: flowkv under 10,000 connections, hostile clients and a normal load.

    scripts/soak.py target/release/flowkv-server [--seconds 120] [--port 7399]

Starts the server (its own temporary directory, no persistence, high maxclients, a
`client-output-buffer-limit normal` class and a small `client-query-buffer-limit`), then:

1. baseline: the normal load alone (50 connections, SET/GET of 100-byte values), p50/p99;
2. soak, all at once for --seconds:
   - 10,000 connections held open, one in ten sending PING every second;
   - the same normal load, measured again (in its own process, so the hostile side's
     event loop does not colour its latencies);
   - a pipeliner that sends GETs of a 256 KB value and never reads (the output buffer
     limit must disconnect it);
   - huge multibulk headers (`*1048576` then nothing; then `$2147483647`);
   - first, alone for 10 s: bulk headers at proto-max-bulk-len (`$536870912`) followed by
     a trickle of data (memory must follow the data received, not the announced length);
   - slowloris connections sending one byte per second of a command they never finish;
   - connect/disconnect churn;
   - requests just under and just over client-query-buffer-limit;
3. checks the server still answers (PING, DBSIZE) and reports max RSS, the p99 ratio
   (goal <= 2x), and what happened to each hostile client.

Safety: if the server's RSS passes --rss-cap (default 3 GB) the memory-hungry hostile
clients are dropped and the run reports the limit as not enforced.
Python 3.11 standard library only. Not part of the test suite.
"""

import argparse
import asyncio
import multiprocessing as mp
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HOST = "127.0.0.1"
BIG_VALUE = 256 * 1024
QUERY_LIMIT = 16 * 1024 * 1024
OBUF_NORMAL = "normal 64mb 32mb 10"


def resp(*args):
    """A command in RESP."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


async def read_reply(reader):
    """One RESP2 reply (bulk strings as bytes, errors as Exception instances)."""
    line = await reader.readline()
    if not line:
        raise ConnectionError("closed")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        return Exception(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        n = int(rest)
        return None if n < 0 else (await reader.readexactly(n + 2))[:-2]
    if kind == b"*":
        n = int(rest)
        return None if n < 0 else [await read_reply(reader) for _ in range(n)]
    raise ConnectionError(f"bad reply {line!r}")


async def command(reader, writer, *args):
    writer.write(resp(*args))
    await writer.drain()
    return await read_reply(reader)


def percentile(sorted_vals, p):
    if not sorted_vals:
        return float("nan")
    return sorted_vals[min(len(sorted_vals) - 1, int(len(sorted_vals) * p / 100))]


# --------------------------------------------------------------------------------------
# Normal load (runs in a child process).


async def normal_load(port, seconds, conns, rate):
    """`conns` connections, each sending `rate` requests a second (paced, so the client's
    own event loop stays mostly idle and the latencies are the server's)."""
    lat = []
    errors = 0
    value = b"v" * 100
    deadline = time.monotonic() + seconds

    async def one(i):
        nonlocal errors
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
        except OSError:
            errors += 1
            return
        n = 0
        start = time.monotonic() + (i / conns) / rate
        while time.monotonic() < deadline:
            pause = start + n / rate - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            key = f"normal:{i}:{n % 100}"
            args = ("SET", key, value) if n % 2 == 0 else ("GET", key)
            t0 = time.perf_counter()
            try:
                r = await command(reader, writer, *args)
            except (OSError, ConnectionError, asyncio.IncompleteReadError):
                errors += 1
                return
            lat.append(time.perf_counter() - t0)
            if isinstance(r, Exception):
                errors += 1
            n += 1
        writer.close()

    await asyncio.gather(*(one(i) for i in range(conns)))
    lat.sort()
    return {
        "requests": len(lat),
        "errors": errors,
        "p50_ms": percentile(lat, 50) * 1e3,
        "p99_ms": percentile(lat, 99) * 1e3,
        "p999_ms": percentile(lat, 99.9) * 1e3,
        "max_ms": (lat[-1] if lat else float("nan")) * 1e3,
    }


def normal_load_proc(port, seconds, conns, rate, queue):
    queue.put(asyncio.run(normal_load(port, seconds, conns, rate)))


def run_normal_in_child(port, seconds, conns, rate):
    """Starts the normal load in its own process; returns (process, queue)."""
    queue = mp.Queue()
    p = mp.Process(target=normal_load_proc, args=(port, seconds, conns, rate, queue))
    p.start()
    return p, queue


# --------------------------------------------------------------------------------------
# The server.


class Server:
    def __init__(self, binary, port, directory):
        self.port = port
        args = [
            binary,
            "--port", str(port),
            "--bind", HOST,
            "--dir", directory,
            "--save", "",
            "--appendonly", "no",
            "--maxclients", "20000",
            "--client-output-buffer-limit", OBUF_NORMAL,
            "--client-query-buffer-limit", str(QUERY_LIMIT),
        ]
        self.log = open(os.path.join(directory, "server.log"), "wb")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(100):
            try:
                socket.create_connection((HOST, port), timeout=0.2).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit(f"server exited with {self.proc.returncode}")
                time.sleep(0.1)
        raise SystemExit("server did not start")

    def rss(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        if self.alive():
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.log.close()


# --------------------------------------------------------------------------------------
# The soak (main process).


class Soak:
    def __init__(self, server, args):
        self.srv = server
        self.args = args
        self.stop = asyncio.Event()
        self.report = {}
        self.rss_samples = []
        self.over_cap = asyncio.Event()

    def note(self, key, value):
        self.report[key] = value

    async def sample_rss(self):
        t0 = time.monotonic()
        while not self.stop.is_set():
            rss = self.srv.rss()
            self.rss_samples.append((time.monotonic() - t0, rss))
            if rss > self.args.rss_cap and not self.over_cap.is_set():
                self.note("rss_cap_hit_at_s", round(time.monotonic() - t0, 1))
                self.over_cap.set()
            await asyncio.sleep(0.5)

    async def sleep_or_stop(self, seconds):
        try:
            await asyncio.wait_for(self.stop.wait(), seconds)
        except asyncio.TimeoutError:
            pass

    async def connections(self, count):
        """`count` connections held open; one in ten PINGs every second."""
        held, failed, dropped, pings = [], 0, 0, 0
        for start in range(0, count, 500):
            batch = await asyncio.gather(
                *(asyncio.open_connection(HOST, self.srv.port) for _ in range(start, min(count, start + 500))),
                return_exceptions=True,
            )
            for b in batch:
                if isinstance(b, Exception):
                    failed += 1
                else:
                    held.append(b)
        self.note("connections_opened", len(held))
        self.note("connections_failed_to_open", failed)
        self.connections_ready.set()

        async def active(reader, writer):
            nonlocal dropped, pings
            while not self.stop.is_set():
                try:
                    r = await asyncio.wait_for(command(reader, writer, "PING"), 30)
                    pings += r == "PONG"
                except (OSError, ConnectionError, asyncio.IncompleteReadError, asyncio.TimeoutError):
                    dropped += 1
                    return
                await self.sleep_or_stop(1)

        await asyncio.gather(*(active(r, w) for r, w in held[::10]))
        self.note("active_connections_dropped", dropped)
        self.note("active_pings", pings)
        for _, w in held:
            w.close()

    async def pipeliner(self):
        """Sends GET big without reading; the output buffer limit should disconnect it."""
        reader, writer = await asyncio.open_connection(HOST, self.srv.port)
        await command(reader, writer, "CLIENT", "SETNAME", "soak-pipeliner")
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        t0 = time.monotonic()
        sent = 0
        outcome = "still connected at the end"
        while not self.stop.is_set():
            if self.over_cap.is_set():
                outcome = "NOT bounded: server RSS passed the cap, client dropped by the script"
                break
            try:
                writer.write(b"GET big\r\n" * 4)
                await asyncio.wait_for(writer.drain(), 1)
                sent += 4
            except asyncio.TimeoutError:
                pass  # the server stopped reading: fine, keep trying
            except (OSError, ConnectionError):
                outcome = f"disconnected by the server after {time.monotonic() - t0:.1f}s"
                break
            await asyncio.sleep(0.1)
        writer.transport.abort()
        self.note("pipeliner", f"{outcome}; {sent} GETs sent ({sent * BIG_VALUE >> 20} MB of replies)")

    async def watch_pipeliner(self):
        """Largest output buffer CLIENT LIST showed for the pipeliner."""
        reader, writer = await asyncio.open_connection(HOST, self.srv.port)
        max_omem, seen_gone = 0, None
        t0 = time.monotonic()
        while not self.stop.is_set():
            info = await command(reader, writer, "CLIENT", "LIST")
            lines = [l for l in info.decode().splitlines() if "name=soak-pipeliner" in l]
            if lines:
                fields = dict(f.split("=", 1) for f in lines[0].split() if "=" in f)
                max_omem = max(max_omem, int(fields.get("omem", 0)), int(fields.get("tot-mem", 0)))
            elif seen_gone is None and time.monotonic() - t0 > 2:
                seen_gone = round(time.monotonic() - t0, 1)
            await self.sleep_or_stop(1)
        writer.close()
        self.note("pipeliner_max_mem_in_client_list_mb", round(max_omem / 2**20, 1))
        self.note("pipeliner_gone_from_client_list_at_s", seen_gone)

    async def huge_multibulk(self, count):
        """`*1048576` and nothing more; later an invalid bulk length must close them."""
        conns = [await asyncio.open_connection(HOST, self.srv.port) for _ in range(count)]
        for _, w in conns:
            w.write(b"*1048576\r\n")
        await self.sleep_or_stop(5)
        rss_before = self.srv.rss()
        await self.sleep_or_stop(5)
        self.note("huge_multibulk_rss_delta_mb", round((self.srv.rss() - rss_before) / 2**20, 1))
        errors = closed = 0
        for r, w in conns:
            w.write(b"$2147483647\r\n")
            try:
                reply = await asyncio.wait_for(read_reply(r), 5)
                errors += isinstance(reply, Exception) and "invalid bulk length" in str(reply)
                closed += await asyncio.wait_for(r.read(1), 5) == b""
            except (OSError, ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                pass
            w.close()
        self.note("huge_multibulk", f"{count} sent *1048576; {errors} got the protocol error, {closed} closed")

    async def big_bulk_trickle(self, count):
        """`$536870912` (= proto-max-bulk-len) then 64 KB a second: memory must follow data."""
        rss0 = self.srv.rss()
        conns = []
        for _ in range(count):
            r, w = await asyncio.open_connection(HOST, self.srv.port)
            w.write(b"*2\r\n$4\r\nECHO\r\n$536870912\r\n")
            conns.append((r, w))
        peak = 0
        for _ in range(10):
            if self.stop.is_set() or self.over_cap.is_set():
                break
            for _, w in conns:
                w.write(b"x" * 65536)
            await self.sleep_or_stop(1)
            peak = max(peak, self.srv.rss() - rss0)
        for _, w in conns:
            w.transport.abort()
        self.note(
            "big_bulk_trickle",
            f"{count} clients announced 512 MB and sent 640 KB each (alone, first 10s): "
            f"server RSS +{peak >> 20} MB",
        )

    async def slowloris(self, count):
        """Commands trickled one byte a second that never complete."""
        payload = b"*2\r\n$4\r\nECHO\r\n$1000000\r\n" + b"y" * 1000
        conns = [await asyncio.open_connection(HOST, self.srv.port) for _ in range(count)]
        i = 0
        alive = count
        while not self.stop.is_set() and i < len(payload):
            alive = 0
            for r, w in conns:
                if w.is_closing():
                    continue
                try:
                    w.write(payload[i : i + 1])
                    alive += 1
                except (OSError, ConnectionError):
                    w.close()
            i += 1
            await self.sleep_or_stop(1)
        for _, w in conns:
            w.close()
        self.note("slowloris", f"{count} trickling 1 byte/s; {alive} still connected after {i}s")

    async def churn(self, workers):
        """Connect, PING, close, as fast as it goes."""
        done = failed = 0

        async def one():
            nonlocal done, failed
            while not self.stop.is_set():
                try:
                    r, w = await asyncio.open_connection(HOST, self.srv.port)
                    if done % 2:
                        await command(r, w, "PING")
                    w.close()
                    done += 1
                except (OSError, ConnectionError, asyncio.IncompleteReadError):
                    failed += 1
                    await asyncio.sleep(0.01)
                await asyncio.sleep(0.002)

        await asyncio.gather(*(one() for _ in range(workers)))
        self.note("churn", f"{done} connect/disconnect cycles, {failed} failed")

    async def query_buffer(self):
        """A request just under client-query-buffer-limit is served; one over it is closed."""
        under_ok = over_closed = rounds = 0
        while not self.stop.is_set() and not self.over_cap.is_set():
            rounds += 1
            r, w = await asyncio.open_connection(HOST, self.srv.port)
            n = QUERY_LIMIT - 1024 * 1024
            w.write(resp("SET", "qbuf:under", b"u" * n))
            try:
                reply = await asyncio.wait_for(read_reply(r), 30)
                under_ok += reply == "OK"
            except (OSError, ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                pass
            w.close()
            r, w = await asyncio.open_connection(HOST, self.srv.port)
            try:
                w.write(b"*3\r\n$3\r\nSET\r\n$10\r\nqbuf:over!\r\n$%d\r\n" % (2 * QUERY_LIMIT))
                for _ in range(2 * QUERY_LIMIT // (1024 * 1024)):
                    w.write(b"o" * 1024 * 1024)
                    await asyncio.wait_for(w.drain(), 10)
                over_closed += await asyncio.wait_for(r.read(1), 10) == b""
            except (OSError, ConnectionError, asyncio.IncompleteReadError):
                over_closed += 1
            except asyncio.TimeoutError:
                pass
            w.transport.abort()
            await self.sleep_or_stop(10)
        self.note(
            "query_buffer",
            f"{rounds} rounds: {under_ok} requests of 15 MB served, {over_closed} of 32 MB "
            f"closed (limit {QUERY_LIMIT >> 20} MB)",
        )

    async def run(self, seconds):
        self.connections_ready = asyncio.Event()
        r, w = await asyncio.open_connection(HOST, self.srv.port)
        await command(r, w, "SET", "big", b"b" * BIG_VALUE)
        w.close()
        sampler = asyncio.create_task(self.sample_rss())
        held = asyncio.create_task(self.connections(self.args.connections))
        await self.connections_ready.wait()
        print(f"  {self.report['connections_opened']} connections open; hostile clients start", flush=True)
        normal, queue = run_normal_in_child(self.srv.port, seconds, self.args.normal, self.args.rate)
        # First on its own, so its RSS figure is not mixed with the other hostile clients'.
        await self.big_bulk_trickle(self.args.big_bulk_clients)
        hostile = [
            self.pipeliner(),
            self.watch_pipeliner(),
            self.huge_multibulk(50),
            self.slowloris(200),
            self.churn(10),
            self.query_buffer(),
        ]
        tasks = [asyncio.create_task(h) for h in hostile]
        await asyncio.sleep(seconds - 10)
        self.stop.set()
        await asyncio.gather(*tasks, held, return_exceptions=True)
        await sampler
        result = await asyncio.get_running_loop().run_in_executor(None, queue.get)
        normal.join()
        return result


async def final_check(port):
    r, w = await asyncio.open_connection(HOST, port)
    ping = await command(r, w, "PING")
    dbsize = await command(r, w, "DBSIZE")
    clients = await command(r, w, "INFO", "clients")
    w.close()
    connected = [l for l in clients.decode().splitlines() if l.startswith("connected_clients")]
    return ping, dbsize, connected[0] if connected else "?"


def raise_fd_limit(need):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard == resource.RLIM_INFINITY else min(hard, max(soft, need))
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if target < need:
        sys.exit(f"RLIMIT_NOFILE hard limit {hard} < {need}: raise it (ulimit -Hn)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("server", help="path of the flowkv-server binary (release build)")
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--baseline-seconds", type=int, default=15)
    ap.add_argument("--port", type=int, default=7399)
    ap.add_argument("--connections", type=int, default=10_000)
    ap.add_argument("--normal", type=int, default=50, help="normal-load connections")
    ap.add_argument("--rate", type=int, default=100, help="requests/s per normal connection")
    ap.add_argument("--big-bulk-clients", type=int, default=4)
    ap.add_argument("--rss-cap", type=int, default=3 << 30, help="bytes")
    args = ap.parse_args()

    raise_fd_limit(args.connections + 2000)
    directory = tempfile.mkdtemp(prefix="flowkv-soak-")
    srv = Server(os.path.abspath(args.server), args.port, directory)
    try:
        print(f"baseline: {args.normal} connections x {args.rate} req/s, {args.baseline_seconds}s", flush=True)
        p, q = run_normal_in_child(args.port, args.baseline_seconds, args.normal, args.rate)
        base = q.get()
        p.join()
        print(f"  {base}", flush=True)
        rss_idle = srv.rss()

        print(f"soak: {args.seconds}s", flush=True)
        soak = Soak(srv, args)
        loaded = asyncio.run(soak.run(args.seconds))
        print(f"  {loaded}", flush=True)

        alive = srv.alive()
        check = asyncio.run(final_check(args.port)) if alive else None
        max_t, max_rss = max(soak.rss_samples, key=lambda s: s[1])
        print("\n=== soak report ===")
        print(f"server alive at the end: {alive}; PING/DBSIZE/clients: {check}")
        print(f"RSS: idle {rss_idle >> 20} MB, max {max_rss >> 20} MB (at {max_t:.0f}s), end {srv.rss() >> 20} MB")
        ratio = loaded["p99_ms"] / base["p99_ms"]
        print(
            f"normal load p50/p99: unloaded {base['p50_ms']:.2f}/{base['p99_ms']:.2f} ms, "
            f"under soak {loaded['p50_ms']:.2f}/{loaded['p99_ms']:.2f} ms "
            f"(p99 ratio {ratio:.2f}x, goal <= 2x); requests {base['requests']} / {loaded['requests']}, "
            f"errors {base['errors']} / {loaded['errors']}"
        )
        for k, v in soak.report.items():
            print(f"{k}: {v}")
        print("RSS over time (s, MB):", " ".join(f"{t:.0f}:{r >> 20}" for t, r in soak.rss_samples[::10]))
    finally:
        srv.stop()
        with open(os.path.join(directory, "server.log"), "rb") as f:
            log = f.read().decode(errors="replace").splitlines()
        closing = [l for l in log if "losing client" in l or "closed for" in l or "evict" in l.lower()]
        print(f"server log: {len(closing)} limit disconnections logged" + (f", e.g. {closing[0]}" if closing else ""))
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
