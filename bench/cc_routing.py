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
import os
import platform
from typing import Any

from bench.cc_common import PG_ADMIN_URL, percentile, run_worker

DATABASE = os.environ.get("BENCH_CC_ROUTING_DATABASE", "bench_cc_routing")

WORKER = r"""
import os
from datetime import timedelta
from fedele.contact_center.models import AgentSkill, Interaction, RoutingTask, Skill
from fedele.contact_center.services import routing

agents_count, waiting_count, decisions, batch = (int(v) for v in sys.argv[1:5])
rng = random.Random(42)
now = timezone.now()
queues = [Queue.objects.create(code=f"q{i}", name_it=f"q{i}", name_en=f"q{i}", channels=["voice", "chat"]) for i in range(4)]
skills = [Skill.objects.create(code=code, name_it=code, name_en=code) for code in ("billing", "technical", "sales")]
agents = seed_agents(agents_count, now, lambda i: "available",
                     lambda i: {"capacity": {"voice": 1, "chat": 3}, "idle_since": now - timedelta(seconds=rng.randint(0, 3600))})
seed_memberships(agents, queues, 2, rng)
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
analyze()
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

def backend_cpu_seconds():
    # PostgreSQL's CPU for this connection (same machine): utime + stime of the backend process.
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            pid = cursor.fetchone()[0]
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except Exception:
        return None

timings = []
cpu_timings = []
runs = []
made_total = 0
statements = [0]
def count(execute, sql, params, many, context):
    statements[0] += 1
    return execute(sql, params, many, context)
backend_before = backend_cpu_seconds()
with connection.execute_wrapper(count):
    while made_total < decisions:
        started = time.perf_counter()
        run_timings = []
        made = routing.route_pending(limit=min(batch, decisions - made_total), timings=run_timings, cpu_timings=cpu_timings)
        runs.append(time.perf_counter() - started)
        timings.extend(run_timings)
        made_total += made
        if made == 0:
            break
backend_after = backend_cpu_seconds()
backend = None if backend_before is None or backend_after is None else backend_after - backend_before
waiting_left = RoutingTask.objects.filter(state="waiting").count()
print(json.dumps({"timings": timings, "cpu": cpu_timings, "runs": runs, "made": made_total, "waiting_left": waiting_left, "choose": choose, "snapshot": snapshot_seconds, "backend_cpu": backend, "statements": statements[0]}))
"""


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="cc_routing")
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--waiting", type=int, default=5000)
    parser.add_argument("--decisions", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args(argv)
    load_before = [round(value, 2) for value in os.getloadavg()]
    data = run_worker(WORKER, [args.agents, args.waiting, args.decisions, args.batch], database=DATABASE)
    if data is None:
        return {"benchmark": "cc_routing", "skipped": f"PostgreSQL not reachable at {PG_ADMIN_URL}"}
    ordered = sorted(value * 1000 for value in data["timings"])
    choose = sorted(value * 1000 for value in data["choose"])
    runs = sorted(value * 1000 for value in data["runs"])
    cpu = sorted(value * 1000 for value in data["cpu"])
    return {
        "benchmark": "cc_routing",
        "database": "postgresql",
        "agents_online": args.agents,
        "waiting_at_start": args.waiting,
        "decisions": len(ordered),
        "offers_made": data["made"],
        "waiting_left": data["waiting_left"],
        "decision_ms": {
            "p50": round(percentile(ordered, 0.50), 2),
            "p95": round(percentile(ordered, 0.95), 2),
            "p99": round(percentile(ordered, 0.99), 2),
            "max": round(ordered[-1], 2),
            "mean": round(sum(ordered) / len(ordered), 2),
        },
        "decision_cpu_ms": {
            "p50": round(percentile(cpu, 0.50), 3),
            "p99": round(percentile(cpu, 0.99), 3),
            "mean": round(sum(cpu) / len(cpu), 3),
        },
        "postgresql_cpu_ms_per_offer_whole_runs": (
            round(data["backend_cpu"] * 1000 / data["made"], 3) if data["backend_cpu"] is not None else None
        ),
        "statements_per_offer_whole_runs": round(data["statements"] / data["made"], 2),
        "choose_in_memory_ms": {
            "p50": round(percentile(choose, 0.50), 3),
            "p99": round(percentile(choose, 0.99), 3),
        },
        "snapshot_load_ms": round(data["snapshot"] * 1000, 1),
        "load_average_before": load_before,
        "router_run_ms": {
            "runs": len(runs),
            "p50": round(percentile(runs, 0.5), 1),
            "max": round(runs[-1], 1),
        },
        "offers_per_second_one_router": round(data["made"] / (sum(runs) / 1000), 1),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
