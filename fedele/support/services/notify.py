"""In-app notices for agents: a ticket assigned to them, a customer message on a ticket they follow.

The ticket services call ``notify_ticket_change`` inside their transaction (the notification row is
written with it; the live push goes out after commit). New tickets created already assigned are
picked up from the "support.ticket_created" event.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from fedele.shared.events import EventEnvelope, handles
from fedele.shared.notifications import notification_create
from fedele.support.models import Ticket, TicketWatcher

ASSIGNED = "assigned"
CUSTOMER_MESSAGE = "customer_message"


def _link(ticket: Ticket) -> str:
    return reverse("support:ticket_detail", args=[ticket.public_id])


def _languages(user_ids: Iterable[int]) -> dict[int, str]:
    rows = (
        get_user_model().objects.filter(pk__in=list(user_ids), is_active=True).values_list("pk", "language")
    )
    return {pk: language or "it" for pk, language in rows}


def _notify(ticket: Ticket, recipients: Iterable[int], what: str) -> int:
    sent = 0
    for user_id, language in sorted(_languages(set(recipients)).items()):
        with translation.override(language):
            if what == ASSIGNED:
                title = _("Ticket %(number)s was assigned to you") % {"number": ticket.number}
            else:
                title = _("New customer message on %(number)s") % {"number": ticket.number}
            notification_create(
                recipient_id=user_id, title=title, body=ticket.subject[:300], link=_link(ticket)
            )
        sent += 1
    return sent


def notify_ticket_change(ticket: Ticket, what: str, actor_id: int | None) -> int:
    """``what``: "assigned" (tell the new assignee) or "customer_message" (tell the assignee and the
    followers). Nobody is told about their own action. Returns how many notifications were written."""
    if what == ASSIGNED:
        recipients = {ticket.assignee_id} if ticket.assignee_id else set()
    elif what == CUSTOMER_MESSAGE:
        followers = TicketWatcher.objects.filter(
            ticket=ticket, kind=TicketWatcher.Kind.FOLLOWER, user__isnull=False
        ).values_list("user_id", flat=True)
        recipients = {user_id for user_id in followers if user_id is not None}
        if ticket.assignee_id:
            recipients.add(ticket.assignee_id)
    else:
        return 0
    if actor_id is not None:
        recipients.discard(actor_id)
    return _notify(ticket, (r for r in recipients if r is not None), what)


@handles("support.ticket_created", name="support.workspace.notify_assignee_on_create")
def on_ticket_created(envelope: EventEnvelope) -> None:
    ticket_id = envelope.payload.get("ticket_id")
    if not ticket_id:
        return
    ticket = Ticket.objects.filter(public_id=str(ticket_id)).first()
    if ticket is None or ticket.assignee_id is None:
        return
    notify_ticket_change(ticket, ASSIGNED, ticket.created_by_id)
