"""Contact-center wallboard and interval reports on PostgreSQL at the size of a large customer:
500 agents in 20 queues, a day of contacts so far and a month of history.

Seeds (bulk inserts, not through the services) the agents, queues and ended contacts (answered with
waits of 0-90 s, about 8 % abandoned) spread over working hours, plus contacts waiting now. Then times:
the wallboard snapshot (seven queries + in-memory tallies) and its rendered table, the interval report
of one day in quarter hours and of the month in hours, and ``facade.interval_stats`` for a week of
quarter hours over every queue and channel (what WFM reads).

The database (cc_desktop, the desktop area's own) is dropped and created here. Prints one JSON object.
Usage: python bench/run.py cc_wallboard [--agents 500] [--queues 20] [--per-day 3000] [--days 30] [--repeat 20]
"""

# ruff: noqa: E501 - the long lines are Python inside the script this benchmark runs

from __future__ import annotations

import argparse
import os
import platform
from typing import Any

from bench.cc_common import PG_ADMIN_URL, run_worker

DATABASE = os.environ.get("BENCH_CC_WALLBOARD_DATABASE", "cc_desktop")

WORKER = r"""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo
from fedele.contact_center import facade
from fedele.contact_center.models import Interaction
from fedele.contact_center.selectors.reports import interval_report
from fedele.contact_center.selectors.wallboard import wallboard
from fedele.contact_center.web.desktop_wallboard import render_board

agents_count, queues_count, per_day, days, repeat = (int(v) for v in sys.argv[1:6])
rng = random.Random(7)
rome = ZoneInfo("Europe/Rome")
now = timezone.now()
queues = [Queue.objects.create(code=f"q{i:02d}", name_it=f"Coda {i}", name_en=f"Queue {i}", channels=["voice", "chat", "email"]) for i in range(queues_count)]
states = ["available", "busy", "busy", "wrap_up", "break", "offline"]
agents = seed_agents(agents_count, now, lambda i: rng.choice(states), lambda i: {})
seed_memberships(agents, queues, 3, rng)
rows, number = [], 0
today = now.astimezone(rome).date()
for offset in range(days, -1, -1):
    day = today - timedelta(days=offset)
    start = datetime.combine(day, datetime.min.time(), tzinfo=rome).replace(hour=8)
    for _ in range(per_day):
        queued = start + timedelta(seconds=rng.randrange(11 * 3600))
        if queued >= now:
            continue
        number += 1
        wait = int(rng.expovariate(1 / 25))
        channel = rng.choice(("voice", "voice", "chat", "email"))
        common = dict(number=f"I-W{number:09d}", channel=channel, direction="inbound", queue=rng.choice(queues), created_at=queued, queued_at=queued, from_address="+390600000000")
        if wait > 60 and rng.random() < 0.5:
            rows.append(Interaction(state="ended", outcome="abandoned", ended_at=queued + timedelta(seconds=wait), wait_seconds=wait, **common))
        else:
            talk = int(rng.expovariate(1 / 200))
            rows.append(Interaction(state="ended", outcome="handled", answered_at=queued + timedelta(seconds=wait), ended_at=queued + timedelta(seconds=wait + talk), wait_seconds=wait, talk_seconds=talk, after_call_seconds=rng.randrange(60), agent=rng.choice(agents), **common))
for i in range(60):
    number += 1
    rows.append(Interaction(number=f"I-W{number:09d}", channel="voice", direction="inbound", state="queued", queue=rng.choice(queues), created_at=now - timedelta(seconds=i * 3), queued_at=now - timedelta(seconds=i * 3)))
Interaction.objects.bulk_create(rows, batch_size=5000)
analyze()

def timed(function, times):
    values = []
    for _ in range(times):
        started = time.perf_counter()
        result = function()
        values.append(time.perf_counter() - started)
    return sorted(values), result

wallboard()  # warm-up
board_times, board = timed(wallboard, repeat)
render_times, html = timed(lambda: render_board(board), repeat)
day_times, day_report = timed(lambda: interval_report(start_date=today, end_date=today, interval_minutes=15), max(3, repeat // 4))
month_times, month_report = timed(lambda: interval_report(start_date=today - timedelta(days=days), end_date=today, interval_minutes=60), 3)
week_start = datetime.combine(today - timedelta(days=7), datetime.min.time(), tzinfo=rome)
week_times, stats = timed(lambda: facade.interval_stats(start=week_start, end=week_start + timedelta(days=7), interval_minutes=15), 3)
print(json.dumps({
    "contacts": len(rows), "board": board_times, "render": render_times, "html_bytes": len(html),
    "day": day_times, "day_offered": day_report.total.offered, "month": month_times, "month_offered": month_report.total.offered,
    "week_stats": week_times, "week_stats_rows": len(stats),
}))
"""


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(value * 1000 for value in values)
    return {
        "p50": round(ordered[len(ordered) // 2], 1),
        "p95": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
        "max": round(ordered[-1], 1),
    }


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="cc_wallboard")
    parser.add_argument("--agents", type=int, default=500)
    parser.add_argument("--queues", type=int, default=20)
    parser.add_argument("--per-day", type=int, default=3000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args(argv)
    data = run_worker(
        WORKER, [args.agents, args.queues, args.per_day, args.days, args.repeat], database=DATABASE
    )
    if data is None:
        return {"benchmark": "cc_wallboard", "skipped": f"PostgreSQL not reachable at {PG_ADMIN_URL}"}
    return {
        "benchmark": "cc_wallboard",
        "database": "postgresql",
        "agents": args.agents,
        "queues": args.queues,
        "contacts": data["contacts"],
        "wallboard_snapshot_ms": _ms(data["board"]),
        "wallboard_render_ms": _ms(data["render"]),
        "wallboard_html_kib": round(data["html_bytes"] / 1024, 1),
        "interval_report_day_15min_ms": _ms(data["day"]),
        "interval_report_month_60min_ms": _ms(data["month"]),
        "interval_stats_week_15min_ms": _ms(data["week_stats"]),
        "interval_stats_week_rows": data["week_stats_rows"],
        "month_offered": data["month_offered"],
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
    }
