"""The one scheduler entry point for periodic jobs.

Production runs Celery beat with the schedule built from PERIODIC_JOBS; embedded mode runs
`manage.py scheduler`, which calls the same tasks in-process on the same intervals.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PeriodicJob:
    task_name: str
    every_seconds: int


PERIODIC_JOBS: dict[str, PeriodicJob] = {
    "outbox-sweep": PeriodicJob("shared.dispatch_outbox_due", 15),
    "webhooks-due": PeriodicJob("shared.deliver_webhooks_due", 15),
    "idempotency-purge": PeriodicJob("shared.purge_idempotency_records", 3600),
}


def register(name: str, task_name: str, every_seconds: int) -> None:
    """Modules add their periodic jobs from AppConfig.ready()."""
    PERIODIC_JOBS[name] = PeriodicJob(task_name, every_seconds)


def beat_schedule() -> dict[str, dict[str, object]]:
    return {
        name: {"task": job.task_name, "schedule": float(job.every_seconds)}
        for name, job in PERIODIC_JOBS.items()
    }
