"""Usage ingestion: validate a batch of events, resolve them to subscriptions, store them once.

Each event: ``external_id`` (the sender's idempotency id), ``customer`` (customer public id) or
``subscription`` (subscription public id), ``metric`` (code), ``quantity`` (>= 0), ``timestamp``
(ISO 8601 with a zone) and optional ``properties``. An event sent for a customer is metered on the
customer's one live subscription whose plan version has a usage charge on that metric.

Duplicates (same account and external id, in the database or earlier in the same batch) are
ignored and counted, never an error. Storage is one multi-row ``INSERT ... ON CONFLICT DO NOTHING
RETURNING id`` per chunk, so a concurrent batch carrying the same id cannot store it twice.

Time window: an event older than ``FEDELE_USAGE_MAX_AGE_DAYS`` (35) before receipt, or more than
five minutes in the future, is refused. A late event inside the window whose period was already
invoiced is stored unbilled and billed by the subscription's next invoice (usage_aggregation.py).
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from django.conf import settings
from django.db import connection, transaction

from fedele.billing.contracts import LIVE_SUBSCRIPTION_STATUSES
from fedele.billing.models import BillingAccount, Metric, PlanCharge, Subscription, UsageEvent
from fedele.shared import audit, clock
from fedele.shared.csvfiles import csv_lines
from fedele.shared.errors import ValidationFailed

IngestMode = Literal["all_or_nothing", "good_rows"]
MAX_BATCH = 10_000
FUTURE_TOLERANCE = timedelta(minutes=5)
MAX_QUANTITY = Decimal("99999999999999.999999")
INSERT_CHUNK = 1000
BAD_WIDTH = "__line_width__"
CSV_COLUMNS = ("customer", "metric", "quantity", "timestamp", "external_id")


def max_age() -> timedelta:
    return timedelta(days=int(getattr(settings, "FEDELE_USAGE_MAX_AGE_DAYS", 35)))


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    index: int
    """Position in the batch (0-based); for a CSV upload, the line number (header = line 1)."""
    reason: str
    fields: dict[str, list[str]]


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: list[RejectedEvent] = field(default_factory=list)


@dataclass(slots=True)
class _Parsed:
    index: int
    external_id: str
    customer: str
    subscription: str
    metric: str
    quantity: Decimal
    occurred_at: datetime
    properties: dict[str, Any]


def _parse_quantity(value: Any, errors: dict[str, list[str]]) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
        errors["quantity"] = ["must be a number."]
        return Decimal(0)
    try:
        quantity = Decimal(str(value).strip())
    except InvalidOperation:
        errors["quantity"] = [f"'{value}' is not a number."]
        return Decimal(0)
    if not quantity.is_finite():
        errors["quantity"] = ["must be a finite number."]
    elif quantity < 0:
        errors["quantity"] = [f"must not be negative (got {quantity})."]
    elif quantity > MAX_QUANTITY:
        errors["quantity"] = [f"must not exceed {MAX_QUANTITY}."]
    elif quantity.as_tuple().exponent < -6:  # type: ignore[operator]
        errors["quantity"] = ["may have at most 6 decimal places."]
    return quantity


def _parse_timestamp(value: Any, now: datetime, errors: dict[str, list[str]]) -> datetime:
    if not isinstance(value, str) or not value.strip():
        errors["timestamp"] = ["is required (ISO 8601 with a time zone)."]
        return now
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        errors["timestamp"] = [f"'{value}' is not an ISO 8601 date and time."]
        return now
    if moment.tzinfo is None or moment.utcoffset() is None:
        errors["timestamp"] = ["must carry a time zone (e.g. 2026-01-31T23:59:00+01:00 or ...Z)."]
        return now
    if moment > now + FUTURE_TOLERANCE:
        errors["timestamp"] = ["is in the future (more than 5 minutes ahead)."]
    elif moment < now - max_age():
        errors["timestamp"] = [f"is older than the {max_age().days}-day limit for late usage."]
    return moment


def _text(value: Any, name: str, limit: int, errors: dict[str, list[str]], *, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            errors[name] = ["is required."]
        return ""
    if not isinstance(value, str):
        errors[name] = ["must be a string."]
        return ""
    text = value.strip()
    if required and not text:
        errors[name] = ["is required."]
    elif len(text) > limit:
        errors[name] = [f"must be at most {limit} characters."]
    elif "\x00" in text:
        errors[name] = ["must not contain NUL characters."]
    return text


@functools.lru_cache(maxsize=4096)
def _is_uuid(value: str) -> bool:
    """Cached: a batch names the same few customers or subscriptions thousands of times."""
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _parse(index: int, raw: Mapping[str, Any], now: datetime) -> tuple[_Parsed | None, RejectedEvent | None]:
    errors: dict[str, list[str]] = {}
    if not isinstance(raw, Mapping):
        return None, RejectedEvent(index, "The event must be an object.", {"__all__": ["must be an object."]})
    if BAD_WIDTH in raw:
        return None, RejectedEvent(index, str(raw[BAD_WIDTH]), {"__all__": [str(raw[BAD_WIDTH])]})
    unknown = sorted(
        set(raw)
        - {"external_id", "customer", "subscription", "metric", "quantity", "timestamp", "properties"}
    )
    for name in unknown:
        errors[str(name)] = ["Unknown field."]
    external_id = _text(raw.get("external_id"), "external_id", 120, errors)
    customer = _text(raw.get("customer"), "customer", 36, errors, required=False)
    subscription = _text(raw.get("subscription"), "subscription", 36, errors, required=False)
    if bool(customer) == bool(subscription) and "customer" not in errors and "subscription" not in errors:
        errors["customer"] = ["give either a customer or a subscription (exactly one)."]
    for name, value in (("customer", customer), ("subscription", subscription)):
        if value and name not in errors and not _is_uuid(value):
            errors[name] = [f"'{value}' is not a valid id."]
    metric = _text(raw.get("metric"), "metric", 64, errors)
    quantity = _parse_quantity(raw.get("quantity"), errors)
    occurred_at = _parse_timestamp(raw.get("timestamp"), now, errors)
    properties = raw.get("properties") or {}
    if not isinstance(properties, Mapping):
        errors["properties"] = ["must be an object."]
        properties = {}
    if errors:
        return None, RejectedEvent(index, _summary(errors), errors)
    parsed = _Parsed(
        index,
        external_id,
        customer.lower(),
        subscription.lower(),
        metric,
        quantity,
        occurred_at,
        dict(properties),
    )
    return parsed, None


def _summary(errors: Mapping[str, list[str]]) -> str:
    return "; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items())


@dataclass(slots=True)
class _Target:
    account_id: int
    subscription_id: int
    metric_id: int


class _Resolver:
    """Resolves a whole batch with a few queries: metrics, subscriptions, accounts."""

    def __init__(self, events: Sequence[_Parsed]) -> None:
        self.metrics = dict(
            Metric.objects.filter(code__in={e.metric for e in events}).values_list("code", "id")
        )
        metric_ids = list(self.metrics.values())
        metered = PlanCharge.objects.filter(kind="usage", metric_id__in=metric_ids)
        self.metered_versions: set[tuple[int, int]] = set(metered.values_list("plan_version_id", "metric_id"))
        self.subscriptions = {
            str(public_id): (pk, account_id, version_id)
            for public_id, pk, account_id, version_id in Subscription.objects.filter(
                public_id__in={e.subscription for e in events if e.subscription}
            ).values_list("public_id", "id", "account_id", "plan_version_id")
        }
        customers = {e.customer for e in events if e.customer}
        self.accounts = {
            str(public_id): pk
            for public_id, pk in BillingAccount.objects.filter(customer__public_id__in=customers).values_list(
                "customer__public_id", "id"
            )
        }
        self.live: dict[tuple[int, int], list[int]] = {}
        live_rows = Subscription.objects.filter(
            account_id__in=self.accounts.values(),
            status__in=[status.value for status in LIVE_SUBSCRIPTION_STATUSES],
            plan_version__charges__kind="usage",
            plan_version__charges__metric_id__in=metric_ids,
        ).values_list("account_id", "plan_version__charges__metric_id", "id")
        for account_id, metric_id, subscription_id in live_rows.distinct():
            self.live.setdefault((account_id, metric_id), []).append(subscription_id)

    def resolve(self, event: _Parsed) -> _Target | RejectedEvent:
        metric_id = self.metrics.get(event.metric)
        if metric_id is None:
            return RejectedEvent(
                event.index, f"Unknown metric '{event.metric}'.", {"metric": ["unknown metric."]}
            )
        if event.subscription:
            found = self.subscriptions.get(event.subscription)
            if found is None:
                return RejectedEvent(event.index, "Subscription not found.", {"subscription": ["not found."]})
            subscription_id, account_id, version_id = found
            if (version_id, metric_id) not in self.metered_versions:
                message = f"The subscription's plan has no usage charge on '{event.metric}'."
                return RejectedEvent(event.index, message, {"metric": [message]})
            return _Target(account_id, subscription_id, metric_id)
        customer_account_id = self.accounts.get(event.customer)
        if customer_account_id is None:
            return RejectedEvent(
                event.index, "Customer has no billing account.", {"customer": ["not found."]}
            )
        candidates = self.live.get((customer_account_id, metric_id), [])
        if not candidates:
            message = f"The customer has no live subscription metering '{event.metric}'."
            return RejectedEvent(event.index, message, {"metric": [message]})
        if len(candidates) > 1:
            message = f"Several live subscriptions meter '{event.metric}': send the subscription id."
            return RejectedEvent(event.index, message, {"subscription": [message]})
        return _Target(customer_account_id, candidates[0], metric_id)


def _insert(rows: list[tuple[Any, ...]]) -> int:
    """Store the rows, skipping (account, external id) pairs already stored; returns how many were new.

    PostgreSQL: COPY into a temporary staging table, then one ``INSERT ... SELECT ... ON CONFLICT DO
    NOTHING RETURNING id`` for the whole batch. SQLite: multi-row VALUES statements of INSERT_CHUNK
    rows with the same ON CONFLICT clause.
    """
    table = UsageEvent._meta.db_table
    columns = (
        "account_id, subscription_id, metric_id, external_id, quantity, occurred_at, properties, received_at"
    )
    conflict = "ON CONFLICT (account_id, external_id) DO NOTHING RETURNING id"
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # COPY (rows streamed by psycopg's C writer) into a per-transaction staging table, then
            # one INSERT ... SELECT with the conflict clause: the dedupe stays in the database and no
            # per-value quoting happens in Python. The caller's transaction wraps all three steps.
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS usage_event_stage ON COMMIT DELETE ROWS AS "  # noqa: S608
                f"SELECT {columns} FROM {table} WITH NO DATA"
            )
            with cursor.cursor.copy(f"COPY usage_event_stage ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM usage_event_stage "  # noqa: S608
                f"ORDER BY account_id, external_id {conflict}"
            )
            inserted = len(cursor.fetchall())
            cursor.execute("TRUNCATE usage_event_stage")
            return inserted
        inserted = 0
        row_sql = "(%s, %s, %s, %s, %s, %s, %s, %s)"
        for start in range(0, len(rows), INSERT_CHUNK):
            chunk = rows[start : start + INSERT_CHUNK]
            values = ", ".join([row_sql] * len(chunk))
            cursor.execute(
                f"INSERT INTO {table} ({columns}) VALUES {values} {conflict}",  # noqa: S608
                [value for row in chunk for value in row],
            )
            inserted += len(cursor.fetchall())
    return inserted


def _prepare(
    events: Sequence[Mapping[str, Any]], now: datetime
) -> tuple[list[tuple[Any, ...]], list[RejectedEvent], int]:
    """(rows to insert, rejected events sorted by index, duplicates inside the batch)."""
    rejected: list[RejectedEvent] = []
    parsed: list[_Parsed] = []
    for index, raw in enumerate(events):
        event, refusal = _parse(index, raw, now)
        if refusal is not None:
            rejected.append(refusal)
        elif event is not None:
            parsed.append(event)
    resolver = _Resolver(parsed) if parsed else None
    rows: list[tuple[Any, ...]] = []
    seen: set[tuple[int, str]] = set()
    in_batch_duplicates = 0
    is_postgres = connection.vendor == "postgresql"
    received_at = now if is_postgres else connection.ops.adapt_datetimefield_value(now)
    for event in parsed:
        assert resolver is not None
        target = resolver.resolve(event)
        if isinstance(target, RejectedEvent):
            rejected.append(target)
            continue
        key = (target.account_id, event.external_id)
        if key in seen:
            in_batch_duplicates += 1
            continue
        seen.add(key)
        rows.append(
            (
                target.account_id,
                target.subscription_id,
                target.metric_id,
                event.external_id,
                event.quantity if is_postgres else str(event.quantity),
                event.occurred_at
                if is_postgres
                else connection.ops.adapt_datetimefield_value(event.occurred_at),
                json.dumps(event.properties, default=str),
                received_at,
            )
        )
    rejected.sort(key=lambda refusal: refusal.index)
    return rows, rejected, in_batch_duplicates


def usage_ingest(
    *,
    events: Sequence[Mapping[str, Any]],
    mode: IngestMode = "all_or_nothing",
    actor_id: int | None = None,
    line_numbers: Sequence[int] | None = None,
) -> IngestResult:
    """Validate, resolve and store a batch. ``all_or_nothing``: any bad event → ValidationFailed
    (422) listing every bad event, nothing stored; ``good_rows``: store the good ones, report the rest.
    ``line_numbers`` (CSV uploads) relabels each rejection with its line number instead of its index."""
    if mode not in ("all_or_nothing", "good_rows"):
        raise ValidationFailed(
            "Unknown mode.", code="invalid_mode", fields={"mode": ["use all_or_nothing or good_rows."]}
        )
    if len(events) > MAX_BATCH:
        raise ValidationFailed(
            f"A batch holds at most {MAX_BATCH} events (got {len(events)}).",
            code="batch_too_large",
            fields={"events": [f"at most {MAX_BATCH} events."]},
        )
    now = clock.now()
    rows, rejected, in_batch_duplicates = _prepare(events, now)
    if line_numbers is not None:
        rejected = [RejectedEvent(line_numbers[r.index], r.reason, r.fields) for r in rejected]
    if rejected and mode == "all_or_nothing":
        what = "lines" if line_numbers is not None else "usage events"
        label = "line {}" if line_numbers is not None else "events[{}]"
        raise ValidationFailed(
            f"{len(rejected)} of {len(events)} {what} are not valid; nothing was stored.",
            code="usage_rejected",
            fields={label.format(r.index): [r.reason] for r in rejected},
        )
    result = IngestResult(rejected=rejected)
    with transaction.atomic():
        result.accepted = _insert(rows) if rows else 0
        result.duplicates = in_batch_duplicates + (len(rows) - result.accepted)
        if result.accepted or result.rejected:
            audit.record(
                action="usage.ingested",
                object_type="usage_batch",
                object_id=str(uuid.uuid4()),
                after={
                    "accepted": result.accepted,
                    "duplicates": result.duplicates,
                    "rejected": len(result.rejected),
                    "mode": mode,
                },
                actor_id=actor_id,
            )
    return result


def usage_ingest_csv(
    *, content: str | bytes, mode: IngestMode = "all_or_nothing", actor_id: int | None = None
) -> IngestResult:
    """A CSV upload ``customer,metric,quantity,timestamp,external_id`` (header on line 1, any column
    order; a ``subscription`` column may replace ``customer``). Rejections carry line numbers."""
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise ValidationFailed(
                "The file is not UTF-8 text.", code="invalid_csv", fields={"file": ["must be UTF-8 text."]}
            ) from error
    numbered = csv_lines(content)
    header = [name.strip().lower() for name in next(numbered, (1, []))[1]]
    missing = [name for name in ("metric", "quantity", "timestamp", "external_id") if name not in header]
    if "customer" not in header and "subscription" not in header:
        missing.insert(0, "customer")
    unknown = [name for name in header if name not in (*CSV_COLUMNS, "subscription")]
    if missing or unknown:
        problems = ([f"missing column(s): {', '.join(missing)}"] if missing else []) + (
            [f"unknown column(s): {', '.join(unknown)}"] if unknown else []
        )
        raise ValidationFailed(
            f"The header must be {','.join(CSV_COLUMNS)} ({'; '.join(problems)}).",
            code="invalid_csv_header",
            fields={"line 1": problems},
        )
    events: list[dict[str, Any]] = []
    lines: list[int] = []
    for start_line, row in numbered:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            events.append({BAD_WIDTH: f"The line has {len(row)} values; the header has {len(header)}."})
        else:
            events.append({name: value for name, value in zip(header, row, strict=True) if value.strip()})
        lines.append(start_line)
    if not events:
        raise ValidationFailed(
            "The file has no usage rows.", code="empty_csv", fields={"file": ["no rows after the header."]}
        )
    return usage_ingest(events=events, mode=mode, actor_id=actor_id, line_numbers=lines)
