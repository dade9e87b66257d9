"""What the ivr area registers at start-up: navigation, the document-retry job and its task, demo data."""

from __future__ import annotations

DOCUMENT_RETRY_EVERY_SECONDS = 300


def register() -> None:
    from django.utils.translation import gettext_lazy as _

    from fedele.contact_center.ivr import demo as ivr_demo
    from fedele.contact_center.ivr import tasks  # noqa: F401  (registers the Celery task)
    from fedele.shared import demo, navigation, scheduler
    from fedele.shared.navigation import NavItem

    navigation.register(
        "contact_center",
        NavItem(_("IVR flows"), "contact_center:ivr_flows", "contact_center.manage_contact_center"),
    )
    scheduler.register(
        "contact-center-document-retry",
        "contact_center.document_requests_retry_failed",
        DOCUMENT_RETRY_EVERY_SECONDS,
    )
    # After the contact-center demo (order 300), which makes the queues the flow routes to.
    demo.register("contact_center_ivr", ivr_demo.load, order=310)
