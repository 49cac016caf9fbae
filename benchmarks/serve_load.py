"""Open-loop load for `graphopt serve` (used by benchmarks/serve.py), on loopback only.

Open loop: every request is sent at its scheduled time whether or not earlier ones were
answered, and its latency counts from that scheduled time (no coordinated omission: a
slow server cannot slow the load down). The arrival rate follows a raised cosine
between `low` and `high` requests/s (Poisson arrivals, by thinning), so load rises and
falls. Every request carries `rows` held-out digits; the answer's argmax is checked
against their labels, so the accuracy actually served is measured, not only declared.
"""

from __future__ import annotations

import asyncio
import io
import re
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sent:
    at: float  # scheduled send time, seconds from the run's start
    latency: float | None  # None: no answer (timeout or connection error)
    status: int  # HTTP status; 0 when there was no answer
    variant: str | None
    quality: float | None
    correct: int
    rows: int
    server_latency: float | None = None  # the server's own view (X-Latency-Ms): admission to answer


def rate_at(t: float, low: float, high: float, period: float) -> float:
    return low + (high - low) * 0.5 * (1 - np.cos(2 * np.pi * t / period))


def arrivals(low: float, high: float, period: float, duration: float, seed: int, limit: int) -> list[float]:
    """Poisson arrival times whose rate swings low -> high -> low every `period` seconds."""
    rng = np.random.default_rng(seed)
    times, t = [], 0.0
    while len(times) < limit:
        t += rng.exponential(1.0 / high)
        if t >= duration:
            break
        if rng.random() < rate_at(t, low, high, period) / high:
            times.append(t)
    return times


def payloads(x: np.ndarray, y: np.ndarray, rows: int, count: int, seed: int) -> list[tuple[bytes, np.ndarray]]:
    """`count` distinct .npy bodies of `rows` held-out samples each, with their labels."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        idx = rng.integers(0, len(x), size=rows)
        buffer = io.BytesIO()
        np.save(buffer, x[idx].astype(np.float16))  # digits are k/16: exact in float16, half the bytes
        out.append((buffer.getvalue(), y[idx]))
    return out


async def _post(host: str, port: int, target: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 POST on its own loopback connection, written in one piece.

    Why not httpx: its async connection pool costs milliseconds of CPU per request and
    grows with the number in flight; on a busy 2-core machine that overhead, not the
    server, dominated the measured latency. A bare request keeps the client cheap.
    """
    reader, writer = await asyncio.open_connection(host, port)
    try:
        head = (f"POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/x-npy\r\n"
                f"Accept: application/x-npy\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        writer.write(head.encode() + body)
        await writer.drain()
        status_line, *lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines if ln)}
        payload = await reader.readexactly(int(headers.get("content-length", "0")))
        return int(status_line.split()[1]), headers, payload
    finally:
        writer.close()


async def _one(host: str, port: int, target: str, at: float, start: float, body: bytes, labels: np.ndarray,
               timeout: float) -> Sent:
    try:
        status, headers, payload = await asyncio.wait_for(_post(host, port, target, body), timeout)
    except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
        return Sent(at, None, 0, None, None, 0, len(labels))
    latency = time.perf_counter() - (start + at)
    if status != 200:
        return Sent(at, latency, status, None, None, 0, len(labels))
    logits = np.load(io.BytesIO(payload), allow_pickle=False)
    correct = int((logits.argmax(axis=1) == labels).sum())
    return Sent(at, latency, 200, headers["x-variant"], float(headers["x-quality"]), correct, len(labels),
                float(headers["x-latency-ms"]) / 1e3)


def _loopback(base_url: str) -> tuple[str, int]:
    found = re.fullmatch(r"http://(127\.0\.0\.1|localhost):(\d+)", base_url)
    if not found:
        raise ValueError(f"the load generator only targets loopback, not {base_url}")
    return found.group(1), int(found.group(2))


async def drive(base_url: str, schedule: list[float], bodies: list[tuple[bytes, np.ndarray]],
                variant: str | None, timeout: float) -> list[Sent]:
    """Sends one request per scheduled time (cycling through `bodies`); waits for all answers."""
    host, port = _loopback(base_url)
    target = "/infer" + (f"?variant={variant}" if variant else "")
    start = time.perf_counter()
    tasks = []
    for k, at in enumerate(schedule):
        delay = start + at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        body, labels = bodies[k % len(bodies)]
        tasks.append(asyncio.create_task(_one(host, port, target, at, start, body, labels, timeout)))
    return list(await asyncio.gather(*tasks))


async def lone(servers: dict[str, str], bodies: list[tuple[bytes, np.ndarray]], count: int, pause: float,
               timeout: float, seed: int) -> dict[str, list[Sent]]:
    """`count` requests per server (name -> base URL; each request pins variant NAME), one at a
    time, each sent `pause` seconds after the previous answer: every one finds its server idle
    (the latency of a lone request at low load). Servers are interleaved in a fresh random order
    each cycle, so a drift in the machine's load, or what ran just before, hits each alike.
    `at` is the send time, seconds from the start."""
    rng = np.random.default_rng(seed)
    sent: dict[str, list[Sent]] = {name: [] for name in servers}
    start = time.perf_counter()
    for k in range(count):
        body, labels = bodies[k % len(bodies)]
        for name in rng.permutation(list(servers)):
            host, port = _loopback(servers[name])
            await asyncio.sleep(pause)
            at = time.perf_counter() - start
            sent[name].append(await _one(host, port, f"/infer?variant={name}", at, start, body, labels, timeout))
    return sent
