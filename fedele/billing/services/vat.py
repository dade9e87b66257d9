"""Italian VAT for the invoices fedele issues as an Italian seller.

Which VAT a line carries depends on the customer (where, business or consumer) and on the product:

- customer in Italy (or San Marino/Vatican are treated as foreign, non-EU): the product's rate and,
  for a zero rate, the product's FatturaPA nature code;
- EU business customer with a valid VAT number of another member state: reverse charge, 0% with
  nature N2.1 (services, art. 7-ter DPR 633/72); the invoice is marked ``reverse_charge`` and says so;
- customer outside the EU: 0% with nature N2.1 (the service is out of the scope of Italian VAT);
- EU consumer (or a business without a valid VAT number): Italian VAT at the product's rate.

VAT is computed once per (rate, nature) group on the group's taxable total, as FatturaPA's
DatiRiepilogo does, never summed from per-line VAT.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

from stdnum.eu import vat as eu_vat

from fedele.billing.contracts import ITALIAN_VAT_RATES, VatNature
from fedele.shared.errors import ValidationFailed
from fedele.shared.money import Money

EU_COUNTRIES = frozenset(
    {
        "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU",
        "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
    }
)  # fmt: skip
"""EU member states by ISO 3166 code (Greece's VAT prefix is EL, its country code GR)."""

REVERSE_CHARGE_REFERENCE = "Inversione contabile - art. 7-ter DPR 633/72"
OUT_OF_SCOPE_REFERENCE = "Operazione non soggetta - art. 7-ter DPR 633/72"
REVERSE_CHARGE_WORDING_IT = (
    "Operazione non soggetta ad IVA ai sensi dell'art. 7-ter DPR 633/72 - inversione contabile "
    "(reverse charge, art. 196 Direttiva 2006/112/CE)."
)
REVERSE_CHARGE_WORDING_EN = (
    "VAT reverse charge: service not subject to Italian VAT under art. 7-ter of Presidential Decree "
    "633/72; VAT to be accounted for by the recipient (art. 196 of Directive 2006/112/EC)."
)
OUT_OF_SCOPE_WORDING_IT = "Operazione non soggetta ad IVA ai sensi dell'art. 7-ter DPR 633/72."
OUT_OF_SCOPE_WORDING_EN = "Outside the scope of Italian VAT (art. 7-ter of Presidential Decree 633/72)."

NATURE_REFERENCES: dict[str, str] = {
    VatNature.EXCLUDED_ART15.value: "Escluse ex art. 15 DPR 633/72",
    VatNature.NOT_SUBJECT_ART7.value: "Non soggette ex artt. da 7 a 7-septies DPR 633/72",
    VatNature.NOT_SUBJECT_OTHER.value: "Non soggette - altri casi",
    VatNature.NON_TAXABLE_EXPORT.value: "Non imponibili - esportazioni",
    VatNature.NON_TAXABLE_INTRA_EU.value: "Non imponibili - cessioni intracomunitarie",
    VatNature.EXEMPT.value: "Esenti ex art. 10 DPR 633/72",
    VatNature.MARGIN_SCHEME.value: "Regime del margine",
    VatNature.REVERSE_CHARGE_OTHER.value: "Inversione contabile - altri casi",
    VatNature.VAT_PAID_IN_OTHER_EU.value: "IVA assolta in altro stato UE",
}


class CustomerRegime:
    DOMESTIC = "domestic"
    EU_REVERSE_CHARGE = "eu_reverse_charge"
    EU_CONSUMER = "eu_consumer"
    NON_EU = "non_eu"


@dataclass(frozen=True, slots=True)
class VatCustomer:
    """What VAT needs to know about a customer (from the customer snapshot)."""

    country: str
    kind: str = "person"
    vat_number: str = ""


@dataclass(frozen=True, slots=True)
class LineVat:
    rate: Decimal
    nature: str


@dataclass(frozen=True, slots=True)
class TaxGroup:
    """One DatiRiepilogo row: the taxable total of a (rate, nature) group and its VAT."""

    rate: Decimal
    nature: str
    taxable: Decimal
    tax: Decimal
    legal_reference: str


def normalised_vat_number(country: str, vat_number: str) -> str:
    """'de 123 456 789' for Germany → 'DE123456789' (the country prefix added when missing)."""
    compact = "".join(ch for ch in vat_number.upper() if ch.isalnum())
    prefix = "EL" if country.upper() == "GR" else country.upper()
    if compact and not compact[:2].isalpha():
        compact = prefix + compact
    return compact


def has_valid_eu_vat_number(customer: VatCustomer) -> bool:
    if not customer.vat_number:
        return False
    number = normalised_vat_number(customer.country, customer.vat_number)
    expected_prefix = "EL" if customer.country.upper() == "GR" else customer.country.upper()
    return number[:2] == expected_prefix and bool(eu_vat.is_valid(number))


def regime_for(customer: VatCustomer) -> str:
    country = (customer.country or "IT").upper()
    if country == "IT":
        return CustomerRegime.DOMESTIC
    if country not in EU_COUNTRIES:
        return CustomerRegime.NON_EU
    if has_valid_eu_vat_number(customer):
        return CustomerRegime.EU_REVERSE_CHARGE
    return CustomerRegime.EU_CONSUMER


def is_reverse_charge(customer: VatCustomer) -> bool:
    return regime_for(customer) == CustomerRegime.EU_REVERSE_CHARGE


def validate_product_vat(rate: Decimal, nature: str) -> None:
    if rate not in ITALIAN_VAT_RATES:
        allowed = ", ".join(str(r) for r in ITALIAN_VAT_RATES)
        raise ValidationFailed(
            f"{rate}% is not an Italian VAT rate (allowed: {allowed}).",
            code="invalid_vat_rate",
            fields={"vat_rate": f"Use one of {allowed}."},
        )
    if rate == 0 and nature not in NATURE_REFERENCES:
        raise ValidationFailed(
            "A zero VAT rate needs a FatturaPA nature code (N1 … N7).",
            code="missing_vat_nature",
            fields={"vat_nature": "Required when the VAT rate is zero."},
        )
    if rate != 0 and nature:
        raise ValidationFailed(
            "A nature code is only for zero-rated lines.",
            code="invalid_vat_nature",
            fields={"vat_nature": "Leave empty when VAT is charged."},
        )


def line_vat(customer: VatCustomer, product_rate: Decimal, product_nature: str = "") -> LineVat:
    """The VAT of one line sold to ``customer`` for a product taxed at ``product_rate``."""
    rate = Decimal(product_rate).quantize(Decimal("0.01"))
    validate_product_vat(rate, product_nature if rate == 0 else "")
    regime = regime_for(customer)
    if regime in (CustomerRegime.EU_REVERSE_CHARGE, CustomerRegime.NON_EU):
        return LineVat(Decimal("0.00"), VatNature.NOT_SUBJECT_ART7.value)
    return LineVat(rate, product_nature if rate == 0 else "")


def legal_reference(nature: str, *, reverse_charge: bool) -> str:
    if not nature:
        return ""
    if nature == VatNature.NOT_SUBJECT_ART7.value:
        return REVERSE_CHARGE_REFERENCE if reverse_charge else OUT_OF_SCOPE_REFERENCE
    return NATURE_REFERENCES.get(nature, "")


def tax_groups(
    lines: Iterable[tuple[Decimal, Decimal, str]], currency: str, *, reverse_charge: bool = False
) -> list[TaxGroup]:
    """Group ``(amount, rate, nature)`` lines; VAT = round(group taxable * rate / 100), HALF_UP.

    Sorted by rate descending then nature, like the invoice's summary table.
    """
    totals: dict[tuple[Decimal, str], Decimal] = {}
    for amount, rate, nature in lines:
        key = (Decimal(rate).quantize(Decimal("0.01")), nature or "")
        totals[key] = totals.get(key, Decimal(0)) + Decimal(amount)
    groups = []
    for (rate, nature), taxable in totals.items():
        taxable_money = Money(taxable, currency).rounded()
        tax = Money(taxable_money.amount * rate / Decimal(100), currency).rounded()
        groups.append(
            TaxGroup(
                rate=rate,
                nature=nature,
                taxable=taxable_money.amount,
                tax=tax.amount,
                legal_reference=legal_reference(nature, reverse_charge=reverse_charge),
            )
        )
    groups.sort(key=lambda group: (-group.rate, group.nature))
    return groups


def exemption_wording(nature_codes: Iterable[str], *, reverse_charge: bool, language: str) -> list[str]:
    """The sentences an invoice must print for its zero-rated groups."""
    sentences: list[str] = []
    for nature in sorted(set(nature_codes)):
        if not nature:
            continue
        if nature == VatNature.NOT_SUBJECT_ART7.value:
            if reverse_charge:
                text = REVERSE_CHARGE_WORDING_IT if language == "it" else REVERSE_CHARGE_WORDING_EN
            else:
                text = OUT_OF_SCOPE_WORDING_IT if language == "it" else OUT_OF_SCOPE_WORDING_EN
        else:
            text = f"{nature}: {NATURE_REFERENCES.get(nature, '')}"
        if text not in sentences:
            sentences.append(text)
    return sentences
