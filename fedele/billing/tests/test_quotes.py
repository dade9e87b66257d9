"""Quotes: numbering, totals, send, signed single-use accept link, decline, expiry, renewal quotes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.core import mail

from fedele.billing.models import Order, Quote, Subscription
from fedele.billing.services.quote_pricing import LineInput
from fedele.billing.services.quotes import (
    accept_token,
    quote_accept,
    quote_create,
    quote_create_renewal,
    quote_decline,
    quote_for_token,
    quote_send,
    quotes_expire_due,
)
from fedele.billing.tests.factories import BillingAccountFactory, ProductFactory, flat_plan, subscription
from fedele.billing.tests.test_orders import seat_plan
from fedele.shared.errors import Conflict, ValidationFailed

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def _quote(valid_until: date = date(2026, 3, 31)) -> Quote:
    return quote_create(
        account=BillingAccountFactory(),
        lines=[
            LineInput(plan_version=seat_plan(), quantity=Decimal(2)),
            LineInput(
                product=ProductFactory(name="Installation"),
                unit_amount=Decimal("99.99"),
                discount_percent=Decimal("33.33"),
            ),
        ],
        valid_until=valid_until,
        discount_percent=Decimal("2.5"),
    )


@time_machine.travel(NOW, tick=False)
def test_quote_numbers_and_totals() -> None:
    quote = _quote()
    assert quote.number == "Q-2026-000001"
    # plan 2 x 12.50 = 25.00; setup fee 50.00; installation 99.99 * 0.6667 = 66.663333 -> 66.66
    assert [(line.kind, line.amount) for line in quote.lines.order_by("position")] == [
        ("plan", Decimal("25.00")),
        ("setup_fee", Decimal("50.00")),
        ("product", Decimal("66.66")),
    ]
    assert (quote.subtotal, quote.discount_amount, quote.total) == (
        Decimal("141.66"),
        Decimal("3.54"),
        Decimal("138.12"),
    )
    assert _quote().number == "Q-2026-000002"
    with pytest.raises(ValidationFailed):
        _quote(valid_until=date(2026, 3, 9))
    assert Quote.objects.count() == 2


def test_send_and_accept_through_the_link_once(django_capture_on_commit_callbacks: Any) -> None:
    with time_machine.travel(NOW, tick=False):
        quote = _quote()
        with pytest.raises(ValidationFailed) as caught:
            quote_for_token(accept_token(quote))
        assert caught.value.code == "link_invalid"  # a draft has no live link
        with django_capture_on_commit_callbacks(execute=True):
            quote_send(quote=quote, to_email="cliente@example.it", accept_url="https://x/q/abc")
    assert [m.to for m in mail.outbox] == [["cliente@example.it"]]
    token = accept_token(quote)
    with time_machine.travel(datetime(2026, 3, 31, 21, 59, tzinfo=UTC), tick=False):  # 23:59 in Rome (CEST)
        with pytest.raises(ValidationFailed) as caught:
            # Change one character of the signature (to one it is not, so the token really differs).
            quote_for_token(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1])
        assert caught.value.code == "link_invalid"
        found = quote_for_token(token)
        accepted = quote_accept(quote=found, start_on=date(2026, 4, 1))
        assert accepted.status == "accepted"
        order = Order.objects.get(quote=quote)
        assert (order.number, order.total, order.status) == (
            "ORD-2026-000001",
            Decimal("138.12"),
            "completed",
        )
        assert Subscription.objects.filter(account=quote.account).count() == 1
        with pytest.raises(ValidationFailed) as caught:
            quote_for_token(token)
        assert caught.value.code == "link_used"
        with pytest.raises(Conflict):
            quote_accept(quote=found)
    assert Order.objects.count() == 1


def test_expired_link_and_expiry_job_and_decline() -> None:
    with time_machine.travel(NOW, tick=False):
        quote = _quote(valid_until=date(2026, 3, 10))
        quote_send(quote=quote, to_email="a@example.it", accept_url="https://x")
        other = _quote()
        quote_send(quote=other, to_email="b@example.it", accept_url="https://x")
        quote_decline(quote=other, note="too expensive")
        other.refresh_from_db()
        assert (other.status, other.decision_note) == ("declined", "too expensive")
    with time_machine.travel(
        datetime(2026, 3, 10, 23, 0, tzinfo=UTC), tick=False
    ):  # 00:00 on the 11th in Rome
        with pytest.raises(ValidationFailed) as caught:
            quote_for_token(accept_token(quote))
        assert caught.value.code == "link_expired"
        assert quotes_expire_due() == 1
        assert quotes_expire_due() == 0
    quote.refresh_from_db()
    assert quote.status == "expired"
    assert Order.objects.count() == 0


@time_machine.travel(NOW, tick=False)
def test_renewal_quote_uses_the_current_price_book_once() -> None:
    version = flat_plan("30.00")
    sub = subscription(version, quantity=3)
    with pytest.raises(ValidationFailed):
        quote_create_renewal(subscription=sub)
    Subscription.objects.filter(pk=sub.pk).update(term_end=date(2026, 4, 30))
    sub.refresh_from_db()
    quote = quote_create_renewal(subscription=sub)
    assert (quote.renewal_of_id, quote.valid_until, quote.total) == (
        sub.pk,
        date(2026, 4, 30),
        Decimal("30.00"),
    )
    assert quote.lines.get().quantity == Decimal(3)
    assert quote_create_renewal(subscription=sub).pk == quote.pk
