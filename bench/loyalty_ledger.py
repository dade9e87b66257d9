"""Loyalty ledger throughput on PostgreSQL, through the service layer.

1. earn, one call per transaction: P processes call ``points_earn`` (each its own transaction,
   member row lock, lot, entries, audit row, outbox event, tier and fraud hooks) for S seconds on
   random members of M;
2. earn in batches: P processes call ``points_earn_many`` with batches of B earns (the path of
   partner transaction files and of event backlogs: one transaction per batch, the same rows);
3. expiry: L lots (default 1,000,000) written with SQL as EARN transactions with their entries, all
   past their expiry day, then one ``lots_expire_due`` run, timed; then ``ledger_check`` over the
   whole ledger, timed, which must find nothing wrong.

The database (bench_loyalty) is dropped and created here. Prints one JSON object.
Usage: python bench/run.py loyalty_ledger [--members 20000] [--seconds 10] [--processes 2]
       [--batch 500] [--lots 1000000] [--modes single1,single,batch,expiry]
"""

# ruff: noqa: E501 - the long lines are SQL and Python inside the scripts this benchmark runs

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
# Another name (BENCH_LOYALTY_DATABASE) lets a second copy of the benchmark run beside this one.
DATABASE = os.environ.get("BENCH_LOYALTY_DATABASE", "bench_loyalty")

SETUP = r"""
import sys, time
import django
django.setup()
from decimal import Decimal
from django.utils import timezone
from fedele.customers.models import Customer
from fedele.loyalty.models import Member, Programme, Tier
count = int(sys.argv[1])
now = timezone.now()
programme = Programme.objects.create(code="bench", name_it="Bench", name_en="Bench", status="active",
    expiry_policy="rolling_months", expiry_months=24, pending_days=0,
    velocity_max_earns_per_hour=1_000_000, velocity_max_points_per_day=10**12)
for rank, (code, threshold) in enumerate([("bronze", 0), ("silver", 10_000), ("gold", 50_000)]):
    Tier.objects.create(programme=programme, code=code, name_it=code, name_en=code, rank=rank,
        threshold=Decimal(threshold))
bronze = Tier.objects.get(programme=programme, rank=0)
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
print(programme.pk)
"""

EARN = r"""
import random, sys, time, uuid
import django
django.setup()
from fedele.loyalty.models import Member
from fedele.loyalty.services import ledger
mode, seconds, batch, seed = sys.argv[1], float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ready_dir, processes = sys.argv[5], int(sys.argv[6])
members = list(Member.objects.select_related("programme").order_by("id"))
rng = random.Random(seed)
done = 0
# Every worker starts timing once all have loaded their members (the loading is not measured, and no
# worker's timed run competes with another's start-up).
import pathlib
pathlib.Path(ready_dir, str(seed)).touch()
while len(list(pathlib.Path(ready_dir).iterdir())) < processes:
    time.sleep(0.01)
started = time.perf_counter()
deadline = started + seconds
while time.perf_counter() < deadline:
    if mode == "single":
        member = rng.choice(members)
        ledger.points_earn(actor=None, member=member, points=rng.randint(1, 500), source="bench",
                           idempotency_key=f"bench:{uuid.uuid4()}", reference="R-1")
        done += 1
    else:
        from fedele.loyalty.services.ledger_batch import EarnItem, points_earn_many
        items = [EarnItem(member=rng.choice(members), points=rng.randint(1, 500),
                          idempotency_key=f"bench:{uuid.uuid4()}", reference="R-1") for _ in range(batch)]
        points_earn_many(actor=None, items=items, source="bench")
        done += batch
print(done, time.perf_counter() - started)
"""

LOTS = r"""
import sys, time
import django
django.setup()
from django.db import connection
from fedele.loyalty.models import Programme
programme = Programme.objects.get(code="bench")
count = int(sys.argv[1])
started = time.perf_counter()
with connection.cursor() as cursor:
    cursor.execute("SELECT min(id), count(*) FROM loyalty_member WHERE programme_id = %s", [programme.pk])
    first, members = cursor.fetchone()
    for start in range(0, count, 200_000):
        end = min(count, start + 200_000)
        # Earned two years and a day ago (expiry 24 months): every lot is past its last day.
        cursor.execute('''
            INSERT INTO loyalty_pointstransaction (public_id, programme_id, member_id, kind, points, source,
                reference, qualifying_points, qualifying_count, details, memo, occurred_at, created_at,
                idempotency_key)
            SELECT gen_random_uuid(), %(p)s, %(first)s + (i %% %(members)s), 'earn', 10 + i %% 90, 'bench-load', '',
                10 + i %% 90, 0, '{}'::jsonb, '', now() - interval '25 months', now() - interval '25 months',
                'load:' || i
            FROM generate_series(%(start)s, %(end)s - 1) AS i''',
            {"p": programme.pk, "first": first, "members": members, "start": start, "end": end})
        cursor.execute('''
            INSERT INTO loyalty_pointslot (programme_id, member_id, earn_transaction_id, points, remaining, state,
                earned_at, expires_on)
            SELECT programme_id, member_id, id, points, points, 'available', occurred_at,
                (occurred_at + interval '24 months')::date
            FROM loyalty_pointstransaction
            WHERE source = 'bench-load' AND idempotency_key IN (
                SELECT 'load:' || i FROM generate_series(%(start)s, %(end)s - 1) AS i)''',
            {"start": start, "end": end})
        print(f"lots: {end}", file=sys.stderr, flush=True)
    cursor.execute('''
        INSERT INTO loyalty_pointsentry (transaction_id, programme_id, account, member_id, lot_id, points, created_at)
        SELECT l.earn_transaction_id, l.programme_id, 'member_available', l.member_id, l.id, l.points, l.earned_at
        FROM loyalty_pointslot l JOIN loyalty_pointstransaction t ON t.id = l.earn_transaction_id
        WHERE t.source = 'bench-load' ''')
    cursor.execute('''
        INSERT INTO loyalty_pointsentry (transaction_id, programme_id, account, points, created_at)
        SELECT id, programme_id, 'issuance', -points, created_at FROM loyalty_pointstransaction
        WHERE source = 'bench-load' ''')
    cursor.execute('''
        UPDATE loyalty_member m SET available = m.available + s.points, lifetime_earned = m.lifetime_earned + s.points
        FROM (SELECT l.member_id, sum(l.points) AS points FROM loyalty_pointslot l
              JOIN loyalty_pointstransaction t ON t.id = l.earn_transaction_id AND t.source = 'bench-load'
              GROUP BY l.member_id) s
        WHERE m.id = s.member_id''')
    for table in ("loyalty_pointstransaction", "loyalty_pointslot", "loyalty_pointsentry", "loyalty_member"):
        cursor.execute(f"ANALYZE {table}")
print(time.perf_counter() - started)
"""

EXPIRE = r"""
import json, time
import django
django.setup()
from fedele.loyalty.models import PointsLot, Programme
from fedele.loyalty.services.ledger import ledger_check, lots_expire_due
programme = Programme.objects.get(code="bench")
due = PointsLot.objects.filter(programme=programme, state="available").count()
started = time.perf_counter()
expired = lots_expire_due(programme=programme)
expire_seconds = time.perf_counter() - started
started = time.perf_counter()
problems = ledger_check(programme=programme)
check_seconds = time.perf_counter() - started
again = lots_expire_due(programme=programme)
print(json.dumps({"lots_due": due, "lots_expired": expired, "expire_seconds": round(expire_seconds, 2),
                  "second_run_expired": again, "ledger_check_seconds": round(check_seconds, 2),
                  "ledger_problems": problems[:5]}))
"""


def _env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "bench-secret-key-not-for-production",
        "BENCH_QUEUE_TASKS": "1",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{DATABASE}",
    }


def _run(args: list[str], timeout: int = 7200) -> str:
    done = subprocess.run(
        args, env=_env(), cwd=REPO, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args[:3]} failed:\n{done.stderr[-4000:]}")
    return done.stdout


def _admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as connection:
        connection.execute(statement)


def _fresh_database() -> None:
    _admin(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    _admin(f"CREATE DATABASE {DATABASE}")
    _run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"])


def _earn(mode: str, processes: int, seconds: float, batch: int) -> dict[str, Any]:
    ready_dir = tempfile.mkdtemp(prefix="bench-loyalty-")
    workers = [
        subprocess.Popen(
            [PYTHON, "-c", EARN, mode, str(seconds), str(batch), str(seed), ready_dir, str(processes)],
            env=_env(),
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in range(processes)
    ]
    total = 0
    longest = 0.0
    for worker in workers:
        out, err = worker.communicate(timeout=seconds * 20 + 600)
        if worker.returncode != 0:
            raise RuntimeError(f"earn worker failed:\n{err[-4000:]}")
        done, elapsed = out.split()[-2:]
        total += int(done)
        longest = max(longest, float(elapsed))
    return {
        "processes": processes,
        "transactions": total,
        "seconds": round(longest, 2),
        "per_second": round(total / longest, 1),
    }


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="loyalty_ledger")
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--lots", type=int, default=1_000_000)
    # A part of the benchmark alone (while tuning one path): any of single1, single, batch, expiry.
    parser.add_argument("--modes", default="single1,single,batch,expiry")
    args = parser.parse_args(argv)
    modes = {mode.strip() for mode in args.modes.split(",") if mode.strip()}
    result: dict[str, Any] = {
        "benchmark": "loyalty_ledger",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "members": args.members,
    }
    if modes & {"single1", "single", "batch"}:
        _fresh_database()
        _run([PYTHON, "-c", SETUP, str(args.members)])
    if "single1" in modes:
        result["earn_single_1_process"] = _earn("single", 1, args.seconds, 1)
    if "single" in modes:
        result["earn_single"] = _earn("single", args.processes, args.seconds, 1)
    if "batch" in modes:
        result["earn_batch"] = {
            **_earn("batch", args.processes, args.seconds, args.batch),
            "batch": args.batch,
        }
    if "expiry" not in modes:
        return result
    # Expiry on a fresh ledger of L lots.
    _fresh_database()
    _run([PYTHON, "-c", SETUP, str(max(1, args.lots // 10))])
    started = time.perf_counter()
    load_seconds = float(_run([PYTHON, "-c", LOTS, str(args.lots)]).strip().splitlines()[-1])
    result["expiry"] = {
        "lots": args.lots,
        "members": max(1, args.lots // 10),
        "load_seconds": round(load_seconds, 1),
        **json.loads(_run([PYTHON, "-c", EXPIRE]).strip().splitlines()[-1]),
    }
    result["wall_seconds"] = round(time.perf_counter() - started, 1)
    return result


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1:])))
