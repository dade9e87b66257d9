"""The loyalty earn endpoint over HTTP on PostgreSQL: POST /api/v1/loyalty/events.

Each request is a purchase of a member (by card number) with a unique external id: the API token is
checked, the programme's earning rules are evaluated (1 point per euro, an active rule), and the ledger
posts the EARN (member row lock, lot, entries, balance, tier and fraud hooks, audit row, outbox event;
events queued for workers as in production). The plain request goes through the endpoint's fast path
with group commit (ADR 0002). Two uvicorn workers and a lean closed-loop load generator
(bench/loadgen.py: keep-alive connections, one per client) on the same machine. After the run it
counts the events and runs ledger_check: every request recorded once, balances equal to the ledger.

CPU per request: the run reports the CPU time the uvicorn processes and the PostgreSQL backends of
the bench database used during the measured load (from /proc, so other work on the machine does not
count), divided by the requests answered: the figure that does not depend on how busy the machine is.

Usage: python bench/run.py loyalty_api [--members 20000] [--seconds 15] [--concurrency 14] [--workers 2]
       [--database bench_loyalty_api]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

from bench.loadgen import closed_loop
from bench.support_api import PG_ADMIN_URL, REPO, _fresh_database, _run, _serve, _stop

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


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (0 when it is gone or unreadable)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def _descendants(root: int) -> list[int]:
    """The process and every process below it (the uvicorn workers), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _backends(database: str) -> list[int]:
    """The PostgreSQL backends connected to the bench database (on this machine)."""
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as connection:
        rows = connection.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [database]
        ).fetchall()
    return [int(row[0]) for row in rows]


class _CpuMeter:
    """CPU seconds used by the server's processes and the database's backends between start and stop."""

    def __init__(self, server_pid: int, database: str) -> None:
        self._server_pid = server_pid
        self._database = database
        self._app: dict[int, float] = {}
        self._db: dict[int, float] = {}

    def start(self) -> None:
        self._app = {pid: _cpu_seconds(pid) for pid in _descendants(self._server_pid)}
        self._db = {pid: _cpu_seconds(pid) for pid in _backends(self._database)}

    def stop(self, requests: int) -> dict[str, Any]:
        app = sum(
            max(0.0, _cpu_seconds(pid) - self._app.get(pid, 0.0)) for pid in _descendants(self._server_pid)
        )
        db = sum(max(0.0, _cpu_seconds(pid) - self._db.get(pid, 0.0)) for pid in _backends(self._database))
        per = 1000 / requests if requests else 0.0
        return {
            "app_cpu_seconds": round(app, 2),
            "db_backend_cpu_seconds": round(db, 2),
            "app_cpu_ms_per_request": round(app * per, 3),
            "db_cpu_ms_per_request": round(db * per, 3),
            "load_average": Path("/proc/loadavg").read_text().split()[:3],
        }


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="loyalty_api")
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=14)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--database", default=DATABASE, help="PostgreSQL database (dropped and created)")
    args = parser.parse_args(argv)
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-secret-key-not-for-production",
        "LOG_LEVEL": "WARNING",
        "BENCH_QUEUE_TASKS": "1",
        "DATABASE_URL": _fresh_database(args.database),
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

    meter = _CpuMeter(server.pid, args.database)
    try:
        measure(3, 0)  # warm-up
        meter.start()
        result = measure(args.seconds, 10**8)
        result["cpu"] = meter.stop(result["requests"])
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
