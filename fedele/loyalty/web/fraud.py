"""Loyalty pages: the fraud review queue (``loyalty.review_loyalty_fraud``) — open flags, one flag with
the member's recent transactions, clear or confirm (reversing the chosen transactions), and a manual
flag by card number (also for staff with ``loyalty.operate_loyalty``)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from fedele.accounts.facade import Actor, actor_for
from fedele.loyalty.models import FraudFlag, Programme
from fedele.loyalty.selectors import fraud as selectors
from fedele.loyalty.services import fraud as services
from fedele.shared.errors import ApplicationError

PAGE_SIZE = 100


def _reviewer(request: HttpRequest) -> Actor:
    actor = actor_for(request.user)
    selectors.authorise_review(actor)
    return actor


def _errors(error: ApplicationError) -> dict[str, list[str]]:
    return error.fields or {"__all__": [error.message]}


@login_required
@require_GET
def fraud_queue(request: HttpRequest) -> HttpResponse:
    actor = _reviewer(request)
    state = request.GET.get("state", "open")
    rule = request.GET.get("rule", "")
    programme = request.GET.get("programme", "")
    errors: dict[str, list[str]] = {}
    try:
        flags = list(
            selectors.flag_list(actor=actor, state=state, rule=rule, programme=programme)[:PAGE_SIZE]
        )
    except ApplicationError as error:
        errors = _errors(error)
        state, rule = "open", ""
        flags = list(selectors.flag_list(actor=actor, state=state, programme=programme)[:PAGE_SIZE])
    names = selectors.customer_names(flags)
    for flag in flags:
        flag.customer_name = names.get(flag.member.customer_id, "")  # type: ignore[attr-defined]
    context = {
        "flags": flags,
        "states": FraudFlag.State.choices,
        "rules": FraudFlag.Rule.choices,
        "programmes": Programme.objects.order_by("code"),
        "filters": {"state": state, "rule": rule, "programme": programme},
        "errors": errors,
        "page_size": PAGE_SIZE,
    }
    return render(request, "loyalty/fraud/queue.html", context, status=422 if errors else 200)


def _detail_context(
    actor: Actor, flag: FraudFlag, errors: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    member = flag.member
    member.refresh_from_db(fields=["flagged", "status", "available", "pending", "debt"])
    return {
        "flag": flag,
        "member": member,
        "customer_name": selectors.customer_names([flag]).get(member.customer_id, ""),
        "transactions": selectors.recent_transactions(actor=actor, member=member),
        "other_flags": selectors.flag_list(actor=actor, state="", programme="")
        .filter(member=member)
        .exclude(pk=flag.pk)[:20],
        "errors": errors or {},
        "can_suspend": actor.can(services.OPERATE),
    }


@login_required
@require_GET
def fraud_detail(request: HttpRequest, flag_id: UUID) -> HttpResponse:
    actor = _reviewer(request)
    flag = selectors.flag_get(actor=actor, public_id=flag_id)
    return render(request, "loyalty/fraud/detail.html", _detail_context(actor, flag))


@login_required
@require_POST
def fraud_clear(request: HttpRequest, flag_id: UUID) -> HttpResponse:
    actor = _reviewer(request)
    flag = selectors.flag_get(actor=actor, public_id=flag_id)
    try:
        services.fraud_clear(actor=actor, flag=flag, note=request.POST.get("note", ""))
    except ApplicationError as error:
        context = _detail_context(actor, flag, _errors(error))
        return render(request, "loyalty/fraud/detail.html", context, status=error.status_code)
    messages.success(request, _("Flag cleared: nothing was reversed."))
    return redirect("loyalty:fraud_detail", flag_id=flag.public_id)


@login_required
@require_POST
def fraud_confirm(request: HttpRequest, flag_id: UUID) -> HttpResponse:
    actor = _reviewer(request)
    flag = selectors.flag_get(actor=actor, public_id=flag_id)
    chosen = request.POST.getlist("reverse")
    try:
        services.fraud_confirm(
            actor=actor,
            flag=flag,
            note=request.POST.get("note", ""),
            reverse_transaction_ids=chosen,
            suspend=request.POST.get("suspend") == "1",
        )
    except ApplicationError as error:
        context = _detail_context(actor, flag, _errors(error))
        return render(request, "loyalty/fraud/detail.html", context, status=error.status_code)
    messages.success(
        request,
        _("Fraud confirmed: %(count)s transaction(s) reversed.") % {"count": len(chosen)},
    )
    return redirect("loyalty:fraud_detail", flag_id=flag.public_id)


@login_required
@require_POST
def fraud_flag_member(request: HttpRequest) -> HttpResponse:
    actor = actor_for(request.user)
    services.require_flagger(actor)
    try:
        member = selectors.member_for_flagging(
            actor=actor,
            member_public_id=request.POST.get("member_id") or None,
            card_number=request.POST.get("card_number", ""),
        )
        flag = services.fraud_flag_manual(actor=actor, member=member, note=request.POST.get("note", ""))
    except ApplicationError as error:
        messages.error(request, " ".join([error.message, *(m for ms in error.fields.values() for m in ms)]))
        return redirect("loyalty:fraud_queue" if selectors.can_review(actor) else "home")
    messages.success(request, _("Member %(card)s flagged for review.") % {"card": member.card_number})
    if selectors.can_review(actor):
        return redirect("loyalty:fraud_detail", flag_id=flag.public_id)
    return redirect("home")


urlpatterns: list[URLPattern] = [
    path("fraud/", fraud_queue, name="fraud_queue"),
    path("fraud/flag-member/", fraud_flag_member, name="fraud_flag_member"),
    path("fraud/<uuid:flag_id>/", fraud_detail, name="fraud_detail"),
    path("fraud/<uuid:flag_id>/clear/", fraud_clear, name="fraud_clear"),
    path("fraud/<uuid:flag_id>/confirm/", fraud_confirm, name="fraud_confirm"),
]
