"""Reads of the fraud review queue: flags (open first), one flag, the flagged member's recent
transactions. Everything here needs ``loyalty.review_loyalty_fraud`` (staff only)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.customers.facade import customer_summaries
from fedele.loyalty.models import FraudFlag, Member, PointsTransaction
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed

REVIEW = "loyalty.review_loyalty_fraud"
RECENT_TRANSACTIONS = 30
FLAG_ORDERING = {"id": "id", "created_at": "created_at"}


def can_review(actor: Actor | None) -> bool:
    return actor is None or (actor.is_internal and actor.can(REVIEW))


def authorise_review(actor: Actor | None) -> None:
    if not can_review(actor):
        raise PermissionDenied(_("You may not review fraud flags."), code="permission_denied")


def flag_list(
    *, actor: Actor | None, state: str = "open", rule: str = "", programme: str = ""
) -> QuerySet[FraudFlag]:
    """Flags in a state (``""`` = every state), optionally of one rule and one programme (code),
    newest first, with member, programme and transaction joined."""
    authorise_review(actor)
    errors: dict[str, str] = {}
    if state and state not in FraudFlag.State.values:
        errors["state"] = _("Unknown state.")
    if rule and rule not in FraudFlag.Rule.values:
        errors["rule"] = _("Unknown rule.")
    if errors:
        raise ValidationFailed(_("Some filters are not valid."), code="invalid_filters", fields=errors)
    flags = FraudFlag.objects.select_related("member", "member__programme", "member__tier", "transaction")
    if state:
        flags = flags.filter(state=state)
    if rule:
        flags = flags.filter(rule=rule)
    if programme:
        flags = flags.filter(member__programme__code=programme[:40])
    return flags.order_by("-id")


def flag_get(*, actor: Actor | None, public_id: Any) -> FraudFlag:
    """A flag by its public id (URLs and the API never show the internal key)."""
    authorise_review(actor)
    try:
        key = UUID(str(public_id))
    except (TypeError, ValueError):
        raise NotFound(_("Fraud flag not found."), code="flag_not_found") from None
    flag = (
        FraudFlag.objects.select_related("member", "member__programme", "member__tier", "transaction")
        .filter(public_id=key)
        .first()
    )
    if flag is None:
        raise NotFound(_("Fraud flag not found."), code="flag_not_found")
    return flag


def member_for_flagging(
    *, actor: Actor | None, member_public_id: Any = None, card_number: str = ""
) -> Member:
    """The member staff want to flag, by public id or card number."""
    query = Member.objects.select_related("programme")
    found = None
    if member_public_id:
        try:
            found = query.filter(public_id=str(member_public_id)).first()
        except ValueError:
            found = None
    elif card_number:
        found = query.filter(card_number=card_number.strip()[:20]).first()
    if found is None:
        raise NotFound(_("Member not found."), code="member_not_found")
    return found


def recent_transactions(
    *, actor: Actor | None, member: Member, limit: int = RECENT_TRANSACTIONS
) -> list[PointsTransaction]:
    """The member's latest transactions with whether each was reversed (``reversed`` attribute)."""
    authorise_review(actor)
    rows = list(
        PointsTransaction.objects.filter(member=member)
        .select_related("partner", "reversal_of")
        .order_by("-id")[:limit]
    )
    reversed_ids = set(
        PointsTransaction.objects.filter(reversal_of__in=rows).values_list("reversal_of_id", flat=True)
    )
    for row in rows:
        row.reversed = row.pk in reversed_ids  # type: ignore[attr-defined]
    return rows


def customer_names(flags: list[FraudFlag]) -> dict[int, str]:
    """Display names of the flagged members' customers, in one facade call."""
    summaries = customer_summaries({flag.member.customer_id for flag in flags})
    return {customer_id: summary.display_name for customer_id, summary in summaries.items()}


def open_flag_count() -> int:
    return FraudFlag.objects.filter(state=FraudFlag.State.OPEN).count()
