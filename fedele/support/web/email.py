"""Pages of the e-mail area: mailboxes (list, create, edit, IMAP connection test) and the inbound
log, under /support/settings/mailboxes/ (support.manage_support)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fedele.accounts.facade import actor_for
from fedele.shared.errors import ValidationFailed
from fedele.shared.pagination import paginate
from fedele.support.models import InboundEmail, Mailbox, Priority, TicketType
from fedele.support.services import mailboxes as services

FIELDS = (
    "name",
    "address",
    "from_name",
    "team",
    "ticket_type",
    "default_priority",
    "language",
    "imap_host",
    "imap_port",
    "imap_username",
    "imap_password_env",
    "imap_folder",
)


def _form_values(request: HttpRequest) -> dict[str, Any]:
    values: dict[str, Any] = {name: request.POST.get(name, "").strip() for name in FIELDS}
    values["imap_ssl"] = request.POST.get("imap_ssl") == "on"
    values["active"] = request.POST.get("active") == "on"
    megabytes = request.POST.get("max_attachment_mb", "").strip().replace(",", ".")
    try:
        values["max_attachment_bytes"] = int(float(megabytes) * 1024 * 1024)
    except ValueError:
        values["max_attachment_bytes"] = None
    values["imap_port"] = values["imap_port"] or 993
    return values


def _choices() -> dict[str, Any]:
    from fedele.support.models import Ticket

    team_model = Ticket._meta.get_field("team").related_model
    return {
        "teams": team_model._default_manager.order_by("name"),
        "ticket_types": TicketType.objects.filter(active=True),
        "priorities": Priority.choices,
    }


@login_required
@require_GET
def mailbox_list(request: HttpRequest) -> HttpResponse:
    services.require_manager(actor_for(request.user))
    mailboxes = Mailbox.objects.select_related("team", "ticket_type").order_by("address")
    return render(request, "support/email/mailbox_list.html", {"mailboxes": mailboxes})


@login_required
@require_http_methods(["GET", "POST"])
def mailbox_edit(request: HttpRequest, public_id: str | None = None) -> HttpResponse:
    actor = services.require_manager(actor_for(request.user))
    mailbox = services.mailbox_get(actor=actor, public_id=public_id) if public_id else None
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {}
    if request.method == "POST":
        values = _form_values(request)
        try:
            if mailbox is None:
                mailbox = services.mailbox_create(actor=actor, data=values)
                messages.success(request, _("Mailbox created."))
            else:
                mailbox = services.mailbox_update(
                    actor=actor, public_id=str(mailbox.public_id), changes=values
                )
                messages.success(request, _("Mailbox saved."))
            return redirect("support:mailbox_edit", mailbox.public_id)
        except ValidationFailed as error:
            errors = error.fields or {"__all__": [error.message]}
    context = {"mailbox": mailbox, "values": values, "errors": errors, **_choices()}
    return render(request, "support/email/mailbox_edit.html", context, status=422 if errors else 200)


@login_required
@require_POST
def mailbox_test(request: HttpRequest, public_id: str) -> HttpResponse:
    ok, detail = services.mailbox_test_connection(actor=actor_for(request.user), public_id=public_id)
    context = {"ok": ok, "detail": detail}
    if request.headers.get("HX-Request"):
        return render(request, "support/email/_connection.html", context)
    (messages.success if ok else messages.error)(request, detail)
    return redirect("support:mailbox_edit", public_id)


@login_required
@require_GET
def inbound_log(request: HttpRequest) -> HttpResponse:
    services.require_manager(actor_for(request.user))
    queryset = InboundEmail.objects.select_related("mailbox", "ticket")
    outcome = request.GET.get("outcome", "")
    if outcome in InboundEmail.Outcome.values:
        queryset = queryset.filter(outcome=outcome)
    mailbox = request.GET.get("mailbox", "")
    if mailbox:
        queryset = queryset.filter(mailbox__address__iexact=mailbox)
    page = paginate(
        queryset, ordering="-id", allowed={"id": "id"}, cursor=request.GET.get("cursor"), limit=50
    )
    context = {
        "page": page,
        "outcomes": InboundEmail.Outcome.choices,
        "outcome": outcome,
        "mailbox": mailbox,
        "mailboxes": Mailbox.objects.order_by("address").values_list("address", flat=True),
    }
    return render(request, "support/email/inbound_log.html", context)


urlpatterns: list[URLPattern | URLResolver] = [
    path("settings/mailboxes/", mailbox_list, name="mailbox_list"),
    path("settings/mailboxes/new/", mailbox_edit, name="mailbox_new"),
    path("settings/mailboxes/log/", inbound_log, name="inbound_log"),
    path("settings/mailboxes/<uuid:public_id>/", mailbox_edit, name="mailbox_edit"),
    path("settings/mailboxes/<uuid:public_id>/test/", mailbox_test, name="mailbox_test"),
]
