"""Celery entry points of the customers module. Each is idempotent."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="customers.purge_stale_import_previews")
def purge_stale_import_previews() -> int:
    from fedele.customers.services.importing import customer_import_purge_stale

    return customer_import_purge_stale()
