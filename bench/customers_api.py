"""Customers API throughput and latency over real HTTP.

For each database (a fresh SQLite file; PostgreSQL database bench_fedele when the server is
reachable, created and dropped here), the script migrates, creates an admin and an API token,
starts the ASGI app with uvicorn on 127.0.0.1 (a free port), then measures:

- create: N POST /api/v1/customers from C concurrent httpx clients (each its own connection);
- list:   M GET /api/v1/customers?limit=50 from C concurrent clients.

Usage: python bench/run.py customers_api [--creates 400] [--lists 200] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = "bench_fedele"
STEP_TIMEOUT_SECONDS = 300

SETUP_SCRIPT = """
from fedele.accounts.services import api_token_create, user_create
user = user_create(email="bench-admin@example.it", password=None, roles=["admin"])
print(api_token_create(user=user, name="bench")[1])
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _summary(latencies: list[float], wall_seconds: float, errors: int) -> dict[str, Any]:
    return {
        "requests": len(latencies),
        "errors": errors,
        "wall_seconds": round(wall_seconds, 3),
        "throughput_rps": round(len(latencies) / wall_seconds, 1) if wall_seconds else None,
        "latency_ms": {
            "p50": round(_percentile(latencies, 0.50) * 1000, 1),
            "p95": round(_percentile(latencies, 0.95) * 1000, 1),
            "max": round(max(latencies) * 1000, 1),
            "mean": round(statistics.fmean(latencies) * 1000, 1),
        },
    }


async def _load(
    base_url: str,
    token: str,
    total: int,
    concurrency: int,
    make_request: Any,
    expected_status: int,
) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    counter = iter(range(total))
    headers = {"Authorization": f"Bearer {token}"}

    async def worker() -> None:
        nonlocal errors
        async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30) as client:
            for index in counter:
                started = time.perf_counter()
                response = await make_request(client, index)
                latencies.append(time.perf_counter() - started)
                if response.status_code != expected_status:
                    errors += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return _summary(latencies, time.perf_counter() - started, errors)


async def _create(client: httpx.AsyncClient, index: int) -> httpx.Response:
    body = {
        "kind": "person",
        "first_name": "Bench",
        "last_name": f"Cliente {index:05d}",
        "email": f"bench{index}@example.it",
        "phone": f"+39 06 {1000000 + index:07d}",
        "city": ["Roma", "Milano", "Napoli", "Torino"][index % 4],
    }
    return await client.post("/api/v1/customers", json=body)


async def _list(client: httpx.AsyncClient, index: int) -> httpx.Response:
    ordering = ["name", "-created_at", "city", "number"][index % 4]
    return await client.get(f"/api/v1/customers?limit=50&ordering={ordering}")


def _run_checked(args: list[str], env: dict[str, str]) -> str:
    completed = subprocess.run(
        args, cwd=REPO, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_SECONDS, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{completed.stderr[-3000:]}")
    return completed.stdout


def _wait_until_up(base_url: str, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("uvicorn exited before it served a request")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("uvicorn did not answer /healthz in time")


def _measure(
    database: str, env: dict[str, str], creates: int, lists: int, concurrency: int, workers: int
) -> dict[str, Any]:
    _run_checked([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], env)
    token = _run_checked([PYTHON, "manage.py", "shell", "-c", SETUP_SCRIPT], env).strip().splitlines()[-1]
    port = _free_port()
    base_url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [
            PYTHON,
            "-m",
            "uvicorn",
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
            "--workers",
            str(workers),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=REPO,
        env=env,
    )
    try:
        _wait_until_up(base_url, server)
        create = asyncio.run(_load(base_url, token, creates, concurrency, _create, 201))
        listing = asyncio.run(_load(base_url, token, lists, concurrency, _list, 200))
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=10)
    return {"database": database, "create": create, "list_limit_50": listing}


def _postgres_available() -> bool:
    try:
        import psycopg

        psycopg.connect(PG_ADMIN_URL, connect_timeout=3).close()
    except Exception:
        return False
    return True


def _pg_admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as connection:
        connection.execute(statement)


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="customers_api")
    parser.add_argument("--creates", type=int, default=400)
    parser.add_argument("--lists", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--workers", type=int, default=2, help="uvicorn worker processes (production: 2/core)"
    )
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args(argv)
    if not (1 <= args.creates <= 10_000 and 1 <= args.lists <= 10_000 and 1 <= args.concurrency <= 32):
        parser.error("creates and lists must be 1-10000, concurrency 1-32")
    if not 1 <= args.workers <= 8:
        parser.error("workers must be 1-8")

    base_env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-secret-key-not-for-production",
        "LOG_LEVEL": "WARNING",
    }
    base_env.pop("DATABASE_URL", None)
    base_env.pop("REDIS_URL", None)
    results: list[dict[str, Any]] = []

    with tempfile.TemporaryDirectory(prefix="fedele-bench-") as directory:
        env = {**base_env, "BENCH_SQLITE_PATH": str(Path(directory) / "bench.sqlite3")}
        results.append(_measure("sqlite", env, args.creates, args.lists, args.concurrency, args.workers))

    if args.skip_postgres:
        results.append({"database": "postgresql", "skipped": "--skip-postgres"})
    elif not _postgres_available():
        results.append({"database": "postgresql", "skipped": f"not reachable at {PG_ADMIN_URL}"})
    else:
        _pg_admin(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
        _pg_admin(f"CREATE DATABASE {PG_DATABASE}")
        try:
            pg_url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_DATABASE}"
            env = {**base_env, "DATABASE_URL": pg_url}
            results.append(
                _measure("postgresql", env, args.creates, args.lists, args.concurrency, args.workers)
            )
        finally:
            _pg_admin(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")

    return {
        "benchmark": "customers_api",
        "parameters": {
            "creates": args.creates,
            "lists": args.lists,
            "concurrency": args.concurrency,
            "workers": args.workers,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
        },
        "server": f"uvicorn, {args.workers} worker(s), embedded settings (eager jobs, local-memory cache)",
        "results": results,
    }
