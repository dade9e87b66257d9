"""What the e-mail area registers at start-up: its Celery tasks, scheduler jobs and navigation."""

from __future__ import annotations


def register() -> None:
    from django.utils.translation import gettext_lazy as _

    import fedele.support.email.tasks  # noqa: F401  (registers support.imap_poll and the reply sweep)
    from fedele.shared import navigation, scheduler
    from fedele.shared.navigation import NavItem

    scheduler.register("support-imap-poll", "support.imap_poll", 60)
    scheduler.register("support-deliver-replies", "support.deliver_pending_replies", 60)
    navigation.register("service", NavItem(_("Mailboxes"), "support:mailbox_list", "support.manage_support"))
