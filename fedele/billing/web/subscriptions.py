"""Billing pages: subscriptions list, detail (history timeline, actions, live proration preview),
create from a customer, and the Stripe-style import."""

from __future__ import annotations

import json
import uuid
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from fedele.accounts.facade import Actor, actor_for
from fedele.billing.models import PlanVersion, Subscription
from fedele.billing.selectors import catalog as catalog_selectors
from fedele.billing.selectors import subscriptions as selectors
from fedele.billing.services import addons
from fedele.billing.services import subscriptions as services
from fedele.billing.services.accounts import billing_account_for_customer
from fedele.billing.services.importing import subscriptions_import, valid_price_map
from fedele.billing.snapshots import monthly_recurring_revenue
from fedele.customers.facade import customer_summary
from fedele.shared.errors import ApplicationError, PermissionDenied, ValidationFailed
from fedele.shared.pagination import paginate

PAGE_SIZE = 25
STATUS_LABELS = {
    "trialing": gettext_lazy("trialing"),
    "active": gettext_lazy("active"),
    "past_due": gettext_lazy("past due"),
    "paused": gettext_lazy("paused"),
    "cancelled": gettext_lazy("cancelled"),
}


def _manager(actor: Actor) -> None:
    if not (actor.is_internal and actor.can("billing.manage_billing")):
        raise PermissionDenied(_("You do not have permission to manage subscriptions."))


def _staff(request: HttpRequest) -> Actor:
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can("billing.view_billing")):
        raise PermissionDenied(_("You do not have permission to see subscriptions."))
    return actor


@login_required
def subscription_list(request: HttpRequest) -> HttpResponse:
    actor = _staff(request)
    filters = selectors.SubscriptionFilters(
        status=request.GET.get("status", "")[:16] if request.GET.get("status") in STATUS_LABELS else "",
        plan=request.GET.get("plan", "")[:64],
        customer=request.GET.get("customer", "")[:64],
        search=request.GET.get("q", "").strip()[:100],
    )
    page = paginate(
        selectors.subscription_list(actor=actor, filters=filters).prefetch_related(
            "plan_version__charges", "addons__plan_version__charges"
        ),
        ordering="-created_at",
        allowed=selectors.ORDERINGS,
        cursor=request.GET.get("cursor") or None,
        limit=PAGE_SIZE,
    )
    rows = [(s, monthly_recurring_revenue(s)) for s in page.items]
    query = request.GET.copy()
    query["cursor"] = page.next_cursor or ""
    context = {
        "rows": rows,
        "filters": filters,
        "status_labels": STATUS_LABELS,
        "plans": catalog_selectors.plan_list(actor=actor).values_list("code", "name"),
        "counts": selectors.subscription_counts(actor=actor),
        "next_query": query.urlencode() if page.next_cursor else "",
        "can_manage": actor.can("billing.manage_billing"),
    }
    template = (
        "billing/subscriptions/_table.html"
        if request.headers.get("HX-Target") == "results"
        else "billing/subscriptions/list.html"
    )
    return render(request, template, context)


def _detail_context(actor: Actor, subscription: Subscription) -> dict[str, Any]:
    versions = catalog_selectors.sellable_versions(currency=subscription.plan_version.currency).filter(
        plan__billing_period=subscription.billing_period
    )
    return {
        "subscription": subscription,
        "mrr": monthly_recurring_revenue(subscription),
        "history": selectors.subscription_history(subscription=subscription),
        "versions": versions.filter(plan__is_addon=False),
        "addon_versions": versions.filter(plan__is_addon=True),
        "addons": subscription.addons.filter(removed_on__isnull=True).select_related("plan_version__plan"),
        "status_labels": STATUS_LABELS,
        "can_manage": actor.can("billing.manage_billing"),
        "is_live": subscription.status in ("trialing", "active", "past_due"),
        "customer": customer_summary(str(subscription.account.customer.public_id)),
    }


@login_required
def subscription_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _staff(request)
    subscription = selectors.subscription_get(actor=actor, public_id=str(public_id))
    return render(request, "billing/subscriptions/detail.html", _detail_context(actor, subscription))


def _change_input(request: HttpRequest) -> tuple[PlanVersion | None, Decimal | None, str]:
    version_id = request.POST.get("plan_version", "").strip()
    version = None
    if version_id:
        version = (
            PlanVersion.objects.select_related("plan")
            .filter(pk=version_id if version_id.isdigit() else 0)
            .first()
        )
        if version is None:
            raise ValidationFailed(_("Choose a plan."), fields={"plan_version": _("Choose a plan.")})
    quantity_text = request.POST.get("quantity", "").strip().replace(",", ".")
    quantity = None
    if quantity_text:
        try:
            quantity = Decimal(quantity_text)
        except InvalidOperation as error:
            raise ValidationFailed(_("Enter a number."), fields={"quantity": _("Enter a number.")}) from error
    at = request.POST.get("at", "now")
    return version, quantity, at


@login_required
@require_POST
def subscription_preview(request: HttpRequest, public_id: str) -> HttpResponse:
    """The htmx partial under the change form: what the change costs, before confirming it."""
    actor = _staff(request)
    subscription = selectors.subscription_get(actor=actor, public_id=str(public_id))
    context: dict[str, Any] = {"subscription": subscription}
    try:
        version, quantity, at = _change_input(request)
        context["preview"] = services.subscription_preview_change(
            subscription=subscription, plan_version=version, quantity=quantity, at=at
        )
    except ApplicationError as error:
        context["error"] = error
    return render(request, "billing/subscriptions/_preview.html", context)


@login_required
@require_POST
def subscription_action(request: HttpRequest, public_id: str, action: str) -> HttpResponse:
    actor = _staff(request)
    subscription = selectors.subscription_get(actor=actor, public_id=str(public_id))
    _manager(actor)
    at = request.POST.get("at", "now")
    try:
        if action == "change":
            version, quantity, at = _change_input(request)
            services.subscription_change(
                subscription=subscription,
                plan_version=version,
                quantity=quantity,
                at=at,
                actor_id=actor.user_id,
            )
        elif action == "pause":
            resume = request.POST.get("resume_on", "").strip()
            services.subscription_pause(
                subscription=subscription,
                at=at,
                resume_on=date.fromisoformat(resume) if resume else None,
                actor_id=actor.user_id,
            )
        elif action == "cancel":
            services.subscription_cancel(
                subscription=subscription,
                at=at,
                reason=request.POST.get("reason", "")[:300],
                actor_id=actor.user_id,
            )
        elif action in {"resume", "uncancel", "reactivate", "unschedule"}:
            function = {
                "resume": services.subscription_resume,
                "uncancel": services.subscription_uncancel,
                "reactivate": services.subscription_reactivate,
                "unschedule": services.subscription_unschedule_change,
            }[action]
            function(subscription=subscription, actor_id=actor.user_id)
        elif action == "addon":
            version, quantity, _at = _change_input(request)
            if version is None:
                raise ValidationFailed(
                    _("Choose an add-on."), fields={"plan_version": _("Choose an add-on.")}
                )
            addons.subscription_addon_add(
                subscription=subscription,
                plan_version=version,
                quantity=quantity if quantity is not None else Decimal(1),
                actor_id=actor.user_id,
            )
        elif action == "remove-addon":
            try:
                addon_id = uuid.UUID(request.POST.get("addon", "")[:36])
            except ValueError:
                addon_id = None
            addon = subscription.addons.filter(public_id=addon_id).first() if addon_id else None
            if addon is None:
                raise ValidationFailed(_("Choose an add-on."))
            addons.subscription_addon_remove(addon=addon, actor_id=actor.user_id)
        elif action == "coupon":
            services.subscription_apply_coupon(
                subscription=subscription, coupon_code=request.POST.get("code", ""), actor_id=actor.user_id
            )
        else:
            raise ValidationFailed(_("Unknown action."))
        messages.success(request, _("The subscription was updated."))
    except (ApplicationError, ValueError) as error:
        messages.error(request, _(getattr(error, "message", str(error))))
    return redirect("billing:subscription_detail", public_id=subscription.public_id)


@login_required
@require_http_methods(["GET", "POST"])
def subscription_create(request: HttpRequest) -> HttpResponse:
    actor = _staff(request)
    _manager(actor)
    customer_id = (request.POST.get("customer") or request.GET.get("customer") or "").strip()
    customer = None
    try:
        customer = customer_summary(customer_id) if customer_id else None
    except Exception:
        customer = None
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        try:
            if customer is None:
                raise ValidationFailed(_("Choose a customer."), fields={"customer": _("Choose a customer.")})
            version = (
                PlanVersion.objects.select_related("plan")
                .filter(pk=request.POST.get("plan_version") or 0)
                .first()
            )
            if version is None:
                raise ValidationFailed(_("Choose a plan."), fields={"plan_version": _("Choose a plan.")})
            start = request.POST.get("start_on", "").strip()
            term_end = request.POST.get("term_end", "").strip()
            subscription = services.subscription_create(
                account=billing_account_for_customer(
                    customer_public_id=customer_id, currency=version.currency
                ),
                plan_version=version,
                quantity=Decimal(request.POST.get("quantity", "1").replace(",", ".") or "1"),
                start_on=date.fromisoformat(start) if start else None,
                coupon_code=request.POST.get("coupon_code", ""),
                term_end=date.fromisoformat(term_end) if term_end else None,
                renewal_reminder_days=int(request.POST.get("renewal_reminder_days") or 0),
                actor_id=actor.user_id,
            )
            messages.success(request, _("Subscription %(number)s created.") % {"number": subscription.number})
            return redirect("billing:subscription_detail", public_id=subscription.public_id)
        except ApplicationError as error:
            errors = error.fields or {"__all__": [error.message]}
        except (ValueError, InvalidOperation):
            errors = {"__all__": [_("Check the dates and the quantity.")]}
    context = {
        "customer": customer,
        "customer_id": customer_id,
        "versions": catalog_selectors.sellable_versions(),
        "errors": errors,
        "values": request.POST,
    }
    return render(request, "billing/subscriptions/create.html", context, status=422 if errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def subscription_import(request: HttpRequest) -> HttpResponse:
    actor = _staff(request)
    _manager(actor)
    context: dict[str, Any] = {"values": request.POST}
    if request.method == "POST":
        upload = request.FILES.get("file")
        try:
            if upload is None:
                raise ValidationFailed(_("Choose a CSV file."), fields={"file": _("Choose a CSV file.")})
            raw_map = json.loads(request.POST.get("price_map") or "{}")
            if not isinstance(raw_map, dict):
                raise ValidationFailed(_("The price map must be a JSON object."))
            context["report"] = subscriptions_import(
                actor=actor,
                content=upload.read(),
                price_map=valid_price_map(raw_map),
                dry_run=request.POST.get("commit") != "1",
                mode="valid_rows" if request.POST.get("mode") == "valid_rows" else "all_or_nothing",
            )
        except ValueError:
            context["error"] = _("The price map must be a JSON object.")
        except ApplicationError as error:
            context["error"] = error.message
    return render(request, "billing/subscriptions/import.html", context)


urlpatterns: list[URLPattern] = [
    path("subscriptions/", subscription_list, name="subscription_list"),
    path("subscriptions/new/", subscription_create, name="subscription_create"),
    path("subscriptions/import/", subscription_import, name="subscription_import"),
    path("subscriptions/<uuid:public_id>/", subscription_detail, name="subscription_detail"),
    path("subscriptions/<uuid:public_id>/preview/", subscription_preview, name="subscription_preview"),
    path("subscriptions/<uuid:public_id>/<slug:action>/", subscription_action, name="subscription_action"),
]
