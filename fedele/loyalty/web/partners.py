"""Loyalty pages: coalition partners.

Back office under /loyalty/partners/ (``loyalty.view_loyalty`` to look, ``loyalty.manage_partners`` to
change): list, new, detail (prices, status, users, API credentials, statements with a chart of points
issued/accepted by month), statement detail and CSV.

Partner portal under /partner/ (namespace ``partner``, a partner's users only): this month's figures,
transactions, member look-up by card (masked), issued statements with CSV download.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fedele.accounts.facade import Actor, actor_for
from fedele.loyalty.models import Partner, PartnerSettlement
from fedele.loyalty.selectors import partners as selectors
from fedele.loyalty.services import partners as services
from fedele.loyalty.services import settlements as settlement_services
from fedele.shared.errors import ApplicationError, NotFound, PermissionDenied
from fedele.shared.pagination import paginate
from fedele.shared.web.views import render_page_or_partial

SCOPE_CHOICES = (
    (services.SCOPE_EARN, "earn"),
    (services.SCOPE_BURN, "burn"),
    (services.SCOPE_READ, "read"),
)
PARTNER_FIELDS = (
    "name",
    "category",
    "earn_price_per_point",
    "burn_price_per_point",
    "contact_email",
    "vat_number",
)


# ----------------------------------------------------------------------------------------------
# Helpers


def _reader(request: HttpRequest) -> Actor:
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can(selectors.VIEW)):
        raise PermissionDenied(_("You may not see the partners."), code="permission_denied")
    return actor


def _manager(request: HttpRequest) -> Actor:
    actor = _reader(request)
    if not actor.can(selectors.MANAGE_PARTNERS):
        raise PermissionDenied(_("You may not manage partners."), code="permission_denied")
    return actor


def _errors(error: ApplicationError) -> dict[str, list[str]]:
    return error.fields or {"__all__": [error.message]}


def _partner_data(request: HttpRequest, *, creating: bool) -> dict[str, Any]:
    data: dict[str, Any] = {name: request.POST.get(name, "").strip() for name in PARTNER_FIELDS}
    data["can_earn"] = request.POST.get("can_earn") == "on"
    data["can_burn"] = request.POST.get("can_burn") == "on"
    if creating:
        data["code"] = request.POST.get("code", "").strip()
        email = request.POST.get("user_email", "").strip()
        if email:
            data["user"] = {
                "email": email,
                "first_name": request.POST.get("user_first_name", "").strip(),
                "last_name": request.POST.get("user_last_name", "").strip(),
                "password": request.POST.get("user_password") or None,
                "language": request.POST.get("user_language", "it"),
            }
    return data


def _month_value(request: HttpRequest, programme: Any) -> str:
    year, month = selectors.current_month(programme)
    return request.GET.get("month") or f"{year:04d}-{month:02d}"


def _detail_context(actor: Actor, partner: Partner) -> dict[str, Any]:
    series = selectors.monthly_points(partner=partner, months=12)
    bars = selectors.chart_bars(series)
    year, month = selectors.current_month(partner.programme)
    previous = (year - 1, 12) if month == 1 else (year, month - 1)
    return {
        "partner": partner,
        "can_manage": actor.can(selectors.MANAGE_PARTNERS),
        "users": services.partner_users(partner),
        "credentials": services.partner_credentials(partner),
        "settlements": selectors.settlement_list(actor=actor, partner=partner)[:24],
        "bars": bars,
        "chart_width": max(len(bars), 1) * 30,
        "this_month": selectors.partner_statement(partner=partner, year=year, month=month),
        "scope_choices": SCOPE_CHOICES,
        "default_month": f"{previous[0]:04d}-{previous[1]:02d}",
        "errors": {},
        "values": _partner_values(partner),
    }


def _partner_values(partner: Partner) -> dict[str, Any]:
    return {
        "name": partner.name,
        "category": partner.category,
        "earn_price_per_point": str(partner.earn_price_per_point),
        "burn_price_per_point": str(partner.burn_price_per_point),
        "can_earn": partner.can_earn,
        "can_burn": partner.can_burn,
        "contact_email": partner.contact_email,
        "vat_number": partner.vat_number,
    }


def _partner(actor: Actor, public_id: Any) -> Partner:
    return selectors.partner_get(actor=actor, public_id=public_id)


def _settlement_csv(settlement: PartnerSettlement) -> HttpResponse:
    response = HttpResponse(selectors.settlement_csv(settlement), content_type="text/csv; charset=utf-8")
    filename = f"settlement-{settlement.partner.code}-{settlement.period_start:%Y-%m}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# ----------------------------------------------------------------------------------------------
# Back office


@login_required
@require_GET
def partners_list(request: HttpRequest) -> HttpResponse:
    actor = _reader(request)
    partners = list(selectors.partner_list(actor=actor)[:500])
    return render(
        request,
        "loyalty/partners/list.html",
        {"partners": partners, "can_manage": actor.can(selectors.MANAGE_PARTNERS)},
    )


@login_required
@require_http_methods(["GET", "POST"])
def partners_new(request: HttpRequest) -> HttpResponse:
    actor = _manager(request)
    programmes = list(selectors.coalition_programmes())
    errors: dict[str, list[str]] = {}
    values: dict[str, Any] = {
        "can_earn": True,
        "can_burn": True,
        "earn_price_per_point": "0.010000",
        "burn_price_per_point": "0.008000",
    }
    if request.method == "POST":
        values = {
            **request.POST.dict(),
            "can_earn": request.POST.get("can_earn") == "on",
            "can_burn": request.POST.get("can_burn") == "on",
        }
        values.pop("user_password", None)
        programme = next((p for p in programmes if str(p.public_id) == request.POST.get("programme")), None)
        if programme is None:
            errors = {"programme": [_("Choose a coalition programme.")]}
        else:
            try:
                partner = services.partner_create(
                    actor=actor, programme=programme, data=_partner_data(request, creating=True)
                )
            except ApplicationError as error:
                errors = _errors(error)
            else:
                messages.success(request, _("Partner %(name)s created.") % {"name": partner.name})
                return redirect("loyalty:partners_detail", partner.public_id)
    return render(
        request,
        "loyalty/partners/new.html",
        {"programmes": programmes, "errors": errors, "values": values},
        status=422 if errors else 200,
    )


@login_required
@require_GET
def partners_detail(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _reader(request)
    return render(request, "loyalty/partners/detail.html", _detail_context(actor, _partner(actor, public_id)))


def _detail_with_errors(
    request: HttpRequest, actor: Actor, partner: Partner, error: ApplicationError
) -> HttpResponse:
    context = _detail_context(actor, partner)
    context["errors"] = _errors(error)
    posted: dict[str, Any] = request.POST.dict()
    posted.pop("password", None)
    if "earn_price_per_point" in posted:
        posted["can_earn"] = request.POST.get("can_earn") == "on"
        posted["can_burn"] = request.POST.get("can_burn") == "on"
    context["values"] = {**context["values"], **posted}
    return render(request, "loyalty/partners/detail.html", context, status=error.status_code)


@login_required
@require_POST
def partners_edit(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _manager(request)
    partner = _partner(actor, public_id)
    try:
        services.partner_update(actor=actor, partner=partner, data=_partner_data(request, creating=False))
    except ApplicationError as error:
        return _detail_with_errors(request, actor, partner, error)
    messages.success(request, _("Partner saved."))
    return redirect("loyalty:partners_detail", partner.public_id)


@login_required
@require_POST
def partners_status(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _manager(request)
    partner = _partner(actor, public_id)
    try:
        services.partner_set_status(
            actor=actor,
            partner=partner,
            status=request.POST.get("status", ""),
            reason=request.POST.get("reason", ""),
        )
    except ApplicationError as error:
        return _detail_with_errors(request, actor, partner, error)
    if partner.status == Partner.Status.SUSPENDED:
        messages.success(request, _("Partner suspended."))
    else:
        messages.success(request, _("Partner reactivated."))
    return redirect("loyalty:partners_detail", partner.public_id)


@login_required
@require_POST
def partners_user_add(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _manager(request)
    partner = _partner(actor, public_id)
    try:
        services.partner_user_add(
            actor=actor,
            partner=partner,
            email=request.POST.get("email", ""),
            first_name=request.POST.get("first_name", ""),
            last_name=request.POST.get("last_name", ""),
            password=request.POST.get("password") or None,
            language=request.POST.get("language", "it"),
        )
    except ApplicationError as error:
        return _detail_with_errors(request, actor, partner, error)
    messages.success(request, _("User added."))
    return redirect("loyalty:partners_detail", partner.public_id)


@login_required
@require_POST
def partners_credentials_issue(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _manager(request)
    partner = _partner(actor, public_id)
    user_id_text = request.POST.get("user_id", "")
    try:
        plain, _token_id = services.partner_credentials_issue(
            actor=actor,
            partner=partner,
            scopes=request.POST.getlist("scopes"),
            user_id=int(user_id_text) if user_id_text.isdigit() else None,
            name=request.POST.get("name", ""),
        )
    except ApplicationError as error:
        return _detail_with_errors(request, actor, partner, error)
    # The token is shown on this response only: it is never stored in clear.
    context = _detail_context(actor, partner)
    context["new_token"] = plain
    return render(request, "loyalty/partners/detail.html", context)


@login_required
@require_POST
def partners_credentials_revoke(request: HttpRequest, public_id: str, token_id: str) -> HttpResponse:
    actor = _manager(request)
    partner = _partner(actor, public_id)
    services.partner_credentials_revoke(actor=actor, partner=partner, token_id=token_id)
    messages.success(request, _("Token revoked."))
    return redirect("loyalty:partners_detail", partner.public_id)


@login_required
@require_POST
def partners_settlement_generate(request: HttpRequest, public_id: str) -> HttpResponse:
    actor = _manager(request)
    partner = _partner(actor, public_id)
    try:
        year, month = selectors.parse_month(request.POST.get("month", ""))
        settlement = settlement_services.settlement_generate(
            actor=actor, partner=partner, year=year, month=month
        )
    except ApplicationError as error:
        return _detail_with_errors(request, actor, partner, error)
    messages.success(request, _("Statement generated."))
    return redirect("loyalty:partners_settlement", partner.public_id, settlement.public_id)


def _staff_settlement(actor: Actor, public_id: str, settlement_id: str) -> PartnerSettlement:
    partner = _partner(actor, public_id)
    return selectors.settlement_get(actor=actor, public_id=settlement_id, partner=partner)


@login_required
@require_GET
def partners_settlement(request: HttpRequest, public_id: str, settlement_id: str) -> HttpResponse:
    actor = _reader(request)
    settlement = _staff_settlement(actor, public_id, settlement_id)
    return render(
        request,
        "loyalty/partners/settlement.html",
        {
            "settlement": settlement,
            "partner": settlement.partner,
            "can_manage": actor.can(selectors.MANAGE_PARTNERS),
            "portal": False,
        },
    )


@login_required
@require_POST
def partners_settlement_issue(request: HttpRequest, public_id: str, settlement_id: str) -> HttpResponse:
    actor = _manager(request)
    settlement = _staff_settlement(actor, public_id, settlement_id)
    try:
        settlement_services.settlement_issue(actor=actor, settlement=settlement)
    except ApplicationError as error:
        messages.error(request, str(error.message))
    else:
        messages.success(request, _("Statement issued."))
    return redirect("loyalty:partners_settlement", public_id, settlement_id)


@login_required
@require_POST
def partners_settlement_paid(request: HttpRequest, public_id: str, settlement_id: str) -> HttpResponse:
    actor = _manager(request)
    settlement = _staff_settlement(actor, public_id, settlement_id)
    try:
        settlement_services.settlement_mark_paid(actor=actor, settlement=settlement)
    except ApplicationError as error:
        messages.error(request, str(error.message))
    else:
        messages.success(request, _("Statement marked as paid."))
    return redirect("loyalty:partners_settlement", public_id, settlement_id)


@login_required
@require_GET
def partners_settlement_csv(request: HttpRequest, public_id: str, settlement_id: str) -> HttpResponse:
    actor = _reader(request)
    return _settlement_csv(_staff_settlement(actor, public_id, settlement_id))


# ----------------------------------------------------------------------------------------------
# Partner portal


def _portal_partner(request: HttpRequest) -> tuple[Actor, Partner]:
    actor = actor_for(request.user)
    if not actor.is_partner:
        raise PermissionDenied(_("The partner portal is for partners' users."), code="not_a_partner")
    return actor, selectors.partner_of_actor(actor)


@login_required
@require_GET
def partners_portal_dashboard(request: HttpRequest) -> HttpResponse:
    _actor, partner = _portal_partner(request)
    year, month = selectors.current_month(partner.programme)
    bars = selectors.chart_bars(selectors.monthly_points(partner=partner, months=6))
    return render(
        request,
        "loyalty/partners/portal/dashboard.html",
        {
            "partner": partner,
            "this_month": selectors.partner_statement(partner=partner, year=year, month=month),
            "bars": bars,
            "chart_width": max(len(bars), 1) * 30,
            "portal_section": "dashboard",
        },
    )


@login_required
@require_GET
def partners_portal_transactions(request: HttpRequest) -> HttpResponse:
    _actor, partner = _portal_partner(request)
    month = _month_value(request, partner.programme)
    year, month_number = selectors.parse_month(month)
    start, end = selectors.month_bounds(partner.programme, year, month_number)
    page = paginate(
        selectors.partner_transactions(partner=partner, start=start, end=end),
        ordering="-id",
        allowed={"id": "id"},
        cursor=request.GET.get("cursor") or None,
        limit=50,
    )
    rows = []
    for transaction in page.items:
        points, amount = selectors.signed_effect(transaction)
        rows.append(
            {
                "transaction": transaction,
                "kind": selectors.line_kind(transaction),
                "points": points,
                "amount": amount,
            }
        )
    context = {
        "partner": partner,
        "rows": rows,
        "month": month,
        "next_cursor": page.next_cursor,
        "portal_section": "transactions",
    }
    return render_page_or_partial(
        request,
        "loyalty/partners/portal/transactions.html",
        "loyalty/partners/portal/_transaction_rows.html",
        context,
    )


@login_required
@require_GET
def partners_portal_member(request: HttpRequest) -> HttpResponse:
    actor, partner = _portal_partner(request)
    card = request.GET.get("card", "").strip()
    member = None
    error = ""
    if card:
        try:
            member = selectors.masked_member(
                selectors.member_for_card(partner=partner, card_number=card), language=actor.language
            )
        except NotFound as not_found:
            error = not_found.message
    return render_page_or_partial(
        request,
        "loyalty/partners/portal/member.html",
        "loyalty/partners/portal/_member_result.html",
        {"partner": partner, "card": card, "member": member, "error": error, "portal_section": "member"},
    )


def _portal_settlements(partner: Partner) -> Any:
    return (
        PartnerSettlement.objects.filter(partner=partner)
        .exclude(state=PartnerSettlement.State.DRAFT)
        .select_related("partner")
        .order_by("-period_start")
    )


def _portal_settlement(partner: Partner, settlement_id: str) -> PartnerSettlement:
    found = _portal_settlements(partner).filter(public_id=settlement_id).first()
    if found is None:
        raise NotFound(_("Settlement not found."))
    return found


@login_required
@require_GET
def partners_portal_settlements(request: HttpRequest) -> HttpResponse:
    _actor, partner = _portal_partner(request)
    return render(
        request,
        "loyalty/partners/portal/settlements.html",
        {
            "partner": partner,
            "settlements": _portal_settlements(partner)[:60],
            "portal_section": "settlements",
        },
    )


@login_required
@require_GET
def partners_portal_settlement(request: HttpRequest, settlement_id: str) -> HttpResponse:
    _actor, partner = _portal_partner(request)
    settlement = _portal_settlement(partner, settlement_id)
    return render(
        request,
        "loyalty/partners/settlement.html",
        {"partner": partner, "settlement": settlement, "portal": True, "portal_section": "settlements"},
    )


@login_required
@require_GET
def partners_portal_settlement_csv(request: HttpRequest, settlement_id: str) -> HttpResponse:
    _actor, partner = _portal_partner(request)
    return _settlement_csv(_portal_settlement(partner, settlement_id))


urlpatterns: list[URLPattern] = [
    path("partners/", partners_list, name="partners_list"),
    path("partners/new/", partners_new, name="partners_new"),
    path("partners/<uuid:public_id>/", partners_detail, name="partners_detail"),
    path("partners/<uuid:public_id>/edit/", partners_edit, name="partners_edit"),
    path("partners/<uuid:public_id>/status/", partners_status, name="partners_status"),
    path("partners/<uuid:public_id>/users/", partners_user_add, name="partners_user_add"),
    path(
        "partners/<uuid:public_id>/credentials/",
        partners_credentials_issue,
        name="partners_credentials_issue",
    ),
    path(
        "partners/<uuid:public_id>/credentials/<uuid:token_id>/revoke/",
        partners_credentials_revoke,
        name="partners_credentials_revoke",
    ),
    path(
        "partners/<uuid:public_id>/settlements/",
        partners_settlement_generate,
        name="partners_settlement_generate",
    ),
    path(
        "partners/<uuid:public_id>/settlements/<uuid:settlement_id>/",
        partners_settlement,
        name="partners_settlement",
    ),
    path(
        "partners/<uuid:public_id>/settlements/<uuid:settlement_id>/issue/",
        partners_settlement_issue,
        name="partners_settlement_issue",
    ),
    path(
        "partners/<uuid:public_id>/settlements/<uuid:settlement_id>/paid/",
        partners_settlement_paid,
        name="partners_settlement_paid",
    ),
    path(
        "partners/<uuid:public_id>/settlements/<uuid:settlement_id>.csv",
        partners_settlement_csv,
        name="partners_settlement_csv",
    ),
]

partner_urlpatterns: list[URLPattern] = [
    path("", partners_portal_dashboard, name="partners_dashboard"),
    path("transactions/", partners_portal_transactions, name="partners_transactions"),
    path("members/", partners_portal_member, name="partners_member"),
    path("settlements/", partners_portal_settlements, name="partners_settlements"),
    path("settlements/<uuid:settlement_id>/", partners_portal_settlement, name="partners_settlement"),
    path(
        "settlements/<uuid:settlement_id>.csv", partners_portal_settlement_csv, name="partners_settlement_csv"
    ),
]
