"""Loyalty pages: members. The list (/loyalty/members/, search by card number, name or e-mail, tier,
status; htmx live search) and a member's page (balances, lots with expiry, history with "more",
reservations, household) with the operator's actions: adjust (reason required), reverse a
transaction, cancel a held reservation, suspend/reactivate. Reading needs loyalty.view_loyalty,
acting loyalty.operate_loyalty (checked again by the services)."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.translation import get_language, gettext_lazy
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from fedele.accounts.facade import Actor, actor_for
from fedele.loyalty.models import Member, MemberStatus, Programme, Tier
from fedele.loyalty.selectors import ledger as ledger_selectors
from fedele.loyalty.selectors import members as selectors
from fedele.loyalty.services import ledger, members
from fedele.loyalty.services.ledger_core import OPERATE
from fedele.shared.errors import ApplicationError, NotFound
from fedele.shared.web.forms import BootstrapFormMixin, apply_service_errors
from fedele.shared.web.views import render_page_or_partial, wants_partial

PAGE_SIZE = 25
HISTORY_PAGE = 20


def _reader(request: HttpRequest) -> Actor:
    actor = actor_for(request.user)
    if not selectors.is_staff_reader(actor):
        raise Http404
    return actor


def _member(actor: Actor, member_id: UUID) -> Member:
    try:
        return selectors.member_get(actor, member_id)
    except NotFound as missing:
        raise Http404 from missing


class AdjustForm(BootstrapFormMixin, forms.Form):
    points = forms.IntegerField(
        label=gettext_lazy("Points (negative to take away)"),
        min_value=-10_000_000,
        max_value=10_000_000,
    )
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=200)
    idempotency_key = forms.CharField(widget=forms.HiddenInput, max_length=100)


class ReasonForm(BootstrapFormMixin, forms.Form):
    reason = forms.CharField(label=gettext_lazy("Reason"), max_length=200)


@login_required
@require_GET
def member_list(request: HttpRequest) -> HttpResponse:
    actor = _reader(request)
    programmes = list(Programme.objects.exclude(status="draft").order_by("code"))
    code = request.GET.get("programme", "")
    programme = next((item for item in programmes if item.code == code), None)
    query = request.GET.get("q", "").strip()[:100]
    tier = request.GET.get("tier", "")
    status = request.GET.get("status", "")
    if status not in MemberStatus.values:
        status = ""
    error = ""
    try:
        page = selectors.member_list(
            actor, programme, query, tier, status, cursor=request.GET.get("cursor") or None, limit=PAGE_SIZE
        )
        rows, next_cursor = page.items, page.next_cursor
    except ApplicationError as failure:
        rows, next_cursor, error = [], None, failure.message
    tiers = Tier.objects.filter(programme=programme).order_by("rank") if programme else Tier.objects.none()
    context: dict[str, object] = {
        "rows": rows,
        "next_cursor": next_cursor,
        "programmes": programmes,
        "programme": programme,
        "tiers": tiers,
        "statuses": MemberStatus.choices,
        "filters": {"q": query, "tier": tier, "status": status, "programme": code},
        "error": error,
        "language": (get_language() or "it")[:2],
    }
    return render_page_or_partial(request, "loyalty/members/list.html", "loyalty/members/_rows.html", context)


def _detail_context(actor: Actor, member: Member, **extra: Any) -> dict[str, Any]:
    history = ledger_selectors.member_history(member, limit=HISTORY_PAGE)
    return {
        "member": member,
        "programme": member.programme,
        "language": (get_language() or "it")[:2],
        "lots": ledger_selectors.member_lots(member),
        "expiring": ledger_selectors.member_expiring(member, member.programme.expiry_notice_days or 30),
        "history": history,
        "next_before": history[-1].transaction.pk if len(history) == HISTORY_PAGE else None,
        "reservations": ledger_selectors.member_reservations(member),
        "household": selectors.household_members(member.household),
        "can_operate": actor.can(OPERATE),
        "adjust_form": extra.pop("adjust_form", None)
        or AdjustForm(initial={"idempotency_key": uuid.uuid4().hex}),
        "points_value": member.available * member.programme.point_value,
        **extra,
    }


@login_required
@require_GET
def member_detail(request: HttpRequest, member_id: UUID) -> HttpResponse:
    actor = _reader(request)
    member = _member(actor, member_id)
    return render(request, "loyalty/members/detail.html", _detail_context(actor, member))


@login_required
@require_GET
def member_history(request: HttpRequest, member_id: UUID) -> HttpResponse:
    actor = _reader(request)
    member = _member(actor, member_id)
    try:
        before = int(request.GET.get("before", ""))
    except ValueError:
        before = None
    rows = ledger_selectors.member_history(member, limit=HISTORY_PAGE, before=before)
    context = {
        "member": member,
        "history": rows,
        "next_before": rows[-1].transaction.pk if len(rows) == HISTORY_PAGE else None,
        "can_operate": actor.can(OPERATE),
    }
    return render(request, "loyalty/members/_history_rows.html", context)


def _after_action(request: HttpRequest, actor: Actor, member: Member) -> HttpResponse:
    if wants_partial(request):
        member = selectors.member_get(actor, member.public_id)
        return render(request, "loyalty/members/_panels.html", _detail_context(actor, member))
    return redirect("loyalty:members_detail", member_id=member.public_id)


@login_required
@require_POST
def member_adjust(request: HttpRequest, member_id: UUID) -> HttpResponse:
    actor = _reader(request)
    member = _member(actor, member_id)
    form = AdjustForm(request.POST)
    if form.is_valid():
        try:
            ledger.points_adjust(
                actor=actor,
                member=member,
                points=form.cleaned_data["points"],
                reason=form.cleaned_data["reason"],
                idempotency_key=form.cleaned_data["idempotency_key"],
            )
        except ApplicationError as failure:
            apply_service_errors(form, failure)
        else:
            messages.success(request, _("Points adjusted."))
            return _after_action(request, actor, member)
    form.mark_errors()
    context = _detail_context(actor, member, adjust_form=form)
    template = "loyalty/members/_panels.html" if wants_partial(request) else "loyalty/members/detail.html"
    return render(request, template, context, status=422)


@login_required
@require_POST
def member_reverse(request: HttpRequest, member_id: UUID, transaction_id: UUID) -> HttpResponse:
    actor = _reader(request)
    member = _member(actor, member_id)
    try:
        original = ledger_selectors.transaction_get(actor, transaction_id)
    except NotFound as missing:
        raise Http404 from missing
    if original.member_id != member.pk:
        raise Http404
    form = ReasonForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("A reason is required to reverse a transaction."))
        return _after_action(request, actor, member)
    try:
        ledger.transaction_reverse(actor=actor, transaction=original, reason=form.cleaned_data["reason"])
    except ApplicationError as failure:
        messages.error(request, failure.message)
    else:
        messages.success(request, _("Transaction reversed."))
    return _after_action(request, actor, member)


@login_required
@require_POST
def member_status(request: HttpRequest, member_id: UUID) -> HttpResponse:
    actor = _reader(request)
    member = _member(actor, member_id)
    form = ReasonForm(request.POST)
    status = request.POST.get("status", "")
    if not form.is_valid():
        messages.error(request, _("A reason is required to change the status."))
        return _after_action(request, actor, member)
    try:
        members.member_set_status(
            actor=actor, member=member, status=status, reason=form.cleaned_data["reason"]
        )
    except ApplicationError as failure:
        messages.error(request, failure.message)
    else:
        messages.success(request, _("Membership status changed."))
    return _after_action(request, actor, member)


@login_required
@require_POST
def reservation_cancel(request: HttpRequest, member_id: UUID, reservation_id: UUID) -> HttpResponse:
    actor = _reader(request)
    member = _member(actor, member_id)
    try:
        reservation = ledger_selectors.reservation_get(actor, reservation_id)
    except NotFound as missing:
        raise Http404 from missing
    if reservation.member_id != member.pk:
        raise Http404
    try:
        ledger.reservation_release(actor=actor, reservation=reservation, reason=_("Cancelled by an operator"))
    except ApplicationError as failure:
        messages.error(request, failure.message)
    else:
        messages.success(request, _("Reservation cancelled: the points are available again."))
    return _after_action(request, actor, member)


urlpatterns: list[URLPattern] = [
    path("members/", member_list, name="members_list"),
    path("members/<uuid:member_id>/", member_detail, name="members_detail"),
    path("members/<uuid:member_id>/history/", member_history, name="members_history"),
    path("members/<uuid:member_id>/adjust/", member_adjust, name="members_adjust"),
    path("members/<uuid:member_id>/status/", member_status, name="members_status"),
    path(
        "members/<uuid:member_id>/transactions/<uuid:transaction_id>/reverse/",
        member_reverse,
        name="members_reverse",
    ),
    path(
        "members/<uuid:member_id>/reservations/<uuid:reservation_id>/cancel/",
        reservation_cancel,
        name="members_reservation_cancel",
    ),
]


def customer_panel(request: HttpRequest, customer_public_id: str) -> Any:
    """The loyalty block of the customer 360 page: each membership with its card, tier and balances."""
    from fedele.shared.web.dashboard import DashboardWidget

    if not request.user.is_authenticated:
        return None
    actor = actor_for(request.user)
    if not selectors.is_staff_reader(actor):
        return None
    memberships = list(
        Member.objects.filter(customer__public_id=str(customer_public_id))
        .select_related("programme", "tier")
        .order_by("programme__code")
    )
    return DashboardWidget(
        "loyalty/members/_customer_panel.html",
        {"memberships": memberships, "language": (get_language() or "it")[:2]},
        order=30,
    )
