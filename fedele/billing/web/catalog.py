"""Billing pages: the catalog (products, plans with their versions and charges, a tier editor for
draft versions) and coupons."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from fedele.accounts.facade import Actor, actor_for
from fedele.billing.models import Metric, PlanCharge
from fedele.billing.selectors import catalog as selectors
from fedele.billing.services import catalog as services
from fedele.shared.errors import ApplicationError, ValidationFailed


def _reader(request: HttpRequest) -> Actor:
    actor = actor_for(request.user)
    selectors.require_catalog_reader(actor)
    return actor


def _manager(request: HttpRequest) -> Actor:
    actor = actor_for(request.user)
    selectors.require_catalog_manager(actor)
    return actor


def _errors(error: ApplicationError) -> dict[str, list[str]]:
    return error.fields or {"__all__": [error.message]}


@login_required
@require_http_methods(["GET", "POST"])
def catalog(request: HttpRequest) -> HttpResponse:
    actor = _reader(request)
    errors: dict[str, list[str]] = {}
    form = request.POST.get("form", "")
    if request.method == "POST":
        _manager(request)
        try:
            if form == "product":
                services.product_create(
                    code=request.POST.get("code", ""),
                    name=request.POST.get("name", ""),
                    vat_rate=request.POST.get("vat_rate", "22"),
                    vat_nature=request.POST.get("vat_nature", ""),
                    actor_id=actor.user_id,
                )
            elif form == "plan":
                product = selectors.product_get(actor=actor, public_id=request.POST.get("product", ""))
                services.plan_create(
                    product=product,
                    code=request.POST.get("code", ""),
                    name=request.POST.get("name", ""),
                    billing_period=request.POST.get("billing_period", "month"),
                    trial_days=int(request.POST.get("trial_days") or 0),
                    is_addon=request.POST.get("is_addon") == "on",
                    actor_id=actor.user_id,
                )
            else:
                raise ValidationFailed(_("Unknown form."))
            messages.success(request, _("Saved."))
            return redirect("billing:catalog")
        except ApplicationError as error:
            errors = _errors(error)
        except ValueError:
            errors = {"trial_days": [_("Enter a whole number.")]}
    context = {
        "products": selectors.product_list(actor=actor),
        "plans": selectors.plan_list(actor=actor),
        "can_manage": actor.can("billing.manage_catalog"),
        "errors": errors,
        "form": form,
        "values": request.POST,
    }
    return render(request, "billing/catalog/catalog.html", context, status=422 if errors else 200)


def _charge_input(request: HttpRequest) -> services.ChargeInput:
    def text(name: str) -> str | None:
        value = request.POST.get(name, "").strip().replace(",", ".")
        return value or None

    metric = None
    if request.POST.get("metric"):
        metric = Metric.objects.filter(code=request.POST["metric"]).first()
    try:
        tiers = json.loads(request.POST.get("tiers") or "[]")
    except ValueError as error:
        raise ValidationFailed(
            _("The tiers are not valid."), fields={"tiers": _("Check the tier rows.")}
        ) from error
    package = text("package_size")
    model = request.POST.get("model", "")
    return services.ChargeInput(
        code=request.POST.get("code", ""),
        name=request.POST.get("name", ""),
        kind=request.POST.get("kind", "recurring"),
        model=model,
        metric=metric,
        unit_amount=text("unit_amount"),
        flat_amount=text("flat_amount"),
        tiers=tuple(tiers) if model in ("graduated", "volume") and isinstance(tiers, list) else (),
        package_size=int(package) if package and package.isdigit() else None,
        minimum_amount=text("minimum_amount"),
    )


@login_required
@require_http_methods(["GET", "POST"])
def version_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _reader(request)
    version = selectors.plan_version_get(actor=actor, public_id=str(public_id))
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        _manager(request)
        try:
            services.plan_charge_add(version=version, data=_charge_input(request), actor_id=actor.user_id)
            messages.success(request, _("Charge added."))
            return redirect("billing:version_detail", public_id=version.public_id)
        except ApplicationError as error:
            errors = _errors(error)
    context: dict[str, Any] = {
        "version": version,
        "charges": version.charges.all(),
        "metrics": Metric.objects.all(),
        "can_edit": actor.can("billing.manage_catalog") and version.published_at is None,
        "can_manage": actor.can("billing.manage_catalog"),
        "errors": errors,
        "values": request.POST,
        "tiers_json": request.POST.get("tiers") or '[{"up_to": "", "unit_amount": "", "flat_amount": ""}]',
    }
    return render(request, "billing/catalog/version.html", context, status=422 if errors else 200)


@login_required
@require_POST
def version_action(request: HttpRequest, public_id: str, action: str) -> HttpResponse:
    actor = _manager(request)
    version = selectors.plan_version_get(actor=actor, public_id=str(public_id))
    target = version
    try:
        if action == "publish":
            services.plan_version_publish(version=version, actor_id=actor.user_id)
        elif action == "new-version":
            target = services.plan_version_create(
                plan=version.plan,
                currency=version.currency,
                setup_fee=version.setup_fee,
                actor_id=actor.user_id,
            )
        elif action == "remove-charge":
            charge = PlanCharge.objects.filter(
                plan_version=version, pk=request.POST.get("charge") or 0
            ).first()
            if charge is None:
                raise ValidationFailed(_("Charge not found."))
            services.plan_charge_remove(charge=charge, actor_id=actor.user_id)
        else:
            raise ValidationFailed(_("Unknown action."))
        messages.success(request, _("Saved."))
    except ApplicationError as error:
        messages.error(request, error.message)
    return redirect("billing:version_detail", public_id=target.public_id)


@login_required
@require_http_methods(["GET", "POST"])
def coupon_list(request: HttpRequest) -> HttpResponse:
    actor = _reader(request)
    errors: dict[str, list[str]] = {}
    if request.method == "POST":
        _manager(request)
        try:
            valid_until = request.POST.get("valid_until", "").strip()
            periods = request.POST.get("duration_periods", "").strip()
            redemptions = request.POST.get("max_redemptions", "").strip()
            services.coupon_create(
                code=request.POST.get("code", ""),
                name=request.POST.get("name", ""),
                percent_off=request.POST.get("percent_off", "").strip() or None,
                amount_off=request.POST.get("amount_off", "").strip() or None,
                currency=request.POST.get("currency", "").strip(),
                duration=request.POST.get("duration", "once"),
                duration_periods=int(periods) if periods else None,
                max_redemptions=int(redemptions) if redemptions else None,
                valid_until=date.fromisoformat(valid_until) if valid_until else None,
                actor_id=actor.user_id,
            )
            messages.success(request, _("Coupon created."))
            return redirect("billing:coupon_list")
        except ApplicationError as error:
            errors = _errors(error)
        except ValueError:
            errors = {"__all__": [_("Check the numbers and the date.")]}
    context = {
        "coupons": selectors.coupon_list(actor=actor),
        "can_manage": actor.can("billing.manage_catalog"),
        "errors": errors,
        "values": request.POST,
    }
    return render(request, "billing/catalog/coupons.html", context, status=422 if errors else 200)


urlpatterns: list[URLPattern] = [
    path("catalog/", catalog, name="catalog"),
    path("catalog/versions/<uuid:public_id>/", version_detail, name="version_detail"),
    path("catalog/versions/<uuid:public_id>/<slug:action>/", version_action, name="version_action"),
    path("coupons/", coupon_list, name="coupon_list"),
]
