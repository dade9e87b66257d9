"""Settings for the benchmarks: embedded mode, a SQLite file of the bench's own or DATABASE_URL."""

from __future__ import annotations

import os
from pathlib import Path

from config.settings.base import DATABASE_URL, sqlite_database
from config.settings.embedded import *  # noqa: F403

DEBUG = False
if not DATABASE_URL and os.environ.get("BENCH_SQLITE_PATH"):
    DATABASES = {"default": sqlite_database(Path(os.environ["BENCH_SQLITE_PATH"]))}
# The benchmark measures the application, not the per-caller rate limit.
FEDELE_API_RATE_LIMIT_PER_MINUTE = 10**9
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}

import warnings  # noqa: E402

# whitenoise warns once per process that collectstatic has not run; the API does not serve files.
warnings.filterwarnings("ignore", message="No directory at")

# BENCH_QUEUE_TASKS=1: after-commit work (invoice e-mails, event dispatch) is queued for Celery
# workers, as in production, instead of running inside the measured process.
if os.environ.get("BENCH_QUEUE_TASKS") == "1":
    CELERY_TASK_ALWAYS_EAGER = False
    CELERY_BROKER_URL = "memory://"
