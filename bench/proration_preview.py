"""Latency of the proration preview endpoint (POST /api/v1/billing/subscriptions/{id}/preview-change)
through Django's full request path (middleware, token auth, scoping, pricing, JSON) with the test
client. Target: p95 < 50 ms. Runs in a subprocess on a fresh SQLite file; prints one JSON object.

    python bench/run.py proration_preview [--calls 500]
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

WORKER = r"""
import json, sys, time, statistics
from datetime import date, datetime, timezone
from decimal import Decimal
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.test import Client
from django.utils import timezone as dj_timezone
from fedele.accounts import services as accounts
from fedele.billing.models import BillingAccount, Plan, PlanCharge, PlanVersion, Product, Subscription
from fedele.billing.periods import period_end
from fedele.customers.models import Customer
from fedele.shared import sequences

calls = int(sys.argv[1])
now = dj_timezone.now()
today = now.date()
product = Product.objects.create(code="bench", name="Bench", created_at=now, updated_at=now)
versions = []
for code, price in (("basic", "30.00"), ("pro", "60.00")):
    plan = Plan.objects.create(product=product, code=code, name=code, created_at=now, updated_at=now)
    version = PlanVersion.objects.create(plan=plan, version=1, published_at=now, created_at=now)
    PlanCharge.objects.create(plan_version=version, code="base", name="Base", kind="recurring", model="flat",
                              flat_amount=Decimal(price))
    PlanCharge.objects.create(plan_version=version, code="seat", name="Seat", kind="recurring",
                              model="graduated",
                              tiers=[{"up_to": 10, "unit_amount": "5"}, {"up_to": None, "unit_amount": "4"}])
    versions.append(version)
subscriptions = []
start = today.replace(day=1)
for i in range(200):
    customer = Customer.objects.create(number=sequences.next_number("C"), kind="person",
                                       last_name=f"Bench{i}", display_name=f"Bench{i}",
                                       created_at=now, updated_at=now)
    account = BillingAccount.objects.create(customer=customer, created_at=now, updated_at=now)
    end = period_end(start, "month", 1)
    subscriptions.append(Subscription.objects.create(
        number=sequences.next_number("SUB"), account=account, plan=versions[0].plan, plan_version=versions[0],
        quantity=Decimal(3 + i % 20), status="active", billing_period="month", billing_anchor_day=1,
        started_on=start, current_period_start=start, current_period_end=end, next_billing_on=end,
        created_at=now, updated_at=now))
user = accounts.user_create(email="bench@example.it", password=None, roles=["billing_clerk"],
                            validate_strength=False)
_, token = accounts.api_token_create(user=user, name="bench")
client = Client(HTTP_HOST="127.0.0.1", HTTP_AUTHORIZATION=f"Bearer {token}")
body = json.dumps({"plan_version_id": str(versions[1].public_id), "quantity": "12"})

def preview(i):
    sub = subscriptions[i % len(subscriptions)]
    started = time.perf_counter()
    response = client.post(f"/api/v1/billing/subscriptions/{sub.public_id}/preview-change", body,
                           content_type="application/json")
    elapsed = time.perf_counter() - started
    assert response.status_code == 200, response.content
    return elapsed

for i in range(30):
    preview(i)
samples = sorted(preview(i) for i in range(calls))
def pct(p):
    return round(samples[min(len(samples) - 1, int(p / 100 * len(samples)))] * 1000, 2)
print(json.dumps({"calls": calls, "p50_ms": pct(50), "p95_ms": pct(95), "p99_ms": pct(99),
                  "mean_ms": round(statistics.mean(samples) * 1000, 2)}))
"""


PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
PG_DATABASE = "bench_proration_preview"


def _measure(database_url: str, directory: str, calls: int) -> dict[str, Any]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.embedded",
        "DATABASE_URL": database_url,
        "FEDELE_DATA_DIR": directory,
    }
    completed = subprocess.run(
        [sys.executable, "-c", WORKER, str(calls)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    if completed.returncode != 0:
        return {"error": completed.stderr[-2000:]}
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return {**result, "meets_target": result["p95_ms"] < 50}


def _postgres(directory: str, calls: int) -> dict[str, Any]:
    import psycopg

    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE}")
            admin.execute(f"CREATE DATABASE {PG_DATABASE}")
    except psycopg.OperationalError as error:
        return {"skipped": f"PostgreSQL not reachable: {error}"}
    try:
        return _measure(PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_DATABASE}", directory, calls)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE}")


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="proration_preview")
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        sqlite = _measure(f"sqlite:///{directory}/bench.sqlite3", directory, args.calls)
        postgresql = _postgres(directory, args.calls)
    return {
        "benchmark": "proration_preview",
        "endpoint": "POST /api/v1/billing/subscriptions/{id}/preview-change",
        "target_p95_ms": 50,
        "sqlite": sqlite,
        "postgresql": postgresql,
    }


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1:])))
