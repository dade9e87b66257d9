"""Web chat websockets: many concurrent visitors on one ASGI process, message round-trip latency.

Set-up (a Django subprocess on PostgreSQL): migrates a fresh database, creates a chat widget and
``--connections`` chat sessions through the chat service (``chat_start``: an Interaction each, queued;
the router is not run, this measures the chat path). Then one uvicorn process serves
``config.asgi:application`` (the project's routing: websockets behind AllowedHostsOriginValidator,
in-memory channel layer, PostgreSQL through psycopg's pool) and this process opens every websocket
with the ``websockets`` client, resumes each session with its token, and has every visitor send
``--messages`` messages at random intervals (mean ``--interval`` seconds). Round trip = from sending
a message to receiving the server's ``ack`` for it (the message validated and stored in its own
transaction; the consumer then pushes it to the session's group and the agent's). Visitors send
independently (exponential gaps), so the offered rate is connections / interval; the run lasts until
the slowest visitor's last message.

The database (bench_cc_chat) is dropped and created here. Prints one JSON object.
Usage: python bench/run.py cc_chat_ws [--connections 500] [--messages 10] [--interval 5]
"""

# ruff: noqa: E501 - the long lines are Python inside the script this benchmark runs

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DATABASE = os.environ.get("BENCH_CC_CHAT_DATABASE", "bench_cc_chat")

SETUP = r"""
import json, sys
import django
django.setup()
from django.conf import settings
from django.core.management import call_command
call_command("migrate", verbosity=0)
settings.CONTACT_CENTER_ROUTE_ON_COMMIT = False
from django.utils import timezone
from fedele.contact_center.models import ChatWidget, Queue
from fedele.contact_center.services.chat import chat_start

count = int(sys.argv[1])
queue = Queue.objects.create(code="web", name_it="web", name_en="web", channels=["chat"])
widget = ChatWidget.objects.create(name="Bench", queue=queue, offline_when_no_agent=False, created_at=timezone.now())
tokens = []
for index in range(count):
    started = chat_start(widget=widget, name=f"Visitor {index}", email=f"visitor{index}@bench.example", consent=True)
    tokens.append(started.token)
print(json.dumps({"key": widget.public_key, "tokens": tokens}))
"""


def _postgres(sql: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as connection:
            connection.execute(sql)  # type: ignore[arg-type,unused-ignore]
        return True
    except Exception:
        return False


def _percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(database_url: str) -> dict[str, str]:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "bench.bench_settings", "DATABASE_URL": database_url}
    env.pop("REDIS_URL", None)  # one process: the in-memory channel layer
    env["PYTHONPATH"] = str(REPO)
    return env


def _start_server(env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port", str(port),
         "--lifespan", "off", "--log-level", "warning", "--no-access-log", "--ws", "websockets-sansio"],
        cwd=REPO, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("uvicorn exited before it served a request")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return server
        except OSError:
            time.sleep(0.3)
    server.kill()
    raise RuntimeError("uvicorn did not start in time")


async def _visitor(
    url: str, origin: str, token: str, messages: int, interval: float, start: asyncio.Event, seed: int,
    results: dict[str, Any],
) -> None:  # fmt: skip
    import websockets

    rng = random.Random(seed)
    try:
        connection = await websockets.connect(url, origin=origin, open_timeout=60, max_queue=None)  # type: ignore[arg-type]
    except Exception as error:
        results["connect_errors"].append(type(error).__name__)
        return
    async with connection:
        await connection.send(json.dumps({"type": "resume", "token": token}))
        ready = json.loads(await connection.recv())
        if ready.get("type") != "ready":
            results["connect_errors"].append(str(ready.get("code")))
            return
        results["connected"] += 1
        await start.wait()
        sent_at: dict[str, float] = {}
        acked = 0
        echoes = 0

        async def receive() -> None:
            nonlocal acked, echoes
            while acked < messages:
                data = json.loads(await connection.recv())
                if data.get("type") == "ack":
                    results["rtts"].append(time.perf_counter() - sent_at.pop(data["client_id"]))
                    acked += 1
                elif data.get("type") == "message":
                    echoes += 1
                elif data.get("type") == "error":
                    results["errors"].append(data.get("code"))
                    acked += 1

        receiver = asyncio.create_task(receive())
        await asyncio.sleep(rng.uniform(0, interval))  # spread the first messages
        for number in range(messages):
            client_id = f"s{seed}m{number}"
            sent_at[client_id] = time.perf_counter()
            await connection.send(
                json.dumps(
                    {
                        "type": "message",
                        "body": f"Messaggio {number} del visitatore {seed}",
                        "client_id": client_id,
                    }
                )
            )
            results["sent"] += 1
            await asyncio.sleep(rng.expovariate(1 / interval))
        try:
            await asyncio.wait_for(receiver, timeout=60)
        except TimeoutError:
            results["errors"].append("timeout")
        results["echoes"] += echoes


async def _load(port: int, key: str, tokens: list[str], messages: int, interval: float) -> dict[str, Any]:
    url = f"ws://127.0.0.1:{port}/ws/contact-center/chat/{key}/"
    origin = f"http://127.0.0.1:{port}"  # the widget's frame is served by fedele itself
    results: dict[str, Any] = {
        "connected": 0,
        "connect_errors": [],
        "sent": 0,
        "echoes": 0,
        "rtts": [],
        "errors": [],
    }
    start = asyncio.Event()
    opened = time.perf_counter()
    tasks = []
    for index, token in enumerate(tokens):
        tasks.append(
            asyncio.create_task(_visitor(url, origin, token, messages, interval, start, index, results))
        )
        if index % 50 == 49:
            await asyncio.sleep(0.05)  # a ramp, not a SYN flood
    while results["connected"] + len(results["connect_errors"]) < len(tokens):
        await asyncio.sleep(0.05)
    connect_seconds = time.perf_counter() - opened
    began = time.perf_counter()
    start.set()
    await asyncio.gather(*tasks)
    results["connect_seconds"] = connect_seconds
    results["load_seconds"] = time.perf_counter() - began
    return results


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="cc_chat_ws")
    parser.add_argument("--connections", type=int, default=500)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument(
        "--interval", type=float, default=5.0, help="mean seconds between a visitor's messages"
    )
    args = parser.parse_args(argv)
    if not _postgres(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)") or not _postgres(
        f"CREATE DATABASE {DATABASE}"
    ):
        return {"benchmark": "cc_chat_ws", "skipped": "PostgreSQL at 127.0.0.1:5432 is not reachable"}
    database_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{DATABASE}"
    env = _environment(database_url)
    setup_started = time.perf_counter()
    made = subprocess.run(
        [sys.executable, "-c", SETUP, str(args.connections)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode != 0:
        raise RuntimeError(f"set-up failed: {made.stderr[-2000:]}")
    seeded = json.loads(made.stdout.strip().splitlines()[-1])
    setup_seconds = time.perf_counter() - setup_started
    port = _free_port()
    server = _start_server(env, port)
    try:
        results = asyncio.run(_load(port, seeded["key"], seeded["tokens"], args.messages, args.interval))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
    rtts = sorted(value * 1000 for value in results["rtts"])
    p95 = _percentile(rtts, 0.95)
    return {
        "benchmark": "cc_chat_ws",
        "server": "uvicorn, 1 process, in-memory channel layer, PostgreSQL (psycopg pool)",
        "connections": args.connections,
        "connected": results["connected"],
        "connect_errors": len(results["connect_errors"]),
        "connect_seconds": round(results["connect_seconds"], 2),
        "messages_per_visitor": args.messages,
        "mean_interval_seconds": args.interval,
        "messages_sent": results["sent"],
        "acks": len(rtts),
        "errors": len(results["errors"]),
        "error_codes": sorted(set(map(str, results["errors"])))[:10],
        "load_seconds": round(results["load_seconds"], 2),
        "offered_messages_per_second": round(args.connections / args.interval, 1),
        "acks_per_second_over_the_run": round(len(rtts) / results["load_seconds"], 1)
        if results["load_seconds"]
        else 0,
        "round_trip_ms": {
            "p50": round(_percentile(rtts, 0.50), 2),
            "p95": round(p95, 2),
            "p99": round(_percentile(rtts, 0.99), 2),
            "max": round(rtts[-1], 2) if rtts else 0,
        },
        "target": {"connections": 500, "p95_ms_below": 100},
        "target_met": results["connected"] >= 500 and bool(rtts) and p95 < 100 and not results["errors"],
        "setup_seconds": round(setup_seconds, 1),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
