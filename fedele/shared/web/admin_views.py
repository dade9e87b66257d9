"""Settings pages of the kernel: webhooks with their delivery log, and the audit log."""

from __future__ import annotations

from uuid import UUID

from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from fedele.shared import webhooks
from fedele.shared.errors import ValidationFailed
from fedele.shared.models import AuditLog, WebhookEndpoint


@login_required
@permission_required("shared.manage_webhooks", raise_exception=True)
@require_http_methods(["GET", "POST"])
def webhook_list(request: HttpRequest) -> HttpResponse:
    context: dict[str, object] = {"errors": {}}
    if request.method == "POST":
        try:
            endpoint = webhooks.endpoint_create(
                url=request.POST.get("url", ""),
                event_types=[e for e in request.POST.get("event_types", "").replace(",", " ").split() if e],
                description=request.POST.get("description", ""),
            )
            context["created_secret"] = endpoint.secret
        except ValidationFailed as failure:
            context["errors"] = failure.fields
    context["endpoints"] = WebhookEndpoint.objects.order_by("-id")
    return render(request, "shared/webhook_list.html", context)


@login_required
@permission_required("shared.manage_webhooks", raise_exception=True)
def webhook_detail(request: HttpRequest, endpoint_id: UUID) -> HttpResponse:
    endpoint = get_object_or_404(WebhookEndpoint, public_id=endpoint_id)
    deliveries = endpoint.deliveries.prefetch_related("attempt_log").order_by("-id")[:100]
    return render(request, "shared/webhook_detail.html", {"endpoint": endpoint, "deliveries": deliveries})


@login_required
@permission_required("shared.manage_webhooks", raise_exception=True)
@require_POST
def webhook_replay(request: HttpRequest, delivery_id: UUID) -> HttpResponse:
    delivery = webhooks.delivery_replay(delivery_public_id=str(delivery_id))
    return redirect("webhooks:detail", endpoint_id=delivery.endpoint.public_id)


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
    return render(
        request,
        "shared/audit_list.html",
        {"entries": entries[:200], "object_id": object_id, "action": action},
    )
