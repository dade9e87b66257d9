"""The member self-service portal under /club/ (namespace "club"): home (balance, pending, expiring,
tier progress, last movements), history, rewards catalogue and redemption with a confirmation step,
the member's redemptions and voucher codes, the digital card with its QR code, the referral link,
preferences and consent, and enrolment (also reached from a member's referral link, /club/join/?ref=).

Every page is for a signed-in portal customer (anonymous → the login page, back here afterwards) and
reads only the signed-in customer's own membership: no URL carries a member id. When the customer
belongs to several programmes, ``?programme=<code>`` chooses one and the choice stays in the session.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import URLPattern, path, reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from fedele.accounts.contracts import Actor
from fedele.accounts.facade import actor_for
from fedele.customers.contracts import CustomerSummary
from fedele.customers.facade import customer_summaries
from fedele.loyalty.models import Member, Programme, Redemption, RewardKind
from fedele.loyalty.selectors import club as selectors
from fedele.loyalty.selectors.members import household_view, programme_pools
from fedele.loyalty.selectors.rewards import eligibility_reasons, reason_message, rewards_for_member
from fedele.loyalty.selectors.tiers import tier_progress
from fedele.loyalty.services import club as services
from fedele.loyalty.web.club_forms import (
    EnrolForm,
    HouseholdCreateForm,
    HouseholdTransferForm,
    PreferencesForm,
    RedeemForm,
    service_fields_to_form,
)
from fedele.shared.errors import ApplicationError, PermissionDenied, ValidationFailed
from fedele.shared.web.forms import apply_service_errors
from fedele.shared.web.views import render_page_or_partial

SESSION_PROGRAMME = "club_programme"
SESSION_REFERRAL = "club_referral_code"
HISTORY_PAGE_SIZE = 20
HISTORY_FILTERS = ("", "earn", "redeem", "expire")
RECENT_MOVEMENTS = 5
REWARD_ICONS: dict[str, str] = {
    RewardKind.VOUCHER: "bi-ticket-perforated",
    RewardKind.BILLING_CREDIT: "bi-receipt",
    RewardKind.PHYSICAL: "bi-box-seam",
    RewardKind.PARTNER: "bi-shop",
    RewardKind.DONATION: "bi-heart",
}


def language() -> str:
    return (get_language() or "it")[:2]


@dataclass(slots=True)
class Club:
    """Who is looking at the portal and which of their memberships the page shows."""

    actor: Actor
    customer: CustomerSummary
    members: list[Member]
    member: Member | None
    language: str
    switch: list[dict[str, Any]] = field(default_factory=list)

    @property
    def programme(self) -> Programme | None:
        return self.member.programme if self.member is not None else None

    @property
    def programme_name(self) -> str:
        return self.member.programme.name(self.language) if self.member is not None else ""

    @property
    def currency(self) -> str:
        return self.member.programme.currency_name(self.language) if self.member is not None else ""


def _remember_referral(request: HttpRequest) -> None:
    code = str(request.GET.get("ref") or "").strip().upper()[: services.REFERRAL_CODE_MAX_LENGTH]
    if code and code.isalnum():
        request.session[SESSION_REFERRAL] = code


def _club(request: HttpRequest) -> Club | None:
    actor = actor_for(request.user)
    if not actor.is_portal_customer:
        raise PermissionDenied(_("These pages are for customers with a portal login."))
    customer = selectors.portal_customer(actor)
    if customer is None:
        return None
    members = selectors.memberships(str(customer.public_id))
    wanted = str(request.GET.get("programme") or "")
    if wanted and any(member.programme.code == wanted for member in members):
        request.session[SESSION_PROGRAMME] = wanted
    member = selectors.choose_membership(members, wanted or request.session.get(SESSION_PROGRAMME))
    lang = language()
    return Club(
        actor=actor,
        customer=customer,
        members=members,
        member=member,
        language=lang,
        switch=[
            {"code": other.programme.code, "name": other.programme.name(lang), "current": other is member}
            for other in members
        ],
    )


ClubView = Callable[..., HttpResponse]


def club_page(*, member_required: bool = True) -> Callable[[ClubView], ClubView]:
    """Signed-in portal customers only; the view gets the ``Club`` as its second argument. A login
    not linked to a customer gets an explanation; without a membership → the enrolment page."""

    def decorate(view: ClubView) -> ClubView:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                _remember_referral(request)
                return redirect_to_login(request.get_full_path())
            club = _club(request)
            if club is None:
                return render(request, "loyalty/club/not_linked.html", {"club": None}, status=403)
            if member_required and club.member is None:
                query = request.META.get("QUERY_STRING", "")
                return redirect(f"{reverse('club:club_enrol')}{'?' + query if query else ''}")
            return view(request, club, *args, **kwargs)

        return wrapper

    return decorate


def _member(club: Club) -> Member:
    """The membership a member-only page shows (``club_page`` sent everyone else to enrolment)."""
    if club.member is None:  # pragma: no cover - club_page(member_required=True) guarantees it
        raise Http404
    return club.member


def _page(club: Club, tab: str, **context: Any) -> dict[str, Any]:
    return {
        "club": club,
        "member": club.member,
        "programme": club.programme,
        "currency": club.currency,
        "language": club.language,
        "tab": tab,
        **context,
    }


# home ------------------------------------------------------------------------------------------------


@require_GET
@club_page()
def club_home(request: HttpRequest, club: Club) -> HttpResponse:
    member = _member(club)
    context = _page(
        club,
        "home",
        value_eur=selectors.points_value(member.programme, member.available),
        expiring=selectors.expiring_soon(member),
        progress=tier_progress(member),
        recent=selectors.history_page(member, limit=RECENT_MOVEMENTS, language=club.language).rows,
        tier_name=member.tier.name(club.language) if member.tier is not None else "",
        card_number=selectors.card_number_display(member.card_number),
    )
    next_tier = context["progress"].next_tier
    context["next_tier_name"] = next_tier.name(club.language) if next_tier is not None else ""
    return render(request, "loyalty/club/home.html", context)


# enrolment -------------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@club_page(member_required=False)
def club_enrol(request: HttpRequest, club: Club) -> HttpResponse:
    _remember_referral(request)
    open_programmes = selectors.enrolment_programmes(str(club.customer.public_id))
    if not open_programmes:
        if club.member is not None:
            return redirect("club:club_home")
        return render(request, "loyalty/club/enrol.html", _page(club, "", form=None))
    choices = [(programme.code, programme.name(club.language)) for programme in open_programmes]
    wanted = str(request.GET.get("programme") or "")
    initial = {
        "programme": wanted if any(code == wanted for code, _name in choices) else choices[0][0],
        "referral_code": request.session.get(SESSION_REFERRAL, ""),
    }
    form = EnrolForm(request.POST or None, programmes=choices, initial=initial)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                member = services.club_enrol(
                    actor=club.actor,
                    programme_code=data["programme"],
                    accept_terms=bool(data["accept_terms"]),
                    birthday=data.get("birthday"),
                    referral_code=data.get("referral_code") or "",
                    language=club.language,
                )
            except ApplicationError as error:
                apply_service_errors(form, error)
            else:
                request.session.pop(SESSION_REFERRAL, None)
                request.session[SESSION_PROGRAMME] = member.programme.code
                messages.success(
                    request,
                    _("Welcome to %(programme)s! Your card number is %(card)s.")
                    % {"programme": member.programme.name(club.language), "card": member.card_number},
                )
                return redirect("club:club_home")
        status = 422
    form.mark_errors()
    return render(
        request,
        "loyalty/club/enrol.html",
        _page(
            club,
            "",
            form=form,
            programmes=open_programmes,
            is_additional=club.member is not None,
        ),
        status=status,
    )


# history ---------------------------------------------------------------------------------------------


@require_GET
@club_page()
def club_history(request: HttpRequest, club: Club) -> HttpResponse:
    member = _member(club)
    kind = str(request.GET.get("kind") or "")
    if kind not in HISTORY_FILTERS:
        kind = ""
    page = selectors.history_page(
        member,
        kind=kind,
        before=str(request.GET.get("before") or ""),
        limit=HISTORY_PAGE_SIZE,
        language=club.language,
    )
    context = _page(
        club,
        "history",
        page=page,
        kind=kind,
        filters=[
            ("", _("All")),
            ("earn", _("Earned")),
            ("redeem", _("Redeemed")),
            ("expire", _("Expired")),
        ],
    )
    return render_page_or_partial(
        request, "loyalty/club/history.html", "loyalty/club/_history_page.html", context
    )


# rewards ---------------------------------------------------------------------------------------------


@require_GET
@club_page()
def club_rewards(request: HttpRequest, club: Club) -> HttpResponse:
    member = _member(club)
    offers = [
        {
            "offer": offer,
            "reward": offer.reward,
            "name": offer.reward.name_en if club.language == "en" else offer.reward.name_it,
            "description": offer.reward.description_en
            if club.language == "en"
            else offer.reward.description_it,
            "icon": REWARD_ICONS.get(offer.reward.kind, "bi-gift"),
            "missing": max(int(offer.reward.points_cost) - int(member.available), 0),
            "reasons": list(zip(offer.reasons, offer.messages, strict=True)),
        }
        for offer in rewards_for_member(member)
    ]
    return render(
        request,
        "loyalty/club/rewards.html",
        _page(club, "rewards", offers=offers),
    )


def _reward_name(reward: Any, lang: str) -> str:
    return str(reward.name_en if lang == "en" else reward.name_it)


@require_http_methods(["GET", "POST"])
@club_page()
def club_redeem(request: HttpRequest, club: Club, reward_id: UUID) -> HttpResponse:
    member = _member(club)
    reward = selectors.reward_in_catalogue(member, str(reward_id))
    if reward is None:
        raise Http404
    form = RedeemForm(
        request.POST or None,
        initial={"idempotency_key": str(uuid.uuid4()), "shipping_country": "IT"},
    )
    error_text = ""
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                redemption = services.club_redeem(
                    actor=club.actor,
                    member=member,
                    reward=reward,
                    form_key=form.cleaned_data["idempotency_key"],
                    shipping_address=form.address(),
                )
            except ApplicationError as error:
                error_text = _(error.message)
                error.fields = service_fields_to_form(error.fields)
                # The eligibility reasons sit under "reward": shown once, in the alert above the form.
                error.fields.pop("reward", None)
                if error.fields:
                    apply_service_errors(form, error)
            else:
                messages.success(
                    request,
                    _("Done! You redeemed %(reward)s.") % {"reward": _reward_name(reward, club.language)},
                )
                return redirect(f"{reverse('club:club_redemptions')}?new={redemption.public_id}")
        status = 422
        member.refresh_from_db()
    form.mark_errors()
    reasons = eligibility_reasons(member=member, reward=reward)
    return render(
        request,
        "loyalty/club/redeem.html",
        _page(
            club,
            "rewards",
            form=form,
            reward=reward,
            reward_name=_reward_name(reward, club.language),
            reward_description=reward.description_en if club.language == "en" else reward.description_it,
            icon=REWARD_ICONS.get(reward.kind, "bi-gift"),
            needs_address=reward.kind == RewardKind.PHYSICAL,
            reasons=[reason_message(code) for code in reasons],
            balance_after=int(member.available) - int(reward.points_cost),
            error_text=error_text,
        ),
        status=status,
    )


@require_GET
@club_page()
def club_redemptions(request: HttpRequest, club: Club) -> HttpResponse:
    member = _member(club)
    new_id = str(request.GET.get("new") or "")
    rows = [
        {
            "redemption": redemption,
            "name": _reward_name(redemption.reward, club.language),
            "icon": REWARD_ICONS.get(redemption.reward.kind, "bi-gift"),
            "is_new": str(redemption.public_id) == new_id,
            "badge": _state_badge(redemption.state),
        }
        for redemption in selectors.my_redemptions(member)
    ]
    return render(
        request,
        "loyalty/club/redemptions.html",
        _page(club, "rewards", rows=rows),
    )


def _state_badge(state: str) -> str:
    badges: dict[str, str] = {
        Redemption.State.FULFILLED: "text-bg-success",
        Redemption.State.SHIPPED: "text-bg-success",
        Redemption.State.AWAITING_SHIPMENT: "text-bg-warning",
        Redemption.State.RESERVED: "text-bg-secondary",
        Redemption.State.CANCELLED: "text-bg-light",
    }
    return badges.get(state, "text-bg-secondary")


# card and referral -----------------------------------------------------------------------------------


@require_GET
@club_page()
def club_card(request: HttpRequest, club: Club) -> HttpResponse:
    member = _member(club)
    return render(
        request,
        "loyalty/club/card.html",
        _page(
            club,
            "card",
            qr_svg=selectors.card_qr_svg(member.card_number),
            card_number=selectors.card_number_display(member.card_number),
            tier_name=member.tier.name(club.language) if member.tier is not None else "",
        ),
    )


@require_GET
@club_page()
def club_referral(request: HttpRequest, club: Club) -> HttpResponse:
    member = _member(club)
    return render(
        request,
        "loyalty/club/referral.html",
        _page(
            club,
            "account",
            link=selectors.referral_link(member),
            referrals=selectors.referral_count(member),
        ),
    )


# preferences -----------------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@club_page()
def club_preferences(request: HttpRequest, club: Club) -> HttpResponse:
    member = _member(club)
    consents = selectors.marketing_consents(str(club.customer.public_id))
    initial = {
        "language": member.language,
        "birthday": member.birthday,
        "email_marketing": consents["email"],
        "sms_marketing": consents["sms"],
    }
    form = PreferencesForm(request.POST or None, initial=initial, birthday_locked=member.birthday is not None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                result = services.club_preferences_update(
                    actor=club.actor,
                    member=member,
                    language=data["language"],
                    birthday=data.get("birthday"),
                    email_marketing=bool(data.get("email_marketing")),
                    sms_marketing=bool(data.get("sms_marketing")),
                )
            except ApplicationError as error:
                apply_service_errors(form, error)
            else:
                messages.success(
                    request,
                    _("Your preferences are saved.") if result.changed else _("Nothing to change."),
                )
                return redirect("club:club_preferences")
        status = 422
    form.mark_errors()
    return render(
        request,
        "loyalty/club/preferences.html",
        _page(
            club,
            "account",
            form=form,
            referrals=selectors.referral_count(member),
            can_join_more=bool(selectors.enrolment_programmes(str(club.customer.public_id))),
        ),
        status=status,
    )


# household (family pooling) ------------------------------------------------------------------------


def _household_context(club: Club, member: Member, **extra: Any) -> dict[str, Any]:
    view = household_view(member)
    max_points = 0
    if view is not None:
        max_points = max(min(view.transfer_max_points, view.monthly_left, int(member.available)), 0)
    return _page(
        club,
        "account",
        pools=programme_pools(member.programme),
        view=view,
        max_transfer=max_points,
        invitation_days=services.INVITATION_MAX_AGE.days,
        **extra,
    )


def _transfer_form(view: Any, data: Any = None, max_points: int = 0) -> HouseholdTransferForm:
    recipients = [(str(mate.public_id), mate.first_name) for mate in view.recipients] if view else []
    return HouseholdTransferForm(
        data, recipients=recipients, max_points=max_points, initial={"idempotency_key": str(uuid.uuid4())}
    )


def _invitation_link(request: HttpRequest, club: Club, member: Member, view: Any) -> str:
    if view is None or view.is_full:
        return ""
    token = services.household_invitation(actor=club.actor, member=member)
    return request.build_absolute_uri(reverse("club:club_household_join", args=[token]))


@require_GET
@club_page()
def club_household(request: HttpRequest, club: Club) -> HttpResponse:
    member = _member(club)
    context = _household_context(club, member)
    view = context["view"]
    context.update(
        create_form=HouseholdCreateForm() if view is None else None,
        transfer_form=_transfer_form(view, max_points=context["max_transfer"]) if view else None,
        invitation_link=_invitation_link(request, club, member, view),
    )
    return render(request, "loyalty/club/household.html", context)


def _household_error(
    request: HttpRequest, club: Club, member: Member, error: ApplicationError, **forms_in_error: Any
) -> HttpResponse:
    member.refresh_from_db()
    context = _household_context(club, member)
    view = context["view"]
    context.update(
        create_form=forms_in_error.get("create_form") or (HouseholdCreateForm() if view is None else None),
        transfer_form=forms_in_error.get("transfer_form")
        or (_transfer_form(view, max_points=context["max_transfer"]) if view else None),
        invitation_link=_invitation_link(request, club, member, view),
        error_text=_(error.message),
    )
    return render(request, "loyalty/club/household.html", context, status=error.status_code)


@require_POST
@club_page()
def club_household_create(request: HttpRequest, club: Club) -> HttpResponse:
    member = _member(club)
    form = HouseholdCreateForm(request.POST)
    if not form.is_valid():
        form.mark_errors()
        error = ValidationFailed(_("Some fields are not valid."), code="validation_error")
        return _household_error(request, club, member, error, create_form=form)
    try:
        household = services.club_household_create(
            actor=club.actor, member=member, name=form.cleaned_data["name"]
        )
    except ApplicationError as error:
        apply_service_errors(form, error)
        form.mark_errors()
        return _household_error(request, club, member, error, create_form=form)
    messages.success(request, _("Household %(name)s created: invite your family.") % {"name": household.name})
    return redirect("club:club_household")


@require_POST
@club_page()
def club_household_transfer(request: HttpRequest, club: Club) -> HttpResponse:
    member = _member(club)
    view = household_view(member)
    form = _transfer_form(view, request.POST)
    if not form.is_valid():
        form.mark_errors()
        error = ValidationFailed(_("Some fields are not valid."), code="validation_error")
        return _household_error(request, club, member, error, transfer_form=form)
    data = form.cleaned_data
    try:
        services.club_household_transfer(
            actor=club.actor,
            member=member,
            to_member_id=data["to_member"],
            points=int(data["points"]),
            form_key=data["idempotency_key"],
        )
    except ApplicationError as error:
        apply_service_errors(form, error)
        form.mark_errors()
        return _household_error(request, club, member, error, transfer_form=form)
    names = dict(form.fields["to_member"].choices)  # type: ignore[attr-defined]
    messages.success(
        request,
        _("%(points)s %(currency)s sent to %(name)s.")
        % {"points": data["points"], "currency": club.currency, "name": names.get(data["to_member"], "")},
    )
    return redirect("club:club_household")


@require_POST
@club_page()
def club_household_leave(request: HttpRequest, club: Club) -> HttpResponse:
    member = _member(club)
    try:
        services.club_household_leave(actor=club.actor, member=member)
    except ApplicationError as error:
        return _household_error(request, club, member, error)
    messages.success(request, _("You left the household. Your points stay yours."))
    return redirect("club:club_household")


@require_http_methods(["GET", "POST"])
@club_page()
def club_household_join(request: HttpRequest, club: Club, token: str) -> HttpResponse:
    member = _member(club)
    error_text = ""
    status = 200
    invitation = None
    try:
        invitation = services.invitation_read(token)
        # A customer in several programmes answers with their membership of the household's programme.
        for candidate in club.members:
            if candidate.programme_id == invitation.household.programme_id and candidate is not member:
                member = candidate
                request.session[SESSION_PROGRAMME] = candidate.programme.code
                club.member = candidate
                break
        invitation = services.invitation_read(token, for_member=member)
        if request.method == "POST":
            services.club_household_join(actor=club.actor, member=member, token=token)
            messages.success(
                request, _("Welcome to the household %(name)s.") % {"name": invitation.household.name}
            )
            return redirect("club:club_household")
    except ApplicationError as error:
        error_text = _(error.message)
        status = error.status_code
    inviter_name = ""
    if invitation is not None:
        summary = customer_summaries([invitation.inviter.customer_id]).get(invitation.inviter.customer_id)
        inviter_name = (summary.first_name or summary.display_name.split(" ")[0]) if summary else ""
    return render(
        request,
        "loyalty/club/household_join.html",
        _page(
            club,
            "account",
            invitation=invitation,
            inviter_name=inviter_name,
            already_in=member.household_id is not None,
            same_household=invitation is not None and member.household_id == invitation.household.pk,
            error_text=error_text,
        ),
        status=status,
    )


urlpatterns: list[URLPattern] = [
    path("", club_home, name="club_home"),
    path("join/", club_enrol, name="club_enrol"),
    path("history/", club_history, name="club_history"),
    path("rewards/", club_rewards, name="club_rewards"),
    path("rewards/<uuid:reward_id>/", club_redeem, name="club_redeem"),
    path("redemptions/", club_redemptions, name="club_redemptions"),
    path("card/", club_card, name="club_card"),
    path("referral/", club_referral, name="club_referral"),
    path("preferences/", club_preferences, name="club_preferences"),
    path("household/", club_household, name="club_household"),
    path("household/create/", club_household_create, name="club_household_create"),
    path("household/transfer/", club_household_transfer, name="club_household_transfer"),
    path("household/leave/", club_household_leave, name="club_household_leave"),
    path("household/join/<str:token>/", club_household_join, name="club_household_join"),
]
