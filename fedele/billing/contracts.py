"""Billing contracts: price models, tiers and charges. Frozen dataclasses; no Django imports.

A Charge is validated when it is built, so a priced charge never meets a malformed tier table.
Every problem is reported at once in one ValidationFailed, keyed by field (``tiers[1].up_to``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from fedele.shared.errors import ValidationFailed
from fedele.shared.money import Money


class PriceModel(StrEnum):
    FLAT = "flat"
    """A fixed amount (``flat_amount``) whatever the quantity."""
    PER_UNIT = "per_unit"
    """``quantity * unit_amount``."""
    GRADUATED = "graduated"
    """Each tier prices only the units that fall inside it; the tier lines add up."""
    VOLUME = "volume"
    """All units are priced at the one tier the total quantity falls in."""
    PACKAGE = "package"
    """``ceil(quantity / package_size) * unit_amount``: a started package is a whole package."""


_TIERED_MODELS = frozenset({PriceModel.GRADUATED, PriceModel.VOLUME})


def _as_amount(value: object, field_name: str, errors: dict[str, list[str]]) -> Decimal | None:
    """A finite, non-negative Decimal, or None after recording why not (floats are refused)."""
    if isinstance(value, bool) or not isinstance(value, (Decimal, int, str)):
        errors.setdefault(field_name, []).append(
            f"must be a Decimal, int or str amount, not {type(value).__name__}."
        )
        return None
    try:
        amount = Decimal(value)
    except (InvalidOperation, ValueError):
        errors.setdefault(field_name, []).append(f"'{value}' is not a valid amount.")
        return None
    if not amount.is_finite():
        errors.setdefault(field_name, []).append(f"'{value}' is not a finite amount.")
        return None
    if amount < 0:
        errors.setdefault(field_name, []).append(f"must not be negative (got {amount}).")
        return None
    return amount


def _raise_if_any(errors: dict[str, list[str]], what: str) -> None:
    if errors:
        summary = "; ".join(f"{name}: {' '.join(messages)}" for name, messages in errors.items())
        raise ValidationFailed(f"Invalid {what}: {summary}", code="invalid_price", fields=errors)


@dataclass(frozen=True, slots=True)
class Tier:
    """One row of a tier table: units up to and including ``up_to`` (None: no upper bound)."""

    up_to: int | None
    unit_amount: Decimal
    flat_amount: Decimal = Decimal(0)

    def __post_init__(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.up_to is not None and (isinstance(self.up_to, bool) or not isinstance(self.up_to, int)):
            errors["up_to"] = [f"must be a whole number of units or None, not {type(self.up_to).__name__}."]
        elif self.up_to is not None and self.up_to <= 0:
            errors["up_to"] = [f"must be greater than zero (got {self.up_to})."]
        unit_amount = _as_amount(self.unit_amount, "unit_amount", errors)
        flat_amount = _as_amount(self.flat_amount, "flat_amount", errors)
        _raise_if_any(errors, "tier")
        object.__setattr__(self, "unit_amount", unit_amount)
        object.__setattr__(self, "flat_amount", flat_amount)


@dataclass(frozen=True, slots=True)
class Charge:
    """How one catalog charge turns a quantity into an amount.

    Which fields a model uses (fields a model does not use must be left unset, so a typo in the
    catalog fails loudly instead of being ignored):

    - flat: ``flat_amount``
    - per_unit: ``unit_amount`` (may carry more decimals than the currency, e.g. 0.0004 per call)
    - graduated / volume: ``tiers``, strictly ascending ``up_to``, the last one open-ended
    - package: ``unit_amount`` (price of one package) and ``package_size``
    - any model: ``minimum_amount``, a commitment the total is topped up to
    """

    model: PriceModel
    currency: str
    unit_amount: Decimal | None = None
    flat_amount: Decimal | None = None
    tiers: tuple[Tier, ...] = ()
    package_size: int | None = None
    minimum_amount: Decimal | None = None

    def __post_init__(self) -> None:
        errors: dict[str, list[str]] = {}
        self._validate_model_and_currency(errors)
        for name in ("unit_amount", "flat_amount", "minimum_amount"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _as_amount(value, name, errors))
        if not isinstance(self.tiers, tuple):
            if isinstance(self.tiers, list):
                object.__setattr__(self, "tiers", tuple(self.tiers))
            else:
                errors["tiers"] = ["must be a tuple of Tier."]
        if self.package_size is not None and (
            isinstance(self.package_size, bool)
            or not isinstance(self.package_size, int)
            or self.package_size <= 0
        ):
            errors["package_size"] = [
                f"must be a whole number greater than zero (got {self.package_size!r})."
            ]
        if "model" not in errors and "tiers" not in errors:
            self._validate_fields_for_model(errors)
        _raise_if_any(errors, "charge")

    def _validate_model_and_currency(self, errors: dict[str, list[str]]) -> None:
        try:
            object.__setattr__(self, "model", PriceModel(self.model))
        except ValueError:
            allowed = ", ".join(model.value for model in PriceModel)
            errors["model"] = [f"'{self.model}' is not a price model (expected one of: {allowed})."]
        try:
            object.__setattr__(self, "currency", Money.zero(str(self.currency)).currency)
        except ValidationFailed:
            errors["currency"] = [f"'{self.currency}' is not an ISO-4217 currency code."]

    def _validate_fields_for_model(self, errors: dict[str, list[str]]) -> None:
        model = self.model
        required = {
            PriceModel.FLAT: {"flat_amount"},
            PriceModel.PER_UNIT: {"unit_amount"},
            PriceModel.GRADUATED: {"tiers"},
            PriceModel.VOLUME: {"tiers"},
            PriceModel.PACKAGE: {"unit_amount", "package_size"},
        }[model]
        for name in ("unit_amount", "flat_amount", "tiers", "package_size"):
            is_set = bool(self.tiers) if name == "tiers" else getattr(self, name) is not None
            if name in required and not is_set and name not in errors:
                errors[name] = [f"is required for the {model.value} price model."]
            elif name not in required and is_set and name not in errors:
                errors[name] = [f"is not used by the {model.value} price model; leave it unset."]
        if model in _TIERED_MODELS and self.tiers:
            self._validate_tiers(errors)

    def _validate_tiers(self, errors: dict[str, list[str]]) -> None:
        previous_up_to = 0
        last_index = len(self.tiers) - 1
        for index, tier in enumerate(self.tiers):
            if not isinstance(tier, Tier):
                errors[f"tiers[{index}]"] = [f"must be a Tier, not {type(tier).__name__}."]
                continue
            if tier.up_to is None:
                if index != last_index:
                    errors[f"tiers[{index}].up_to"] = ["only the last tier may be open-ended (up_to None)."]
                continue
            if index == last_index:
                errors[f"tiers[{index}].up_to"] = [
                    f"the last tier must be open-ended (up_to None), not capped at {tier.up_to}."
                ]
            if tier.up_to <= previous_up_to:
                errors[f"tiers[{index}].up_to"] = [
                    f"tiers must be strictly ascending: {tier.up_to} does not exceed {previous_up_to}."
                ]
            previous_up_to = max(previous_up_to, tier.up_to)


@dataclass(frozen=True, slots=True)
class PricedLine:
    """One line of a priced charge, rounded on its own (ROUND_HALF_UP to the minor unit).

    ``quantity`` is units for per-unit and tier lines, whole packages for package lines, 1 for flat
    and minimum-commitment lines. ``amount`` = round(quantity * unit_amount + flat_amount).
    """

    description: str
    quantity: Decimal
    unit_amount: Decimal
    flat_amount: Decimal
    amount: Money
    tier_index: int | None = None


@dataclass(frozen=True, slots=True)
class PricedCharge:
    """The result of pricing a quantity: ``total`` is exactly the sum of the rounded line amounts."""

    charge: Charge
    quantity: Decimal
    lines: tuple[PricedLine, ...]
    total: Money


@dataclass(frozen=True, slots=True)
class ProrationResult:
    """A mid-period price change: credit for the unused old price, charge for the new one.

    ``net = charge - credit``: positive means the customer owes, negative means a credit.
    ``days_remaining`` is the number of days prorated (0 for a change on a period boundary).
    """

    credit: Money
    charge: Money
    net: Money
    days_remaining: int
    days_in_period: int


# catalog, subscriptions, invoices: the vocabulary other modules may use ---------------------------


class BillingPeriod(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"

    @property
    def months(self) -> int:
        return {"month": 1, "quarter": 3, "year": 12}[self.value]


class ChargeKind(StrEnum):
    RECURRING = "recurring"
    """Billed in advance for each period, per subscription quantity."""
    USAGE = "usage"
    """Billed in arrears from the period's aggregated usage of one metric."""


class UsageAggregation(StrEnum):
    SUM = "sum"
    MAX = "max"
    UNIQUE_COUNT = "unique_count"
    LAST = "last"


class SubscriptionStatus(StrEnum):
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    PAUSED = "paused"
    CANCELLED = "cancelled"


LIVE_SUBSCRIPTION_STATUSES = frozenset(
    {SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE}
)


class InvoiceKind(StrEnum):
    INVOICE = "invoice"
    CREDIT_NOTE = "credit_note"


class InvoiceStatus(StrEnum):
    DRAFT = "draft"
    FINALISED = "finalised"
    PAID = "paid"
    VOID = "void"


class InvoiceLineKind(StrEnum):
    RECURRING = "recurring"
    USAGE = "usage"
    SETUP_FEE = "setup_fee"
    PRORATION_CREDIT = "proration_credit"
    PRORATION_CHARGE = "proration_charge"
    DISCOUNT = "discount"
    ONE_TIME = "one_time"
    ADJUSTMENT = "adjustment"


class VatNature(StrEnum):
    """FatturaPA <Natura> codes for lines without VAT (tracciato 1.2.2)."""

    EXCLUDED_ART15 = "N1"
    NOT_SUBJECT_ART7 = "N2.1"
    NOT_SUBJECT_OTHER = "N2.2"
    NON_TAXABLE_EXPORT = "N3.1"
    NON_TAXABLE_INTRA_EU = "N3.2"
    EXEMPT = "N4"
    MARGIN_SCHEME = "N5"
    REVERSE_CHARGE_OTHER = "N6.9"
    VAT_PAID_IN_OTHER_EU = "N7"


ITALIAN_VAT_RATES = (Decimal("22"), Decimal("10"), Decimal("5"), Decimal("4"), Decimal("0"))


# what the facade returns to other modules ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AccountBalance:
    """A customer's position: ``open_amount`` is owed on finalised invoices, of which
    ``overdue_amount`` is past its due date; ``credit_balance`` is theirs to spend."""

    customer_id: str
    currency: str
    open_amount: Decimal
    overdue_amount: Decimal
    credit_balance: Decimal
    open_invoices: int
    is_suspended: bool


@dataclass(frozen=True, slots=True)
class SubscriptionSummary:
    subscription_id: str
    number: str
    plan_code: str
    plan_name: str
    status: str
    quantity: Decimal
    currency: str
    mrr: Decimal
    current_period_start: date
    current_period_end: date
    next_billing_on: date | None
    cancel_at_period_end: bool
    status_label: str = ""  # the status in words, in the language active when the summary was made


@dataclass(frozen=True, slots=True)
class InvoiceSummary:
    invoice_id: str
    number: str
    kind: str
    status: str
    currency: str
    total: Decimal
    amount_due: Decimal
    issue_date: date | None
    due_date: date | None


@dataclass(frozen=True, slots=True)
class ChargeReceipt:
    """A one-off charge (or credit, when negative) waiting for the customer's next invoice."""

    charge_id: str
    customer_id: str
    description: str
    amount: Decimal
    currency: str
    created: bool
    """False when the idempotency key had already been used: the first charge is returned."""


@dataclass(frozen=True, slots=True)
class CustomerActivity:
    """What a customer did in billing over a window of days (business time zone, both ends included).

    ``invoices_paid`` / ``amount_paid_net`` / ``amount_paid_gross``: EUR invoices (not credit notes)
    whose payment completed in the window, with their net-of-VAT and gross totals; ``first_payment_on``
    / ``last_payment_on`` are the days the first and the last of them were paid.
    ``subscriptions_in_window``: subscriptions live on at least one day of the window;
    ``active_subscriptions_at_end``: those still live at the end of its last day (paused ones count).
    ``cancelled_on``: the customer churned in the window — a subscription ended on that day (the last
    such day) and none was live at the end; ``None`` otherwise."""

    customer_id: str
    invoices_paid: int
    amount_paid_net: Decimal
    amount_paid_gross: Decimal
    first_payment_on: date | None
    last_payment_on: date | None
    subscriptions_in_window: int
    active_subscriptions_at_end: int
    cancelled_on: date | None
