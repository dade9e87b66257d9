"""Italian VAT: regimes by customer, natures, group rounding, exemption wording."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fedele.billing.services import vat
from fedele.shared.errors import ValidationFailed

D = Decimal
GERMAN_VAT = "DE136695976"


@pytest.mark.parametrize(
    ("customer", "regime"),
    [
        (vat.VatCustomer("IT", "person"), "domestic"),
        (vat.VatCustomer("IT", "company", "IT01234567897"), "domestic"),
        (vat.VatCustomer("DE", "company", GERMAN_VAT), "eu_reverse_charge"),
        (vat.VatCustomer("DE", "company", "136695976"), "eu_reverse_charge"),
        (vat.VatCustomer("DE", "company", "DE136695977"), "eu_consumer"),  # bad check digit
        (vat.VatCustomer("DE", "company", "FR40303265045"), "eu_consumer"),  # another country's number
        (vat.VatCustomer("FR", "person"), "eu_consumer"),
        (vat.VatCustomer("CH", "company", "CHE116281710"), "non_eu"),
        (vat.VatCustomer("US", "person"), "non_eu"),
        (vat.VatCustomer("GR", "company", "EL094259216"), "eu_reverse_charge"),
    ],
)
def test_regime(customer: vat.VatCustomer, regime: str) -> None:
    assert vat.regime_for(customer) == regime


@pytest.mark.parametrize("rate", ["22", "10", "5", "4"])
def test_italian_customer_pays_the_product_rate(rate: str) -> None:
    assert vat.line_vat(vat.VatCustomer("IT"), D(rate)) == vat.LineVat(D(rate).quantize(D("0.01")), "")


def test_zero_rate_keeps_the_product_nature_for_italian_customers() -> None:
    assert vat.line_vat(vat.VatCustomer("IT"), D("0"), "N4") == vat.LineVat(D("0.00"), "N4")


def test_zero_rate_without_nature_is_refused() -> None:
    with pytest.raises(ValidationFailed) as error:
        vat.line_vat(vat.VatCustomer("IT"), D("0"), "")
    assert error.value.code == "missing_vat_nature"


def test_non_italian_rate_is_refused() -> None:
    with pytest.raises(ValidationFailed) as error:
        vat.line_vat(vat.VatCustomer("IT"), D("21"))
    assert error.value.fields == {"vat_rate": ["Use one of 22, 10, 5, 4, 0."]}


def test_eu_business_gets_reverse_charge_and_eu_consumer_italian_vat() -> None:
    assert vat.line_vat(vat.VatCustomer("DE", "company", GERMAN_VAT), D("22")) == vat.LineVat(
        D("0.00"), "N2.1"
    )
    assert vat.line_vat(vat.VatCustomer("FR", "person"), D("22")) == vat.LineVat(D("22.00"), "")
    assert vat.line_vat(vat.VatCustomer("US", "company"), D("10")) == vat.LineVat(D("0.00"), "N2.1")


def test_tax_groups_round_each_group_total_half_up() -> None:
    lines = [
        (D("0.10"), D("22"), ""),
        (D("0.10"), D("22"), ""),
        (D("0.10"), D("22"), ""),
        (D("2.50"), D("10"), ""),
    ]
    groups = vat.tax_groups(lines, "EUR")
    assert [(g.rate, g.taxable, g.tax) for g in groups] == [
        (D("22.00"), D("0.30"), D("0.07")),
        (D("10.00"), D("2.50"), D("0.25")),
    ]


def test_tax_group_half_up_at_the_half_cent() -> None:
    # 0.25 * 22% = 0.055 → 0.06 (HALF_UP), never banker's 0.06/0.05 ambiguity
    assert vat.tax_groups([(D("0.25"), D("22"), "")], "EUR")[0].tax == D("0.06")
    # 1.25 * 4% = 0.05 exactly; 1.125 taxable is rounded first to 1.13 → 0.0452 → 0.05
    assert vat.tax_groups([(D("1.125"), D("4"), "")], "EUR")[0].taxable == D("1.13")


def test_negative_lines_reduce_their_group() -> None:
    groups = vat.tax_groups([(D("100.00"), D("22"), ""), (D("-20.00"), D("22"), "")], "EUR")
    assert [(g.taxable, g.tax) for g in groups] == [(D("80.00"), D("17.60"))]


def test_huge_amounts_stay_exact() -> None:
    group = vat.tax_groups([(D("99999999999.99"), D("22"), "")], "EUR")[0]
    assert group.tax == D("21999999999.9978").quantize(D("0.01"))
    assert group.tax == D("22000000000.00")


def test_zero_rate_groups_carry_their_legal_reference() -> None:
    reverse = vat.tax_groups([(D("100"), D("0"), "N2.1")], "EUR", reverse_charge=True)[0]
    outside = vat.tax_groups([(D("100"), D("0"), "N2.1")], "EUR")[0]
    exempt = vat.tax_groups([(D("100"), D("0"), "N4")], "EUR")[0]
    assert reverse.legal_reference == "Inversione contabile - art. 7-ter DPR 633/72"
    assert outside.legal_reference == "Operazione non soggetta - art. 7-ter DPR 633/72"
    assert exempt.legal_reference == "Esenti ex art. 10 DPR 633/72"
    assert (reverse.tax, outside.tax) == (D("0.00"), D("0.00"))


def test_exemption_wording_in_both_languages() -> None:
    assert vat.exemption_wording(["N2.1"], reverse_charge=True, language="it") == [
        vat.REVERSE_CHARGE_WORDING_IT
    ]
    assert vat.exemption_wording(["N2.1", ""], reverse_charge=True, language="en") == [
        vat.REVERSE_CHARGE_WORDING_EN
    ]
    assert vat.exemption_wording([""], reverse_charge=False, language="it") == []


def test_normalised_vat_number() -> None:
    assert vat.normalised_vat_number("de", "136 695 976") == "DE136695976"
    assert vat.normalised_vat_number("GR", "094259216") == "EL094259216"
