"""A lean closed-loop HTTP/1.1 load generator for the benchmarks (keep-alive, one connection per client).

httpx costs about 0.9 ms of CPU per request on this machine, which on two shared cores is a fifth of
the budget of a 400 requests/s target: the generator would measure itself. This one writes a prepared
request and reads the status line, the headers and a Content-Length body with asyncio streams (about a
tenth of that). It checks every status code and keeps the first errors.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

Body = Callable[[int], dict[str, Any]]


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def request(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        self.writer.write(head + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        await self.writer.drain()
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        status = int(status_line.split(b" ", 2)[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        data = await self.reader.readexactly(length) if length else b""
        return status, data


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


async def closed_loop(
    base_url: str,
    path: str,
    headers: dict[str, str],
    body: Body,
    *,
    seconds: float,
    concurrency: int,
    expected: int,
    start: int = 0,
) -> dict[str, Any]:
    """``concurrency`` clients POST ``body(i)`` as JSON back to back for ``seconds``."""
    url = urlsplit(base_url)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    ).encode()
    latencies: list[float] = []
    errors: list[str] = []
    counter = iter(range(start, start + 10**9))
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        connection = _Connection(reader, writer)
        try:
            while time.perf_counter() < deadline:
                payload = json.dumps(body(next(counter))).encode()
                started = time.perf_counter()
                try:
                    status, data = await connection.request(head, payload)
                except (ConnectionError, asyncio.IncompleteReadError) as error:
                    errors.append(type(error).__name__)
                    reader, writer = await asyncio.open_connection(host, port)
                    connection = _Connection(reader, writer)
                    continue
                latencies.append(time.perf_counter() - started)
                if status != expected:
                    errors.append(f"{status}: {data[:200]!r}")
        finally:
            writer.close()

    started = time.perf_counter()
    cpu = time.process_time()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    result: dict[str, Any] = {
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[:1],
        "wall_seconds": round(wall, 2),
        "load_generator_cpu_seconds": round(time.process_time() - cpu, 2),
    }
    if latencies:
        result["throughput_rps"] = round(len(latencies) / wall, 1)
        result["latency_ms"] = {
            "p50": round(_percentile(latencies, 0.50) * 1000, 1),
            "p95": round(_percentile(latencies, 0.95) * 1000, 1),
            "p99": round(_percentile(latencies, 0.99) * 1000, 1),
            "max": round(max(latencies) * 1000, 1),
            "mean": round(statistics.fmean(latencies) * 1000, 1),
        }
    return result
