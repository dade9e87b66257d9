"""Contact-center routing decision latency on PostgreSQL: 1,000 agents online, 5,000 contacts waiting.

Seeds (with SQL-speed bulk inserts, not through the services) 1,000 available agents in 4 queues with
3 skills of proficiency 1-5 and capacity 1 call or 3 chats, and 5,000 waiting contacts (voice/chat,
one required skill at 1-3, priorities 0-5). Then runs the router (``route_pending``) in runs of
``--batch`` offers until ``--decisions`` offers were made, and reports per-decision latency (choosing
the agent in memory + locking the contact/task and the agent, recounting the agent's load, writing
the offer, the task, the contact and the timeline row, one transaction each) and the per-run
snapshot time (agents, skills, queues, loads: four queries).

The database (bench_cc_routing) is dropped and created here. Prints one JSON object.
Usage: python bench/run.py cc_routing [--agents 1000] [--waiting 5000] [--decisions 1000] [--batch 100]
"""

# ruff: noqa: E501 - the long lines are Python inside the script this benchmark runs

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")
DATABASE = os.environ.get("BENCH_CC_ROUTING_DATABASE", "bench_cc_routing")

WORKER = r"""
import json, random, statistics, sys, time
from datetime import timedelta
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.db import connection
from django.utils import timezone
from fedele.accounts.models import User
from fedele.contact_center.models import Agent, AgentSkill, Interaction, Queue, RoutingTask, Skill
from fedele.contact_center.services import routing

agents_count, waiting_count, decisions, batch = (int(v) for v in sys.argv[1:5])
rng = random.Random(42)
now = timezone.now()
queues = [Queue.objects.create(code=f"q{i}", name_it=f"q{i}", name_en=f"q{i}", channels=["voice", "chat"]) for i in range(4)]
skills = [Skill.objects.create(code=code, name_it=code, name_en=code) for code in ("billing", "technical", "sales")]
users = User.objects.bulk_create([User(email=f"agent{i}@bench.example", password="!") for i in range(agents_count)])
agents = Agent.objects.bulk_create([
    Agent(user=user, display_name=f"Agent {i}", capacity={"voice": 1, "chat": 3}, state="available",
          state_since=now, idle_since=now - timedelta(seconds=rng.randint(0, 3600)))
    for i, user in enumerate(users)
])
Membership = Agent.queues.through
Membership.objects.bulk_create([Membership(agent_id=a.pk, queue_id=q.pk) for a in agents for q in rng.sample(queues, 2)])
AgentSkill.objects.bulk_create([
    AgentSkill(agent=a, skill=s, proficiency=rng.randint(1, 5)) for a in agents for s in rng.sample(skills, rng.randint(1, 3))
])
interactions = Interaction.objects.bulk_create([
    Interaction(number=f"I-B{i:08d}", channel=rng.choice(("voice", "voice", "chat")), direction="inbound", state="queued",
                from_address=f"+3906{i:08d}", created_at=now - timedelta(seconds=waiting_count - i),
                queued_at=now - timedelta(seconds=waiting_count - i), queue=rng.choice(queues))
    for i in range(waiting_count)
], batch_size=2000)
tasks = []
for interaction in interactions:
    skill = rng.choice(skills)
    priority = rng.randint(0, 5)
    tasks.append(RoutingTask(
        interaction=interaction, queue_id=interaction.queue_id, channel=interaction.channel, base_priority=priority,
        effective_priority=priority, enqueued_at=interaction.queued_at,
        targets=[{"queue": "", "queue_id": interaction.queue_id, "queue_priority": 0, "expression": "", "priority": 0, "timeout": None}],
        target_started_at=interaction.queued_at, required_skills={skill.code: rng.randint(1, 3)},
        offer_timeout_seconds=3600))
RoutingTask.objects.bulk_create(tasks, batch_size=2000)
with connection.cursor() as cursor:
    cursor.execute("ANALYZE")
# The in-memory part of a decision alone (eligible agents + ranking over the snapshot), per waiting contact.
snapshot = routing._Snapshot.load()
rows = list(RoutingTask.objects.filter(state="waiting").order_by("-effective_priority", "enqueued_at", "id").values(*routing._TASK_FIELDS)[:1000])
choose = []
for row in rows:
    started = time.perf_counter()
    candidates = routing._eligible(row, snapshot, now)
    routing.rank_agents(candidates, strategy="longest_idle", required=row["required_skills"], preferred_agent_id=None)
    choose.append(time.perf_counter() - started)
started = time.perf_counter()
routing._Snapshot.load()
snapshot_seconds = time.perf_counter() - started
# Warm-up: imports, prepared plans, the expression cache (its offers are not counted).
routing.route_pending(limit=20)
timings = []
runs = []
made_total = 0
while made_total < decisions:
    started = time.perf_counter()
    run_timings = []
    made = routing.route_pending(limit=min(batch, decisions - made_total), timings=run_timings)
    runs.append(time.perf_counter() - started)
    timings.extend(run_timings)
    made_total += made
    if made == 0:
        break
waiting_left = RoutingTask.objects.filter(state="waiting").count()
print(json.dumps({"timings": timings, "runs": runs, "made": made_total, "waiting_left": waiting_left, "choose": choose, "snapshot": snapshot_seconds}))
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
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="cc_routing")
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--waiting", type=int, default=5000)
    parser.add_argument("--decisions", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args(argv)
    if not _postgres(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)") or not _postgres(
        f"CREATE DATABASE {DATABASE}"
    ):
        return {"benchmark": "cc_routing", "skipped": f"PostgreSQL not reachable at {PG_ADMIN_URL}"}
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
        "DJANGO_SECRET_KEY": "bench-secret-key-not-for-production",
        "DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{DATABASE}",
        "LOG_LEVEL": "WARNING",
    }
    env.pop("REDIS_URL", None)
    load_before = [round(value, 2) for value in os.getloadavg()]
    try:
        completed = subprocess.run(
            [
                sys.executable,
                "-c",
                WORKER,
                str(args.agents),
                str(args.waiting),
                str(args.decisions),
                str(args.batch),
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=3600,
            check=False,
        )
    finally:
        _postgres(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    if completed.returncode != 0:
        raise RuntimeError(completed.stderr[-3000:])
    data = json.loads(completed.stdout.strip().splitlines()[-1])
    ordered = sorted(value * 1000 for value in data["timings"])
    choose = sorted(value * 1000 for value in data["choose"])
    runs = sorted(value * 1000 for value in data["runs"])
    return {
        "benchmark": "cc_routing",
        "database": "postgresql",
        "agents_online": args.agents,
        "waiting_at_start": args.waiting,
        "decisions": len(ordered),
        "offers_made": data["made"],
        "waiting_left": data["waiting_left"],
        "decision_ms": {
            "p50": round(_percentile(ordered, 0.50), 2),
            "p95": round(_percentile(ordered, 0.95), 2),
            "p99": round(_percentile(ordered, 0.99), 2),
            "max": round(ordered[-1], 2),
            "mean": round(sum(ordered) / len(ordered), 2),
        },
        "choose_in_memory_ms": {
            "p50": round(_percentile(choose, 0.50), 3),
            "p99": round(_percentile(choose, 0.99), 3),
        },
        "snapshot_load_ms": round(data["snapshot"] * 1000, 1),
        "load_average_before": load_before,
        "router_run_ms": {
            "runs": len(runs),
            "p50": round(_percentile(runs, 0.5), 1),
            "max": round(runs[-1], 1),
        },
        "offers_per_second_one_router": round(data["made"] / (sum(runs) / 1000), 1),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
