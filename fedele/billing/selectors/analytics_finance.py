"""Deferred revenue, receivables ageing and payment behaviour, read from invoices and payments."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import DecimalField, ExpressionWrapper, F, Q
from django.utils import timezone

from fedele.billing.contracts import InvoiceKind, InvoiceStatus
from fedele.billing.models import Invoice, InvoiceLine, Payment
from fedele.billing.selectors.analytics_common import (
    average,
    cents,
    median,
    month_end,
    month_range,
    month_start,
    next_month,
    percent,
    validated_range,
)
from fedele.customers.facade import customer_summaries
from fedele.shared.money import Money

ZERO = Decimal(0)
ISSUED = (InvoiceStatus.FINALISED, InvoiceStatus.PAID)


# deferred revenue --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DeferredMonth:
    month: date
    billed: Decimal
    """Net amount of the invoice lines issued in the month."""
    recognised: Decimal
    """Revenue earned in the month: each line's service days falling in it."""
    deferred_closing: Decimal
    """Billed on or before the month end but earned after it."""


def _days_per_month(period_start: date, period_end: date) -> list[tuple[date, int]]:
    """(month, days of [period_start, period_end) in that month), in order."""
    parts = []
    for month in month_range(period_start, period_end - timedelta(days=1)):
        first = max(month, period_start)
        last = min(next_month(month), period_end)
        parts.append((month, (last - first).days))
    return parts


def recognition_schedule(
    amount: Decimal, currency: str, period_start: date | None, period_end: date | None, issued_on: date
) -> list[tuple[date, Decimal]]:
    """How one invoice line is earned: day-based over its service period, split with
    ``Money.allocate`` so the monthly parts add up to the line exactly; a line without a service
    period is earned on its issue date."""
    if period_start is None or period_end is None or period_end <= period_start:
        return [(month_start(issued_on), amount)]
    parts = _days_per_month(period_start, period_end)
    shares = Money(amount, currency).allocate([days for _, days in parts])
    return [(month, share.amount) for (month, _), share in zip(parts, shares, strict=True)]


def deferred_revenue(*, from_month: date, to_month: date, currency: str = "EUR") -> list[DeferredMonth]:
    """Billed, recognised and deferred revenue per month, from finalised (or paid) invoices' lines.

    Credit notes reduce revenue like negative lines, in the months of the lines they credit (their
    own service periods) or of their issue date. Void invoices and drafts do not count.
    """
    start, end, currency = validated_range(from_month, to_month, currency)
    range_start, range_end = start, month_end(end)
    lines = (
        InvoiceLine.objects.filter(
            invoice__status__in=ISSUED, invoice__currency=currency, invoice__issue_date__isnull=False
        )
        .filter(
            # Earned in the range, or billed by its end and earned later (deferred at a month end).
            Q(period_start__isnull=False, period_end__gt=range_start, period_start__lte=range_end)
            | Q(period_end__gt=range_end, invoice__issue_date__lte=range_end)
            | Q(invoice__issue_date__gte=range_start, invoice__issue_date__lte=range_end)
        )
        .values_list("amount", "period_start", "period_end", "invoice__issue_date", "invoice__kind")
    )
    zero = Money.zero(currency).amount
    billed: dict[date, Decimal] = defaultdict(lambda: zero)
    recognised: dict[date, Decimal] = defaultdict(lambda: zero)
    deferred: dict[date, Decimal] = defaultdict(lambda: zero)
    months = list(month_range(start, end))
    for amount, period_start, period_end, issued_on, kind in lines.iterator(chunk_size=5000):
        assert issued_on is not None  # filtered above
        signed = -abs(amount) if kind == InvoiceKind.CREDIT_NOTE else amount
        billed[month_start(issued_on)] += signed
        schedule = recognition_schedule(signed, currency, period_start, period_end, issued_on)
        for month, share in schedule:
            recognised[month] += share
        issued_month = month_start(issued_on)
        for month in months:
            if month >= issued_month:
                deferred[month] += sum((share for earned, share in schedule if earned > month), zero)
    return [DeferredMonth(month, billed[month], recognised[month], deferred[month]) for month in months]


# receivables ageing ------------------------------------------------------------------------------

AGEING_BUCKETS = ("current", "days_1_30", "days_31_60", "days_61_90", "days_over_90")


def ageing_bucket(days_past_due: int) -> str:
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "days_1_30"
    if days_past_due <= 60:
        return "days_31_60"
    if days_past_due <= 90:
        return "days_61_90"
    return "days_over_90"


@dataclass(frozen=True, slots=True)
class AgeingRow:
    customer_public_id: str
    customer_name: str
    invoices: int
    buckets: dict[str, Decimal]

    @property
    def total(self) -> Decimal:
        return sum(self.buckets.values(), ZERO)


@dataclass(frozen=True, slots=True)
class Ageing:
    as_of: date
    currency: str
    rows: list[AgeingRow]
    totals: dict[str, Decimal]
    invoices: int

    @property
    def total(self) -> Decimal:
        return sum(self.totals.values(), ZERO)


def receivables_ageing(*, as_of: date, currency: str = "EUR") -> Ageing:
    """What customers owe on finalised invoices issued by ``as_of``, by days past the due date
    (an invoice without a due date is current). Amounts are today's amounts due. Two queries."""
    _, _, currency = validated_range(as_of, as_of, currency)
    due = ExpressionWrapper(
        F("total") - F("amount_paid") - F("amount_credited"),
        output_field=DecimalField(max_digits=16, decimal_places=2),
    )
    open_invoices = list(
        Invoice.objects.filter(
            kind=InvoiceKind.INVOICE,
            status=InvoiceStatus.FINALISED,
            currency=currency,
            issue_date__lte=as_of,
        )
        .annotate(due=due)
        .filter(due__gt=0)
        .values_list("account__customer_id", "due_date", "due")
    )
    summaries = customer_summaries(customer_id for customer_id, _, _ in open_invoices)
    per_customer: dict[int, dict[str, Decimal]] = {}
    counts: dict[int, int] = defaultdict(int)
    zero = Money.zero(currency).amount
    totals = dict.fromkeys(AGEING_BUCKETS, zero)
    for customer_id, due_date, due_amount in open_invoices:
        amount = cents(due_amount, currency)  # SQLite returns the computed difference without its scale
        bucket = ageing_bucket((as_of - due_date).days if due_date else 0)
        per_customer.setdefault(customer_id, dict.fromkeys(AGEING_BUCKETS, zero))[bucket] += amount
        counts[customer_id] += 1
        totals[bucket] += amount
    rows = []
    for customer_id, buckets in per_customer.items():
        summary = summaries.get(customer_id)
        rows.append(
            AgeingRow(
                customer_public_id=str(summary.public_id) if summary else "",
                customer_name=summary.display_name if summary else "",
                invoices=counts[customer_id],
                buckets=buckets,
            )
        )
    rows.sort(key=lambda row: (-row.total, row.customer_name))
    return Ageing(as_of=as_of, currency=currency, rows=rows, totals=totals, invoices=len(open_invoices))


# payment behaviour -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PaymentMonth:
    month: date
    invoices_paid: int
    average_days_to_pay: Decimal | None
    median_days_to_pay: Decimal | None
    paid_late: int
    payments_succeeded: int
    payments_failed: int
    payments_pending: int
    failure_rate: Decimal | None
    """failed / (succeeded + failed), in percent; pending attempts are not decided yet."""


@dataclass(frozen=True, slots=True)
class CustomerPaymentRow:
    customer_public_id: str
    customer_name: str
    invoices_paid: int
    average_days_to_pay: Decimal | None
    median_days_to_pay: Decimal | None
    paid_late: int
    payments_failed: int


@dataclass(frozen=True, slots=True)
class PaymentBehaviour:
    months: list[PaymentMonth]
    customers: list[CustomerPaymentRow]


def _paid_invoices(start: date, end: date, currency: str) -> Iterable[tuple[int, date, date | None, date]]:
    """(customer id, day finalised, due date, day paid) of the invoices paid in the range, in the
    business time zone; an invoice finalised before ``finalised_at`` was kept counts from its issue date."""
    tz = timezone.get_default_timezone()
    rows = Invoice.objects.filter(
        kind=InvoiceKind.INVOICE,
        currency=currency,
        paid_at__isnull=False,
        issue_date__isnull=False,
        paid_at__date__gte=start,
        paid_at__date__lte=end,
    ).values_list("account__customer_id", "issue_date", "finalised_at", "due_date", "paid_at")
    for customer_id, issued_on, finalised_at, due_on, paid_at in rows:
        assert issued_on is not None and paid_at is not None  # filtered above
        finalised_on = finalised_at.astimezone(tz).date() if finalised_at else issued_on
        yield customer_id, finalised_on, due_on, paid_at.astimezone(tz).date()


def payment_behaviour(*, from_month: date, to_month: date, currency: str = "EUR") -> PaymentBehaviour:
    """Days to pay (the day finalised → the day the invoice became paid) per month of payment and per
    customer, and payment attempts by outcome (month of ``received_on``). Three queries."""
    start, end, currency = validated_range(from_month, to_month, currency)
    last_day = month_end(end)
    days_by_month: dict[date, list[int]] = defaultdict(list)
    days_by_customer: dict[int, list[int]] = defaultdict(list)
    late_by_month: dict[date, int] = defaultdict(int)
    late_by_customer: dict[int, int] = defaultdict(int)
    for customer_id, finalised_on, due_on, paid_on in _paid_invoices(start, last_day, currency):
        days = max((paid_on - finalised_on).days, 0)
        days_by_month[month_start(paid_on)].append(days)
        days_by_customer[customer_id].append(days)
        if due_on is not None and paid_on > due_on:
            late_by_month[month_start(paid_on)] += 1
            late_by_customer[customer_id] += 1
    attempts: dict[tuple[date, str], int] = defaultdict(int)
    failed_by_customer: dict[int, int] = defaultdict(int)
    for customer_id, received_on, status in Payment.objects.filter(
        currency=currency, received_on__gte=start, received_on__lte=last_day
    ).values_list("account__customer_id", "received_on", "status"):
        attempts[(month_start(received_on), status)] += 1
        if status == Payment.Status.FAILED:
            failed_by_customer[customer_id] += 1
    months = []
    for month in month_range(start, end):
        succeeded = attempts[(month, Payment.Status.SUCCEEDED)]
        failed = attempts[(month, Payment.Status.FAILED)]
        month_days = days_by_month.get(month, [])
        months.append(
            PaymentMonth(
                month=month,
                invoices_paid=len(month_days),
                average_days_to_pay=average(month_days),
                median_days_to_pay=median(month_days),
                paid_late=late_by_month[month],
                payments_succeeded=succeeded,
                payments_failed=failed,
                payments_pending=attempts[(month, Payment.Status.PENDING)],
                failure_rate=percent(failed, succeeded + failed),
            )
        )
    customer_ids = days_by_customer.keys() | failed_by_customer.keys()
    summaries = customer_summaries(customer_ids)
    customers = []
    for customer_id in customer_ids:
        summary = summaries.get(customer_id)
        customer_days = days_by_customer.get(customer_id, [])
        customers.append(
            CustomerPaymentRow(
                customer_public_id=str(summary.public_id) if summary else "",
                customer_name=summary.display_name if summary else "",
                invoices_paid=len(customer_days),
                average_days_to_pay=average(customer_days),
                median_days_to_pay=median(customer_days),
                paid_late=late_by_customer[customer_id],
                payments_failed=failed_by_customer[customer_id],
            )
        )
    customers.sort(key=lambda row: (-(row.average_days_to_pay or ZERO), row.customer_name))
    return PaymentBehaviour(months=months, customers=customers)
