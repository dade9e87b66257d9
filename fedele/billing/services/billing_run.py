"""The billing run: every subscription due on or before ``as_of`` gets its period-boundary transition
and its invoice, in batches of set-based statements.

- **Idempotent and resumable.** Each invoice carries ``billing_key = sub:<id>:<date billed>``
  (unique) and is written in the same transaction as the subscription's move to its next billing
  date, so a crashed run loses at most its open batch (rolled back) and a re-run picks up exactly
  what is still due. A subscription that fails is reported in ``errors`` and skipped.
- **Gapless numbers.** A batch reserves one block per series with a single
  ``UPDATE … SET last_value = last_value + n RETURNING`` inside its own transaction: the counter row
  stays locked until the batch commits, and a rollback gives the block back.
- **Period boundary** (contracts): first invoice (period in advance + setup fee), trial end →
  active, ``cancel_at_period_end`` / term end without auto-renew → cancelled (final invoice with the
  ended period's usage and pending charges only), pending change applied, period advanced; every
  state change has a SubscriptionChange row with before/after snapshots.
- **Events.** Outbox rows are bulk-inserted with the batch; after commit one Celery task delivers
  them (the outbox sweep is the safety net), and another e-mails the invoices.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import JSONField, Model, Q

from fedele.billing import usage_aggregation
from fedele.billing.contracts import InvoiceKind, InvoiceStatus, SubscriptionStatus
from fedele.billing.events import InvoicePaid, SubscriptionCancelled, SubscriptionChanged
from fedele.billing.models import (
    BillingAccount,
    BillingRun,
    Coupon,
    CreditEntry,
    Invoice,
    InvoiceLine,
    InvoiceTaxSummary,
    OneOffCharge,
    PlanVersion,
    Product,
    Subscription,
    SubscriptionAddOn,
    SubscriptionChange,
)
from fedele.billing.periods import period_end
from fedele.billing.services import invoice_lines as build
from fedele.billing.services import settlement, vat
from fedele.billing.services.invoicing import (
    BUSINESS_TIME_ZONE,
    business_today,
    customer_snapshots,
    finalised_event,
    number_text,
    series_for,
    totals_for,
    vat_customer,
)
from fedele.billing.snapshots import subscription_snapshot
from fedele.shared import audit, clock, context
from fedele.shared.errors import ApplicationError, Conflict, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent, SequenceCounter

logger = logging.getLogger(__name__)

BATCH_SIZE = 500
MAX_PASSES = 60
"""A subscription many periods behind is invoiced one period per pass (at most this many)."""
STALE_AFTER = timedelta(minutes=2)
SUBSCRIPTION_STATE_FIELDS = (
    "status",
    "plan_id",
    "plan_version_id",
    "quantity",
    "billing_period",
    "current_period_start",
    "current_period_end",
    "next_billing_on",
    "coupon_periods_remaining",
    "cancel_at_period_end",
    "cancelled_at",
    "ended_on",
    "cancellation_reason",
    "pending_change",
)
DUE_STATUSES = (SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE)


def due_filter(as_of: date) -> Q:
    return Q(next_billing_on__isnull=False, next_billing_on__lte=as_of, status__in=DUE_STATUSES)


def business_midnight(day: date) -> datetime:
    """Usage periods end at midnight in the business time zone (Europe/Rome), stored in UTC."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(BUSINESS_TIME_ZONE))


# starting ------------------------------------------------------------------------------------------


def billing_run_start(
    *, as_of: date, actor_id: int | None = None, finalise: bool = True, execute: bool = True
) -> BillingRun:
    """Create a run (refused while another one is alive) and, after commit, execute it as a task."""
    if isinstance(as_of, datetime) or not isinstance(as_of, date):
        raise ValidationFailed("as_of must be a date.", code="invalid_date", fields={"as_of": "A date."})
    if as_of > business_today():
        raise ValidationFailed(
            "A billing run cannot be dated in the future.",
            code="future_billing_run",
            fields={"as_of": "Must be today or earlier."},
        )
    now = clock.now()
    with transaction.atomic():
        alive = (
            BillingRun.objects.select_for_update()
            .filter(status__in=[BillingRun.Status.PENDING, BillingRun.Status.RUNNING])
            .filter(
                Q(heartbeat_at__isnull=True, created_at__gt=now - STALE_AFTER)
                | Q(heartbeat_at__gt=now - STALE_AFTER)
            )
            .first()
        )
        if alive is not None:
            raise Conflict(f"Billing run {alive.pk} is still running.", code="billing_run_in_progress")
        run = BillingRun.objects.create(
            as_of=as_of,
            finalise=finalise,
            started_by_id=actor_id,
            subscriptions_due=Subscription.objects.filter(due_filter(as_of)).count(),
            created_at=now,
        )
        audit.record(
            action="billing.billing_run_started",
            object_type="billing.billing_run",
            object_id=str(run.public_id),
            after={"as_of": as_of, "finalise": finalise, "subscriptions_due": run.subscriptions_due},
            actor_id=actor_id,
        )
        if execute:
            from fedele.billing.tasks import execute_billing_run

            run_id = run.pk
            transaction.on_commit(lambda: execute_billing_run.delay(run_id))
    return run


def billing_run_latest_resumable(as_of: date | None = None) -> BillingRun | None:
    """A run that crashed (stale heartbeat) or failed, to be resumed rather than started anew."""
    runs = BillingRun.objects.filter(
        Q(status=BillingRun.Status.FAILED)
        | Q(
            status__in=[BillingRun.Status.RUNNING, BillingRun.Status.PENDING],
            heartbeat_at__lt=clock.now() - STALE_AFTER,
        )
        | Q(
            status=BillingRun.Status.PENDING,
            heartbeat_at__isnull=True,
            created_at__lt=clock.now() - STALE_AFTER,
        )
    )
    if as_of is not None:
        runs = runs.filter(as_of=as_of)
    return runs.order_by("-id").first()


# executing -----------------------------------------------------------------------------------------


def billing_run_execute(
    run_id: int,
    *,
    batch_size: int = BATCH_SIZE,
    on_progress: Callable[[BillingRun], None] | None = None,
) -> BillingRun:
    """Process every due subscription; safe to call again on a crashed or failed run."""
    now = clock.now()
    claimed = (
        BillingRun.objects.filter(pk=run_id)
        .exclude(status=BillingRun.Status.COMPLETED)
        .update(status=BillingRun.Status.RUNNING, heartbeat_at=now, finished_at=None)
    )
    run = BillingRun.objects.get(pk=run_id)
    if not claimed:
        return run
    if run.started_at is None:
        BillingRun.objects.filter(pk=run_id).update(started_at=now)
    processor = _Processor(run)
    try:
        for _pass in range(MAX_PASSES):
            found = False
            last_id = 0
            while True:
                ids = list(
                    Subscription.objects.filter(due_filter(run.as_of), pk__gt=last_id)
                    .exclude(pk__in=processor.failed_ids)
                    .order_by("pk")
                    .values_list("pk", flat=True)[:batch_size]
                )
                if not ids:
                    break
                found = True
                last_id = ids[-1]
                processor.process(ids)
                if on_progress is not None:
                    on_progress(BillingRun.objects.get(pk=run_id))
            if not found:
                break
    except Exception:
        logger.exception("Billing run %s failed", run_id)
        BillingRun.objects.filter(pk=run_id).update(status=BillingRun.Status.FAILED, heartbeat_at=clock.now())
        raise
    BillingRun.objects.filter(pk=run_id).update(
        status=BillingRun.Status.COMPLETED, finished_at=clock.now(), heartbeat_at=clock.now()
    )
    run.refresh_from_db()
    audit.record(
        action="billing.billing_run_completed",
        object_type="billing.billing_run",
        object_id=str(run.public_id),
        after={
            "subscriptions_processed": run.subscriptions_processed,
            "invoices_created": run.invoices_created,
            "errors": len(run.errors),
        },
        actor_id=run.started_by_id,
    )
    return run


def reserve_numbers(series: str, count: int) -> int:
    """Reserve ``count`` consecutive numbers of ``series`` in the caller's transaction; returns the
    first. One statement, so concurrent batches queue on the counter row and never interleave."""
    table = SequenceCounter._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (series, last_value) VALUES (%s, 0) ON CONFLICT (series) DO NOTHING",  # noqa: S608
            [series],
        )
        cursor.execute(
            f"UPDATE {table} SET last_value = last_value + %s WHERE series = %s RETURNING last_value",  # noqa: S608
            [count, series],
        )
        row = cursor.fetchone()
    assert row is not None
    return int(row[0]) - count + 1


def flat_payload(event: Any) -> dict[str, Any]:
    """``event.to_payload()`` for events whose fields are all strings (no conversion needed):
    skips dataclasses.asdict's deep copy, which is measurable over 100,000 invoices."""
    return {item.name: getattr(event, item.name) for item in dataclass_fields(event)}


def fast_insert(
    model: type[Model], rows: Sequence[Model] | Sequence[dict[str, Any]], *, with_ids: bool = False
) -> None:
    """Insert many rows (model instances, or dicts of attname → value with the fields' defaults for
    the rest): PostgreSQL COPY, with ids drawn from the table's sequence first when the caller needs
    them; bulk_create elsewhere. Django's bulk_create spends most of a large run building model
    instances and adapting parameters; COPY streams plain values."""
    if not rows:
        return
    if connection.vendor != "postgresql":
        objects = [model(**row) if isinstance(row, dict) else row for row in rows]
        model.objects.bulk_create(objects, batch_size=1000)  # type: ignore[attr-defined]
        return
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if with_ids:
            cursor.execute(
                "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                [table, len(rows)],
            )
            for row, (pk,) in zip(rows, cursor.fetchall(), strict=True):
                assert isinstance(row, Model)
                row.pk = pk
        fields = [field for field in model._meta.concrete_fields if with_ids or not field.primary_key]
        json_fields = {field.attname for field in fields if isinstance(field, JSONField)}
        columns = ", ".join(connection.ops.quote_name(str(field.column)) for field in fields)
        sql = f"COPY {connection.ops.quote_name(table)} ({columns}) FROM STDIN"
        with cursor.cursor.copy(sql) as copy:
            for row in rows:
                values = []
                for field in fields:
                    if isinstance(row, dict):
                        value = row[field.attname] if field.attname in row else field.get_default()
                    else:
                        value = getattr(row, field.attname)
                    if field.attname in json_fields and value is not None:
                        value = json.dumps(value, cls=DjangoJSONEncoder)
                    values.append(value)
                copy.write_row(values)


@dataclass(slots=True)
class _Planned:
    subscription: Subscription
    due: date
    lines: list[build.DraftLine]
    period: tuple[date, date]
    changes: list[dict[str, Any]] = field(default_factory=list)
    events: list[Any] = field(default_factory=list)
    one_off_ids: list[int] = field(default_factory=list)
    usage_until: date | None = None
    ended_period: tuple[date, date] | None = None
    absorb_usage_until: date | None = None
    invoice: Invoice | None = None


class _Processor:
    def __init__(self, run: BillingRun) -> None:
        self.run = run
        self.failed_ids: set[int] = {
            int(error["subscription_id"]) for error in run.errors or [] if "subscription_id" in error
        }
        self.prices: dict[int, build.VersionPrices] = {}
        self.cache = build.PriceCache(self.prices)
        self.coupons: dict[int, Coupon] = {}
        self.products: dict[int, Product] = {}
        self._snapshots: dict[tuple[Any, ...], dict[str, Any]] = {}
        self._received_before = clock.now()
        self._usage_subscriptions: set[int] = set()
        self.now = clock.now()
        self.today = business_today()
        self.actor_label = context.current().actor_label[:200]

    # loading -----------------------------------------------------------------------------------
    def _load_versions(self, version_ids: set[int]) -> None:
        missing = version_ids - set(self.prices)
        if missing:
            versions = (
                PlanVersion.objects.filter(pk__in=missing)
                .select_related("plan__product")
                .prefetch_related("charges__plan_version")
            )
            self.prices.update(build.version_prices(versions))

    def _load_coupons(self, coupon_ids: set[int]) -> None:
        missing = coupon_ids - set(self.coupons)
        if missing:
            self.coupons.update({coupon.pk: coupon for coupon in Coupon.objects.filter(pk__in=missing)})

    def _load_products(self, product_ids: set[int]) -> None:
        missing = product_ids - set(self.products)
        if missing:
            self.products.update({p.pk: p for p in Product.objects.filter(pk__in=missing)})

    # one batch ---------------------------------------------------------------------------------
    def process(self, ids: Sequence[int]) -> None:
        try:
            self._process(ids)
        except Exception as error:
            if len(ids) == 1:
                self._record_errors({ids[0]: f"{type(error).__name__}: {error}"}, processed=1)
                return
            logger.warning(
                "Billing run %s: batch of %s failed (%s); retrying one by one", self.run.pk, len(ids), error
            )
            for subscription_id in ids:
                self.process([subscription_id])

    def _record_errors(self, errors: dict[int, str], *, processed: int) -> None:
        with transaction.atomic():
            run = BillingRun.objects.select_for_update().get(pk=self.run.pk)
            run.errors = [
                *(run.errors or []),
                *({"subscription_id": sid, "error": text[:500]} for sid, text in errors.items()),
            ]
            run.subscriptions_processed += processed
            run.heartbeat_at = clock.now()
            run.save(update_fields=["errors", "subscriptions_processed", "heartbeat_at"])
        self.failed_ids.update(errors)

    def _process(self, ids: Sequence[int]) -> None:
        self.now = clock.now()
        with transaction.atomic():
            subscriptions = list(
                Subscription.objects.select_for_update()
                .filter(due_filter(self.run.as_of), pk__in=ids)
                .order_by("pk")
            )
            errors: dict[int, str] = {}
            planned = self._plan_all(subscriptions, errors)
            invoices = self._write(planned)
            run = BillingRun.objects.select_for_update().get(pk=self.run.pk)
            if errors:
                run.errors = [
                    *(run.errors or []),
                    *({"subscription_id": sid, "error": text[:500]} for sid, text in errors.items()),
                ]
            run.subscriptions_processed += len(subscriptions)
            run.invoices_created += len(invoices)
            run.heartbeat_at = clock.now()
            run.save(update_fields=["errors", "subscriptions_processed", "invoices_created", "heartbeat_at"])
            invoice_ids = [invoice.pk for invoice in invoices if invoice.status != InvoiceStatus.DRAFT]
            event_ids = self._event_ids
            transaction.on_commit(lambda: _after_batch(invoice_ids, event_ids))
        self.failed_ids.update(errors)

    def _plan_all(self, subscriptions: list[Subscription], errors: dict[int, str]) -> list[_Planned]:
        if not subscriptions:
            return []
        sub_ids = [sub.pk for sub in subscriptions]
        account_ids = {sub.account_id for sub in subscriptions}
        addons: dict[int, list[SubscriptionAddOn]] = defaultdict(list)
        for addon in SubscriptionAddOn.objects.filter(subscription_id__in=sub_ids, removed_on__isnull=True):
            addons[addon.subscription_id].append(addon)
        pending_versions = {
            int(sub.pending_change["plan_version_id"])
            for sub in subscriptions
            if isinstance(sub.pending_change, dict) and sub.pending_change.get("plan_version_id")
        }
        self._load_versions(
            {sub.plan_version_id for sub in subscriptions}
            | pending_versions
            | {addon.plan_version_id for rows in addons.values() for addon in rows}
        )
        self._load_coupons({sub.coupon_id for sub in subscriptions if sub.coupon_id})
        accounts = {a.pk: a for a in BillingAccount.objects.filter(pk__in=account_ids)}
        snapshots_by_customer = customer_snapshots([a.customer_id for a in accounts.values()])
        one_offs: dict[int, list[OneOffCharge]] = defaultdict(list)
        for charge in (
            OneOffCharge.objects.select_for_update()
            .filter(account_id__in=account_ids, invoice__isnull=True)
            .order_by("pk")
        ):
            one_offs[charge.account_id].append(charge)
        self._load_products({c.product_id for rows in one_offs.values() for c in rows if c.product_id})
        usage = self._usage(subscriptions)
        planned: list[_Planned] = []
        for sub in subscriptions:
            account = accounts[sub.account_id]
            snapshot = snapshots_by_customer.get(account.customer_id)
            try:
                if snapshot is None:
                    raise ValidationFailed(
                        "The customer of this account no longer exists.", code="customer_not_found"
                    )
                plan = self._plan(sub, account, snapshot, addons.get(sub.pk, []), one_offs, usage)
            except (ApplicationError, ArithmeticError, KeyError, ValueError) as error:
                errors[sub.pk] = f"{getattr(error, 'message', None) or error}"
                continue
            planned.append(plan)
        return planned

    def _usage(self, subscriptions: list[Subscription]) -> dict[int, dict[int, Any]]:
        """{subscription id: {metric id: aggregated quantity}} of the periods that just ended."""
        by_until: dict[date, list[int]] = defaultdict(list)
        for sub in subscriptions:
            if (
                sub.next_billing_on is not None
                and sub.next_billing_on >= sub.current_period_end
                and sub.status != SubscriptionStatus.TRIALING
            ):
                by_until[sub.current_period_end].append(sub.pk)
        result: dict[tuple[int, int], Any] = {}
        # Captured once and passed to mark_billed too: an event arriving in between waits for the
        # next invoice instead of being marked without being counted.
        self._received_before = clock.now()
        for until, ids in by_until.items():
            result.update(
                usage_aggregation.aggregate_unbilled(
                    ids, business_midnight(until), received_before=self._received_before
                )
            )
        by_subscription: dict[int, dict[int, Any]] = defaultdict(dict)
        for (subscription_id, metric_id), value in result.items():
            by_subscription[subscription_id][metric_id] = value
        self._usage_subscriptions = set(by_subscription)
        return by_subscription

    def _attach(self, sub: Subscription) -> None:
        version = self.prices[sub.plan_version_id].version
        sub.plan_version = version
        sub.plan = version.plan
        sub.coupon = self.coupons.get(sub.coupon_id) if sub.coupon_id else None

    def _snapshot(self, sub: Subscription) -> dict[str, Any]:
        """Snapshots repeat across thousands of subscriptions: computed once per distinct state."""
        key = (
            sub.status,
            sub.plan_version_id,
            sub.quantity,
            sub.billing_period,
            sub.coupon_id,
            sub.coupon_periods_remaining if sub.coupon_id else None,
        )
        cached = self._snapshots.get(key)
        if cached is None:
            self._attach(sub)
            cached = self._snapshots[key] = subscription_snapshot(
                sub, self.prices[sub.plan_version_id].recurring
            )
        return dict(cached)

    def _change(
        self, sub: Subscription, kind: str, before: dict[str, Any], effective_on: date, note: str = ""
    ) -> dict[str, Any]:
        return {
            "subscription_id": sub.pk,
            "kind": kind,
            "effective_on": effective_on,
            "before": before,
            "after": self._snapshot(sub),
            "actor_id": self.run.started_by_id,
            "note": note or f"billing run {self.run.pk}",
            "occurred_at": self.now,
        }

    def _plan(
        self,
        sub: Subscription,
        account: BillingAccount,
        snapshot: dict[str, Any],
        addons: list[SubscriptionAddOn],
        one_offs: dict[int, list[OneOffCharge]],
        usage: dict[int, dict[int, Any]],
    ) -> _Planned:
        assert sub.next_billing_on is not None
        due = sub.next_billing_on
        if self.prices[sub.plan_version_id].version.currency != account.currency:
            raise ValidationFailed(
                "The plan's currency differs from the account's.", code="currency_mismatch"
            )
        customer = vat_customer(snapshot)
        regime = vat.regime_for(customer)
        currency = account.currency
        before = self._snapshot(sub)
        plan = _Planned(
            subscription=sub, due=due, lines=[], period=(sub.current_period_start, sub.current_period_end)
        )
        first = False
        bill_recurring = True
        usage_version_id = sub.plan_version_id
        if sub.status == SubscriptionStatus.TRIALING:
            start = sub.trial_end or due
            sub.status = SubscriptionStatus.ACTIVE
            sub.current_period_start = start
            sub.current_period_end = period_end(start, sub.billing_period, sub.billing_anchor_day)
            plan.changes.append(self._change(sub, SubscriptionChange.Kind.TRIAL_ENDED, before, start))
            plan.absorb_usage_until = start
            first = True
        elif due <= sub.current_period_start:
            first = True
        elif due >= sub.current_period_end:
            boundary = sub.current_period_end
            plan.usage_until = boundary
            plan.ended_period = (sub.current_period_start, boundary)
            term_over = not sub.auto_renew and sub.term_end is not None and boundary >= sub.term_end
            if sub.cancel_at_period_end or term_over:
                bill_recurring = False
                plan.period = (sub.current_period_start, boundary)
                sub.status = SubscriptionStatus.CANCELLED
                sub.ended_on = boundary
                sub.cancelled_at = sub.cancelled_at or self.now
                sub.cancel_at_period_end = False
                sub.next_billing_on = None
                reason = sub.cancellation_reason or ("term ended" if term_over else "cancelled at period end")
                sub.cancellation_reason = reason[:300]
                plan.changes.append(
                    self._change(sub, SubscriptionChange.Kind.CANCELLED, before, boundary, reason)
                )
                plan.events.append(
                    SubscriptionCancelled(
                        subscription_id=str(sub.public_id),
                        number=sub.number,
                        customer_id=snapshot["public_id"],
                        plan_code=self.prices[sub.plan_version_id].version.plan.code,
                        ended_on=boundary.isoformat(),
                        reason=reason,
                    )
                )
            else:
                self._apply_pending_change(sub, plan, boundary, str(snapshot["public_id"]))
                renewed_before = self._snapshot(sub)
                sub.current_period_start = boundary
                sub.current_period_end = period_end(boundary, sub.billing_period, sub.billing_anchor_day)
                plan.changes.append(
                    self._change(sub, SubscriptionChange.Kind.RENEWED, renewed_before, boundary)
                )
        else:
            raise ValidationFailed(
                f"next_billing_on {due} falls inside the current period "
                f"{sub.current_period_start} → {sub.current_period_end}.",
                code="inconsistent_subscription",
            )
        lines: list[build.DraftLine] = []
        if bill_recurring:
            plan.period = (sub.current_period_start, sub.current_period_end)
            sub.next_billing_on = sub.current_period_end
            recurring: list[build.DraftLine] = []
            templates = list(self.cache.recurring(sub.plan_version_id, sub.quantity))
            for addon in addons:
                templates += self.cache.recurring(addon.plan_version_id, addon.quantity)
            for template in templates:
                line_vat = self.cache.line_vat(
                    customer, regime, template.product_rate, template.product_nature
                )
                recurring.append(build.draft_from(template, line_vat, plan.period))
            lines += recurring
            if first:
                fee = build.setup_fee_template(self.prices[sub.plan_version_id])
                if fee is not None:
                    lines.append(
                        build.draft_from(
                            fee,
                            self.cache.line_vat(customer, regime, fee.product_rate, fee.product_nature),
                            plan.period,
                        )
                    )
            coupon = self.coupons.get(sub.coupon_id) if sub.coupon_id else None
            if coupon is not None and build.coupon_applies(coupon, sub.coupon_periods_remaining, currency):
                discounts = build.discount_lines(coupon, recurring, currency)
                lines += discounts
                if (
                    discounts
                    and sub.coupon_periods_remaining is not None
                    and coupon.duration != Coupon.Duration.FOREVER
                ):
                    sub.coupon_periods_remaining -= 1
        if plan.usage_until is not None:
            quantities = usage.get(sub.pk, {})
            ended = plan.ended_period
            for template in self.cache.usage(usage_version_id, quantities):
                line_vat = self.cache.line_vat(
                    customer, regime, template.product_rate, template.product_nature
                )
                lines.append(build.draft_from(template, line_vat, ended))
        for charge in one_offs.pop(account.pk, []):
            if charge.currency != currency:
                continue
            product = self.products.get(charge.product_id) if charge.product_id else None
            rate = product.vat_rate if product else charge.vat_rate
            nature = product.vat_nature if product else charge.vat_nature
            template = build.one_off_template(charge, rate, nature)
            lines.append(
                build.draft_from(template, self.cache.line_vat(customer, regime, rate, nature), None)
            )
            plan.one_off_ids.append(charge.pk)
        plan.lines = lines
        plan.invoice = self._invoice(sub, account, snapshot, plan, regime) if lines else None
        sub.updated_at = self.now
        return plan

    def _apply_pending_change(
        self, sub: Subscription, plan: _Planned, boundary: date, customer_public_id: str
    ) -> None:
        change = sub.pending_change
        if not isinstance(change, dict) or not change:
            return
        before = self._snapshot(sub)
        old_code, old_quantity = self.prices[sub.plan_version_id].version.plan.code, sub.quantity
        version_id = int(change.get("plan_version_id") or sub.plan_version_id)
        version = self.prices[version_id].version
        if version.currency != self.prices[sub.plan_version_id].version.currency:
            raise ValidationFailed("The scheduled plan is in another currency.", code="currency_mismatch")
        quantity = Decimal(str(change.get("quantity") or sub.quantity))
        if quantity < 0:
            raise ValidationFailed("The scheduled quantity is negative.", code="invalid_quantity")
        kind = (
            SubscriptionChange.Kind.PLAN_CHANGED
            if version_id != sub.plan_version_id
            else SubscriptionChange.Kind.QUANTITY_CHANGED
        )
        sub.plan_version_id = version_id
        sub.plan_id = version.plan_id
        sub.billing_period = version.plan.billing_period
        sub.quantity = quantity
        sub.pending_change = None
        plan.changes.append(self._change(sub, kind, before, boundary, "scheduled change applied"))
        plan.events.append(
            SubscriptionChanged(
                subscription_id=str(sub.public_id),
                number=sub.number,
                customer_id=customer_public_id,
                change=str(kind),
                old_plan_code=old_code,
                new_plan_code=version.plan.code,
                old_quantity=str(old_quantity),
                new_quantity=str(quantity),
                effective_on=boundary.isoformat(),
            )
        )

    def _invoice(
        self,
        sub: Subscription,
        account: BillingAccount,
        snapshot: dict[str, Any],
        plan: _Planned,
        regime: str,
    ) -> Invoice:
        reverse_charge = regime == vat.CustomerRegime.EU_REVERSE_CHARGE
        totals = totals_for(
            [(line.amount, line.vat_rate, line.vat_nature) for line in plan.lines],
            account.currency,
            reverse_charge=reverse_charge,
        )
        kind = InvoiceKind.INVOICE
        if totals.total < 0:
            kind = InvoiceKind.CREDIT_NOTE
            plan.lines = build.negated(plan.lines)
            totals = totals_for(
                [(line.amount, line.vat_rate, line.vat_nature) for line in plan.lines],
                account.currency,
                reverse_charge=reverse_charge,
            )
        finalise = self.run.finalise
        status = InvoiceStatus.DRAFT
        if finalise:
            status = (
                InvoiceStatus.PAID
                if totals.total == 0 and kind == InvoiceKind.INVOICE
                else InvoiceStatus.FINALISED
            )
        invoice = Invoice(
            kind=kind,
            account_id=account.pk,
            subscription_id=sub.pk,
            billing_run_id=self.run.pk,
            billing_key=f"sub:{sub.pk}:{plan.due.isoformat()}",
            status=status,
            currency=account.currency,
            period_start=plan.period[0],
            period_end=plan.period[1],
            subtotal=totals.subtotal,
            tax_total=totals.tax_total,
            total=totals.total,
            amount_credited=totals.total if kind == InvoiceKind.CREDIT_NOTE and finalise else 0,
            reverse_charge=reverse_charge,
            customer_snapshot=snapshot,
            created_at=self.now,
            updated_at=self.now,
        )
        if finalise:
            invoice.issue_date = self.today
            invoice.fiscal_year = self.today.year
            invoice.due_date = self.today + timedelta(days=account.payment_terms_days)
            invoice.finalised_at = self.now
            if status == InvoiceStatus.PAID:
                invoice.paid_at = self.now
        invoice._fedele_groups = totals.groups  # type: ignore[attr-defined]
        return invoice

    # writing -----------------------------------------------------------------------------------
    def _write(self, planned: list[_Planned]) -> list[Invoice]:
        self._event_ids: list[str] = []
        with_invoice = [plan for plan in planned if plan.invoice is not None]
        invoices = [plan.invoice for plan in with_invoice if plan.invoice is not None]
        existing = set(
            Invoice.objects.filter(billing_key__in=[i.billing_key for i in invoices]).values_list(
                "billing_key", flat=True
            )
        )
        if existing:
            raise Conflict(
                f"Already invoiced: {sorted(str(key) for key in existing)[:5]}", code="already_invoiced"
            )
        self._number(invoices)
        fast_insert(Invoice, invoices, with_ids=True)
        lines: list[dict[str, Any]] = []
        summaries: list[dict[str, Any]] = []
        for plan in with_invoice:
            invoice = plan.invoice
            assert invoice is not None
            lines += [
                {
                    "invoice_id": invoice.pk,
                    "kind": line.kind,
                    "description": line.description,
                    "quantity": line.quantity,
                    "unit_amount": line.unit_amount,
                    "amount": line.amount,
                    "vat_rate": line.vat_rate,
                    "vat_nature": line.vat_nature,
                    "period_start": line.period_start,
                    "period_end": line.period_end,
                    "product_id": line.product_id,
                    "plan_charge_id": line.plan_charge_id,
                    "position": position,
                }
                for position, line in enumerate(plan.lines, start=1)
            ]
            summaries += [
                {
                    "invoice_id": invoice.pk,
                    "vat_rate": group.rate,
                    "vat_nature": group.nature,
                    "taxable_amount": group.taxable,
                    "tax_amount": group.tax,
                    "legal_reference": group.legal_reference,
                }
                for group in invoice._fedele_groups  # type: ignore[attr-defined]
            ]
        fast_insert(InvoiceLine, lines)
        fast_insert(InvoiceTaxSummary, summaries)
        self._update_subscriptions(planned)
        fast_insert(SubscriptionChange, [change for plan in planned for change in plan.changes])
        self._link_one_offs(with_invoice)
        self._mark_usage(planned)
        self._outbox_and_audit(planned)
        self._settle(invoices)
        return invoices

    def _number(self, invoices: list[Invoice]) -> None:
        if not self.run.finalise:
            return
        by_series: dict[tuple[str, int], list[Invoice]] = defaultdict(list)
        for invoice in invoices:
            assert invoice.fiscal_year is not None
            by_series[(invoice.kind, invoice.fiscal_year)].append(invoice)
        for (kind, year), rows in sorted(by_series.items()):
            first = reserve_numbers(series_for(kind, year), len(rows))
            for offset, invoice in enumerate(rows):
                invoice.sequence_number = first + offset
                invoice.number = number_text(kind, year, first + offset)

    def _update_subscriptions(self, planned: list[_Planned]) -> None:
        """Set-based: one UPDATE per distinct new state (a daily run has a handful: one per period
        length and anchor), instead of bulk_update's CASE per row and field."""
        groups: dict[tuple[Any, ...], list[int]] = defaultdict(list)
        for plan in planned:
            sub = plan.subscription
            key = tuple(getattr(sub, name) for name in SUBSCRIPTION_STATE_FIELDS[:-1])
            key += (json.dumps(sub.pending_change, sort_keys=True, default=str),)
            groups[key].append(sub.pk)
        for key, ids in groups.items():
            values = dict(zip(SUBSCRIPTION_STATE_FIELDS[:-1], key[:-1], strict=True))
            values["pending_change"] = json.loads(key[-1])
            Subscription.objects.filter(pk__in=ids).update(**values, updated_at=self.now)

    def _link_one_offs(self, with_invoice: list[_Planned]) -> None:
        by_invoice = {
            plan.invoice.pk: plan.one_off_ids for plan in with_invoice if plan.one_off_ids and plan.invoice
        }
        for invoice_id, charge_ids in by_invoice.items():
            OneOffCharge.objects.filter(pk__in=charge_ids, invoice__isnull=True).update(invoice_id=invoice_id)

    def _mark_usage(self, planned: list[_Planned]) -> None:
        """Only subscriptions that had unbilled usage (or whose trial usage is absorbed) are marked:
        with the same ``received_before`` the others have nothing to mark."""
        groups: dict[date, dict[int, int]] = defaultdict(dict)
        for plan in planned:
            sub_id = plan.subscription.pk
            if plan.invoice is None:
                continue
            if plan.usage_until is not None and sub_id in self._usage_subscriptions:
                groups[plan.usage_until][sub_id] = plan.invoice.pk
            elif plan.absorb_usage_until is not None:
                groups[plan.absorb_usage_until][sub_id] = plan.invoice.pk
        for until, invoice_by_subscription in groups.items():
            usage_aggregation.mark_billed(
                list(invoice_by_subscription),
                business_midnight(until),
                invoice_by_subscription,
                received_before=self._received_before,
            )

    def _outbox_and_audit(self, planned: list[_Planned]) -> None:
        outbox: list[dict[str, Any]] = []
        audit_rows: list[dict[str, Any]] = []
        ctx = context.current()
        for plan in planned:
            for event in plan.events:
                outbox.append(
                    {
                        "event_id": uuid.uuid4(),
                        "event_type": event.event_type,
                        "aggregate_type": "billing.subscription",
                        "aggregate_id": str(plan.subscription.public_id),
                        "payload": event.to_payload(),
                        "occurred_at": self.now,
                    }
                )
            invoice = plan.invoice
            if invoice is None or invoice.status == InvoiceStatus.DRAFT:
                continue
            finalised = finalised_event(invoice)
            outbox.append(
                {
                    "event_id": uuid.uuid4(),
                    "event_type": finalised.event_type,
                    "aggregate_type": "billing.invoice",
                    "aggregate_id": str(invoice.public_id),
                    "payload": flat_payload(finalised),
                    "occurred_at": self.now,
                }
            )
            if invoice.status == InvoiceStatus.PAID:
                paid = InvoicePaid(
                    invoice_id=str(invoice.public_id),
                    number=invoice.number or "",
                    customer_id=str(invoice.customer_snapshot.get("public_id", "")),
                    currency=invoice.currency,
                    total=str(invoice.total),
                    paid_at=self.now.isoformat(),
                )
                outbox.append(
                    {
                        "event_id": uuid.uuid4(),
                        "event_type": paid.event_type,
                        "aggregate_type": "billing.invoice",
                        "aggregate_id": str(invoice.public_id),
                        "payload": flat_payload(paid),
                        "occurred_at": self.now,
                    }
                )
            audit_rows.append(
                {
                    "occurred_at": self.now,
                    "actor_id": self.run.started_by_id,
                    "actor_label": self.actor_label,
                    "action": "billing.invoice_finalised",
                    "object_type": "billing.invoice",
                    "object_id": str(invoice.public_id),
                    "after": {
                        "number": invoice.number,
                        "total": str(invoice.total),
                        "billing_run": self.run.pk,
                    },
                    "ip_address": ctx.ip_address,
                    "user_agent": ctx.user_agent[:300],
                    "request_id": ctx.request_id[:64],
                }
            )
        fast_insert(OutboxEvent, outbox)
        fast_insert(AuditLog, audit_rows)
        self._event_ids = [str(row["event_id"]) for row in outbox]

    def _settle(self, invoices: list[Invoice]) -> None:
        if not self.run.finalise:
            return
        for invoice in invoices:
            if invoice.kind == InvoiceKind.CREDIT_NOTE:
                settlement.account_credit_add(
                    account_id=invoice.account_id,
                    amount=invoice.total,
                    reason=CreditEntry.Reason.CREDIT_NOTE,
                    invoice=invoice,
                    note=f"credit note {invoice.number}",
                )
        account_ids = {
            i.account_id
            for i in invoices
            if i.kind == InvoiceKind.INVOICE and i.status == InvoiceStatus.FINALISED
        }
        with_credit = set(
            BillingAccount.objects.filter(pk__in=account_ids, credit_balance__gt=0).values_list(
                "pk", flat=True
            )
        )
        for invoice in invoices:
            if (
                invoice.account_id in with_credit
                and invoice.kind == InvoiceKind.INVOICE
                and invoice.status == InvoiceStatus.FINALISED
            ):
                settlement.account_credit_apply(invoice=invoice)


def _after_batch(invoice_ids: list[int], event_ids: list[str]) -> None:
    from fedele.billing.tasks import deliver_invoices, dispatch_events

    try:
        if event_ids:
            dispatch_events.delay(event_ids)
        if invoice_ids:
            deliver_invoices.delay(invoice_ids)
    except Exception:
        logger.exception("Could not enqueue post-run work; the outbox and delivery sweeps will catch up")
