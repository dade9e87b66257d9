"""The agent's new-ticket page: a ticket opened on a customer's behalf (phone call, walk-in, chat...)."""

from __future__ import annotations

import re
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from fedele.customers.facade import customer_summary
from fedele.shared import search
from fedele.shared.errors import ApplicationError, ValidationFailed
from fedele.support.models import Channel, Priority
from fedele.support.web import workspace_common as common

AGENT_CHANNELS = ("phone", "email", "chat", "sms", "social", "internal")
UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
FIELDS = (
    "customer",
    "requester_email",
    "requester_name",
    "subject",
    "body",
    "channel",
    "ticket_type",
    "priority",
    "category",
    "team",
    "assignee",
    "tags",
)


def _form_context(values: dict[str, str], error: ApplicationError | None = None) -> dict[str, Any]:
    customer = (
        customer_summary(values["customer"]) if UUID_PATTERN.fullmatch(values.get("customer", "")) else None
    )
    return {
        "values": values,
        "error": error,
        "customer": customer,
        "channels": [(code, label) for code, label in Channel.choices if code in AGENT_CHANNELS],
        "types": common.choice_labels(common.ticket_types()),
        "categories": common.choice_labels(common.categories()),
        "priorities": Priority.choices,
        "teams": common.teams(),
        "agents": common.agents(),
    }


@login_required
@require_http_methods(["GET", "POST"])
def ticket_new(request: HttpRequest) -> HttpResponse:
    from fedele.support.services.tickets import ticket_create

    actor = common.worker(request)
    source = request.POST if request.method == "POST" else request.GET
    values = {name: source.get(name, "").strip() for name in FIELDS}
    values["channel"] = values["channel"] or "phone"
    if request.method == "GET":
        return render(request, "support/workspace/new.html", _form_context(values))
    try:
        if values["channel"] not in AGENT_CHANNELS:
            raise ValidationFailed(_("Choose a channel."), fields={"channel": _("Choose a channel.")})
        if values["customer"] and not UUID_PATTERN.fullmatch(values["customer"]):
            raise ValidationFailed(_("Choose a customer from the list."), fields={"customer": _("Invalid.")})
        ticket = ticket_create(
            actor=actor,
            subject=values["subject"],
            body=values["body"],
            channel=values["channel"],
            requester_email=values["requester_email"],
            requester_name=values["requester_name"],
            customer_public_id=values["customer"] or None,
            ticket_type=values["ticket_type"] or None,
            category=values["category"] or None,
            priority=values["priority"] or None,
            team_public_id=values["team"] or None,
            assignee_public_id=values["assignee"] or None,
            tags=[tag.strip().lower() for tag in values["tags"].split(",") if tag.strip()],
        )
    except ApplicationError as error:
        return render(request, "support/workspace/new.html", _form_context(values, error), status=422)
    messages.success(request, _("Ticket %(number)s created.") % {"number": ticket.number})
    return redirect(reverse("support:ticket_detail", args=[ticket.public_id]))


@login_required
@require_GET
def customer_search(request: HttpRequest) -> HttpResponse:
    """Customers matching the search box of the new-ticket form (through the customers' search source)."""
    common.worker(request)
    query = request.GET.get("q", "").strip()[:100]
    hits = []
    if len(query) >= 2:
        for hit in search.run(request, query, per_source=8):
            found = UUID_PATTERN.search(hit.url)
            if hit.source == "customers" and found:
                hits.append({"public_id": found.group(0), "title": hit.title, "subtitle": hit.subtitle})
    return render(request, "support/workspace/_customer_hits.html", {"hits": hits, "query": query})
