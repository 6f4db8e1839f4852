#!/usr/bin/env python3
"""A bounded load test of the playground server, on loopback only.

Starts `backprop playground --port 0` (the binary given, default target/release/backprop),
then for DURATION seconds (default 60) runs CLIENTS (default 200) concurrent clients that
create sessions, step, play and pause, change configs, ask for a neuron's numbers, upload
CSVs and hold frame streams open, together with hostile ones: oversized and malformed
bodies, clients trickling their headers a byte at a time, connections left idle (half of
them promising a body that never comes). A health check (GET /api/limits) runs throughout.
When the load stops it waits for idle sessions to be reaped and checks the server recovered.

Prints responses by status, p50/p99 latency of the normal calls, the server's peak and
final memory, how long the hostile connections were held, and a verdict; exits non-zero
if any 5xx was answered, the server died, a health check failed, it did not recover, or
its peak memory went over the bound its configuration allows (`memory_bound_bytes` in
GET /api/limits).

    scripts/playground-load.py [--bin target/release/backprop] [--duration 60] [--clients 200]
"""
import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict

HOST = "127.0.0.1"


def rss_kb(pid, field="VmRSS"):
    """Resident memory in KiB: all of it (VmRSS), or the program's own data (RssAnon: the
    heap, arenas and stacks, without the pages of the binary and libraries it has read)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


class Stats:
    def __init__(self):
        self.status = Counter()
        self.by_kind = defaultdict(Counter)
        self.latency = defaultdict(list)
        self.errors = Counter()
        self.health = []
        self.health_failures = 0
        self.hostile = defaultdict(list)

    def record(self, kind, status, seconds):
        self.status[status] += 1
        self.by_kind[kind][status] += 1
        if status < 400:
            self.latency[kind].append(seconds)


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        if ":" in l:
            k, v = l.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    if status in (204, 304) or status < 200:
        body = b""
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await reader.read()
    return status, headers, body


class Client:
    """One keep-alive connection, reopened when the server closes it."""

    def __init__(self, port, stats):
        self.port, self.stats = port, stats
        self.reader = self.writer = None

    async def call(self, kind, method, path, body=b"", record=True):
        t0 = time.monotonic()
        for attempt in range(2):
            try:
                if self.writer is None:
                    self.reader, self.writer = await asyncio.open_connection(HOST, self.port)
                req = (f"{method} {path} HTTP/1.1\r\nhost: {HOST}\r\ncontent-type: application/json\r\n"
                       f"content-length: {len(body)}\r\n\r\n").encode() + body
                self.writer.write(req)
                await self.writer.drain()
                status, headers, data = await asyncio.wait_for(read_response(self.reader), 60)
                if headers.get("connection") == "close":
                    await self.close()
                if record:
                    self.stats.record(kind, status, time.monotonic() - t0)
                return status, data
            except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, ValueError) as e:
                await self.close()
                if attempt == 1:
                    self.stats.errors[f"{kind}: {type(e).__name__}"] += 1
                    return None, b""

    async def close(self):
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None


def csv_body(rows, regression=False):
    out = ["x1,x2,label"]
    for i in range(rows):
        x1, x2 = random.uniform(-1, 1), random.uniform(-1, 1)
        y = f"{x1 + x2:.3f}" if regression else ("a" if x1 * x2 > 0 else "b")
        out.append(f"{x1:.3f},{x2:.3f},{y}")
    return ("\n".join(out) + "\n").encode()


async def api_client(port, stats, until):
    c = Client(port, stats)
    while time.monotonic() < until:
        cfg = {"dataset": random.choice(["circle", "xor", "gauss", "spiral"]), "points": 200,
               "layers": [{"neurons": 4, "activation": "tanh"}]}
        status, data = await c.call("create", "POST", "/api/sessions", json.dumps(cfg).encode())
        if status != 201:
            await asyncio.sleep(random.uniform(0.2, 1.0))
            continue
        sid = json.loads(data)["id"]
        base = f"/api/sessions/{sid}"
        for _ in range(random.randint(3, 8)):
            if time.monotonic() >= until:
                break
            r = random.random()
            if r < 0.3:
                await c.call("step", "POST", f"{base}/step?epochs=5")
            elif r < 0.45:
                await c.call("show", "GET", base)
            elif r < 0.55:
                await c.call("neuron", "GET", f"{base}/neuron?layer=1&neuron=0")
            elif r < 0.65:
                cfg["learning_rate"] = random.choice([0.01, 0.03, 0.1])
                await c.call("config", "PUT", f"{base}/config", json.dumps(cfg).encode())
            elif r < 0.75:
                await c.call("upload", "POST", f"{base}/upload?problem=classification", csv_body(100))
            elif r < 0.9:
                await c.call("play", "POST", f"{base}/play")
                await asyncio.sleep(random.uniform(0.2, 1.0))
                await c.call("pause", "POST", f"{base}/pause")
            else:
                await c.call("reset", "POST", f"{base}/reset")
            await asyncio.sleep(random.uniform(0.05, 0.3))
        # most clients close their session; some leave it for the reaper
        if random.random() < 0.8:
            await c.call("close", "DELETE", base)
    await c.close()


async def stream_client(port, stats, until):
    """Creates a session, plays it and holds its frame stream open for a while."""
    c = Client(port, stats)
    while time.monotonic() < until:
        status, data = await c.call("create", "POST", "/api/sessions", b'{"points": 100}')
        if status != 201:
            await asyncio.sleep(random.uniform(0.5, 1.5))
            continue
        sid = json.loads(data)["id"]
        await c.call("play", "POST", f"/api/sessions/{sid}/play")
        frames, t0 = 0, time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
            writer.write(f"GET /api/sessions/{sid}/events HTTP/1.1\r\nhost: {HOST}\r\n\r\n".encode())
            await writer.drain()
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            stats.record("events", int(head.split()[1]), time.monotonic() - t0)
            hold = min(random.uniform(5, 15), max(0.0, until - time.monotonic()))
            end = time.monotonic() + hold
            while time.monotonic() < end:
                try:
                    line = await asyncio.wait_for(reader.readline(), max(0.01, end - time.monotonic()))
                except asyncio.TimeoutError:
                    break
                if not line:
                    break
                if line.startswith(b"event: frame"):
                    frames += 1
            writer.close()
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError) as e:
            stats.errors[f"events: {type(e).__name__}"] += 1
        stats.hostile["frames per stream"].append(frames)
        await c.call("pause", "POST", f"/api/sessions/{sid}/pause")
        await c.call("close", "DELETE", f"/api/sessions/{sid}")
    await c.close()


async def bad_body_client(port, stats, until, kind):
    c = Client(port, stats)
    while time.monotonic() < until:
        if kind == "oversized":
            body = b'{"points": ' + b"1" * (2 << 20) + b"}"
        else:
            body = random.choice([b"{", b'{"points": "many"}', b'{"layers": [{"neurons": 1e9}]}',
                                  b"\xff\xfe", b'{"dataset": "nope"}', b"[]"])
        await c.call(kind, "POST", "/api/sessions", body)
        await asyncio.sleep(random.uniform(0.1, 0.5))
    await c.close()


async def trickler(port, stats, until):
    """Sends a request's headers one byte every 0.2 s; records how long the server listened."""
    while time.monotonic() < until:
        t0 = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
            req = f"GET /api/limits HTTP/1.1\r\nhost: {HOST}\r\nx-slow: {'a' * 400}\r\n\r\n".encode()
            for b in req:
                if time.monotonic() >= until + 30:
                    break
                writer.write(bytes([b]))
                await writer.drain()
                # a server that closed shows as EOF
                try:
                    data = await asyncio.wait_for(reader.read(1024), 0.2)
                    if data == b"" or data.startswith(b"HTTP/1.1 408"):
                        break
                    if data.startswith(b"HTTP/1.1 200"):
                        stats.hostile["trickler answered"].append(time.monotonic() - t0)
                        break
                except asyncio.TimeoutError:
                    pass
            writer.close()
        except OSError:
            pass
        stats.hostile["trickler held (s)"].append(time.monotonic() - t0)


async def idle_connection(port, stats, until, promise_body):
    while time.monotonic() < until:
        t0 = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection(HOST, port)
            if promise_body:
                writer.write(f"POST /api/sessions HTTP/1.1\r\nhost: {HOST}\r\ncontent-length: 1000\r\n\r\n".encode())
                await writer.drain()
            data = await asyncio.wait_for(reader.read(4096), max(1.0, until - time.monotonic() + 30))
            m = re.match(rb"HTTP/1.1 (\d+)", data or b"")
            if m:
                stats.status[int(m.group(1))] += 1
                stats.by_kind["idle with body" if promise_body else "idle"][int(m.group(1))] += 1
            writer.close()
        except (OSError, asyncio.TimeoutError):
            pass
        key = "idle promising a body held (s)" if promise_body else "idle held (s)"
        stats.hostile[key].append(time.monotonic() - t0)


async def health(port, stats, until):
    c = Client(port, stats)
    while time.monotonic() < until:
        t0 = time.monotonic()
        status, _ = await c.call("health", "GET", "/api/limits", record=False)
        dt = time.monotonic() - t0
        stats.health.append(dt)
        if status != 200:
            stats.health_failures += 1
        await asyncio.sleep(0.5)
    await c.close()


async def memory(pid, samples, until):
    while time.monotonic() < until:
        r = rss_kb(pid)
        if r is not None:
            samples.append(r)
        await asyncio.sleep(0.25)


def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]


async def main(a):
    proc = subprocess.Popen(
        [a.bin, "playground", "--host", HOST, "--port", "0", "--session-ttl", str(a.ttl),
         "--max-sessions", str(a.max_sessions), "--max-playing", str(a.max_playing),
         "--max-connections", str(a.max_connections)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    port = int(re.search(r"http://[\d.]+:(\d+)/", line).group(1))
    stats = Stats()
    idle_rss = rss_kb(proc.pid)
    idle_anon = rss_kb(proc.pid, "RssAnon")
    mem = []
    t_start = time.monotonic()
    until = t_start + a.duration
    n = a.clients
    tasks = [asyncio.create_task(health(port, stats, until + 5)),
             asyncio.create_task(memory(proc.pid, mem, until + 5))]
    # the client mix: 200 by default = 120 API, 30 streams, 10 oversized, 10 malformed,
    # 10 tricklers, 10 idle, 10 idle promising a body
    mix = [(api_client, 0.6), (stream_client, 0.15)]
    for fn, share in mix:
        tasks += [asyncio.create_task(fn(port, stats, until)) for _ in range(int(n * share))]
    k = max(1, n // 20)
    tasks += [asyncio.create_task(bad_body_client(port, stats, until, "oversized")) for _ in range(k)]
    tasks += [asyncio.create_task(bad_body_client(port, stats, until, "malformed")) for _ in range(k)]
    tasks += [asyncio.create_task(trickler(port, stats, until)) for _ in range(k)]
    tasks += [asyncio.create_task(idle_connection(port, stats, until, False)) for _ in range(k)]
    tasks += [asyncio.create_task(idle_connection(port, stats, until, True)) for _ in range(k)]
    await asyncio.gather(*tasks)
    load_end = time.monotonic()
    peak = max(mem) if mem else None
    # recovery: idle sessions reaped, memory handed back, still answering
    await asyncio.sleep(a.ttl * 2 + 5)
    c = Client(port, stats)
    status, body = await c.call("after", "GET", "/api/limits", record=False)
    t0 = time.monotonic()
    status2, data = await c.call("after", "POST", "/api/sessions", b"{}", record=False)
    create_after = time.monotonic() - t0
    await c.close()
    final_rss = rss_kb(proc.pid)
    final_anon = rss_kb(proc.pid, "RssAnon")
    try:
        bound_mb = json.loads(body)["memory_bound_bytes"] / (1 << 20)
    except (ValueError, KeyError, TypeError):
        bound_mb = None
    alive = proc.poll() is None
    proc.terminate()
    proc.wait()

    normal = [k for k in stats.latency if k not in ("oversized", "malformed")]
    all_normal = [x for k in normal for x in stats.latency[k]]
    five = sum(v for s, v in stats.status.items() if s >= 500)
    report = {
        "duration_s": round(load_end - t_start, 1),
        "clients": n,
        "responses_by_status": dict(sorted(stats.status.items())),
        "by_kind": {k: dict(sorted(v.items())) for k, v in sorted(stats.by_kind.items())},
        "p50_ms": round(pct(all_normal, 50) * 1000, 1),
        "p99_ms": round(pct(all_normal, 99) * 1000, 1),
        "p99_ms_by_kind": {k: round(pct(v, 99) * 1000, 1) for k, v in sorted(stats.latency.items())},
        "normal_calls": len(all_normal),
        "client_errors": dict(stats.errors),
        "health_checks": len(stats.health),
        "health_failures": stats.health_failures,
        "health_worst_ms": round(max(stats.health) * 1000, 1) if stats.health else None,
        "rss_idle_mb": round(idle_rss / 1024, 1) if idle_rss else None,
        "rss_peak_mb": round(peak / 1024, 1) if peak else None,
        "rss_after_mb": round(final_rss / 1024, 1) if final_rss else None,
        "anon_idle_mb": round(idle_anon / 1024, 1) if idle_anon else None,
        "anon_after_mb": round(final_anon / 1024, 1) if final_anon else None,
        "memory_bound_mb": round(bound_mb, 1) if bound_mb else None,
        "hostile": {k: {"n": len(v), "max": round(max(v), 1), "median": round(statistics.median(v), 1)}
                    for k, v in sorted(stats.hostile.items()) if v},
        "after_load": {"health": status, "create": status2, "create_ms": round(create_after * 1000, 1)},
        "server_alive": alive,
    }
    print(json.dumps(report, indent=1))
    within = bool(peak and bound_mb and peak / 1024 <= bound_mb)
    ok = (five == 0 and alive and stats.health_failures == 0 and status == 200 and status2 == 201
          and within)
    print("PASS" if ok else "FAIL", f"(5xx: {five}, server alive: {alive}, health failures: {stats.health_failures}, "
          f"peak memory within the configured bound: {within})")
    return 0 if ok else 1


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", default=os.path.join(os.path.dirname(__file__), "..", "target", "release", "backprop"))
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--clients", type=int, default=200)
    p.add_argument("--ttl", type=int, default=5, help="--session-ttl of the server")
    p.add_argument("--max-sessions", type=int, default=32)
    p.add_argument("--max-playing", type=int, default=4)
    p.add_argument("--max-connections", type=int, default=512)
    sys.exit(asyncio.run(main(p.parse_args())))
