"""Settings pages of the kernel: webhooks with their delivery log, and the audit log."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from fedele.shared import webhooks
from fedele.shared.errors import ValidationFailed
from fedele.shared.events import ALL_EVENTS, DomainEvent
from fedele.shared.models import AuditLog, WebhookDelivery, WebhookEndpoint

AUDIT_PAGE_SIZE = 200
DELIVERY_LOG_SIZE = 100
STATUS_BADGES = {
    WebhookDelivery.Status.PENDING: "secondary",
    WebhookDelivery.Status.SUCCEEDED: "success",
    WebhookDelivery.Status.RETRYING: "warning",
    WebhookDelivery.Status.FAILED: "danger",
}


def known_event_types() -> list[str]:
    """Every domain event type the installed modules publish, for the endpoint form's suggestions."""
    found: set[str] = set()
    pending: list[type] = [DomainEvent]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        event_type = getattr(cls, "event_type", "")
        if event_type:
            found.add(event_type)
    return [ALL_EVENTS, *sorted(found)]


@login_required
@permission_required("shared.manage_webhooks", raise_exception=True)
@require_http_methods(["GET", "POST"])
def webhook_list(request: HttpRequest) -> HttpResponse:
    context: dict[str, Any] = {"errors": {}, "values": {}}
    status = 200
    if request.method == "POST":
        values = {
            "url": request.POST.get("url", "").strip(),
            "event_types": request.POST.get("event_types", "").strip(),
            "description": request.POST.get("description", "").strip(),
        }
        try:
            endpoint = webhooks.endpoint_create(
                url=values["url"],
                event_types=[e for e in values["event_types"].replace(",", " ").split() if e],
                description=values["description"],
            )
        except ValidationFailed as failure:
            context["errors"] = failure.fields
            context["error_message"] = failure.message
            context["values"] = values
            status = 422
        else:
            # The secret is shown on this response only; it is never displayed again.
            context["created_endpoint"] = endpoint
            context["created_secret"] = endpoint.secret
    context["endpoints"] = WebhookEndpoint.objects.annotate(
        delivery_count=Count("deliveries"),
        failed_count=Count("deliveries", filter=Q(deliveries__status=WebhookDelivery.Status.FAILED)),
    ).order_by("-id")
    context["event_type_choices"] = known_event_types()
    return render(request, "shared/webhook_list.html", context, status=status)


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    delivery: WebhookDelivery
    badge: str
    payload_json: str


@login_required
@permission_required("shared.manage_webhooks", raise_exception=True)
def webhook_detail(request: HttpRequest, endpoint_id: UUID) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, public_id=endpoint_id)
    status_filter = request.GET.get("status", "")
    deliveries = endpoint.deliveries.prefetch_related("attempt_log").order_by("-id")
    if status_filter in WebhookDelivery.Status.values:
        deliveries = deliveries.filter(status=status_filter)
    else:
        status_filter = ""
    rows = [
        DeliveryRow(
            delivery,
            STATUS_BADGES.get(WebhookDelivery.Status(delivery.status), "secondary"),
            json.dumps(delivery.payload, indent=2, ensure_ascii=False, sort_keys=True),
        )
        for delivery in deliveries[:DELIVERY_LOG_SIZE]
    ]
    counts = dict(
        endpoint.deliveries.values_list("status").annotate(total=Count("pk")).values_list("status", "total")
    )
    return render(
        request,
        "shared/webhook_detail.html",
        {
            "endpoint": endpoint,
            "rows": rows,
            "status_filter": status_filter,
            "status_choices": [
                (value, label, counts.get(value, 0)) for value, label in WebhookDelivery.Status.choices
            ],
            "total_deliveries": sum(counts.values()),
        },
    )


@login_required
@permission_required("shared.manage_webhooks", raise_exception=True)
@require_POST
def webhook_replay(request: HttpRequest, delivery_id: UUID) -> HttpResponse:
    delivery = webhooks.delivery_replay(delivery_public_id=str(delivery_id))
    if delivery.status == WebhookDelivery.Status.SUCCEEDED:
        messages.success(request, _("The delivery was sent again and the endpoint accepted it."))
    else:
        messages.warning(request, _("The delivery was sent again but did not succeed; see the attempt log."))
    return redirect("webhooks:detail", endpoint_id=delivery.endpoint.public_id)


@dataclass(frozen=True, slots=True)
class FieldChange:
    name: str
    before: str
    after: str
    kind: str  # "added", "removed" or "changed"


def _shown(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def audit_diff(before: Any, after: Any) -> list[FieldChange]:
    """Field-by-field changes between the before and after snapshots of one audit row."""
    before_map = before if isinstance(before, dict) else ({} if before is None else {"value": before})
    after_map = after if isinstance(after, dict) else ({} if after is None else {"value": after})
    changes = []
    for name in sorted(set(before_map) | set(after_map)):
        old, new = before_map.get(name), after_map.get(name)
        if name in before_map and name in after_map and old == new:
            continue
        if name not in before_map or (old in (None, "") and new not in (None, "")):
            kind = "added"
        elif name not in after_map or (new in (None, "") and old not in (None, "")):
            kind = "removed"
        else:
            kind = "changed"
        changes.append(FieldChange(name, _shown(old), _shown(new), kind))
    return changes


@dataclass(frozen=True, slots=True)
class AuditRow:
    entry: AuditLog
    changes: list[FieldChange]


@login_required
@permission_required("shared.view_audit", raise_exception=True)
def audit_list(request: HttpRequest) -> HttpResponse:
    entries = AuditLog.objects.select_related("actor").order_by("-occurred_at", "-id")
    object_id = request.GET.get("object", "").strip()[:64]
    action = request.GET.get("action", "").strip()[:100]
    if object_id:
        entries = entries.filter(object_id=object_id)
    if action:
        entries = entries.filter(action__startswith=action)
    rows = [AuditRow(entry, audit_diff(entry.before, entry.after)) for entry in entries[:AUDIT_PAGE_SIZE]]
    action_prefixes = sorted(
        {
            name.split(".", 1)[0]
            for name in AuditLog.objects.order_by("action").values_list("action", flat=True).distinct()[:500]
        }
    )
    return render(
        request,
        "shared/audit_list.html",
        {
            "rows": rows,
            "entries": [row.entry for row in rows],
            "object_id": object_id,
            "action": action,
            "action_prefixes": action_prefixes,
            "page_size": AUDIT_PAGE_SIZE,
        },
    )
