"""Loyalty pages of the rewards area: the catalogue (/loyalty/rewards/: list with stock and codes left,
editor with kind-specific fields, code pool generate/import) and the fulfilment queue
(/loyalty/redemptions/: confirm, ship with tracking, cancel; htmx rows).

Seeing needs ``loyalty.view_loyalty``; editing the catalogue ``loyalty.manage_loyalty``; acting on
redemptions ``loyalty.operate_loyalty`` (the services check again)."""

from __future__ import annotations

from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fedele.accounts.facade import Actor, actor_for
from fedele.customers.contracts import Segment
from fedele.loyalty.models import Partner, Programme, Redemption, Reward, RewardKind, Tier
from fedele.loyalty.selectors import rewards as selectors
from fedele.loyalty.services import rewards as services
from fedele.shared.errors import ApplicationError, PermissionDenied
from fedele.shared.web.forms import BootstrapFormMixin, apply_service_errors
from fedele.shared.web.views import wants_partial

VIEW = "loyalty.view_loyalty"
PAGE_SIZE = 50
SEGMENT_LABELS = {
    Segment.CONSUMER: gettext_lazy("Consumers"),
    Segment.SMALL_BUSINESS: gettext_lazy("Small businesses"),
    Segment.ENTERPRISE: gettext_lazy("Enterprises"),
    Segment.PUBLIC_ADMINISTRATION: gettext_lazy("Public administration"),
}
STATE_BADGES = {
    Redemption.State.RESERVED: "text-bg-warning",
    Redemption.State.FULFILLED: "text-bg-success",
    Redemption.State.AWAITING_SHIPMENT: "text-bg-primary",
    Redemption.State.SHIPPED: "text-bg-secondary",
    Redemption.State.CANCELLED: "text-bg-light border",
}


def _viewer(request: HttpRequest) -> Actor:
    actor = actor_for(request.user)
    if actor.is_portal_customer or not actor.can(VIEW):
        raise PermissionDenied(_("You do not have permission to see the rewards catalogue."))
    return actor


class RewardForm(BootstrapFormMixin, forms.Form):
    """The editor. Dates are sent as typed (programme time zone); the service validates everything."""

    code = forms.SlugField(label=gettext_lazy("Code"), max_length=40)
    kind = forms.ChoiceField(label=gettext_lazy("Kind"), choices=RewardKind.choices)
    name_it = forms.CharField(label=gettext_lazy("Name (Italian)"), max_length=120)
    name_en = forms.CharField(label=gettext_lazy("Name (English)"), max_length=120)
    description_it = forms.CharField(
        label=gettext_lazy("Description (Italian)"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    description_en = forms.CharField(
        label=gettext_lazy("Description (English)"), required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    image_url = forms.CharField(label=gettext_lazy("Image address"), required=False, max_length=300)
    points_cost = forms.IntegerField(label=gettext_lazy("Points cost"), min_value=1)
    cash_price = forms.DecimalField(
        label=gettext_lazy("Cash part (EUR)"),
        required=False,
        min_value=0,
        max_digits=10,
        decimal_places=2,
        help_text=gettext_lazy("Points plus cash: what the member also pays. Empty or 0 = points only."),
    )
    credit_amount = forms.DecimalField(
        label=gettext_lazy("Credit on the next invoice (EUR, net)"),
        required=False,
        min_value=0,
        max_digits=10,
        decimal_places=2,
    )
    partner = forms.ChoiceField(label=gettext_lazy("Partner"), required=False)
    charity_name = forms.CharField(label=gettext_lazy("Charity"), required=False, max_length=120)
    stock = forms.IntegerField(
        label=gettext_lazy("Stock"),
        required=False,
        min_value=0,
        help_text=gettext_lazy("Empty = unlimited."),
    )
    per_member_limit = forms.IntegerField(
        label=gettext_lazy("Limit per member"),
        required=False,
        min_value=1,
        help_text=gettext_lazy("Empty = no limit."),
    )
    eligible_tiers = forms.MultipleChoiceField(
        label=gettext_lazy("Only for tiers"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=gettext_lazy("None ticked = every tier."),
    )
    eligible_segments = forms.MultipleChoiceField(
        label=gettext_lazy("Only for customer segments"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        choices=list(SEGMENT_LABELS.items()),
        help_text=gettext_lazy("None ticked = every segment."),
    )
    valid_from = forms.CharField(
        label=gettext_lazy("Available from"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
    )
    valid_until = forms.CharField(
        label=gettext_lazy("Available until"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        help_text=gettext_lazy("Programme time zone. Empty = no end."),
    )
    active = forms.BooleanField(label=gettext_lazy("Active"), required=False, initial=True)
    position = forms.IntegerField(
        label=gettext_lazy("Position in the catalogue"), required=False, min_value=0
    )

    KIND_FIELDS = {
        "credit_amount": RewardKind.BILLING_CREDIT,
        "partner": RewardKind.PARTNER,
        "charity_name": RewardKind.DONATION,
    }

    def __init__(self, *args: Any, programme: Programme, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.programme = programme
        tiers = Tier.objects.filter(programme=programme).order_by("rank")
        tier_field = self.fields["eligible_tiers"]
        assert isinstance(tier_field, forms.ChoiceField)
        tier_field.choices = [(tier.code, f"{tier.name_en} / {tier.name_it}") for tier in tiers]
        partners = Partner.objects.filter(programme=programme).order_by("name")
        partner_field = self.fields["partner"]
        assert isinstance(partner_field, forms.ChoiceField)
        partner_field.choices = [("", "—"), *[(p.code, p.name) for p in partners]]
        self.fields["kind"].widget.attrs["x-model"] = "kind"
        # Checkboxes keep Bootstrap's look without the mixin's single-control class.
        for name in ("eligible_tiers", "eligible_segments"):
            self.fields[name].widget.attrs["class"] = "form-check-input"

    def data_for_service(self) -> dict[str, Any]:
        data = dict(self.cleaned_data)
        kind = data["kind"]
        for name, owner in self.KIND_FIELDS.items():
            if kind != owner:
                data[name] = 0 if name == "credit_amount" else ""
        for name in ("cash_price", "credit_amount"):
            if data.get(name) is None:
                data[name] = 0
        if data.get("position") is None:
            data["position"] = 0
        return data


def _form_initial(reward: Reward) -> dict[str, Any]:
    zone = ZoneInfo(reward.programme.timezone)
    initial = {name: getattr(reward, name) for name in services.REWARD_FIELDS if name != "partner"}
    initial["partner"] = reward.partner.code if reward.partner_id and reward.partner else ""
    for name in ("valid_from", "valid_until"):
        moment = getattr(reward, name)
        initial[name] = moment.astimezone(zone).strftime("%Y-%m-%dT%H:%M") if moment else ""
    return initial


def _programme_choices() -> list[Programme]:
    return list(Programme.objects.order_by("code"))


# -- catalogue -------------------------------------------------------------------------------------


@login_required
@require_GET
def reward_list(request: HttpRequest) -> HttpResponse:
    actor = _viewer(request)
    programmes = _programme_choices()
    code = request.GET.get("programme", "")
    programme = next((p for p in programmes if p.code == code), None)
    kind = request.GET.get("kind", "")
    active_filter = request.GET.get("active", "")
    active = {"1": True, "0": False}.get(active_filter)
    rows = selectors.reward_list(
        programme=programme,
        kind=kind if kind in RewardKind.values else "",
        active=active,
        query=request.GET.get("q", "")[:100],
    )
    context = {
        "rows": rows,
        "programmes": programmes,
        "programme": programme,
        "kinds": RewardKind.choices,
        "kind": kind,
        "active": active_filter,
        "q": request.GET.get("q", "")[:100],
        "can_manage": actor.can(services.MANAGE),
    }
    template = "loyalty/rewards/_table.html" if wants_partial(request) else "loyalty/rewards/list.html"
    return render(request, template, context)


def _editor(
    request: HttpRequest, form: RewardForm, reward: Reward | None, can_manage: bool, status: int = 200
) -> HttpResponse:
    context: dict[str, Any] = {
        "form": form,
        "reward": reward,
        "programme": form.programme,
        "can_manage": can_manage,
        "kind": form["kind"].value() or RewardKind.PHYSICAL,
    }
    if reward is not None:
        context["figures"] = selectors.stock_figures(reward)
        context["recent"] = selectors.redemption_list({"reward": reward.public_id})[:10]
        context["generate_form"] = GenerateForm()
        context["import_form"] = ImportForm()
    return render(request, "loyalty/rewards/edit.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def reward_create(request: HttpRequest) -> HttpResponse:
    actor = _viewer(request)
    if not actor.can(services.MANAGE):
        raise PermissionDenied(_("You do not have permission to change the rewards catalogue."))
    programmes = _programme_choices()
    code = request.POST.get("programme") or request.GET.get("programme", "")
    programme = next((p for p in programmes if p.code == code), None)
    if programme is None:
        if len(programmes) == 1:
            programme = programmes[0]
        else:
            return render(request, "loyalty/rewards/choose_programme.html", {"programmes": programmes})
    form = RewardForm(request.POST or None, programme=programme, initial={"active": True, "kind": "physical"})
    if request.method == "POST" and form.is_valid():
        try:
            reward = services.reward_create(actor=actor, programme=programme, data=form.data_for_service())
        except ApplicationError as failure:
            if isinstance(failure, PermissionDenied):
                raise
            apply_service_errors(form, failure)
        else:
            messages.success(request, _("Reward %(code)s created.") % {"code": reward.code})
            return redirect("loyalty:rewards_detail", reward_id=reward.public_id)
    form.mark_errors()
    return _editor(request, form, None, True, status=422 if form.is_bound and form.errors else 200)


@login_required
@require_http_methods(["GET", "POST"])
def reward_detail(request: HttpRequest, reward_id: UUID) -> HttpResponse:
    actor = _viewer(request)
    reward = selectors.reward_get(reward_id)
    can_manage = actor.can(services.MANAGE)
    form = RewardForm(
        request.POST if request.method == "POST" else None,
        programme=reward.programme,
        initial=_form_initial(reward),
    )
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied(_("You do not have permission to change the rewards catalogue."))
        if form.is_valid():
            try:
                services.reward_update(actor=actor, reward=reward, changes=form.data_for_service())
            except ApplicationError as failure:
                if isinstance(failure, PermissionDenied):
                    raise
                apply_service_errors(form, failure)
            else:
                messages.success(request, _("Reward saved."))
                return redirect("loyalty:rewards_detail", reward_id=reward.public_id)
    if not can_manage:
        for field in form.fields.values():
            field.disabled = True
    form.mark_errors()
    return _editor(request, form, reward, can_manage, status=422 if form.is_bound and form.errors else 200)


class GenerateForm(BootstrapFormMixin, forms.Form):
    count = forms.IntegerField(
        label=gettext_lazy("How many codes"), min_value=1, max_value=100_000, initial=100
    )
    # Not "prefix": that name is the form's own attribute (field name prefixes).
    code_prefix = forms.CharField(label=gettext_lazy("Prefix"), required=False, max_length=20)
    length = forms.IntegerField(
        label=gettext_lazy("Random characters"), min_value=6, max_value=32, initial=10
    )


class ImportForm(BootstrapFormMixin, forms.Form):
    codes = forms.CharField(
        label=gettext_lazy("Codes (one per line, or CSV with the code in the first column)"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 6, "class": "font-monospace"}),
    )
    file = forms.FileField(label=gettext_lazy("…or a CSV file"), required=False)


def _pool_response(
    request: HttpRequest, reward: Reward, *, errors: dict[str, list[str]] | None = None, notice: str = ""
) -> HttpResponse:
    """htmx: the code pool card (422 with the errors listed by line). Plain form: back to the page."""
    status = 422 if errors else 200
    if wants_partial(request):
        context = {
            "reward": reward,
            "figures": selectors.stock_figures(reward),
            "errors": errors or {},
            "notice": notice,
            "generate_form": GenerateForm(),
            "import_form": ImportForm(),
            "can_manage": True,
        }
        return render(request, "loyalty/rewards/_pool.html", context, status=status)
    if errors:
        for field, field_messages in errors.items():
            for message in field_messages:
                messages.error(request, f"{field}: {message}" if field != "__all__" else message)
    elif notice:
        messages.success(request, notice)
    return redirect("loyalty:rewards_detail", reward_id=reward.public_id)


@login_required
@require_POST
def codes_generate(request: HttpRequest, reward_id: UUID) -> HttpResponse:
    actor = _viewer(request)
    reward = selectors.reward_get(reward_id)
    form = GenerateForm(request.POST)
    if not form.is_valid():
        return _pool_response(
            request, reward, errors={k: [str(m) for m in v] for k, v in form.errors.items()}
        )
    try:
        count = services.voucher_codes_generate(
            actor=actor,
            reward=reward,
            count=form.cleaned_data["count"],
            prefix=form.cleaned_data["code_prefix"],
            length=form.cleaned_data["length"],
        )
    except ApplicationError as failure:
        if isinstance(failure, PermissionDenied):
            raise
        return _pool_response(request, reward, errors=failure.fields or {"__all__": [failure.message]})
    return _pool_response(request, reward, notice=_("%(count)s codes generated.") % {"count": count})


MAX_UPLOAD_BYTES = 5_000_000


@login_required
@require_POST
def codes_import(request: HttpRequest, reward_id: UUID) -> HttpResponse:
    actor = _viewer(request)
    reward = selectors.reward_get(reward_id)
    form = ImportForm(request.POST, request.FILES)
    text = ""
    if form.is_valid():
        upload = form.cleaned_data.get("file")
        if upload is not None:
            if upload.size > MAX_UPLOAD_BYTES:
                return _pool_response(request, reward, errors={"file": [_("The file is larger than 5 MB.")]})
            try:
                text = upload.read().decode("utf-8-sig")
            except UnicodeDecodeError:
                return _pool_response(request, reward, errors={"file": [_("The file is not UTF-8 text.")]})
        else:
            text = form.cleaned_data.get("codes") or ""
    if not text.strip():
        return _pool_response(request, reward, errors={"codes": [_("Paste the codes or choose a file.")]})
    try:
        result = services.voucher_codes_import(actor=actor, reward=reward, csv_text=text)
    except ApplicationError as failure:
        if isinstance(failure, PermissionDenied):
            raise
        return _pool_response(request, reward, errors=failure.fields or {"__all__": [failure.message]})
    return _pool_response(request, reward, notice=_("%(count)s codes imported.") % {"count": result.imported})


# -- redemptions / fulfilment ----------------------------------------------------------------------


def _row_context(actor: Actor, redemption: Redemption, error: str = "") -> dict[str, Any]:
    return {
        "row": redemption,
        "badge": STATE_BADGES.get(Redemption.State(redemption.state), "text-bg-light"),
        "can_operate": actor.can(services.OPERATE),
        "error": error,
    }


@login_required
@require_GET
def redemption_list(request: HttpRequest) -> HttpResponse:
    """The fulfilment queue by default (awaiting shipment, oldest first); any state on request."""
    actor = _viewer(request)
    state = request.GET.get("state", Redemption.State.AWAITING_SHIPMENT)
    programme = request.GET.get("programme", "")
    filters = {
        "state": state if state in Redemption.State.values else "",
        "programme": programme,
        "kind": request.GET.get("kind", "") if request.GET.get("kind", "") in RewardKind.values else "",
    }
    rows = selectors.redemption_list(filters)
    if state == Redemption.State.AWAITING_SHIPMENT:
        rows = rows.order_by("created_at", "id")
    page = Paginator(rows, PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "page": page,
        "rows": [_row_context(actor, row) for row in page.object_list],
        "states": Redemption.State.choices,
        "state": filters["state"],
        "programmes": _programme_choices(),
        "programme": programme,
        "kinds": RewardKind.choices,
        "kind": filters["kind"],
        "waiting": selectors.fulfilment_queue().count(),
    }
    return render(request, "loyalty/rewards/redemptions.html", context)


def _act(request: HttpRequest, redemption_id: UUID, action: str) -> HttpResponse:
    actor = _viewer(request)
    redemption = selectors.redemption_get(redemption_id)
    error = ""
    try:
        if action == "ship":
            redemption = services.redemption_ship(
                actor=actor, redemption=redemption, tracking=request.POST.get("tracking", "")
            )
        elif action == "confirm":
            redemption = services.redemption_confirm(actor=actor, redemption=redemption)
        else:
            # htmx asks the reason with a prompt (HX-Prompt header); the plain form sends a default.
            reason = request.headers.get("HX-Prompt") or request.POST.get("reason", "")
            redemption = services.redemption_cancel(actor=actor, redemption=redemption, reason=reason)
    except ApplicationError as failure:
        if isinstance(failure, PermissionDenied):
            raise
        error = _(failure.message)
        details = [_(message) for field_messages in failure.fields.values() for message in field_messages]
        extra = [detail for detail in details if detail != error]
        if extra:
            error = f"{error} {' '.join(extra)}"
    redemption = selectors.redemption_get(redemption_id)
    if wants_partial(request):
        return render(
            request,
            "loyalty/rewards/_redemption_row.html",
            _row_context(actor, redemption, error),
            status=422 if error else 200,
        )
    if error:
        messages.error(request, error)
    else:
        messages.success(request, _("Redemption updated."))
    return redirect("loyalty:rewards_redemptions")


@login_required
@require_POST
def redemption_ship(request: HttpRequest, redemption_id: UUID) -> HttpResponse:
    return _act(request, redemption_id, "ship")


@login_required
@require_POST
def redemption_confirm(request: HttpRequest, redemption_id: UUID) -> HttpResponse:
    return _act(request, redemption_id, "confirm")


@login_required
@require_POST
def redemption_cancel(request: HttpRequest, redemption_id: UUID) -> HttpResponse:
    return _act(request, redemption_id, "cancel")


urlpatterns: list[URLPattern] = [
    path("rewards/", reward_list, name="rewards_list"),
    path("rewards/new/", reward_create, name="rewards_create"),
    path("rewards/<uuid:reward_id>/", reward_detail, name="rewards_detail"),
    path("rewards/<uuid:reward_id>/codes/generate/", codes_generate, name="rewards_codes_generate"),
    path("rewards/<uuid:reward_id>/codes/import/", codes_import, name="rewards_codes_import"),
    path("redemptions/", redemption_list, name="rewards_redemptions"),
    path("redemptions/<uuid:redemption_id>/ship/", redemption_ship, name="rewards_redemption_ship"),
    path("redemptions/<uuid:redemption_id>/confirm/", redemption_confirm, name="rewards_redemption_confirm"),
    path("redemptions/<uuid:redemption_id>/cancel/", redemption_cancel, name="rewards_redemption_cancel"),
]
