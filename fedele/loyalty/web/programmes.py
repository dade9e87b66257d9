"""Loyalty pages: the programmes overview (/loyalty/), a programme's settings form and its tiers editor
(htmx inline rows). Overview: loyalty.view_loyalty; settings and tiers: loyalty.manage_loyalty."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.forms.models import fields_for_model
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fedele.accounts.facade import Actor, actor_for
from fedele.loyalty.models import Programme, ProgrammeStatus, Tier
from fedele.loyalty.selectors import programmes as selectors
from fedele.loyalty.selectors.tiers import benefit_label
from fedele.loyalty.services import programmes as services
from fedele.shared.errors import ApplicationError, ValidationFailed
from fedele.shared.web.forms import BootstrapFormMixin, apply_service_errors
from fedele.shared.web.views import wants_partial

GROUPS: list[tuple[Any, list[str]]] = [
    (gettext_lazy("Programme"), ["code", "name_it", "name_en", "timezone"]),
    (gettext_lazy("Currency"), ["currency_name_it", "currency_name_en", "point_value"]),
    (
        gettext_lazy("Earning base and rounding"),
        ["points_per_euro", "rounding", "max_points_per_transaction"],
    ),
    (gettext_lazy("Expiry"), ["expiry_policy", "expiry_months", "expiry_years", "expiry_notice_days"]),
    (gettext_lazy("Return window"), ["pending_days", "negative_balance_policy"]),
    (gettext_lazy("Tiers"), ["tier_metric", "tier_window"]),
    (
        gettext_lazy("Transfers and redemptions"),
        [
            "transfer_max_points",
            "transfer_max_points_per_month",
            "household_max_members",
            "reservation_minutes",
        ],
    ),
    (gettext_lazy("Fraud guards"), ["velocity_max_earns_per_hour", "velocity_max_points_per_day"]),
    (gettext_lazy("Coalition and cancellations"), ["is_coalition", "forfeit_on_cancellation"]),
]
FIELD_NAMES = [name for _label, names in GROUPS for name in names]
TIER_FIELD_NAMES = [
    "code",
    "name_it",
    "name_en",
    "threshold",
    "earn_multiplier",
    "support_priority",
    "benefits",
    "color",
]


def _manager(request: HttpRequest) -> Actor:
    actor = actor_for(request.user)
    services.require_manager(actor)
    return actor


class ProgrammeForm(BootstrapFormMixin, forms.Form):
    """The model's own fields (labels, choices, limits); the service validates again and decides."""

    def __init__(self, *args: Any, programme: Programme | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if programme is not None and programme.status != ProgrammeStatus.DRAFT:
            self.fields["code"].disabled = True
            self.fields["code"].help_text = _("The code cannot change once the programme is active.")

    def groups(self) -> list[tuple[Any, list[forms.BoundField]]]:
        return [(label, [self[name] for name in names]) for label, names in GROUPS]


ProgrammeForm.base_fields = fields_for_model(Programme, fields=FIELD_NAMES)


def _initial(programme: Programme) -> dict[str, Any]:
    return {name: getattr(programme, name) for name in FIELD_NAMES}


def _changes(form: ProgrammeForm, programme: Programme | None) -> dict[str, Any]:
    data = {name: form.cleaned_data[name] for name in FIELD_NAMES if name in form.cleaned_data}
    if programme is None:
        return data
    return {name: value for name, value in data.items() if getattr(programme, name) != value}


@login_required
@require_GET
def overview(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request.user)
    rows = selectors.programme_overview(actor=actor)
    return render(
        request,
        "loyalty/programmes/overview.html",
        {"rows": rows, "can_manage": actor.can(services.MANAGE), "language": request.LANGUAGE_CODE},
    )


@login_required
@require_http_methods(["GET", "POST"])
def create(request: HttpRequest) -> HttpResponse:
    actor = _manager(request)
    form = ProgrammeForm(request.POST or None, initial=_initial(Programme()))
    if request.method == "POST" and form.is_valid():
        try:
            programme = services.programme_create(actor=actor, data=_changes(form, None))
        except ValidationFailed as failure:
            apply_service_errors(form, failure)
        else:
            messages.success(request, _("Programme created as a draft: add its tiers, then activate it."))
            return redirect("loyalty:programmes_detail", code=programme.code)
    form.mark_errors()
    return render(
        request, "loyalty/programmes/edit.html", {"form": form, "programme": None}, status=_status(form)
    )


def _status(form: forms.Form) -> int:
    return 422 if form.is_bound and form.errors else 200


def _tiers_context(programme: Programme, **extra: Any) -> dict[str, Any]:
    tiers = selectors.tier_list(programme)
    return {
        "programme": programme,
        "tiers": tiers,
        "benefit_labels": {tier.pk: [benefit_label(code) for code in tier.benefits] for tier in tiers},
        "editable": programme.status != ProgrammeStatus.CLOSED,
        "next_rank": len(tiers),
        **extra,
    }


@login_required
@require_http_methods(["GET", "POST"])
def detail(request: HttpRequest, code: str) -> HttpResponse:
    actor = _manager(request)
    programme = selectors.programme_get(actor=actor, code=code)
    form = ProgrammeForm(request.POST or None, initial=_initial(programme), programme=programme)
    if request.method == "POST" and form.is_valid():
        try:
            programme = services.programme_update(
                actor=actor, programme=programme, changes=_changes(form, programme)
            )
        except ApplicationError as failure:
            apply_service_errors(form, failure)
        else:
            messages.success(request, _("Settings saved."))
            return redirect("loyalty:programmes_detail", code=programme.code)
    form.mark_errors()
    context = {"form": form, **_tiers_context(programme), "statuses": _next_statuses(programme)}
    return render(request, "loyalty/programmes/edit.html", context, status=_status(form))


def _next_statuses(programme: Programme) -> list[tuple[str, str]]:
    return [
        (str(s.value), str(s.label)) for s in services.STATUS_TRANSITIONS[ProgrammeStatus(programme.status)]
    ]


@login_required
@require_POST
def set_status(request: HttpRequest, code: str) -> HttpResponse:
    actor = _manager(request)
    programme = selectors.programme_get(actor=actor, code=code)
    try:
        services.programme_set_status(actor=actor, programme=programme, status=request.POST.get("status", ""))
    except ApplicationError as failure:
        messages.error(request, failure.message)
    else:
        messages.success(request, _("Status changed."))
    return redirect("loyalty:programmes_detail", code=programme.code)


# -- tiers editor (htmx) ---------------------------------------------------------------------------


def _tier_data(request: HttpRequest, names: list[str]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in names:
        if name not in request.POST:
            continue
        value = request.POST.get(name, "").strip()
        if name == "benefits":
            data[name] = [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]
        elif name in ("threshold", "earn_multiplier", "support_priority") and value == "":
            continue
        else:
            data[name] = value
    return data


def _tiers_response(
    request: HttpRequest, programme: Programme, status: int = 200, **extra: Any
) -> HttpResponse:
    """htmx: the editor partial (422 with the row's errors, swapped in place). Without htmx: back to
    the settings page, or a page with the editor and its errors."""
    context = _tiers_context(programme, **extra)
    if wants_partial(request):
        return render(request, "loyalty/programmes/_tiers.html", context, status=status)
    if status != 200:
        return render(request, "loyalty/programmes/tiers_page.html", context, status=status)
    messages.success(request, _("Tiers saved."))
    return redirect("loyalty:programmes_detail", code=programme.code)


@login_required
@require_GET
def tiers(request: HttpRequest, code: str) -> HttpResponse:
    actor = _manager(request)
    programme = selectors.programme_get(actor=actor, code=code)
    return render(request, "loyalty/programmes/_tiers.html", _tiers_context(programme))


@login_required
@require_POST
def tier_create(request: HttpRequest, code: str) -> HttpResponse:
    actor = _manager(request)
    programme = selectors.programme_get(actor=actor, code=code)
    try:
        services.tier_create(actor=actor, programme=programme, data=_tier_data(request, TIER_FIELD_NAMES))
    except ApplicationError as failure:
        return _tiers_response(request, programme, 422, new_errors=_errors(failure), new_values=request.POST)
    return _tiers_response(request, programme)


@login_required
@require_http_methods(["GET", "POST"])
def tier_edit(request: HttpRequest, code: str, tier_code: str) -> HttpResponse:
    """GET: the row as a form (htmx swaps it for the read-only row). POST: save it."""
    actor = _manager(request)
    programme = selectors.programme_get(actor=actor, code=code)
    tier = selectors.tier_get(programme, tier_code)
    if request.method == "GET":
        context = {"programme": programme, "tier": tier, "values": _tier_values(tier)}
        return render(request, "loyalty/programmes/_tier_edit_row.html", context)
    changes = _tier_data(request, [name for name in TIER_FIELD_NAMES if name != "code"])
    try:
        services.tier_update(actor=actor, tier=tier, changes=changes)
    except ApplicationError as failure:
        return _tiers_response(
            request, programme, 422, editing=tier.pk, edit_errors=_errors(failure), edit_values=request.POST
        )
    return _tiers_response(request, programme)


def _tier_values(tier: Tier) -> dict[str, Any]:
    values = {name: getattr(tier, name) for name in TIER_FIELD_NAMES}
    values["benefits"] = ", ".join(tier.benefits or [])
    return values


@login_required
@require_POST
def tier_delete(request: HttpRequest, code: str, tier_code: str) -> HttpResponse:
    actor = _manager(request)
    programme = selectors.programme_get(actor=actor, code=code)
    tier: Tier = selectors.tier_get(programme, tier_code)
    try:
        services.tier_delete(actor=actor, tier=tier)
    except ApplicationError as failure:
        if wants_partial(request):
            # 409 lands in the page's flash area (static/js/app.js); the table stays as it is.
            return render(
                request,
                "loyalty/programmes/_alert.html",
                {"message": failure.message},
                status=failure.status_code,
            )
        messages.error(request, failure.message)
        return redirect("loyalty:programmes_detail", code=programme.code)
    return _tiers_response(request, programme)


def _errors(failure: ApplicationError) -> dict[str, list[str]]:
    """Field errors for the editor rows; an error of no field goes under "general" (templates cannot
    read keys that start with an underscore)."""
    return failure.fields or {"general": [failure.message]}


urlpatterns: list[URLPattern] = [
    path("", overview, name="programmes_overview"),
    path("programmes/new/", create, name="programmes_create"),
    path("programmes/<slug:code>/", detail, name="programmes_detail"),
    path("programmes/<slug:code>/status/", set_status, name="programmes_status"),
    path("programmes/<slug:code>/tiers/", tiers, name="programmes_tiers"),
    path("programmes/<slug:code>/tiers/new/", tier_create, name="programmes_tier_create"),
    path("programmes/<slug:code>/tiers/<slug:tier_code>/", tier_edit, name="programmes_tier_edit"),
    path("programmes/<slug:code>/tiers/<slug:tier_code>/delete/", tier_delete, name="programmes_tier_delete"),
]
