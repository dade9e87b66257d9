"""Reads of the rewards area: the catalogue (with stock and code-pool figures), what a member may
redeem and why not, redemptions and the fulfilment queue.

``eligibility_reasons`` is the one place that decides whether a member can redeem a reward; the
redemption service calls it again under the reward's row lock, the member portal calls it through
``rewards_for_member`` to grey out what cannot be redeemed.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from fedele.billing.facade import customer_balance
from fedele.customers.facade import customer_summary
from fedele.loyalty.models import (
    Member,
    MemberStatus,
    Partner,
    Programme,
    ProgrammeStatus,
    Redemption,
    Reward,
    RewardKind,
    VoucherCode,
)
from fedele.shared import clock
from fedele.shared.errors import NotFound, ValidationFailed

# Why a reward cannot be redeemed, in the order the member should read them.
REASON_MESSAGES: dict[str, Promise] = {
    "programme_not_active": _("The programme is not active."),
    "member_not_active": _("The membership is not active."),
    "reward_inactive": _("This reward is not available."),
    "reward_not_yet_valid": _("This reward is not available yet."),
    "reward_expired": _("This reward is no longer available."),
    "wrong_programme": _("This reward belongs to another programme."),
    "tier_not_eligible": _("This reward is reserved to other tiers."),
    "segment_not_eligible": _("This reward is not offered to this customer segment."),
    "partner_unavailable": _("The partner of this reward does not accept redemptions at the moment."),
    "out_of_stock": _("This reward is out of stock."),
    "member_limit_reached": _("The limit of redemptions per member for this reward has been reached."),
    "no_codes_left": _("No codes are left for this voucher."),
    "no_billing_account": _("A discount on the next invoice needs an active billing account."),
    "insufficient_balance": _("Not enough points available."),
}

# A cancelled redemption gave its points, stock and code back: it does not count.
COUNTED_STATES = (
    Redemption.State.RESERVED,
    Redemption.State.FULFILLED,
    Redemption.State.AWAITING_SHIPMENT,
    Redemption.State.SHIPPED,
)
REDEMPTION_ORDERING = {"id": "id", "created": "created_at"}
ZERO_UUID = "00000000-0000-0000-0000-000000000000"
DEFAULT_TIMEZONE = "Europe/Rome"


def uuid_or_zero(value: object) -> str:
    """A text that is not a UUID finds nothing (and never reaches the database as a bad UUID)."""
    try:
        return str(uuid.UUID(str(value).strip()))
    except (ValueError, AttributeError):
        return ZERO_UUID


def reason_message(code: str) -> str:
    return str(REASON_MESSAGES.get(code, code))


def redemption_quantity(redemption: Redemption, reward: Reward) -> int:
    """How many units a redemption bought. The model keeps the points, not the quantity: the points
    cost of a reward cannot change once it has been redeemed, so this division is exact."""
    return max(1, int(redemption.points) // int(reward.points_cost))


# ----------------------------------------------------------------------------------------------
# Eligibility


@dataclass(slots=True)
class MemberFacts:
    """What the eligibility rules need to know about a member, read once for a whole catalogue."""

    segment: str
    has_billing_account: bool
    redeemed_units: dict[int, int] | None = None
    """Units already redeemed per reward id, when read for a catalogue (None = count on demand)."""


def member_facts(member: Member, rewards: Iterable[Reward] = ()) -> MemberFacts:
    customer_id = str(member.customer.public_id)
    summary = customer_summary(customer_id)
    units: dict[int, int] | None = None
    listed = list(rewards)
    if listed:
        costs = {reward.pk: reward.points_cost for reward in listed}
        rows = (
            Redemption.objects.filter(member=member, reward_id__in=list(costs), state__in=COUNTED_STATES)
            .values("reward_id")
            .annotate(points=Sum("points"))
        )
        units = {row["reward_id"]: int(row["points"]) // int(costs[row["reward_id"]]) for row in rows}
    return MemberFacts(
        segment=summary.segment if summary else "",
        has_billing_account=customer_balance(customer_id) is not None,
        redeemed_units=units,
    )


def units_redeemed(member: Member, reward: Reward) -> int:
    points = Redemption.objects.filter(member=member, reward=reward, state__in=COUNTED_STATES).aggregate(
        total=Sum("points")
    )["total"]
    return int(points or 0) // int(reward.points_cost)


def eligibility_reasons(
    *,
    member: Member,
    reward: Reward,
    at: dt.datetime | None = None,
    quantity: int = 1,
    facts: MemberFacts | None = None,
    codes_available: int | None = None,
) -> list[str]:
    """Every reason why ``member`` cannot redeem ``quantity`` × ``reward`` at ``at`` ([] = it can)."""
    moment = at or clock.now()
    reasons: list[str] = []
    if member.programme.status != ProgrammeStatus.ACTIVE:
        reasons.append("programme_not_active")
    if member.status != MemberStatus.ACTIVE:
        reasons.append("member_not_active")
    if reward.programme_id != member.programme_id:
        reasons.append("wrong_programme")
    if not reward.active:
        reasons.append("reward_inactive")
    if reward.valid_from is not None and moment < reward.valid_from:
        reasons.append("reward_not_yet_valid")
    if reward.valid_until is not None and moment >= reward.valid_until:
        reasons.append("reward_expired")
    if reward.eligible_tiers:
        tier_code = member.tier.code if member.tier_id and member.tier else ""
        if tier_code not in reward.eligible_tiers:
            reasons.append("tier_not_eligible")
    known = facts
    if reward.eligible_segments or reward.kind == RewardKind.BILLING_CREDIT:
        known = known or member_facts(member)
        if reward.eligible_segments and known.segment not in reward.eligible_segments:
            reasons.append("segment_not_eligible")
    if reward.kind == RewardKind.PARTNER and not _partner_accepts(reward.partner):
        reasons.append("partner_unavailable")
    if reward.stock is not None and reward.stock < quantity:
        reasons.append("out_of_stock")
    if reward.per_member_limit is not None:
        if known is not None and known.redeemed_units is not None:
            done = known.redeemed_units.get(reward.pk, 0)
        else:
            done = units_redeemed(member, reward)
        if done + quantity > reward.per_member_limit:
            reasons.append("member_limit_reached")
    if reward.kind == RewardKind.VOUCHER:
        free = (
            codes_available
            if codes_available is not None
            else VoucherCode.objects.filter(reward=reward, state=VoucherCode.State.AVAILABLE).count()
        )
        if free < quantity:
            reasons.append("no_codes_left")
    if reward.kind == RewardKind.BILLING_CREDIT and known is not None and not known.has_billing_account:
        reasons.append("no_billing_account")
    if member.available < reward.points_cost * quantity:
        reasons.append("insufficient_balance")
    return reasons


def _partner_accepts(partner: Partner | None) -> bool:
    return partner is not None and partner.status == Partner.Status.ACTIVE and partner.can_burn


# ----------------------------------------------------------------------------------------------
# Catalogue


def _codes_count(state: str) -> Any:
    counts = (
        VoucherCode.objects.filter(reward=OuterRef("pk"), state=state)
        .order_by()
        .values("reward")
        .annotate(n=Count("id"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


def with_figures(rewards: QuerySet[Reward]) -> QuerySet[Reward]:
    """Each reward with its code pool (available / reserved / issued) and live redemptions counted,
    in one query (subqueries, so the counts never multiply each other)."""
    redemptions = (
        Redemption.objects.filter(reward=OuterRef("pk"), state__in=COUNTED_STATES)
        .order_by()
        .values("reward")
        .annotate(n=Count("id"))
        .values("n")
    )
    return rewards.annotate(
        codes_available=_codes_count(VoucherCode.State.AVAILABLE),
        codes_reserved=_codes_count(VoucherCode.State.RESERVED),
        codes_issued=_codes_count(VoucherCode.State.ISSUED),
        redemptions_count=Coalesce(Subquery(redemptions, output_field=IntegerField()), Value(0)),
    )


def reward_list(
    *,
    programme: Programme | None = None,
    kind: str = "",
    active: bool | None = None,
    query: str = "",
) -> QuerySet[Reward]:
    rewards = Reward.objects.select_related("programme", "partner")
    if programme is not None:
        rewards = rewards.filter(programme=programme)
    if kind:
        if kind not in RewardKind.values:
            raise ValidationFailed(
                str(_("Unknown reward kind '%(kind)s'.") % {"kind": kind}),
                code="invalid_kind",
                fields={"kind": str(_("Unknown reward kind."))},
            )
        rewards = rewards.filter(kind=kind)
    if active is not None:
        rewards = rewards.filter(active=active)
    text = query.strip()
    if text:
        rewards = rewards.filter(
            Q(code__icontains=text) | Q(name_it__icontains=text) | Q(name_en__icontains=text)
        )
    return with_figures(rewards).order_by("programme__code", "position", "points_cost", "id")


def reward_get(public_id: object) -> Reward:
    reward = (
        with_figures(Reward.objects.select_related("programme", "partner"))
        .filter(public_id=uuid_or_zero(public_id))
        .first()
    )
    if reward is None:
        raise NotFound(str(_("Reward not found.")), code="reward_not_found")
    return reward


def programme_get(code: str) -> Programme:
    programme = Programme.objects.filter(code=str(code)).first()
    if programme is None:
        raise NotFound(str(_("Programme not found.")), code="programme_not_found")
    return programme


def member_get(public_id: object) -> Member:
    member = (
        Member.objects.select_related("programme", "tier", "customer")
        .filter(public_id=uuid_or_zero(public_id))
        .first()
    )
    if member is None:
        raise NotFound(str(_("Member not found.")), code="member_not_found")
    return member


@dataclass(frozen=True, slots=True)
class StockFigures:
    stock: int | None
    codes_available: int
    codes_reserved: int
    codes_issued: int
    codes_void: int
    redemptions: dict[str, int]
    points_redeemed: int


def stock_figures(reward: Reward) -> StockFigures:
    codes = dict(
        VoucherCode.objects.filter(reward=reward)
        .order_by()
        .values("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    by_state = dict(
        Redemption.objects.filter(reward=reward)
        .order_by()
        .values("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    confirmed = Redemption.objects.filter(
        reward=reward,
        state__in=(
            Redemption.State.FULFILLED,
            Redemption.State.AWAITING_SHIPMENT,
            Redemption.State.SHIPPED,
        ),
    ).aggregate(total=Sum("points"))["total"]
    return StockFigures(
        stock=reward.stock,
        codes_available=int(codes.get(VoucherCode.State.AVAILABLE, 0)),
        codes_reserved=int(codes.get(VoucherCode.State.RESERVED, 0)),
        codes_issued=int(codes.get(VoucherCode.State.ISSUED, 0)),
        codes_void=int(codes.get(VoucherCode.State.VOID, 0)),
        redemptions={state: int(by_state.get(state, 0)) for state in Redemption.State.values},
        points_redeemed=int(confirmed or 0),
    )


@dataclass(frozen=True, slots=True)
class RewardOffer:
    """A catalogue item as one member sees it."""

    reward: Reward
    reasons: list[str]
    messages: list[str]

    @property
    def redeemable(self) -> bool:
        return not self.reasons


def rewards_for_member(member: Member, *, at: dt.datetime | None = None) -> list[RewardOffer]:
    """The member's programme's active catalogue, each reward with the reasons it cannot be redeemed
    now (empty = redeemable). A fixed number of queries whatever the size of the catalogue."""
    rewards = list(reward_list(programme=member.programme, active=True))
    facts = member_facts(member, rewards)
    offers = []
    for reward in rewards:
        reasons = eligibility_reasons(
            member=member,
            reward=reward,
            at=at,
            facts=facts,
            codes_available=int(getattr(reward, "codes_available", 0)),
        )
        offers.append(RewardOffer(reward, reasons, [reason_message(code) for code in reasons]))
    return offers


# ----------------------------------------------------------------------------------------------
# Redemptions


def redemption_list(
    filters: Mapping[str, Any] | None = None, *, rows: QuerySet[Redemption] | None = None
) -> QuerySet[Redemption]:
    """Filters: ``programme`` (code), ``state``, ``kind``, ``reward`` and ``member`` (public ids),
    ``created_from``/``created_to`` (dates or datetimes, inclusive: a date is that whole day in the
    programme's time zone). ``rows`` narrows the start (what the caller may see)."""
    values = dict(filters or {})
    rows = (rows if rows is not None else Redemption.objects.all()).select_related(
        "reward",
        "reward__programme",
        "reward__partner",
        "member",
        "member__customer",
        "voucher",
        "reservation",
    )
    errors: dict[str, str] = {}
    timezone = DEFAULT_TIMEZONE
    if values.get("programme"):
        rows = rows.filter(reward__programme__code=str(values["programme"]))
        found = Programme.objects.filter(code=str(values["programme"])).values_list("timezone", flat=True)
        timezone = next(iter(found), DEFAULT_TIMEZONE)
    state = str(values.get("state") or "")
    if state:
        states = [s for s in state.split(",") if s]
        if any(s not in Redemption.State.values for s in states):
            errors["state"] = str(_("Unknown state."))
        rows = rows.filter(state__in=states)
    kind = str(values.get("kind") or "")
    if kind:
        if kind not in RewardKind.values:
            errors["kind"] = str(_("Unknown reward kind."))
        rows = rows.filter(reward__kind=kind)
    if values.get("reward"):
        rows = rows.filter(reward__public_id=uuid_or_zero(values["reward"]))
    if values.get("member"):
        rows = rows.filter(member__public_id=uuid_or_zero(values["member"]))
    for name, lookup in (("created_from", "gte"), ("created_to", "lte")):
        raw = values.get(name)
        if not raw:
            continue
        moment = _moment(raw, end_of_day=lookup == "lte", timezone=timezone)
        if moment is None:
            errors[name] = str(_("Use a date (YYYY-MM-DD) or a date and time."))
            continue
        rows = rows.filter(**{f"created_at__{lookup}": moment})
    if errors:
        raise ValidationFailed(str(_("The filters are not valid.")), code="invalid_filters", fields=errors)
    return rows.order_by("-id")


def _moment(raw: object, *, end_of_day: bool, timezone: str = DEFAULT_TIMEZONE) -> dt.datetime | None:
    """A date filter means that whole day in the programme's time zone (Europe/Rome by default)."""
    zone = ZoneInfo(timezone)
    if isinstance(raw, dt.datetime):
        return raw if raw.tzinfo else raw.replace(tzinfo=zone)
    if isinstance(raw, dt.date):
        day = raw
    else:
        text = str(raw).strip()
        try:
            if len(text) <= 10:
                day = dt.date.fromisoformat(text)
            else:
                parsed = dt.datetime.fromisoformat(text)
                return parsed if parsed.tzinfo else parsed.replace(tzinfo=zone)
        except ValueError:
            return None
    return dt.datetime.combine(day, dt.time.max if end_of_day else dt.time.min, tzinfo=zone)


def redemption_get(public_id: object) -> Redemption:
    redemption = redemption_list().filter(public_id=uuid_or_zero(public_id)).first()
    if redemption is None:
        raise NotFound(str(_("Redemption not found.")), code="redemption_not_found")
    return redemption


def fulfilment_queue(*, programme: str = "") -> QuerySet[Redemption]:
    """Physical rewards confirmed and waiting to be shipped, oldest first."""
    return redemption_list({"programme": programme, "state": Redemption.State.AWAITING_SHIPMENT}).order_by(
        "created_at", "id"
    )
