"""Celery app. Embedded mode runs tasks eagerly; production uses the Redis broker."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.embedded")

app = Celery("fedele")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_after_finalize.connect
def _install_schedule(sender: Celery, **kwargs: object) -> None:
    from fedele.shared.scheduler import beat_schedule

    sender.conf.beat_schedule = beat_schedule()
