"""Reads of the member self-service portal (/club/).

Every read starts from the signed-in portal customer (``customers.facade.customer_for_user``): a page
never takes a member id from the URL, so one member can never see another member's data. Things the
pages do name in URLs (a reward, a redemption) are looked up inside the member's own programme or
among the member's own rows, and anything else is "not found".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db.models import Exists, Min, OuterRef, Subquery, Sum
from django.urls import reverse
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy

from fedele.accounts.contracts import Actor
from fedele.customers.contracts import CustomerSummary
from fedele.loyalty.models import (
    MEMBER_ACCOUNTS,
    Member,
    MemberStatus,
    PointsEntry,
    PointsLot,
    PointsTransaction,
    Programme,
    ProgrammeStatus,
    Redemption,
    Reservation,
    Reward,
    TransactionKind,
)
from fedele.shared import clock

_CENT = Decimal("0.01")
MARKETING_CHANNELS = ("email", "sms")
MARKETING_PURPOSE = "marketing"


# who is asking ---------------------------------------------------------------------------------------


def portal_customer(actor: Actor) -> CustomerSummary | None:
    """The customer a portal login acts for (None for staff, partners and unlinked logins)."""
    from fedele.customers.facade import customer_for_user

    if not actor.is_portal_customer:
        return None
    return customer_for_user(actor.user_id)


def memberships(customer_public_id: str) -> list[Member]:
    """The customer's memberships the portal shows: not closed, in a programme that is not a draft."""
    return list(
        Member.objects.filter(customer__public_id=customer_public_id)
        .exclude(status=MemberStatus.CLOSED)
        .exclude(programme__status=ProgrammeStatus.DRAFT)
        .select_related("programme", "tier", "customer")
        .order_by("enrolled_at", "id")
    )


def choose_membership(found: list[Member], programme_code: str | None) -> Member | None:
    """The membership for ``programme_code`` when the customer has it, else the first one."""
    if not found:
        return None
    if programme_code:
        for member in found:
            if member.programme.code == programme_code:
                return member
    return found[0]


def enrolment_programmes(customer_public_id: str) -> list[Programme]:
    """Active programmes the customer has not joined (a closed membership cannot be reopened here)."""
    joined = Member.objects.filter(customer__public_id=customer_public_id).values("programme_id")
    return list(
        Programme.objects.filter(status=ProgrammeStatus.ACTIVE).exclude(pk__in=joined).order_by("code")
    )


# money and points ------------------------------------------------------------------------------------


def points_value(programme: Programme, points: int) -> Decimal:
    """What ``points`` are worth in EUR at the programme's point value, to the cent (ROUND_HALF_UP)."""
    return (Decimal(points) * programme.point_value).quantize(_CENT, rounding=ROUND_HALF_UP)


# home ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Expiring:
    points: int
    expires_on: date | None


def expiring_soon(member: Member, *, within_days: int | None = None) -> Expiring:
    """Points of the member's available lots that expire within ``within_days`` (default: the
    programme's notice period) counted from today in the programme's time zone, and the first date."""
    days = int(within_days if within_days is not None else member.programme.expiry_notice_days)
    today = today_for(member.programme)
    found = PointsLot.objects.filter(
        member=member,
        state=PointsLot.State.AVAILABLE,
        remaining__gt=0,
        expires_on__gte=today,
        expires_on__lte=today + timedelta(days=days),
    ).aggregate(points=Sum("remaining"), first=Min("expires_on"))
    return Expiring(points=int(found["points"] or 0), expires_on=found["first"])


# history ---------------------------------------------------------------------------------------------

# Moves inside the member's own balance (a hold, its release, pending points maturing) change nothing
# the member can spend in total: the history shows what came in and what went out.
HIDDEN_KINDS = (TransactionKind.RESERVE, TransactionKind.RELEASE, TransactionKind.MATURE)
HISTORY_KINDS: dict[str, tuple[str, ...]] = {
    "earn": (TransactionKind.EARN,),
    "redeem": (TransactionKind.REDEEM,),
    "expire": (TransactionKind.EXPIRE,),
}
KIND_LABELS: dict[str, Promise] = {
    TransactionKind.EARN: gettext_lazy("Points earned"),
    TransactionKind.CANCEL_PENDING: gettext_lazy("Pending points cancelled"),
    TransactionKind.REDEEM: gettext_lazy("Reward redeemed"),
    TransactionKind.EXPIRE: gettext_lazy("Points expired"),
    TransactionKind.ADJUST: gettext_lazy("Adjustment"),
    TransactionKind.TRANSFER: gettext_lazy("Transfer"),
    TransactionKind.REVERSE: gettext_lazy("Reversal"),
    TransactionKind.DEBT_SETTLE: gettext_lazy("Points owed settled"),
}


@dataclass(frozen=True, slots=True)
class HistoryRow:
    id: int
    kind: str
    label: str
    detail: str
    occurred_at: datetime
    points: int
    """Signed: what the movement added to (+) or took from (−) the member's points."""
    pending: bool


@dataclass(frozen=True, slots=True)
class HistoryPage:
    rows: list[HistoryRow]
    next_before: str | None


def history_page(
    member: Member, *, kind: str = "", before: str = "", limit: int = 20, language: str = "it"
) -> HistoryPage:
    """The member's movements, newest first, ``limit`` at a time (``before`` = the id the previous page
    ended on). ``kind``: "" (all), "earn", "redeem" or "expire". Two queries whatever the page size:
    the page (with the member's signed share of each transaction, whether its lot is still pending and
    the reward a redemption bought) and nothing else."""
    member_entries = PointsEntry.objects.filter(member=member, account__in=MEMBER_ACCOUNTS)
    rows = PointsTransaction.objects.filter(pk__in=member_entries.values("transaction_id")).exclude(
        kind__in=HIDDEN_KINDS
    )
    if kind in HISTORY_KINDS:
        rows = rows.filter(kind__in=HISTORY_KINDS[kind])
    if before.isdigit():
        rows = rows.filter(pk__lt=int(before))
    reward_name = "reward_name_en" if language == "en" else "reward_name_it"
    reservations = Reservation.objects.filter(final_transaction=OuterRef("pk"))
    page = list(
        rows.select_related("partner", "campaign")
        .annotate(
            member_points=Subquery(
                member_entries.filter(transaction=OuterRef("pk"))
                .order_by()
                .values("transaction")
                .annotate(total=Sum("points"))
                .values("total")[:1]
            ),
            is_pending=Exists(
                PointsLot.objects.filter(earn_transaction=OuterRef("pk"), state=PointsLot.State.PENDING)
            ),
            reward_name_it=Subquery(reservations.values("reward__name_it")[:1]),
            reward_name_en=Subquery(reservations.values("reward__name_en")[:1]),
        )
        .order_by("-id")[: limit + 1]
    )
    more = len(page) > limit
    page = page[:limit]
    result = []
    for transaction in page:
        points = int(getattr(transaction, "member_points", 0) or 0)
        result.append(
            HistoryRow(
                id=transaction.pk,
                kind=transaction.kind,
                label=str(KIND_LABELS.get(transaction.kind, transaction.get_kind_display())),
                detail=_detail(transaction, getattr(transaction, reward_name, None), language),
                occurred_at=transaction.occurred_at,
                points=points,
                pending=bool(getattr(transaction, "is_pending", False)),
            )
        )
    return HistoryPage(rows=result, next_before=str(page[-1].pk) if more and page else None)


def _detail(transaction: PointsTransaction, reward_name: str | None, language: str) -> str:
    if reward_name:
        return reward_name
    if transaction.partner is not None:
        return transaction.partner.name
    if transaction.campaign is not None:
        return transaction.campaign.name_en if language == "en" else transaction.campaign.name_it
    return transaction.memo or transaction.reference


# referral --------------------------------------------------------------------------------------------


def referral_link(member: Member) -> str:
    base = str(getattr(settings, "FEDELE_PUBLIC_URL", "")).rstrip("/")
    return f"{base}{reverse('club:club_enrol')}?ref={member.referral_code}"


def referral_count(member: Member) -> int:
    return Member.objects.filter(referred_by=member).count()


# redemptions -----------------------------------------------------------------------------------------


def my_redemptions(member: Member) -> list[Redemption]:
    """The member's redemptions, newest first, with reward and voucher code (one query)."""
    return list(
        Redemption.objects.filter(member=member)
        .select_related("reward", "voucher")
        .order_by("-created_at", "-id")[:200]
    )


def reward_in_catalogue(member: Member, public_id: str) -> Reward | None:
    """An active reward of the member's programme; None for another programme's reward (no IDOR)."""
    return Reward.objects.filter(programme_id=member.programme_id, public_id=public_id, active=True).first()


# digital card ----------------------------------------------------------------------------------------


def card_qr_svg(card_number: str) -> str:
    """The QR code of the card number as inline SVG markup (segno; error correction at least M, quiet
    zone of 2 modules), sized by its viewBox so CSS decides how big it is. Black on white whatever the
    theme: scanners read dark-on-light best."""
    import segno

    code = segno.make_qr(card_number, error="m")
    svg: str = code.svg_inline(
        border=2, dark="#000", light="#fff", omitsize=True, svgclass="club-qr", lineclass=None
    )
    return svg


def card_number_display(card_number: str) -> str:
    """Groups of four digits, as printed on cards."""
    return " ".join(card_number[i : i + 4] for i in range(0, len(card_number), 4))


# preferences -----------------------------------------------------------------------------------------


def marketing_consents(customer_public_id: str) -> dict[str, bool]:
    """{"email": granted?, "sms": granted?} for the marketing purpose; never recorded = not granted."""
    from fedele.customers.facade import consents_in_force

    current = consents_in_force(customer_public_id)
    return {
        channel: bool(state.granted) if (state := current.get((channel, MARKETING_PURPOSE))) else False
        for channel in MARKETING_CHANNELS
    }


def today_for(programme: Programme) -> date:
    """Today in the programme's time zone (birthdays, expiry dates)."""
    return clock.today(programme.timezone)
