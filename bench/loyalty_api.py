"""The loyalty earn endpoint over HTTP on PostgreSQL: POST /api/v1/loyalty/events.

Each request is a purchase of a member (by card number) with a unique external id: the API token is
checked, the programme's earning rules are evaluated (1 point per euro, an active rule), and the ledger
posts the EARN (member row lock, lot, entries, balance, tier and fraud hooks, audit row, outbox event;
events queued for workers as in production). The plain request goes through the endpoint's fast path
with group commit (ADR 0002). Two uvicorn workers and a lean closed-loop load generator
(bench/loadgen.py: keep-alive connections, one per client) on the same machine. After the run it
counts the events and runs ledger_check: every request recorded once, balances equal to the ledger.

Usage: python bench/run.py loyalty_api [--members 20000] [--seconds 15] [--concurrency 14] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
from typing import Any

from bench.loadgen import closed_loop
from bench.support_api import REPO, _fresh_database, _run, _serve, _stop

DATABASE = "bench_loyalty_api"
PYTHON = sys.executable

SETUP = r"""
import sys
import django
django.setup()
from decimal import Decimal
from django.utils import timezone
from fedele.accounts.services import api_token_create, user_create
from fedele.customers.models import Customer
from fedele.loyalty.models import Member, Programme, Tier
from fedele.loyalty.services.rules import rule_create
count = int(sys.argv[1])
now = timezone.now()
programme = Programme.objects.create(code="bench", name_it="Bench", name_en="Bench", status="active",
    pending_days=0, velocity_max_earns_per_hour=1_000_000, velocity_max_points_per_day=10**12)
for rank, (code, threshold) in enumerate([("bronze", 0), ("silver", 10_000), ("gold", 50_000)]):
    Tier.objects.create(programme=programme, code=code, name_it=code, name_en=code, rank=rank,
        threshold=Decimal(threshold))
bronze = Tier.objects.get(programme=programme, rank=0)
rule_create(actor=None, programme=programme, data={"code": "spend", "name_it": "Spesa", "name_en": "Spend",
    "event_type": "spend", "points_per_euro": "1", "status": "active"})
for start in range(0, count, 5000):
    size = min(5000, count - start)
    customers = Customer.objects.bulk_create([
        Customer(number=f"C-B{start + i:07d}", kind="person", first_name="Socio", last_name=f"{start + i}",
                 display_name=f"Socio {start + i}", email=f"socio{start + i}@example.it", country="IT",
                 segment="consumer", language="it", created_at=now, updated_at=now,
                 search_text=f"socio {start + i}")
        for i in range(size)])
    Member.objects.bulk_create([
        Member(programme=programme, customer=customer, card_number=f"8{start + i:015d}", tier=bronze,
               tier_since=now, enrolled_at=now, referral_code=f"B{start + i:07d}")
        for i, customer in enumerate(customers)])
user = user_create(email="bench-loyalty@example.it", password=None, roles=["loyalty_manager"])
print(api_token_create(user=user, name="bench")[1])
"""

# After the run: every event recorded once, the balances equal to the ledger.
CHECK = r"""
import json
import django
django.setup()
from fedele.loyalty.models import LoyaltyEvent, Member, PointsTransaction
from fedele.loyalty.services.ledger_jobs import ledger_check
events = LoyaltyEvent.objects.count()
print(json.dumps({"events": events, "earn_transactions": PointsTransaction.objects.count(),
    "points_on_members": sum(Member.objects.values_list("available", flat=True)),
    "ledger_check_problems": len(ledger_check())}))
"""


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="loyalty_api")
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=14)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-secret-key-not-for-production",
        "LOG_LEVEL": "WARNING",
        "BENCH_QUEUE_TASKS": "1",
        "DATABASE_URL": _fresh_database(DATABASE),
    }
    env.pop("REDIS_URL", None)
    _run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], env)
    token = _run([PYTHON, "-c", SETUP, str(args.members)], env).strip().splitlines()[-1]
    server, base_url = _serve(PYTHON, "config.asgi:application", env, REPO, args.workers, "/healthz")
    headers = {"Authorization": f"Bearer {token}"}
    members = args.members

    def body(index: int) -> dict[str, Any]:
        return {
            "programme": "bench",
            "member": f"8{(index * 7919) % members:015d}",
            "event_type": "spend",
            "external_id": f"bench-{index}",
            "amount_eur": f"{10 + index % 90}.50",
        }

    def measure(seconds: float, start: int) -> dict[str, Any]:
        return asyncio.run(
            closed_loop(
                base_url,
                "/api/v1/loyalty/events",
                headers,
                body,
                seconds=seconds,
                concurrency=args.concurrency,
                expected=201,
                start=start,
            )
        )

    try:
        measure(3, 0)  # warm-up
        result = measure(args.seconds, 10**8)
    finally:
        _stop(server)
    checks = _run([PYTHON, "-c", CHECK], env).strip().splitlines()[-1]
    return {
        "benchmark": "loyalty_api",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "members": members,
        "workers": args.workers,
        "concurrency": args.concurrency,
        "earn": result,
        "after": json.loads(checks),
        "target": {"requests_per_second": 400, "p95_ms": 50},
    }
