"""The lines of a subscription invoice, computed in memory from preloaded rows (no queries here).

Used by the billing run for thousands of subscriptions at once: prices are computed once per
(plan version, quantity) and reused, VAT once per (customer regime, rate, nature).

Lines of an invoice for a subscription:

- recurring charges of the period billed in advance (plan version and active add-ons), each
  PlanCharge priced with ``pricing.charge_amount`` at the quantity (one line per priced line);
- the setup fee on the subscription's first invoice;
- usage of the ended period in arrears, priced with the charge model of the plan version that was
  in force during that period (zero lines are left out);
- the account's pending one-off charges (proration credits are negative lines);
- coupon discounts: negative, on the recurring lines only, one per VAT group.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_noop

from fedele.billing.contracts import ChargeKind, InvoiceLineKind, PricedLine, PriceModel
from fedele.billing.models import Coupon, OneOffCharge, PlanCharge, PlanVersion
from fedele.billing.pricing import charge_amount
from fedele.billing.services import vat
from fedele.shared.money import Money


def invoice_text(message: str, **values: object) -> str:
    """Line descriptions are written once, in the invoicing language (FEDELE_INVOICE_LANGUAGE, Italian
    by default): an invoice is a legal document, the same text for the clerk, the PDF and FatturaPA."""
    with translation.override(getattr(settings, "FEDELE_INVOICE_LANGUAGE", "it")):
        text = translation.gettext(message)
    return text % values if values else text


def _detail(charge: PlanCharge, line: PricedLine) -> str:
    """What a priced line is, in words of the invoicing language (pricing.py labels are English)."""
    if line.tier_index is not None:
        tiers = charge.tiers or []
        lower = int(tiers[line.tier_index - 1]["up_to"]) if line.tier_index > 0 else 0
        upper = tiers[line.tier_index].get("up_to")
        if upper is None:
            return invoice_text(
                gettext_noop("tier %(number)s: units over %(lower)s"), number=line.tier_index + 1, lower=lower
            )
        return invoice_text(
            gettext_noop("tier %(number)s: units %(first)s-%(last)s"),
            number=line.tier_index + 1,
            first=lower + 1,
            last=upper,
        )
    if charge.model == PriceModel.PACKAGE:
        return invoice_text(gettext_noop("packages of %(size)s units"), size=charge.package_size)
    if line.description == "minimum commitment":
        return invoice_text(gettext_noop("minimum commitment"))
    return line.description


@dataclass(frozen=True, slots=True)
class LineTemplate:
    """A priced line before VAT and periods are attached."""

    kind: str
    description: str
    quantity: Decimal
    unit_amount: Decimal
    amount: Decimal
    product_rate: Decimal
    product_nature: str
    product_id: int | None
    plan_charge_id: int | None


@dataclass(slots=True)
class DraftLine:
    kind: str
    description: str
    quantity: Decimal
    unit_amount: Decimal
    amount: Decimal
    vat_rate: Decimal
    vat_nature: str
    period_start: date | None = None
    period_end: date | None = None
    product_id: int | None = None
    plan_charge_id: int | None = None


@dataclass(slots=True)
class VersionPrices:
    """One plan version with its charges validated once."""

    version: PlanVersion
    recurring: list[PlanCharge] = field(default_factory=list)
    usage: list[PlanCharge] = field(default_factory=list)

    @property
    def product_rate(self) -> Decimal:
        return self.version.plan.product.vat_rate

    @property
    def product_nature(self) -> str:
        return self.version.plan.product.vat_nature


def version_prices(versions: Iterable[PlanVersion]) -> dict[int, VersionPrices]:
    """``versions`` must come with plan__product and charges prefetched."""
    result: dict[int, VersionPrices] = {}
    for version in versions:
        prices = VersionPrices(version=version)
        for charge in version.charges.all():
            charge.as_charge()  # validate now: a malformed catalog row fails its subscriptions early
            if charge.kind == ChargeKind.RECURRING:
                prices.recurring.append(charge)
            else:
                prices.usage.append(charge)
        result[version.pk] = prices
    return result


def _templates(
    charge: PlanCharge, priced_lines: Iterable[PricedLine], kind: str, prices: VersionPrices, label: str
) -> list[LineTemplate]:
    lines = list(priced_lines)
    result = []
    for line in lines:
        detail = "" if len(lines) == 1 and line.tier_index is None else f" ({_detail(charge, line)})"
        if line.flat_amount:
            quantity, unit_amount = Decimal(1), line.amount.amount
        else:
            quantity, unit_amount = line.quantity, line.unit_amount
        result.append(
            LineTemplate(
                kind=kind,
                description=f"{charge.name} - {label}{detail}"[:500],
                quantity=quantity,
                unit_amount=unit_amount,
                amount=line.amount.amount,
                product_rate=prices.product_rate,
                product_nature=prices.product_nature,
                product_id=prices.version.plan.product_id,
                plan_charge_id=charge.pk,
            )
        )
    return result


class PriceCache:
    """Recurring lines per (plan version, quantity): a run prices each combination once."""

    def __init__(self, prices: Mapping[int, VersionPrices]) -> None:
        self.prices = prices
        self._recurring: dict[tuple[int, Decimal], list[LineTemplate]] = {}
        self._vat: dict[tuple[str, Decimal, str], vat.LineVat] = {}

    def recurring(self, version_id: int, quantity: Decimal) -> list[LineTemplate]:
        key = (version_id, quantity)
        cached = self._recurring.get(key)
        if cached is None:
            prices = self.prices[version_id]
            cached = []
            for charge in prices.recurring:
                priced = charge_amount(charge.as_charge(), quantity)
                cached += _templates(
                    charge, priced.lines, InvoiceLineKind.RECURRING, prices, prices.version.plan.name
                )
            self._recurring[key] = cached
        return cached

    def usage(self, version_id: int, quantities: Mapping[int, Decimal]) -> list[LineTemplate]:
        """Usage lines for {metric id: aggregated quantity}; lines that come to zero are left out."""
        prices = self.prices[version_id]
        result = []
        for charge in prices.usage:
            quantity = quantities.get(charge.metric_id or 0, Decimal(0))
            priced = charge_amount(charge.as_charge(), quantity)
            label = f"{prices.version.plan.name}, {quantity.normalize():f}"
            result += [
                template
                for template in _templates(charge, priced.lines, InvoiceLineKind.USAGE, prices, label)
                if template.amount != 0
            ]
        return result

    def line_vat(self, customer: vat.VatCustomer, regime: str, rate: Decimal, nature: str) -> vat.LineVat:
        key = (regime, rate, nature)
        cached = self._vat.get(key)
        if cached is None:
            cached = self._vat[key] = vat.line_vat(customer, rate, nature)
        return cached


def setup_fee_template(prices: VersionPrices) -> LineTemplate | None:
    fee = prices.version.setup_fee
    if not fee:
        return None
    return LineTemplate(
        kind=InvoiceLineKind.SETUP_FEE,
        description=f"{invoice_text(gettext_noop('Setup fee'))} - {prices.version.plan.name}",
        quantity=Decimal(1),
        unit_amount=fee,
        amount=Money(fee, prices.version.currency).rounded().amount,
        product_rate=prices.product_rate,
        product_nature=prices.product_nature,
        product_id=prices.version.plan.product_id,
        plan_charge_id=None,
    )


def one_off_template(charge: OneOffCharge, product_rate: Decimal, product_nature: str) -> LineTemplate:
    return LineTemplate(
        kind=charge.kind,
        description=charge.description[:500],
        quantity=charge.quantity,
        unit_amount=charge.unit_amount,
        amount=Money(charge.quantity * charge.unit_amount, charge.currency).rounded().amount,
        product_rate=product_rate,
        product_nature=product_nature,
        product_id=charge.product_id,
        plan_charge_id=None,
    )


def coupon_applies(coupon: Coupon | None, periods_remaining: int | None, currency: str) -> bool:
    if coupon is None:
        return False
    if coupon.duration != Coupon.Duration.FOREVER and not periods_remaining:
        return False
    return coupon.amount_off is None or (coupon.currency or currency).upper() == currency


def discount_lines(coupon: Coupon, recurring: list[DraftLine], currency: str) -> list[DraftLine]:
    """Negative lines, one per VAT group of the recurring lines, never more than they total."""
    groups: dict[tuple[Decimal, str], Decimal] = {}
    for line in recurring:
        key = (line.vat_rate, line.vat_nature)
        groups[key] = groups.get(key, Decimal(0)) + line.amount
    base = sum(groups.values(), Decimal(0))
    if base <= 0:
        return []
    if coupon.percent_off is not None:
        discount = Money(base * coupon.percent_off / Decimal(100), currency).rounded()
    else:
        discount = Money(min(coupon.amount_off or Decimal(0), base), currency).rounded()
    if discount.is_zero():
        return []
    keys = list(groups)
    shares = discount.allocate([groups[key] for key in keys]) if len(keys) > 1 else [discount]
    first = recurring[0]
    return [
        DraftLine(
            kind=InvoiceLineKind.DISCOUNT,
            description=f"Coupon {coupon.code} - {coupon.name}"[:500],
            quantity=Decimal(1),
            unit_amount=-share.amount,
            amount=-share.amount,
            vat_rate=rate,
            vat_nature=nature,
            period_start=first.period_start,
            period_end=first.period_end,
        )
        for (rate, nature), share in zip(keys, shares, strict=True)
        if not share.is_zero()
    ]


def draft_from(
    template: LineTemplate,
    line_vat: vat.LineVat,
    period: tuple[date, date] | None,
) -> DraftLine:
    return DraftLine(
        kind=template.kind,
        description=template.description,
        quantity=template.quantity,
        unit_amount=template.unit_amount,
        amount=template.amount,
        vat_rate=line_vat.rate,
        vat_nature=line_vat.nature,
        period_start=period[0] if period else None,
        period_end=period[1] if period else None,
        product_id=template.product_id,
        plan_charge_id=template.plan_charge_id,
    )


def negated(lines: list[DraftLine]) -> list[DraftLine]:
    """The lines of a net-negative invoice, as the credit note that replaces it shows them."""
    return [
        DraftLine(
            kind=line.kind,
            description=line.description,
            quantity=line.quantity,
            unit_amount=-line.unit_amount,
            amount=-line.amount,
            vat_rate=line.vat_rate,
            vat_nature=line.vat_nature,
            period_start=line.period_start,
            period_end=line.period_end,
            product_id=line.product_id,
            plan_charge_id=line.plan_charge_id,
        )
        for line in lines
    ]
