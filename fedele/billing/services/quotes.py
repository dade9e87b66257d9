"""Quotes: draft → sent → accepted / declined / expired, with a public single-use accept link.

The accept link carries ``TimestampSigner``-signed quote id; it stops working at the end of the
validity date (Europe/Rome), after the quote is decided, and when tampered with. Accepting creates
the order (services/orders.py) and fulfils it in the same call.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.core import signing
from django.db import transaction

from fedele.billing.models import BillingAccount, PlanVersion, Quote, QuoteLine, Subscription
from fedele.billing.services.quote_pricing import LineInput, price_lines
from fedele.shared import audit, clock, sequences
from fedele.shared.errors import Conflict, NotFound, ValidationFailed

SIGNING_SALT = "fedele.billing.quote-accept"
BUSINESS_TIME_ZONE = "Europe/Rome"
OPEN_STATUSES = (Quote.Status.DRAFT, Quote.Status.SENT)


def _snapshot(quote: Quote) -> dict[str, Any]:
    return {
        "number": quote.number,
        "status": quote.status,
        "total": quote.total,
        "valid_until": quote.valid_until,
        "discount_percent": quote.discount_percent,
    }


def _validity_end(valid_until: date) -> datetime:
    return datetime.combine(valid_until + timedelta(days=1), time.min, tzinfo=ZoneInfo(BUSINESS_TIME_ZONE))


def _write_lines(quote: Quote, lines: Sequence[LineInput], discount_percent: Decimal) -> None:
    priced = price_lines(lines, currency=quote.currency, discount_percent=discount_percent)
    quote.lines.all().delete()
    QuoteLine.objects.bulk_create(
        QuoteLine(
            quote=quote,
            position=position,
            kind=line.kind,
            plan_version=line.plan_version,
            product=line.product,
            description=line.description,
            quantity=line.quantity,
            list_unit_amount=line.list_unit_amount,
            unit_amount=line.unit_amount,
            discount_percent=line.discount_percent,
            recurring=line.recurring,
            amount=line.amount,
        )
        for position, line in enumerate(priced)
    )
    quote.subtotal = sum((line.amount for line in priced), Decimal(0))
    quote.total = sum((line.net_amount for line in priced), Decimal(0))
    quote.discount_amount = quote.subtotal - quote.total
    quote.discount_percent = discount_percent


def _check_validity(valid_until: date | None) -> None:
    if valid_until is None or valid_until < clock.today(BUSINESS_TIME_ZONE):
        raise ValidationFailed(
            "The quote must be valid until today or a later date.",
            code="invalid_validity",
            fields={"valid_until": ["must be today or later."]},
        )


def quote_create(
    *,
    account: BillingAccount,
    lines: Sequence[LineInput],
    valid_until: date,
    discount_percent: Decimal = Decimal(0),
    language: str = "it",
    notes: str = "",
    renewal_of: Subscription | None = None,
    actor_id: int | None = None,
) -> Quote:
    """A draft quote numbered Q-<year>-NNNNNN. Lines are priced from the price book now."""
    _check_validity(valid_until)
    if language not in ("it", "en"):
        raise ValidationFailed("Unknown language.", fields={"language": ["use it or en."]})
    price_lines(lines, currency=account.currency, discount_percent=discount_percent)  # validate first
    with transaction.atomic():
        now = clock.now()
        quote = Quote.objects.create(
            number=sequences.next_number("Q", year=now.year),
            account=account,
            currency=account.currency,
            language=language,
            valid_until=valid_until,
            notes=notes.strip()[:5000],
            renewal_of=renewal_of,
            created_by_id=actor_id,
            created_at=now,
            updated_at=now,
        )
        _write_lines(quote, lines, discount_percent)
        quote.save()
        audit.record(
            action="billing.quote.created",
            object_type="quote",
            object_id=str(quote.public_id),
            after=_snapshot(quote),
            actor_id=actor_id,
        )
    return quote


def quote_update(
    *,
    quote: Quote,
    lines: Sequence[LineInput] | None = None,
    valid_until: date | None = None,
    discount_percent: Decimal | None = None,
    notes: str | None = None,
    actor_id: int | None = None,
) -> Quote:
    """Change a draft (lines are replaced and re-priced). A sent quote goes back to draft."""
    with transaction.atomic():
        locked = Quote.objects.select_for_update().get(pk=quote.pk)
        if locked.status not in OPEN_STATUSES:
            raise Conflict(
                f"Quote {locked.number} is {locked.status}; it cannot change.", code="quote_closed"
            )
        before = _snapshot(locked)
        if valid_until is not None:
            _check_validity(valid_until)
            locked.valid_until = valid_until
        discount = locked.discount_percent if discount_percent is None else discount_percent
        current = [
            LineInput(
                plan_version=line.plan_version,
                product=line.product,
                quantity=line.quantity,
                unit_amount=line.unit_amount if line.kind == "product" else None,
                discount_percent=line.discount_percent,
                description=line.description,
            )
            for line in locked.lines.exclude(kind="setup_fee").select_related("plan_version__plan", "product")
        ]
        _write_lines(locked, current if lines is None else lines, discount)
        if notes is not None:
            locked.notes = notes.strip()[:5000]
        locked.status = Quote.Status.DRAFT
        locked.updated_at = clock.now()
        locked.save()
        audit.record(
            action="billing.quote.updated",
            object_type="quote",
            object_id=str(locked.public_id),
            before=before,
            after=_snapshot(locked),
            actor_id=actor_id,
        )
    return locked


def accept_token(quote: Quote) -> str:
    return signing.TimestampSigner(salt=SIGNING_SALT).sign(str(quote.public_id))


def quote_for_token(token: str) -> Quote:
    """The quote a link points to, or ValidationFailed (tampered, expired, already decided)."""
    try:
        public_id = signing.TimestampSigner(salt=SIGNING_SALT).unsign(token)
    except signing.BadSignature as error:
        raise ValidationFailed(
            "This link is not valid: it was changed or is incomplete.", code="link_invalid"
        ) from error
    quote = Quote.objects.select_related("account").filter(public_id=public_id).first()
    if quote is None:
        raise NotFound("Quote not found.")
    if quote.status in (Quote.Status.ACCEPTED, Quote.Status.DECLINED):
        raise ValidationFailed(f"This quote was already {quote.status}.", code="link_used")
    if quote.status == Quote.Status.EXPIRED or clock.now() >= _validity_end(quote.valid_until):
        raise ValidationFailed("This quote has expired.", code="link_expired")
    if quote.status != Quote.Status.SENT:
        raise ValidationFailed("This quote is being revised; ask for a new link.", code="link_invalid")
    return quote


def _quote_email(quote: Quote, accept_url: str) -> tuple[str, str]:
    """Subject and body in the quote's language."""
    from django.template.loader import render_to_string
    from django.utils import translation

    from fedele.billing.documents import seller
    from fedele.customers.facade import customer_summary

    customer = customer_summary(str(quote.account.customer.public_id))
    context = {
        "quote": quote,
        "accept_url": accept_url,
        "seller": seller(),
        "customer_name": customer.display_name if customer else "",
    }
    with translation.override(quote.language):
        subject = render_to_string("billing/orders/email_quote_subject.txt", context)
        body = render_to_string("billing/orders/email_quote_body.txt", context)
    return " ".join(subject.split()), body


def quote_send(*, quote: Quote, to_email: str, accept_url: str, actor_id: int | None = None) -> Quote:
    """Mark the quote sent and e-mail the accept link (after commit)."""
    from django.core.mail import send_mail

    address = to_email.strip()
    if "@" not in address or len(address) > 254:
        raise ValidationFailed("Give the customer's e-mail address.", fields={"to_email": ["is not valid."]})
    with transaction.atomic():
        locked = Quote.objects.select_for_update().get(pk=quote.pk)
        if locked.status not in OPEN_STATUSES:
            raise Conflict(f"Quote {locked.number} is {locked.status}.", code="quote_closed")
        _check_validity(locked.valid_until)
        if not locked.lines.exists():
            raise ValidationFailed("A quote needs at least one line.", fields={"lines": ["add a line."]})
        locked.status = Quote.Status.SENT
        locked.sent_at = clock.now()
        locked.sent_to = address
        locked.updated_at = locked.sent_at
        locked.save()
        audit.record(
            action="billing.quote.sent",
            object_type="quote",
            object_id=str(locked.public_id),
            after={"status": "sent", "sent_to": address},
            actor_id=actor_id,
        )
        subject, body = _quote_email(locked, accept_url)
        transaction.on_commit(lambda: send_mail(subject, body, None, [address]))
    return locked


def _decide(quote: Quote, status: str, note: str, actor_id: int | None) -> Quote:
    locked = Quote.objects.select_for_update().get(pk=quote.pk)
    if locked.status != Quote.Status.SENT:
        raise Conflict(f"Quote {locked.number} is {locked.status}.", code="quote_not_open")
    if clock.now() >= _validity_end(locked.valid_until):
        raise ValidationFailed("This quote has expired.", code="link_expired")
    now = clock.now()
    locked.status = status
    locked.decision_note = note.strip()[:300]
    if status == Quote.Status.ACCEPTED:
        locked.accepted_at = now
    else:
        locked.declined_at = now
    locked.updated_at = now
    locked.save()
    audit.record(
        action=f"billing.quote.{status}",
        object_type="quote",
        object_id=str(locked.public_id),
        after={"status": status, "note": locked.decision_note},
        actor_id=actor_id,
    )
    return locked


def quote_accept(*, quote: Quote, start_on: date | None = None, actor_id: int | None = None) -> Quote:
    """Accept a sent quote: it becomes an Order (same lines and net amounts), which is fulfilled."""
    from fedele.billing.services.orders import order_create, order_fulfil

    with transaction.atomic():
        locked = _decide(quote, Quote.Status.ACCEPTED, "", actor_id)
        lines = [
            LineInput(
                plan_version=line.plan_version,
                product=line.product,
                quantity=line.quantity,
                unit_amount=line.unit_amount if line.kind == "product" else None,
                discount_percent=line.discount_percent,
                description=line.description,
            )
            for line in locked.lines.exclude(kind="setup_fee").select_related("plan_version__plan", "product")
        ]
        result = order_create(
            account=locked.account,
            lines=lines,
            external_reference=locked.number,
            start_on=start_on,
            discount_percent=locked.discount_percent,
            quote=locked,
            fulfil=False,
            actor_id=actor_id,
        )
    order_fulfil(order=result.order, actor_id=actor_id)
    locked.refresh_from_db()
    return locked


def quote_decline(*, quote: Quote, note: str = "", actor_id: int | None = None) -> Quote:
    with transaction.atomic():
        return _decide(quote, Quote.Status.DECLINED, note, actor_id)


def quotes_expire_due() -> int:
    """The periodic job: open quotes past their validity date become expired."""
    today = clock.today(BUSINESS_TIME_ZONE)
    expired = 0
    with transaction.atomic():
        for quote in Quote.objects.select_for_update().filter(
            status__in=OPEN_STATUSES, valid_until__lt=today
        ):
            quote.status = Quote.Status.EXPIRED
            quote.expired_at = clock.now()
            quote.updated_at = quote.expired_at
            quote.save(update_fields=["status", "expired_at", "updated_at"])
            audit.record(action="billing.quote.expired", object_type="quote", object_id=str(quote.public_id))
            expired += 1
    return expired


def quote_create_renewal(*, subscription: Subscription, actor_id: int | None = None) -> Quote:
    """A draft renewal quote for a subscription whose contract term ends: the plan at today's price
    book (the newest published version in its currency), same quantity, valid until the term end.
    Returns the open renewal quote if there already is one."""
    existing = Quote.objects.filter(renewal_of=subscription, status__in=OPEN_STATUSES).first()
    if existing is not None:
        return existing
    if subscription.term_end is None:
        raise ValidationFailed(
            "The subscription has no contract term end.",
            code="no_term_end",
            fields={"term_end": ["is not set."]},
        )
    version = (
        PlanVersion.objects.filter(
            plan_id=subscription.plan_id,
            currency=subscription.plan_version.currency,
            published_at__isnull=False,
        )
        .order_by("-version")
        .first()
    ) or subscription.plan_version
    today = clock.today(BUSINESS_TIME_ZONE)
    valid_until = max(subscription.term_end, today)
    return quote_create(
        account=subscription.account,
        lines=[LineInput(plan_version=version, quantity=subscription.quantity)],
        valid_until=valid_until,
        notes=f"Renewal of {subscription.number} (term ends {subscription.term_end}).",
        renewal_of=subscription,
        actor_id=actor_id,
    )
