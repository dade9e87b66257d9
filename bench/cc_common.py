"""What the contact-center benchmarks share: a PostgreSQL database of their own (dropped and created
around the run), the worker process that seeds and measures in it, and the worker's common start.

The worker runs as ``python -c WORKER args...`` with the bench settings and ``DATABASE_URL`` pointing
at the benchmark's database; its last line of output is one JSON object.
"""

# ruff: noqa: E501 - the long lines are Python inside the scripts the benchmarks run

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")

# The start of every worker: Django set up on the fresh database, the schema migrated.
WORKER_PRELUDE = r"""
import json, random, sys, time
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.db import connection
from django.utils import timezone
from fedele.accounts.models import User
from fedele.contact_center.models import Agent, Queue

def seed_agents(count, now, state, fields):
    # state(i) and fields(i): agent i's state and its other columns
    users = User.objects.bulk_create([User(email=f"agent{i}@bench.example", password="!") for i in range(count)])
    return Agent.objects.bulk_create([
        Agent(user=user, display_name=f"Agent {i}", state=state(i), state_since=now, **fields(i))
        for i, user in enumerate(users)
    ])

def seed_memberships(agents, queues, per_agent, rng):
    Membership = Agent.queues.through
    Membership.objects.bulk_create([Membership(agent_id=a.pk, queue_id=q.pk) for a in agents for q in rng.sample(queues, per_agent)])

def analyze():
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
"""


def postgres(sql: str) -> bool:
    """Run one administrative statement (autocommit); False when PostgreSQL is not reachable."""
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=3) as connection:
            connection.execute(sql)  # type: ignore[arg-type,unused-ignore]
        return True
    except Exception:
        return False


def percentile(ordered: list[float], share: float) -> float:
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run_worker(worker: str, args: list[Any], *, database: str) -> dict[str, Any] | None:
    """Create ``database`` afresh, run the worker in it, drop it; the worker's JSON, or None when
    PostgreSQL is not reachable. Never the shared ``test`` database."""
    if database in ("test", "postgres", "template0", "template1"):
        raise ValueError(f"refusing to use the database {database!r} for a benchmark")
    if not postgres(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)") or not postgres(
        f"CREATE DATABASE {database}"
    ):
        return None
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
        "DJANGO_SECRET_KEY": "bench-secret-key-not-for-production",
        "DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{database}",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    try:
        completed = subprocess.run(
            [sys.executable, "-c", WORKER_PRELUDE + worker, *(str(arg) for arg in args)],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
    finally:
        postgres(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr[-3000:])
    result: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    return result
