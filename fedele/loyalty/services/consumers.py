"""Loyalty's reactions to domain events (subscribed in ``setup/rules.py`` with stable names).

"billing.invoice_paid" {invoice_id, number, customer_id, currency, total, paid_at}
  → an ``invoice_paid`` event (source "billing", external id = invoice id, amount = total, reference
  = invoice number) for each active membership of the customer in an active programme with an
  active invoice_paid rule. Only EUR invoices earn; others are logged and ignored.
"billing.subscription_cancelled" {subscription_id, number, customer_id, plan_code, ended_on, reason}
  → for each active membership: when the programme forfeits on cancellation and the customer has no
  live subscription left, every available point is forfeited (ledger ``points_forfeit``, key
  ``forfeit:<subscription id>:<member public id>``); then a custom event ``subscription_cancelled``
  (external id = subscription id) is recorded when a custom rule listens to it, so win-back points
  earned on it are not forfeited with the rest.
"support.survey_completed" {survey_id, kind, ticket_id, customer_id, score, comment, responded_at}
  → a ``survey_completed`` event (source "support", external id = survey id, attributes kind and
  score) for each active membership with an active survey rule.
"loyalty.member_enrolled" {member_id, referred_by_member_id, channel, ...}
  → a ``sign_up`` event for the new member (external id ``sign_up:<member id>``) and a ``referral``
  event for the referrer (external id ``referral:<new member id>``), when the programme has an active
  rule for them.

Events are recorded only where a rule can use them (no empty rows per invoice). Each handler runs
once per event (the outbox receipt) and every write is idempotent by its external id, so a second
run writes nothing. A membership that cannot earn (suspended meanwhile) is logged and skipped, so
one bad membership does not make the whole event retry forever.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from django.utils.dateparse import parse_datetime

from fedele.billing.facade import active_subscriptions
from fedele.customers.facade import customer_summary
from fedele.loyalty.models import EventType, Member, MemberStatus, ProgrammeStatus
from fedele.loyalty.selectors import rules as selectors
from fedele.loyalty.services.ledger import points_forfeit
from fedele.loyalty.services.rules_events import event_record
from fedele.shared import clock
from fedele.shared.errors import ApplicationError
from fedele.shared.events import EventEnvelope

logger = logging.getLogger(__name__)

INVOICE_PAID_HANDLER = "loyalty.rules.on_invoice_paid"
SUBSCRIPTION_CANCELLED_HANDLER = "loyalty.rules.on_subscription_cancelled"
SURVEY_COMPLETED_HANDLER = "loyalty.rules.on_survey_completed"
MEMBER_ENROLLED_HANDLER = "loyalty.rules.on_member_enrolled"
SUBSCRIPTION_CANCELLED_EVENT = "subscription_cancelled"


def _moment(value: Any) -> datetime | None:
    """The event's own time when it is a sane aware timestamp, else now."""
    moment = parse_datetime(str(value or "")) if value else None
    if moment is None or moment.tzinfo is None or moment > clock.now():
        return None
    return moment


def _memberships(customer_public_id: Any) -> list[Member]:
    """Active memberships (in active programmes) of the customer, following customer merges."""
    text = str(customer_public_id or "").strip()
    if selectors.as_uuid(text) is None:
        return []
    summary = customer_summary(text)
    if summary is None:
        return []
    return list(
        Member.objects.filter(
            customer_id=summary.customer_id,
            status=MemberStatus.ACTIVE,
            programme__status=ProgrammeStatus.ACTIVE,
        )
        .select_related("programme", "tier")
        .order_by("pk")
    )


def _safely(member: Member, what: str, action: Callable[[], object]) -> None:
    try:
        action()
    except ApplicationError as error:
        logger.warning("Loyalty %s skipped for member %s: %s", what, member.public_id, error.message)


def on_invoice_paid(envelope: EventEnvelope) -> None:
    payload: Mapping[str, Any] = envelope.payload
    if str(payload.get("currency") or "").upper() != "EUR":
        logger.info(
            "Invoice %s paid in %s: only EUR invoices earn points",
            payload.get("number"),
            payload.get("currency"),
        )
        return
    try:
        total = Decimal(str(payload.get("total")))
    except (InvalidOperation, ValueError):
        logger.warning(
            "Invoice %s paid with an unreadable total %r", payload.get("number"), payload.get("total")
        )
        return
    if not total.is_finite() or total < 0:
        return
    invoice_id = str(payload.get("invoice_id") or "")
    for member in _memberships(payload.get("customer_id")):
        if not selectors.has_active_rule(member.programme, EventType.INVOICE_PAID):
            continue
        _safely(
            member,
            "invoice_paid",
            partial(
                event_record,
                actor=None,
                programme=member.programme,
                member=member,
                event_type=EventType.INVOICE_PAID,
                source="billing",
                external_id=invoice_id,
                amount_eur=total,
                reference=str(payload.get("number") or "")[:80],
                occurred_at=_moment(payload.get("paid_at")),
            ),
        )


def on_subscription_cancelled(envelope: EventEnvelope) -> None:
    payload: Mapping[str, Any] = envelope.payload
    subscription_id = str(payload.get("subscription_id") or "")
    customer_id = str(payload.get("customer_id") or "")
    members = _memberships(customer_id)
    if not members:
        return
    still_subscribed: bool | None = None
    for member in members:
        programme = member.programme
        if programme.forfeit_on_cancellation:
            if still_subscribed is None:
                still_subscribed = bool(active_subscriptions(customer_id))
            if not still_subscribed:
                _safely(
                    member,
                    "forfeit",
                    partial(
                        points_forfeit,
                        actor=None,
                        member=member,
                        reason="subscription_cancelled",
                        idempotency_key=f"forfeit:{subscription_id}:{member.public_id}",
                    ),
                )
        if selectors.has_active_rule(programme, EventType.CUSTOM, custom_event=SUBSCRIPTION_CANCELLED_EVENT):
            _safely(
                member,
                "subscription_cancelled",
                partial(
                    event_record,
                    actor=None,
                    programme=member.programme,
                    member=member,
                    event_type=EventType.CUSTOM,
                    custom_event=SUBSCRIPTION_CANCELLED_EVENT,
                    source="billing",
                    external_id=subscription_id,
                    reference=str(payload.get("number") or "")[:80],
                    attributes={
                        "plan_code": str(payload.get("plan_code") or "")[:200],
                        "reason": str(payload.get("reason") or "")[:200],
                    },
                ),
            )


def on_survey_completed(envelope: EventEnvelope) -> None:
    payload: Mapping[str, Any] = envelope.payload
    survey_id = str(payload.get("survey_id") or "")
    if not survey_id:
        return
    score = payload.get("score")
    attributes: dict[str, Any] = {"kind": str(payload.get("kind") or "")[:200]}
    if isinstance(score, int) and not isinstance(score, bool):
        attributes["score"] = score
    for member in _memberships(payload.get("customer_id")):
        if not selectors.has_active_rule(member.programme, EventType.SURVEY_COMPLETED):
            continue
        _safely(
            member,
            "survey_completed",
            partial(
                event_record,
                actor=None,
                programme=member.programme,
                member=member,
                event_type=EventType.SURVEY_COMPLETED,
                source="support",
                external_id=survey_id,
                attributes=attributes,
                occurred_at=_moment(payload.get("responded_at")),
            ),
        )


def on_member_enrolled(envelope: EventEnvelope) -> None:
    payload: Mapping[str, Any] = envelope.payload
    member_id = selectors.as_uuid(payload.get("member_id"))
    if member_id is None:
        return
    member = Member.objects.select_related("programme", "tier").filter(public_id=member_id).first()
    if member is None or member.status != MemberStatus.ACTIVE:
        return
    programme = member.programme
    if programme.status != ProgrammeStatus.ACTIVE:
        return
    if selectors.has_active_rule(programme, EventType.SIGN_UP):
        _safely(
            member,
            "sign_up",
            partial(
                event_record,
                actor=None,
                programme=programme,
                member=member,
                event_type=EventType.SIGN_UP,
                source="loyalty",
                external_id=f"sign_up:{member.public_id}",
                channel=str(payload.get("channel") or "")[:40],
            ),
        )
    referrer_id = selectors.as_uuid(payload.get("referred_by_member_id"))
    if referrer_id is None or not selectors.has_active_rule(programme, EventType.REFERRAL):
        return
    referrer = (
        Member.objects.select_related("tier")
        .filter(public_id=referrer_id, programme=programme, status=MemberStatus.ACTIVE)
        .first()
    )
    if referrer is None or referrer.pk == member.pk:
        return
    referrer.programme = programme
    _safely(
        referrer,
        "referral",
        partial(
            event_record,
            actor=None,
            programme=programme,
            member=referrer,
            event_type=EventType.REFERRAL,
            source="loyalty",
            external_id=f"referral:{member.public_id}",
            attributes={
                "referred_member": str(member.public_id),
                "channel": str(payload.get("channel") or "")[:200],
            },
        ),
    )
