"""Billing run throughput: N subscriptions due today (mixed month / quarter / year, 20% with metered
usage), renewed and invoiced by ``billing_run_execute`` (transitions, lines, VAT summaries, gapless
numbers, history rows, outbox events, audit rows, usage marked billed).

The data set is created with bulk inserts in a fresh database: PostgreSQL (when reachable) with
--subscriptions (default 100,000) and a SQLite file with --sqlite-subscriptions (default 10,000).
E-mail delivery and event dispatch are queued for the Celery workers (as in production), not run
inside the measured process. Prints one JSON object.
Usage: .venv/bin/python bench/billing_run.py [--subscriptions 100000] [--sqlite-subscriptions 10000]
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
PG_DATABASE = "bench_billing_run"

WORKER = r"""
import json, sys, time
from datetime import datetime, time as dtime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo
import django
django.setup()
from django.conf import settings


class _NoMigrations(dict):
    def __contains__(self, item):
        return True

    def __getitem__(self, item):
        return None


settings.MIGRATION_MODULES = _NoMigrations()
from django.core.management import call_command
call_command("migrate", run_syncdb=True, verbosity=0)
from config.celery import app
app.conf.task_always_eager = False
app.conf.broker_url = "memory://"
from django.db import connection
from django.utils import timezone
from fedele.billing.models import (
    BillingAccount, Invoice, InvoiceLine, Metric, Plan, PlanCharge, PlanVersion, Product, Subscription,
    SubscriptionChange, UsageEvent,
)
from fedele.billing.periods import add_months
from fedele.billing.services.billing_run import billing_run_execute, billing_run_start
from fedele.billing.services.invoicing import business_today
from fedele.customers.models import Customer

count = int(sys.argv[1])
now = timezone.now()
today = business_today()
product = Product.objects.create(code="fibre", name="Fibre", created_at=now, updated_at=now)
metric = Metric.objects.create(code="api-calls", name="API calls", created_at=now)


def version(code, period, price, usage=False):
    plan = Plan.objects.create(product=product, code=code, name=code.title(), billing_period=period,
                               created_at=now, updated_at=now)
    row = PlanVersion.objects.create(plan=plan, version=1, published_at=now, created_at=now)
    PlanCharge.objects.create(plan_version=row, code="base", name="Base fee", kind="recurring", model="flat",
                              flat_amount=Decimal(price))
    if usage:
        tiers = [{"up_to": 1000, "unit_amount": "0"}, {"up_to": None, "unit_amount": "0.0004"}]
        PlanCharge.objects.create(plan_version=row, code="calls", name="API calls", kind="usage",
                                  metric=metric, model="graduated", position=1, tiers=tiers)
    return row


versions = {
    "month": version("month", "month", "29.90"),
    "quarter": version("quarter", "quarter", "79.90"),
    "year": version("year", "year", "299.00"),
    "usage": version("metered", "month", "9.90", usage=True),
}
accounts_needed = max(1, count // 5)
customers = Customer.objects.bulk_create([
    Customer(kind="person", first_name="Mario", last_name=f"Rossi{i}", display_name=f"Mario Rossi{i}",
             number=f"BENCH-{i:07d}", email=f"bench{i}@example.it", fiscal_code="RSSMRA85T10A562S",
             street="Via Roma 1", postal_code="00100", city="Roma", province="RM", country="IT",
             created_at=now, updated_at=now)
    for i in range(accounts_needed)], batch_size=5000)
accounts = BillingAccount.objects.bulk_create(
    [BillingAccount(customer=customer, created_at=now, updated_at=now) for customer in customers],
    batch_size=5000,
)
months = {"month": 1, "quarter": 3, "year": 12}
subs = []
for i in range(count):
    slot = i % 10
    key = "usage" if slot < 2 else "month" if slot < 6 else "quarter" if slot < 9 else "year"
    row = versions[key]
    period = row.plan.billing_period
    start = add_months(today, -months[period], today.day)
    subs.append(Subscription(
        number=f"SUB-BENCH-{i:07d}", account=accounts[i % accounts_needed], plan=row.plan, plan_version=row,
        quantity=Decimal(1), status="active", billing_period=period, billing_anchor_day=today.day,
        started_on=start, current_period_start=start, current_period_end=today, next_billing_on=today,
        created_at=now, updated_at=now))
subs = Subscription.objects.bulk_create(subs, batch_size=5000)
moment = datetime.combine(today - timedelta(days=3), dtime(12), tzinfo=ZoneInfo("Europe/Rome"))
events = [
    UsageEvent(account_id=sub.account_id, subscription=sub, metric=metric, external_id=f"e{sub.pk}-{n}",
               quantity=Decimal(700 + n * 611 + sub.pk % 97), occurred_at=moment, received_at=moment)
    for sub in subs if sub.plan_version_id == versions["usage"].pk for n in range(3)
]
UsageEvent.objects.bulk_create(events, batch_size=5000)
if connection.vendor == "postgresql":
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")

run = billing_run_start(as_of=today, execute=False)
import os
profile_path = os.environ.get("BENCH_PROFILE")
if profile_path:
    import cProfile
    profiler = cProfile.Profile()
    profiler.enable()
workers = int(sys.argv[2]) if len(sys.argv) > 2 else 1
started = time.perf_counter()
if workers > 1:
    import subprocess as sp
    env = {**os.environ, "BENCH_QUEUE_TASKS": "1"}
    sp.run([sys.executable, "manage.py", "billing_run", "--resume", str(run.pk), "--workers", str(workers)],
           check=True, env=env, stdout=sp.DEVNULL)
    run.refresh_from_db()
else:
    run = billing_run_execute(run.pk)
elapsed = time.perf_counter() - started
if profile_path:
    profiler.disable()
    profiler.dump_stats(profile_path)
invoices = Invoice.objects.count()
numbers = list(Invoice.objects.order_by("sequence_number").values_list("sequence_number", flat=True))
print(json.dumps({
    "database": connection.vendor,
    "subscriptions": count,
    "usage_subscriptions": sum(1 for s in subs if s.plan_version_id == versions["usage"].pk),
    "usage_events": len(events),
    "invoices": invoices,
    "invoice_lines": InvoiceLine.objects.count(),
    "history_rows": SubscriptionChange.objects.count(),
    "errors": len(run.errors),
    "gapless": numbers == list(range(1, invoices + 1)),
    "usage_billed": UsageEvent.objects.filter(invoice__isnull=False).count(),
    "seconds": round(elapsed, 2),
    "invoices_per_second": round(invoices / elapsed, 1),
}))
"""


def _run_worker(env: dict[str, str], count: int, workers: int = 1) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-c", WORKER, str(count), str(workers)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        return {"error": result.stderr[-2000:]}
    parsed: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    parsed["executor_processes"] = workers
    return parsed


def _postgres(count: int, workers: int) -> dict[str, Any]:
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        return {"skipped": "psycopg is not installed"}
    try:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE}")
            admin.execute(f"CREATE DATABASE {PG_DATABASE}")
    except psycopg.OperationalError as error:
        return {"skipped": f"PostgreSQL not reachable: {error}"}
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{PG_DATABASE}"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
        "DATABASE_URL": url,
        "PYTHONPATH": str(REPO),
    }
    try:
        return _run_worker(env, count, workers)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {PG_DATABASE}")


def _sqlite(count: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        env = {
            **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
            "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
            "BENCH_SQLITE_PATH": str(Path(folder) / "bench.sqlite3"),
            "PYTHONPATH": str(REPO),
        }
        return _run_worker(env, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--subscriptions", type=int, default=100_000)
    parser.add_argument("--sqlite-subscriptions", type=int, default=10_000)
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument(
        "--pg-workers",
        type=int,
        default=2,
        help="executor processes sharing the PostgreSQL run (manage.py billing_run --workers); SQLite uses 1",
    )
    arguments = parser.parse_args()
    report = {
        "benchmark": "billing_run",
        "sqlite": _sqlite(arguments.sqlite_subscriptions),
        "postgresql": {"skipped": "--skip-postgres"}
        if arguments.skip_postgres
        else _postgres(arguments.subscriptions, arguments.pg_workers),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
