"""In-process service time of the customers API: Django's full request path (middleware, token auth,
rate limit, idempotency, validation, service, audit, outbox and the eager event handlers, JSON) through
the test client, without a server or a network client. Together with customers_api it separates the
application's cost from the HTTP stack's.

Runs in a subprocess on a fresh SQLite file (and on a fresh PostgreSQL database when reachable).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = "bench_fedele_inprocess"

WORKER = r"""
import json, os, sys, time, statistics
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
from fedele.accounts import services

creates, lists = int(sys.argv[1]), int(sys.argv[2])
user = services.user_create(email="bench@example.it", password=None, roles=["admin"], validate_strength=False)
_, token = services.api_token_create(user=user, name="bench")
client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}")

def create(i):
    body = {"kind": "person", "first_name": "Mario", "last_name": f"Rossi{i}",
            "email": f"mario{i}@example.it",
            "phone": "+39 347 1234567", "city": "Roma", "fiscal_code": "RSSMRA85T10A562S"}
    started = time.perf_counter()
    response = client.post("/api/v1/customers", json.dumps(body), content_type="application/json")
    elapsed = time.perf_counter() - started
    assert response.status_code == 201, response.content
    return elapsed

def listing(i):
    ordering = ["name", "-created_at", "city", "number"][i % 4]
    started = time.perf_counter()
    response = client.get(f"/api/v1/customers?limit=50&ordering={ordering}")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200
    return elapsed

for i in range(20):  # warm-up: imports, caches, prepared statements
    create(10_000_000 + i)
    listing(i)
create_times = [create(i) for i in range(creates)]
list_times = [listing(i) for i in range(lists)]
print(json.dumps({"create": create_times, "list": list_times}))
"""


def _summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    milliseconds = [value * 1000 for value in ordered]
    return {
        "requests": len(ordered),
        "per_second_one_thread": round(len(ordered) / sum(ordered), 1),
        "p50_ms": round(statistics.median(milliseconds), 2),
        "p95_ms": round(milliseconds[int(0.95 * (len(milliseconds) - 1))], 2),
        "mean_ms": round(statistics.fmean(milliseconds), 2),
    }


def _measure(database: str, env: dict[str, str], creates: int, lists: int) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-c", WORKER, str(creates), str(lists)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr[-2000:])
    samples = json.loads(completed.stdout.strip().splitlines()[-1])
    return {
        "database": database,
        "create": _summary(samples["create"]),
        "list_limit_50": _summary(samples["list"]),
    }


def _postgres(sql: str) -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as connection:
            connection.execute(sql)  # type: ignore[arg-type,unused-ignore]
        return True
    except Exception:
        return False


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="customers_inprocess")
    parser.add_argument("--creates", type=int, default=500)
    parser.add_argument("--lists", type=int, default=500)
    args = parser.parse_args(argv)
    if not (1 <= args.creates <= 20_000 and 1 <= args.lists <= 20_000):
        parser.error("creates and lists must be 1-20000")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
        "DJANGO_SECRET_KEY": "bench-secret-key-not-for-production",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("DATABASE_URL", None)
    env.pop("REDIS_URL", None)
    results = []
    with tempfile.TemporaryDirectory(prefix="fedele-bench-") as directory:
        sqlite_env = {**env, "BENCH_SQLITE_PATH": str(Path(directory) / "bench.sqlite3")}
        results.append(_measure("sqlite", sqlite_env, args.creates, args.lists))
    if _postgres(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)") and _postgres(
        f"CREATE DATABASE {PG_DATABASE}"
    ):
        try:
            pg_env = {**env, "DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_DATABASE}"}
            results.append(_measure("postgresql", pg_env, args.creates, args.lists))
        finally:
            _postgres(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
    else:
        results.append({"database": "postgresql", "skipped": f"not reachable at {PG_ADMIN_URL}"})
    return {
        "benchmark": "customers_inprocess",
        "parameters": {"creates": args.creates, "lists": args.lists},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "results": results,
    }
