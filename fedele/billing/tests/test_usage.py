"""Usage aggregation for the billing run (aggregate_unbilled / mark_billed) and ingestion."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from fedele.billing.models import Invoice, UsageEvent
from fedele.billing.selectors.usage import current_usage, daily_usage, estimated_total
from fedele.billing.services.usage import usage_ingest, usage_ingest_csv
from fedele.billing.tests.factories import MetricFactory, flat_plan, subscription, usage_charge
from fedele.billing.tests.orders_helpers import event, metered_subscription
from fedele.billing.usage_aggregation import aggregate_unbilled, mark_billed
from fedele.shared.errors import ValidationFailed
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)
MAR = datetime(2026, 3, 1, tzinfo=UTC)


def _at(day: int, hour: int = 12, month: int = 1) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def _invoice(sub_account_id: int) -> Invoice:
    now = timezone.now()
    return Invoice.objects.create(account_id=sub_account_id, currency="EUR", created_at=now, updated_at=now)


class TestAggregateUnbilled:
    def test_sum_adds_unbilled_events_before_until_only(self) -> None:
        sub, metric = metered_subscription()
        event(sub, metric, "1.5", _at(3))
        event(sub, metric, "2.25", _at(31, 23))
        event(sub, metric, "100", FEB)  # exactly at until: excluded (periods are half-open)
        billed = event(sub, metric, "7", _at(10))
        billed.invoice = _invoice(sub.account_id)
        billed.save()
        assert aggregate_unbilled([sub.pk], FEB) == {(sub.pk, metric.pk): Decimal("3.75")}

    def test_max_unique_count_and_last(self) -> None:
        peak = MetricFactory(aggregation="max")
        users = MetricFactory(aggregation="unique_count", unique_property="user")
        storage = MetricFactory(aggregation="last")
        version = flat_plan()
        for metric in (peak, users, storage):
            usage_charge(version, metric, unit_amount=Decimal("1"))
        sub = subscription(version)
        for quantity, day in (("4", 2), ("9.5", 5), ("3", 9)):
            event(sub, peak, quantity, _at(day))
        for user, day in (("anna", 2), ("bruno", 3), ("anna", 4), (7, 5), ("7", 6)):
            event(sub, users, 1, _at(day), properties={"user": user})
        event(sub, users, 1, _at(7), properties={"other": "x"})  # no property: not counted
        event(sub, storage, "10", _at(20))
        event(sub, storage, "12", _at(25, 8))
        event(sub, storage, "11", _at(25, 8))  # same instant, higher id: the latest
        event(sub, storage, "2", _at(3))
        assert aggregate_unbilled([sub.pk], FEB) == {
            (sub.pk, peak.pk): Decimal("9.5"),
            (sub.pk, users.pk): Decimal("3"),
            (sub.pk, storage.pk): Decimal("11"),
        }

    def test_subscriptions_are_kept_apart_and_empty_input(self) -> None:
        metric = MetricFactory()
        first, _ = metered_subscription(metric)
        second, _ = metered_subscription(metric)
        silent, _ = metered_subscription(metric)
        event(first, metric, "1", _at(2))
        event(second, metric, "2", _at(2))
        event(second, metric, "3", _at(3))
        assert aggregate_unbilled([first.pk, second.pk, silent.pk, first.pk], FEB) == {
            (first.pk, metric.pk): Decimal("1"),
            (second.pk, metric.pk): Decimal("5"),
        }
        assert aggregate_unbilled([], FEB) == {}

    def test_zero_and_large_quantities_are_exact(self) -> None:
        # 15 significant digits: what SQLite keeps exactly (PostgreSQL: test_usage_postgres.py)
        sub, metric = metered_subscription()
        event(sub, metric, "0", _at(2))
        event(sub, metric, "123456789.000001", _at(3))
        event(sub, metric, "0.000001", _at(4))
        assert aggregate_unbilled([sub.pk], FEB) == {(sub.pk, metric.pk): Decimal("123456789.000002")}

    def test_only_zero_usage_is_reported_as_zero(self) -> None:
        sub, metric = metered_subscription()
        event(sub, metric, "0", _at(2))
        assert aggregate_unbilled([sub.pk], FEB) == {(sub.pk, metric.pk): Decimal("0")}

    def test_thousands_of_subscriptions_take_a_few_queries(self) -> None:
        metric = MetricFactory()
        sub, _ = metered_subscription(metric)
        event(sub, metric, "4", _at(2))
        ids = [sub.pk, *range(10_000_000, 10_004_500)]
        with CaptureQueriesContext(connection) as queries:
            result = aggregate_unbilled(ids, FEB)
        assert result == {(sub.pk, metric.pk): Decimal("4")}
        # 1 query for the metrics + 1 sum query for each of the 3 chunks of 2,000 ids
        assert len(queries) == 4

    def test_received_before_leaves_racing_events_for_the_next_invoice(self) -> None:
        sub, metric = metered_subscription()
        event(sub, metric, "1", _at(2), received_at=_at(2))
        event(sub, metric, "5", _at(3), received_at=_at(2, month=2))
        cutoff = _at(1, 0, month=2)
        assert aggregate_unbilled([sub.pk], FEB, received_before=cutoff) == {
            (sub.pk, metric.pk): Decimal("1")
        }
        invoice = _invoice(sub.account_id)
        assert mark_billed([sub.pk], FEB, {sub.pk: invoice.pk}, received_before=cutoff) == 1
        assert aggregate_unbilled([sub.pk], FEB) == {(sub.pk, metric.pk): Decimal("5")}


class TestMarkBilled:
    def test_marks_each_subscription_with_its_invoice_once(self) -> None:
        metric = MetricFactory()
        first, _ = metered_subscription(metric)
        second, _ = metered_subscription(metric)
        skipped, _ = metered_subscription(metric)
        for sub in (first, second, skipped):
            event(sub, metric, "1", _at(2))
            event(sub, metric, "1", _at(3))
        later = event(first, metric, "9", FEB)
        invoice_a, invoice_b = _invoice(first.account_id), _invoice(second.account_id)
        mapping = {first.pk: invoice_a.pk, second.pk: invoice_b.pk}
        assert mark_billed([first.pk, second.pk, skipped.pk], FEB, mapping) == 4
        assert mark_billed([first.pk, second.pk, skipped.pk], FEB, mapping) == 0
        assert UsageEvent.objects.filter(invoice=invoice_a).count() == 2
        assert UsageEvent.objects.filter(invoice=invoice_b).count() == 2
        assert UsageEvent.objects.filter(subscription=skipped, invoice__isnull=True).count() == 2
        later.refresh_from_db()
        assert later.invoice_id is None
        assert aggregate_unbilled([first.pk, second.pk], FEB) == {}

    def test_late_event_is_billed_by_the_next_invoice_not_lost_nor_twice(self) -> None:
        sub, metric = metered_subscription()
        event(sub, metric, "10", _at(15))
        january_invoice = _invoice(sub.account_id)
        assert aggregate_unbilled([sub.pk], FEB) == {(sub.pk, metric.pk): Decimal("10")}
        assert mark_billed([sub.pk], FEB, {sub.pk: january_invoice.pk}) == 1
        late = event(sub, metric, "3", _at(20))  # January usage arriving after January was invoiced
        event(sub, metric, "4", _at(10, month=2))
        assert aggregate_unbilled([sub.pk], MAR) == {(sub.pk, metric.pk): Decimal("7")}
        february_invoice = _invoice(sub.account_id)
        assert mark_billed([sub.pk], MAR, {sub.pk: february_invoice.pk}) == 2
        late.refresh_from_db()
        assert late.invoice_id == february_invoice.pk
        assert UsageEvent.objects.filter(invoice=january_invoice).count() == 1

    def test_many_subscriptions_in_chunks(self) -> None:
        metric = MetricFactory()
        subs = [metered_subscription(metric)[0] for _ in range(3)]
        invoices = {}
        for sub in subs:
            event(sub, metric, "2", _at(5))
            invoices[sub.pk] = _invoice(sub.account_id).pk
        with CaptureQueriesContext(connection) as queries:
            assert mark_billed([s.pk for s in subs], FEB, invoices) == 3
        assert len(queries) == 1
        for sub in subs:
            assert UsageEvent.objects.get(subscription=sub).invoice_id == invoices[sub.pk]


# --- ingestion ----------------------------------------------------------------------------------

NOW = datetime(2026, 1, 20, 10, 0, tzinfo=UTC)


def _payload(sub_or_customer: dict[str, str], metric: str, **overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "external_id": "e-1",
        "metric": metric,
        "quantity": "2.5",
        "timestamp": "2026-01-20T10:00:00+01:00",
        **sub_or_customer,
    }
    body.update(overrides)
    return body


@pytest.fixture
def frozen() -> Iterator[object]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.mark.usefixtures("frozen")
class TestUsageIngest:
    def test_customer_event_is_stored_on_the_metering_subscription(self) -> None:
        sub, metric = metered_subscription()
        other_version = flat_plan()  # a second live subscription without this metric is ignored
        subscription(other_version, account=sub.account)
        customer = {"customer": str(sub.account.customer.public_id)}
        result = usage_ingest(events=[_payload(customer, metric.code, properties={"region": "it"})])
        assert (result.accepted, result.duplicates, result.rejected) == (1, 0, [])
        stored = UsageEvent.objects.get()
        assert stored.subscription_id == sub.pk
        assert stored.account_id == sub.account_id
        assert stored.quantity == Decimal("2.5")
        assert stored.occurred_at == datetime(2026, 1, 20, 9, 0, tzinfo=UTC)
        assert stored.received_at == NOW
        assert stored.properties == {"region": "it"}
        assert stored.invoice_id is None

    def test_duplicates_in_db_and_in_batch_are_counted_not_errors(self) -> None:
        sub, metric = metered_subscription()
        target = {"subscription": str(sub.public_id)}
        first = usage_ingest(events=[_payload(target, metric.code, external_id="a")])
        assert (first.accepted, first.duplicates) == (1, 0)
        again = usage_ingest(
            events=[
                _payload(target, metric.code, external_id="a", quantity="99"),
                _payload(target, metric.code, external_id="b"),
                _payload(target, metric.code, external_id="b", quantity="7"),
                _payload(target, metric.code, external_id="c", quantity="0"),
            ]
        )
        assert (again.accepted, again.duplicates, again.rejected) == (2, 2, [])
        assert sorted(UsageEvent.objects.values_list("external_id", "quantity")) == [
            ("a", Decimal("2.5")),
            ("b", Decimal("2.5")),
            ("c", Decimal("0")),
        ]

    def test_all_or_nothing_refuses_the_batch_and_lists_every_bad_event(self) -> None:
        sub, metric = metered_subscription()
        target = {"subscription": str(sub.public_id)}
        events = [
            _payload(target, metric.code, external_id="ok"),
            _payload(target, metric.code, external_id="neg", quantity="-1"),
            _payload(target, metric.code, external_id="naive", timestamp="2026-01-20T10:00:00"),
            _payload(target, metric.code, external_id="future", timestamp="2026-01-20T10:05:01Z"),
            _payload(target, metric.code, external_id="old", timestamp="2025-12-15T23:59:59Z"),
            _payload(target, "no-such-metric", external_id="metric"),
            _payload({"customer": str(sub.public_id)}, metric.code, external_id="nocust"),
            _payload(target, metric.code, external_id="dp", quantity="1.0000001"),
        ]
        with pytest.raises(ValidationFailed) as caught:
            usage_ingest(events=events)
        assert caught.value.code == "usage_rejected"
        assert sorted(caught.value.fields) == [f"events[{i}]" for i in range(1, 8)]
        assert caught.value.fields["events[1]"] == ["quantity: must not be negative (got -1)."]
        assert "future" in caught.value.fields["events[3]"][0]
        assert "35-day limit" in caught.value.fields["events[4]"][0]
        assert UsageEvent.objects.count() == 0
        assert AuditLog.objects.filter(action="usage.ingested").count() == 0

    def test_good_rows_stores_the_good_ones_and_reports_the_rest(self) -> None:
        sub, metric = metered_subscription()
        target = {"subscription": str(sub.public_id)}
        events = [
            _payload(target, metric.code, external_id="ok-1"),
            _payload(target, metric.code, external_id="bad", quantity="abc"),
            _payload(target, metric.code, external_id="ok-2", timestamp="2025-12-16T10:00:01Z"),
        ]
        result = usage_ingest(events=events, mode="good_rows")
        assert result.accepted == 2
        assert [(r.index, r.reason) for r in result.rejected] == [(1, "quantity: 'abc' is not a number.")]
        assert AuditLog.objects.get(action="usage.ingested").after == {
            "accepted": 2,
            "duplicates": 0,
            "rejected": 1,
            "mode": "good_rows",
        }

    def test_ambiguous_customer_and_unmetered_subscription_are_refused(self) -> None:
        metric = MetricFactory()
        sub, _ = metered_subscription(metric)
        metered_subscription(metric, account=sub.account)
        plain_sub = subscription(flat_plan(), account=sub.account)
        result = usage_ingest(
            events=[
                _payload({"customer": str(sub.account.customer.public_id)}, metric.code, external_id="x"),
                _payload({"subscription": str(plain_sub.public_id)}, metric.code, external_id="y"),
                _payload(
                    {"customer": str(sub.account.customer.public_id), "subscription": str(sub.public_id)},
                    metric.code,
                ),
            ],
            mode="good_rows",
        )
        assert result.accepted == 0
        assert [r.fields for r in result.rejected] == [
            {
                "subscription": [
                    f"Several live subscriptions meter '{metric.code}': send the subscription id."
                ]
            },
            {"metric": [f"The subscription's plan has no usage charge on '{metric.code}'."]},
            {"customer": ["give either a customer or a subscription (exactly one)."]},
        ]

    def test_batch_over_the_limit_is_refused(self) -> None:
        with pytest.raises(ValidationFailed) as caught:
            usage_ingest(events=[{}] * 10_001)
        assert caught.value.code == "batch_too_large"


@pytest.mark.usefixtures("frozen")
class TestUsageCsv:
    def test_bad_lines_are_reported_by_line_number(self) -> None:
        sub, metric = metered_subscription()
        customer = sub.account.customer.public_id
        content = (
            "customer,metric,quantity,timestamp,external_id\n"
            f"{customer},{metric.code},3,2026-01-19T08:00:00Z,r1\n"
            f"{customer},{metric.code},-2,2026-01-19T08:00:00Z,r2\n"
            "\n"
            f'{customer},{metric.code},"4",2026-01-19T08:00:00Z,"r3\nsplit"\n'
            f"{customer},{metric.code},1,yesterday,r4\n"
            f"{customer},{metric.code},1\n"
        )
        with pytest.raises(ValidationFailed) as caught:
            usage_ingest_csv(content=content.encode())
        assert caught.value.fields == {
            "line 3": ["quantity: must not be negative (got -2)."],
            "line 7": ["timestamp: 'yesterday' is not an ISO 8601 date and time."],
            "line 8": ["The line has 3 values; the header has 5."],
        }
        assert UsageEvent.objects.count() == 0
        result = usage_ingest_csv(content=content, mode="good_rows")
        assert (result.accepted, [r.index for r in result.rejected]) == (2, [3, 7, 8])
        assert sorted(UsageEvent.objects.values_list("external_id", flat=True)) == ["r1", "r3\nsplit"]

    def test_header_is_checked(self) -> None:
        with pytest.raises(ValidationFailed) as caught:
            usage_ingest_csv(content="customer,metric,qty,timestamp,external_id\n")
        assert caught.value.fields == {"line 1": ["missing column(s): quantity", "unknown column(s): qty"]}


@pytest.mark.usefixtures("frozen")
class TestCurrentUsage:
    def test_value_and_estimate_per_metric_including_late_unbilled(self) -> None:
        calls = MetricFactory(code="api-calls", unit="call")
        seats = MetricFactory(code="seats", aggregation="max")
        version = flat_plan()
        usage_charge(
            version,
            calls,
            model="graduated",
            tiers=[{"up_to": 1000, "unit_amount": "0"}, {"up_to": None, "unit_amount": "0.0004"}],
        )
        usage_charge(version, seats, unit_amount=Decimal("5"), minimum_amount=Decimal("10"))
        sub = subscription(version, start=date(2026, 1, 1))
        event(sub, calls, "3000", _at(5))
        event(sub, calls, "1333", _at(19))
        event(sub, calls, "999", _at(1, month=2))  # next period: not yet
        rows = current_usage(sub)
        assert [(r.metric_code, r.value, r.estimated_amount.amount) for r in rows] == [
            ("api-calls", Decimal("4333"), Decimal("1.33")),
            ("seats", Decimal("0"), Decimal("10.00")),
        ]
        assert estimated_total(rows, "EUR").amount == Decimal("11.33")
        assert [(p.day, p.metric_code, p.value) for p in daily_usage(sub)] == [
            (date(2026, 1, 5), "api-calls", Decimal("3000")),
            (date(2026, 1, 19), "api-calls", Decimal("1333")),
        ]
