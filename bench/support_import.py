"""Bulk ticket import throughput: N tickets (2 comments each) from a generated Zendesk export into
PostgreSQL through fedele.support.services.imports (the path of the support_import command and of
the upload page: parse, validate, map, number, bulk insert tickets/messages/tags/history, one audit
row and one event).

The export is newline-delimited JSON as Zendesk's full data export writes it; requesters come from a
pool of 2,000 addresses, 200 of them known customers. The database (bench_support by default) is
dropped and created here. Prints one JSON object.
Usage: python bench/run.py support_import [--tickets 100000] [--database bench_support]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.support_api import WORDS  # the same vocabulary as the API benchmark's tickets

REPO = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgres://postgres@127.0.0.1:5432/postgres")

WORKER = r"""
import json, resource, sys, time
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from django.db import connection
from django.utils import timezone
from fedele.customers.models import Customer
from fedele.support.models import Ticket, TicketMessage
from fedele.support.services.imports import ticket_import_stream

path, mode = sys.argv[1], sys.argv[2]
now = timezone.now()
Customer.objects.bulk_create([
    Customer(kind="person", first_name="Cliente", last_name=f"{i}", email=f"cliente{i}@example.it",
             number=f"BENCH-{i}", created_at=now, updated_at=now)
    for i in range(200)
])
import os
profile_path = os.environ.get("BENCH_PROFILE")
if profile_path:
    import cProfile
    profiler = cProfile.Profile()
    profiler.enable()
def backend_cpu():
    # CPU seconds of this connection's PostgreSQL backend (same machine): the database's share.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

load_before = os.getloadavg()[0]
pg_started = backend_cpu()
def children_cpu():
    # The import's reading process (forked, then reaped by the import) counts here once it ended.
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
children_started = children_cpu()
started, cpu_started = time.perf_counter(), time.process_time()
with open(path, "rb") as stream:
    result = ticket_import_stream(actor=None, source="zendesk", file_format="json", stream=stream, mode=mode)
seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
reader_cpu = children_cpu() - children_started
pg_finished = backend_cpu()
pg_cpu = None if pg_started is None or pg_finished is None else pg_finished - pg_started
if profile_path:
    profiler.disable()
    profiler.dump_stats(profile_path)
with connection.cursor() as cursor:
    cursor.execute("SELECT pg_database_size(current_database())")
    size = cursor.fetchone()[0]
print(json.dumps({
    "seconds": seconds, "cpu_seconds": cpu_seconds + reader_cpu, "reader_cpu_seconds": reader_cpu,
    "pg_cpu_seconds": pg_cpu,
    "load_average": [load_before, os.getloadavg()[0]], "status": result.status, "total": result.total,
    "imported": result.imported,
    "messages": result.messages_imported, "errors": len(result.errors),
    "tickets_in_db": Ticket.objects.count(), "messages_in_db": TicketMessage.objects.count(),
    "linked_to_customers": Ticket.objects.filter(customer__isnull=False).count(),
    "database_bytes": size,
}))
"""

STATUSES = ["new", "open", "open", "pending", "hold", "solved", "solved", "solved", "closed", "closed"]
CHANNELS = ["email", "email", "web", "voice", "chat", "api", "mobile"]
PRIORITIES = ["low", "normal", "normal", "normal", "high", "urgent", None]


def write_export(path: Path, tickets: int, seed: int = 7) -> int:
    """A Zendesk NDJSON export: returns its size in bytes."""
    chooser = random.Random(seed)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with path.open("w", encoding="utf-8") as handle:
        for n in range(1, tickets + 1):
            requester = chooser.randrange(2_000)
            created = start + timedelta(minutes=n * 3)
            topic = chooser.sample(WORDS, 3)
            status = chooser.choice(STATUSES)
            ticket = {
                "id": 100_000 + n,
                "via": {"channel": chooser.choice(CHANNELS)},
                "created_at": created.isoformat().replace("+00:00", "Z"),
                "updated_at": (created + timedelta(hours=5)).isoformat().replace("+00:00", "Z"),
                "type": chooser.choice(["question", "incident", "task", None]),
                "subject": f"Problema {topic[0]} e {topic[1]} n. {n}",
                "priority": chooser.choice(PRIORITIES),
                "status": status,
                "requester_id": requester,
                "requester": {
                    "id": requester,
                    "email": f"cliente{requester}@example.it",
                    "name": f"Cliente {requester}",
                },
                "tags": topic[:2],
                "comments": [
                    {
                        "id": n * 10 + 1,
                        "author_id": requester,
                        "body": f"Buongiorno, ho un problema con {topic[0]}: {' '.join(topic)}. Grazie.",
                        "html_body": f"<p>Buongiorno, ho un problema con <b>{topic[0]}</b>: {topic[1]}.</p>",
                        "public": True,
                        "created_at": created.isoformat().replace("+00:00", "Z"),
                    },
                    {
                        "id": n * 10 + 2,
                        "author_id": 9_000_000,
                        "body": f"Gentile cliente, abbiamo verificato {topic[2]} e risolto il problema.",
                        "public": status != "hold",
                        "created_at": (created + timedelta(hours=2)).isoformat().replace("+00:00", "Z"),
                    },
                ],
            }
            handle.write(json.dumps(ticket, ensure_ascii=False))
            handle.write("\n")
    return path.stat().st_size


def _admin(statement: str) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as connection:
        connection.execute(statement)  # type: ignore[arg-type,unused-ignore]


def run(argv: list[str]) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="support_import")
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--database", default="bench_support")
    parser.add_argument("--mode", choices=["all_or_none", "good_rows"], default="good_rows")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    args = parser.parse_args(argv)
    if not 1 <= args.tickets <= 5_000_000:
        parser.error("tickets must be 1-5,000,000")
    if not args.database.replace("_", "").isalnum():
        parser.error("database must be a plain name")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "DJANGO_SETTINGS_MODULE": "bench.bench_settings",
        "DJANGO_SECRET_KEY": "bench-secret-key-not-for-production",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{args.database}",
    }
    env.pop("REDIS_URL", None)
    _admin(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
    _admin(f"CREATE DATABASE {args.database}")
    try:
        with tempfile.TemporaryDirectory(prefix="fedele-bench-") as directory:
            export = Path(directory) / "zendesk-tickets.json"
            size = write_export(export, args.tickets)
            completed = subprocess.run(
                [sys.executable, "-c", WORKER, str(export), args.mode],
                cwd=REPO,
                env=env,
                capture_output=True,
                text=True,
                timeout=7200,
                check=False,
            )
        if completed.returncode != 0:
            raise RuntimeError(completed.stderr[-3000:])
        data = json.loads(completed.stdout.strip().splitlines()[-1])
    finally:
        if not args.keep:
            _admin(f"DROP DATABASE IF EXISTS {args.database} WITH (FORCE)")
    seconds = data["seconds"]
    pg_cpu = data["pg_cpu_seconds"]
    return {
        "benchmark": "support_import",
        "parameters": {
            "tickets": args.tickets,
            "comments_per_ticket": 2,
            "mode": args.mode,
            "customer_lookup": "customers.facade.find_customers_by_emails",
            "distinct_requesters": 2_000,
            "format": "zendesk ndjson",
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "database": "postgresql",
        "export_bytes": size,
        "result": {
            "status": data["status"],
            "tickets_imported": data["imported"],
            "messages_imported": data["messages"],
            "seconds": round(seconds, 2),
            "importer_cpu_seconds": round(data["cpu_seconds"], 2),  # writer and reading process together
            "reader_process_cpu_seconds": round(data["reader_cpu_seconds"], 2),
            "postgres_backend_cpu_seconds": pg_cpu and round(pg_cpu, 2),
            # Wall time depends on what else the machine runs; CPU time does not. This is the rate
            # with the importer and PostgreSQL running one after the other on one otherwise idle core.
            "tickets_per_cpu_second": round(data["imported"] / (data["cpu_seconds"] + (pg_cpu or 0))),
            "load_average_before_after": [round(x, 2) for x in data["load_average"]],
            "tickets_per_second": round(data["imported"] / seconds),
            "messages_per_second": round(data["messages"] / seconds),
            "tickets_in_db": data["tickets_in_db"],
            "messages_in_db": data["messages_in_db"],
            "linked_to_customers": data["linked_to_customers"],
            "database_bytes": data["database_bytes"],
        },
        "target_tickets_per_second": 5_000,
    }


if __name__ == "__main__":
    print(json.dumps(run(sys.argv[1:]), indent=2))
