"""Import customers and subscriptions from a Stripe-style CSV export.

Columns (Stripe's subscription export): ``id, customer, customer_email, customer_name, plan,
quantity, status, current_period_start, current_period_end, created, trial_end,
cancel_at_period_end`` and optionally ``currency``. ``plan`` is a Stripe price id, mapped to one of
our plan codes by ``price_map``; the subscription gets the latest published version of that plan in
the row's currency (EUR when absent). Customers are matched by e-mail or created.

The import runs every row for real inside a transaction and reports every bad row with its line
number (the header is line 1). A dry run always rolls back, so it predicts exactly what a real run
does. ``mode``: ``all_or_nothing`` commits only when every row is good; ``valid_rows`` commits the
good rows (each row in its own savepoint) and reports the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from django.db import transaction

from fedele.accounts.facade import Actor
from fedele.billing.contracts import LIVE_SUBSCRIPTION_STATUSES, SubscriptionStatus
from fedele.billing.events import SubscriptionStarted
from fedele.billing.models import PlanVersion, Subscription, SubscriptionChange
from fedele.billing.services import subscription_rules as rules
from fedele.billing.services.accounts import billing_account_for_customer
from fedele.customers.facade import create_customer, find_customer_by_email
from fedele.shared import audit, clock, events, sequences
from fedele.shared.csvfiles import csv_lines
from fedele.shared.errors import ApplicationError, PermissionDenied, ValidationFailed

REQUIRED_COLUMNS = ("id", "customer_email", "plan", "status", "current_period_start", "current_period_end")
MODES = ("all_or_nothing", "valid_rows")
MAX_ROWS = 20_000
STATUS_MAP = {
    "active": SubscriptionStatus.ACTIVE,
    "trialing": SubscriptionStatus.TRIALING,
    "past_due": SubscriptionStatus.PAST_DUE,
    "unpaid": SubscriptionStatus.PAST_DUE,
    "paused": SubscriptionStatus.PAUSED,
    "canceled": SubscriptionStatus.CANCELLED,
    "cancelled": SubscriptionStatus.CANCELLED,
}


@dataclass
class RowError:
    line: int
    field: str
    message: str


@dataclass
class ImportReport:
    total_rows: int = 0
    valid_rows: int = 0
    customers_created: int = 0
    customers_matched: int = 0
    subscriptions_created: int = 0
    committed: bool = False
    dry_run: bool = True
    mode: str = "all_or_nothing"
    errors: list[RowError] = field(default_factory=list)

    @property
    def invalid_rows(self) -> int:
        return self.total_rows - self.valid_rows


class _Rollback(Exception):
    """Raised to undo the import's transaction (dry run, or all-or-nothing with bad rows)."""


def _date(value: str, name: str) -> date:
    text = (value or "").strip()
    if not text:
        raise ValidationFailed(f"{name} is required.", fields={name: "is required."})
    if text.isdigit():
        return datetime.fromtimestamp(int(text), tz=UTC).date()
    try:
        return date.fromisoformat(text[:10])
    except ValueError as error:
        raise ValidationFailed(
            f"'{text}' is not a date.", fields={name: "use YYYY-MM-DD or a Unix timestamp."}
        ) from error


def _truthy(value: str) -> bool:
    return (value or "").strip().lower() in {"true", "1", "yes", "y"}


def _version_for(
    price_id: str,
    currency: str,
    price_map: Mapping[str, str],
    cache: dict[tuple[str, str], PlanVersion | None],
) -> PlanVersion:
    plan_code = price_map.get(price_id)
    if not plan_code:
        raise ValidationFailed(
            f"No plan is mapped to the price '{price_id}'.", fields={"plan": "unmapped price id."}
        )
    key = (plan_code, currency)
    if key not in cache:
        cache[key] = (
            PlanVersion.objects.select_related("plan", "plan__product")
            .filter(plan__code=plan_code, currency=currency, published_at__isnull=False)
            .order_by("-version")
            .first()
        )
    version = cache[key]
    if version is None:
        raise ValidationFailed(
            f"The plan '{plan_code}' has no published version in {currency}.",
            fields={"plan": f"no published {currency} version of {plan_code}."},
        )
    return version


def _customer(actor: Actor, row: Mapping[str, str], report: ImportReport) -> str:
    email = (row.get("customer_email") or "").strip()
    found = find_customer_by_email(email) if email else None
    if found is not None:
        report.customers_matched += 1
        return str(found.public_id)
    name = (row.get("customer_name") or "").strip()
    first, _space, last = name.partition(" ")
    created = create_customer(
        actor=actor,
        data={
            "kind": "person",
            "first_name": first if last else "",
            "last_name": last or first,
            "email": email,
            "language": "it",
            "segment": "consumer",
            "country": "IT",
        },
        source="billing_import",
    )
    report.customers_created += 1
    return str(created.public_id)


def _import_row(
    actor: Actor,
    row: Mapping[str, str],
    price_map: Mapping[str, str],
    cache: dict[tuple[str, str], PlanVersion | None],
    report: ImportReport,
) -> None:
    external_id = (row.get("id") or "").strip()
    if not external_id:
        raise ValidationFailed("The subscription id is required.", fields={"id": "is required."})
    if Subscription.objects.filter(external_reference=external_id).exists():
        raise ValidationFailed(f"{external_id} was already imported.", fields={"id": "already imported."})
    status = STATUS_MAP.get((row.get("status") or "").strip().lower())
    if status is None:
        raise ValidationFailed(
            f"The status '{row.get('status')}' cannot be imported.",
            fields={"status": "must be active, trialing, past_due, unpaid, paused or canceled."},
        )
    quantity = rules.validated_quantity((row.get("quantity") or "1").strip())
    start = _date(row.get("current_period_start", ""), "current_period_start")
    end = _date(row.get("current_period_end", ""), "current_period_end")
    if end <= start:
        raise ValidationFailed(
            "The period must end after it starts.", fields={"current_period_end": "before start."}
        )
    created = _date(row["created"], "created") if (row.get("created") or "").strip() else start
    trial_end = _date(row["trial_end"], "trial_end") if (row.get("trial_end") or "").strip() else None
    currency = (row.get("currency") or "EUR").strip().upper() or "EUR"
    version = _version_for((row.get("plan") or "").strip(), currency, price_map, cache)
    customer_id = _customer(actor, row, report)
    account = billing_account_for_customer(customer_public_id=customer_id, currency=currency)
    if account.currency != currency:
        raise ValidationFailed(
            f"The customer is billed in {account.currency}, the subscription in {currency}.",
            code="currency_mismatch",
            fields={"currency": f"must be {account.currency}."},
        )
    live = status in LIVE_SUBSCRIPTION_STATUSES
    now = clock.now()
    subscription = Subscription.objects.create(
        number=sequences.next_number("SUB"),
        account=account,
        plan=version.plan,
        plan_version=version,
        quantity=quantity,
        status=status,
        billing_period=version.plan.billing_period,
        billing_anchor_day=end.day if status != SubscriptionStatus.TRIALING else start.day,
        started_on=created,
        trial_end=trial_end,
        current_period_start=start,
        current_period_end=end,
        # The current period was billed by the previous system: we bill from its end.
        next_billing_on=end if live else None,
        cancel_at_period_end=_truthy(row.get("cancel_at_period_end", "")) and live,
        ended_on=end if status == SubscriptionStatus.CANCELLED else None,
        cancelled_at=now if status == SubscriptionStatus.CANCELLED else None,
        paused_on=start if status == SubscriptionStatus.PAUSED else None,
        external_reference=external_id[:100],
        created_at=now,
        updated_at=now,
    )
    rules.history(
        subscription,
        SubscriptionChange.Kind.CREATED,
        effective_on=created,
        before=None,
        actor_id=actor.user_id,
        note=f"imported from {external_id}",
    )
    audit.record(
        action="billing.subscription.imported",
        object_type="subscription",
        object_id=str(subscription.public_id),
        after={"external_reference": external_id, "status": status, "plan": version.plan.code},
        actor_id=actor.user_id,
    )
    if live:
        events.publish(
            SubscriptionStarted(
                subscription_id=str(subscription.public_id),
                number=subscription.number,
                customer_id=customer_id,
                plan_code=version.plan.code,
                quantity=str(quantity),
                started_on=created.isoformat(),
                trial_end=trial_end.isoformat() if trial_end else None,
            ),
            aggregate_type="subscription",
            aggregate_id=str(subscription.public_id),
        )
    report.subscriptions_created += 1


def _rows(content: bytes) -> list[dict[str, str]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValidationFailed(
            "The file is not UTF-8 text.", code="invalid_file", fields={"file": "not UTF-8."}
        ) from error
    numbered = csv_lines(text)
    fieldnames = [name.strip() for name in next(numbered, (1, []))[1]]
    columns = set(fieldnames)
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise ValidationFailed(
            f"Missing columns: {', '.join(missing)}.",
            code="invalid_file",
            fields={"file": f"missing {missing}"},
        )
    rows = [
        {name: (row[index] if index < len(row) else "") for index, name in enumerate(fieldnames) if name}
        for _line, row in numbered
        if any(cell.strip() for cell in row)
    ]
    if len(rows) > MAX_ROWS:
        raise ValidationFailed(
            f"At most {MAX_ROWS} rows per file.", code="invalid_file", fields={"file": "too long."}
        )
    return rows


def subscriptions_import(
    *,
    actor: Actor,
    content: bytes,
    price_map: Mapping[str, str],
    dry_run: bool = True,
    mode: str = "all_or_nothing",
) -> ImportReport:
    if mode not in MODES:
        raise ValidationFailed(
            "Unknown import mode.", fields={"mode": "must be all_or_nothing or valid_rows."}
        )
    if not (actor.is_internal and actor.can("billing.manage_billing")):
        raise PermissionDenied("You do not have permission to import subscriptions.")
    rows = _rows(content)
    report = ImportReport(total_rows=len(rows), dry_run=dry_run, mode=mode)
    cache: dict[tuple[str, str], PlanVersion | None] = {}
    seen: dict[str, int] = {}
    try:
        with transaction.atomic():
            for index, row in enumerate(rows, start=2):
                external_id = (row.get("id") or "").strip()
                if external_id and external_id in seen:
                    report.errors.append(RowError(index, "id", f"repeats line {seen[external_id]}."))
                    continue
                seen[external_id] = index
                counts = (report.customers_created, report.customers_matched)
                try:
                    with transaction.atomic():
                        _import_row(actor, row, price_map, cache, report)
                    report.valid_rows += 1
                except ApplicationError as error:
                    report.customers_created, report.customers_matched = counts
                    fields: dict[str, Any] = error.fields or {"__all__": [error.message]}
                    for name, messages in fields.items():
                        report.errors.append(RowError(index, name, " ".join(messages)))
            if dry_run or (mode == "all_or_nothing" and report.errors):
                raise _Rollback
            report.committed = True
    except _Rollback:
        report.committed = False
        if not dry_run:
            # Nothing was kept: a refused all-or-nothing import created nothing.
            report.subscriptions_created = report.customers_created = 0
    return report


def valid_price_map(raw: Mapping[str, Any]) -> dict[str, str]:
    """A price map as sent by a form or an API client: {"price_123": "plan-code", ...}."""
    result: dict[str, str] = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key.strip() or not value.strip():
            raise ValidationFailed(
                "The price map pairs Stripe price ids with plan codes.",
                fields={"price_map": 'use {"price_id": "plan_code"}.'},
            )
        result[key.strip()] = value.strip()
    return result


__all__ = ["ImportReport", "RowError", "subscriptions_import", "valid_price_map"]
