"""Usage ingest throughput through the batch endpoint POST /api/v1/billing/usage/events: the full
request path (token auth, JSON parsing, validation, resolution, dedupe, INSERT ... ON CONFLICT DO
NOTHING, audit) through Django's test client, 10,000 events per request.

Measures fresh events and then the same batches re-sent (all duplicates). Runs in a subprocess on a
fresh SQLite file, and on a fresh PostgreSQL database when reachable. Prints one JSON object.
Usage: .venv/bin/python bench/usage_ingest.py [--batches 10] [--batch-size 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = "bench_usage_ingest"

WORKER = r"""
import json, sys, time, uuid
from datetime import timedelta
from decimal import Decimal
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
from django.utils import timezone
from fedele.accounts import services
from fedele.billing.models import (
    BillingAccount, Metric, Plan, PlanCharge, PlanVersion, Product, Subscription, UsageEvent,
)
from fedele.customers.models import Customer

batches, size = int(sys.argv[1]), int(sys.argv[2])
now = timezone.now()
user = services.user_create(
    email="bench@example.it", password=None, roles=["billing_clerk"], validate_strength=False
)
_, token = services.api_token_create(user=user, name="bench")
client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}")
customers = [
    Customer.objects.create(
        kind="company", company_name=f"Bench {i}", number=f"BENCH-{i}", created_at=now, updated_at=now
    )
    for i in range(20)
]
product = Product.objects.create(code="bench", name="Bench", created_at=now, updated_at=now)
metric = Metric.objects.create(code="api-calls", name="API calls", created_at=now)
plan = Plan.objects.create(product=product, code="bench", name="Bench", created_at=now, updated_at=now)
version = PlanVersion.objects.create(plan=plan, version=1, published_at=now, created_at=now)
PlanCharge.objects.create(plan_version=version, code="calls", name="Calls", kind="usage", metric=metric,
                          model="per_unit", unit_amount=Decimal("0.0004"))
for i, customer in enumerate(customers):
    account = BillingAccount.objects.create(customer=customer, created_at=now, updated_at=now)
    Subscription.objects.create(number=f"SUB-B-{i}", account=account, plan=plan, plan_version=version,
        status="active", billing_period="month", billing_anchor_day=1, started_on=now.date(),
        current_period_start=now.date(), current_period_end=now.date() + timedelta(days=30),
        next_billing_on=now.date(), created_at=now, updated_at=now)
customer_ids = [str(c.public_id) for c in customers]
stamp = (now - timedelta(hours=1)).isoformat()

def batch(b):
    return {"mode": "all_or_nothing", "events": [
        {"external_id": f"evt-{b}-{i}", "customer": customer_ids[i % len(customer_ids)],
         "metric": "api-calls",
         "quantity": str(1 + i % 7), "timestamp": stamp, "properties": {"region": "it"}}
        for i in range(size)]}

bodies = [json.dumps(batch(b)) for b in range(batches)]
warm = json.dumps(batch(10_000))
assert client.post("/api/v1/billing/usage/events", warm, content_type="application/json").status_code == 200

def send(body):
    started = time.perf_counter()
    response = client.post("/api/v1/billing/usage/events", body, content_type="application/json")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.content[:500]
    return elapsed, response.json()

import os
profile_path = os.environ.get("BENCH_PROFILE")
if profile_path:
    import cProfile
    profiler = cProfile.Profile()
    profiler.enable()
fresh = [send(body) for body in bodies]
if profile_path:
    profiler.disable()
    profiler.dump_stats(profile_path)
again = [send(body) for body in bodies]
stored = UsageEvent.objects.count()
print(json.dumps({
    "fresh_seconds": [t for t, _ in fresh], "fresh_accepted": sum(r["accepted"] for _, r in fresh),
    "duplicate_seconds": [t for t, _ in again], "duplicates": sum(r["duplicates"] for _, r in again),
    "stored": stored,
}))
"""


def _measure(database: str, env: dict[str, str], batches: int, size: int) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, "-c", WORKER, str(batches), str(size)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=1200,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr[-3000:])
    data = json.loads(completed.stdout.strip().splitlines()[-1])
    events = batches * size
    return {
        "database": database,
        "events_per_request": size,
        "fresh": {
            "events": events,
            "accepted": data["fresh_accepted"],
            "seconds": round(sum(data["fresh_seconds"]), 3),
            "events_per_second": round(events / sum(data["fresh_seconds"])),
            "slowest_request_ms": round(max(data["fresh_seconds"]) * 1000, 1),
        },
        "all_duplicates": {
            "events": events,
            "duplicates": data["duplicates"],
            "seconds": round(sum(data["duplicate_seconds"]), 3),
            "events_per_second": round(events / sum(data["duplicate_seconds"])),
        },
        "stored_rows": data["stored"],
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
    parser = argparse.ArgumentParser(prog="usage_ingest")
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=10_000)
    parser.add_argument("--skip-sqlite", action="store_true")
    args = parser.parse_args(argv)
    if not (1 <= args.batches <= 100 and 1 <= args.batch_size <= 10_000):
        parser.error("batches must be 1-100 and batch-size 1-10000")
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
    if not args.skip_sqlite:
        with tempfile.TemporaryDirectory(prefix="fedele-bench-") as directory:
            sqlite_env = {**env, "BENCH_SQLITE_PATH": str(Path(directory) / "bench.sqlite3")}
            results.append(_measure("sqlite", sqlite_env, args.batches, args.batch_size))
    if _postgres(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)") and _postgres(
        f"CREATE DATABASE {PG_DATABASE}"
    ):
        try:
            pg_env = {**env, "DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_DATABASE}"}
            results.append(_measure("postgresql", pg_env, args.batches, args.batch_size))
        finally:
            _postgres(f"DROP DATABASE IF EXISTS {PG_DATABASE} WITH (FORCE)")
    else:
        results.append({"database": "postgresql", "skipped": f"not reachable at {PG_ADMIN_URL}"})
    return {
        "benchmark": "usage_ingest",
        "parameters": {"batches": args.batches, "batch_size": args.batch_size},
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "results": results,
    }


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1:]), indent=2))
