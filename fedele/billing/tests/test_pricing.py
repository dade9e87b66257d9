"""Exact-value tests for the pure pricing core: price models, minimum commitment, proration."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest

from fedele.billing.contracts import Charge, PriceModel, Tier
from fedele.billing.pricing import MINIMUM_COMMITMENT, charge_amount, prorate, proration_for_change
from fedele.shared.errors import ValidationFailed
from fedele.shared.money import Money

D = Decimal


def usage_tiers() -> tuple[Tier, ...]:
    """0-100 at 0.10, 101-1000 at 0.08, 1001+ at 0.05."""
    return (
        Tier(up_to=100, unit_amount=D("0.10")),
        Tier(up_to=1000, unit_amount=D("0.08")),
        Tier(up_to=None, unit_amount=D("0.05")),
    )


def graduated(**overrides) -> Charge:
    return Charge(**{"model": PriceModel.GRADUATED, "currency": "EUR", "tiers": usage_tiers(), **overrides})


def volume(**overrides) -> Charge:
    return Charge(**{"model": PriceModel.VOLUME, "currency": "EUR", "tiers": usage_tiers(), **overrides})


def amounts(priced) -> list[str]:
    return [str(line.amount) for line in priced.lines]


# graduated vs volume ------------------------------------------------------------------------------


def test_graduated_and_volume_give_their_two_different_totals_for_the_same_usage():
    graduated_price = charge_amount(graduated(), D(1500))
    volume_price = charge_amount(volume(), D(1500))

    # 100 * 0.10 + 900 * 0.08 + 500 * 0.05
    assert graduated_price.total == Money(D("107.00"), "EUR")
    assert amounts(graduated_price) == ["10.00 EUR", "72.00 EUR", "25.00 EUR"]
    assert [line.quantity for line in graduated_price.lines] == [D(100), D(900), D(500)]
    assert [line.unit_amount for line in graduated_price.lines] == [D("0.10"), D("0.08"), D("0.05")]
    assert [line.tier_index for line in graduated_price.lines] == [0, 1, 2]
    # 1500 * 0.05: every unit at the tier the total falls in
    assert volume_price.total == Money(D("75.00"), "EUR")
    assert len(volume_price.lines) == 1
    assert volume_price.lines[0].quantity == D(1500)
    assert volume_price.lines[0].unit_amount == D("0.05")
    assert volume_price.lines[0].tier_index == 2


@pytest.mark.parametrize(
    ("quantity", "graduated_total", "volume_total"),
    [
        (D(1), "0.10", "0.10"),
        (D(100), "10.00", "10.00"),  # the boundary belongs to the lower tier
        (D(101), "10.08", "8.08"),
        (D(1000), "82.00", "80.00"),
        (D(1001), "82.05", "50.05"),
        (D("100.5"), "10.04", "8.04"),  # 10.00 + 0.5 * 0.08 = 10.04; 100.5 * 0.08 = 8.04
    ],
)
def test_tier_boundaries(quantity, graduated_total, volume_total):
    assert charge_amount(graduated(), quantity).total == Money(D(graduated_total), "EUR")
    assert charge_amount(volume(), quantity).total == Money(D(volume_total), "EUR")


def test_tiers_with_flat_amounts():
    tiers = (
        Tier(up_to=10, unit_amount=D("1.00"), flat_amount=D("5.00")),
        Tier(up_to=None, unit_amount=D("0.50"), flat_amount=D("2.00")),
    )
    graduated_charge = Charge(model=PriceModel.GRADUATED, currency="EUR", tiers=tiers)
    volume_charge = Charge(model=PriceModel.VOLUME, currency="EUR", tiers=tiers)

    fifteen = charge_amount(graduated_charge, D(15))
    # tier 1: 10 * 1.00 + 5.00 = 15.00; tier 2: 5 * 0.50 + 2.00 = 4.50
    assert amounts(fifteen) == ["15.00 EUR", "4.50 EUR"]
    assert [line.flat_amount for line in fifteen.lines] == [D("5.00"), D("2.00")]
    assert fifteen.total == Money(D("19.50"), "EUR")
    # a tier's flat amount applies only once usage reaches it
    assert charge_amount(graduated_charge, D(10)).total == Money(D("15.00"), "EUR")
    # volume: 15 * 0.50 + 2.00
    assert charge_amount(volume_charge, D(15)).total == Money(D("9.50"), "EUR")
    assert charge_amount(volume_charge, D(10)).total == Money(D("15.00"), "EUR")


def test_graduated_rounds_each_tier_line_and_sums_the_rounded_lines():
    tiers = (Tier(up_to=1, unit_amount=D("0.005")), Tier(up_to=None, unit_amount=D("0.005")))
    priced = charge_amount(Charge(model=PriceModel.GRADUATED, currency="EUR", tiers=tiers), D(2))
    # each line 0.005 → 0.01 (half up); the unrounded sum would be 0.01
    assert amounts(priced) == ["0.01 EUR", "0.01 EUR"]
    assert priced.total == Money(D("0.02"), "EUR")


# package, per unit, flat --------------------------------------------------------------------------


def package(**overrides) -> Charge:
    return Charge(
        **{
            "model": PriceModel.PACKAGE,
            "currency": "EUR",
            "unit_amount": D("9.00"),
            "package_size": 1000,
            **overrides,
        }
    )


@pytest.mark.parametrize(
    ("quantity", "packages", "total"),
    [
        (D(1001), D(2), "18.00"),
        (D(1000), D(1), "9.00"),
        (D(1), D(1), "9.00"),
        (D("0.5"), D(1), "9.00"),
        (D(0), D(0), "0.00"),
        (D(2000), D(2), "18.00"),
    ],
)
def test_package_rounds_up_to_whole_packages(quantity, packages, total):
    priced = charge_amount(package(), quantity)
    assert priced.lines[0].quantity == packages
    assert priced.lines[0].unit_amount == D("9.00")
    assert priced.total == Money(D(total), "EUR")


def test_per_unit_and_flat():
    seats = Charge(model=PriceModel.PER_UNIT, currency="EUR", unit_amount=D("12.50"))
    assert charge_amount(seats, D(3)).total == Money(D("37.50"), "EUR")
    assert charge_amount(seats, 3).total == Money(D("37.50"), "EUR")

    fee = Charge(model=PriceModel.FLAT, currency="EUR", flat_amount=D("49.90"))
    assert charge_amount(fee, D(0)).total == Money(D("49.90"), "EUR")
    assert charge_amount(fee, D(7)).total == Money(D("49.90"), "EUR")
    assert charge_amount(fee, D(7)).lines[0].quantity == D(1)


def test_fractional_usage_rounds_half_up_to_the_cent():
    per_unit = Charge(model=PriceModel.PER_UNIT, currency="EUR", unit_amount=D("0.25"))
    # 0.5 * 0.25 = 0.125 → 0.13 (half up, not banker's 0.12)
    assert charge_amount(per_unit, D("0.5")).total == Money(D("0.13"), "EUR")
    # 0.3 * 0.25 = 0.075 → 0.08
    assert charge_amount(per_unit, D("0.3")).total == Money(D("0.08"), "EUR")
    # 0.1 * 0.25 = 0.025 → 0.03; 0.04 * 0.25 = 0.01
    assert charge_amount(per_unit, D("0.1")).total == Money(D("0.03"), "EUR")
    assert charge_amount(per_unit, D("0.04")).total == Money(D("0.01"), "EUR")


def test_sub_cent_unit_prices():
    api_calls = Charge(model=PriceModel.PER_UNIT, currency="EUR", unit_amount=D("0.0004"))
    # 12,345 * 0.0004 = 4.938 → 4.94
    assert charge_amount(api_calls, D(12345)).total == Money(D("4.94"), "EUR")


def test_zero_quantity():
    assert charge_amount(graduated(), D(0)).total == Money(D("0.00"), "EUR")
    assert charge_amount(graduated(), D(0)).lines == ()
    assert charge_amount(volume(), D(0)).total == Money(D("0.00"), "EUR")
    assert charge_amount(volume(), D(0)).lines == ()
    per_unit = Charge(model=PriceModel.PER_UNIT, currency="EUR", unit_amount=D("1.00"))
    assert amounts(charge_amount(per_unit, D(0))) == ["0.00 EUR"]
    assert str(charge_amount(per_unit, D("-0")).quantity) == "0"


def test_huge_quantities():
    billion = D(10) ** 9
    # 10.00 + 72.00 + (10^9 - 1000) * 0.05 = 82.00 + 49,999,950.00
    assert charge_amount(graduated(), billion).total == Money(D("50000032.00"), "EUR")
    assert charge_amount(volume(), billion).total == Money(D("50000000.00"), "EUR")
    assert charge_amount(package(), billion).total == Money(D("9000000.00"), "EUR")
    per_unit = Charge(model=PriceModel.PER_UNIT, currency="EUR", unit_amount=D("0.0001"))
    assert charge_amount(per_unit, billion).total == Money(D("100000.00"), "EUR")


def test_jpy_has_no_decimals():
    per_unit = Charge(model=PriceModel.PER_UNIT, currency="jpy", unit_amount=D("0.5"))
    priced = charge_amount(per_unit, D(3))
    assert priced.charge.currency == "JPY"
    # 1.5 → 2 (half up to the yen)
    assert priced.total == Money(D(2), "JPY")
    assert str(priced.total) == "2 JPY"


# minimum commitment -------------------------------------------------------------------------------


def test_minimum_commitment_tops_up_a_smaller_total():
    per_unit = Charge(
        model=PriceModel.PER_UNIT, currency="EUR", unit_amount=D("0.10"), minimum_amount=D("50.00")
    )
    priced = charge_amount(per_unit, D(100))
    assert amounts(priced) == ["10.00 EUR", "40.00 EUR"]
    assert priced.lines[-1].description == MINIMUM_COMMITMENT
    assert priced.total == Money(D("50.00"), "EUR")

    nothing_used = charge_amount(per_unit, D(0))
    assert amounts(nothing_used) == ["0.00 EUR", "50.00 EUR"]
    assert nothing_used.total == Money(D("50.00"), "EUR")


def test_minimum_commitment_adds_nothing_when_reached():
    per_unit = Charge(
        model=PriceModel.PER_UNIT, currency="EUR", unit_amount=D("0.10"), minimum_amount=D("50.00")
    )
    assert amounts(charge_amount(per_unit, D(500))) == ["50.00 EUR"]
    assert amounts(charge_amount(per_unit, D(600))) == ["60.00 EUR"]
    tiered = charge_amount(graduated(minimum_amount=D("100.00")), D(1500))
    assert tiered.total == Money(D("107.00"), "EUR")
    assert MINIMUM_COMMITMENT not in [line.description for line in tiered.lines]


def test_minimum_commitment_on_tiers_with_zero_usage():
    priced = charge_amount(volume(minimum_amount=D("20")), D(0))
    assert amounts(priced) == ["20.00 EUR"]
    assert priced.total == Money(D("20.00"), "EUR")


# bad quantities -----------------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", [D(-1), D("-0.001"), -5])
def test_negative_quantity_is_refused(quantity):
    with pytest.raises(ValidationFailed) as caught:
        charge_amount(graduated(), quantity)
    assert caught.value.code == "invalid_quantity"
    assert "quantity" in caught.value.fields


@pytest.mark.parametrize("quantity", [D("NaN"), D("Infinity"), 1.5, "10", True])
def test_non_decimal_or_non_finite_quantity_is_refused(quantity):
    with pytest.raises(ValidationFailed) as caught:
        charge_amount(graduated(), quantity)
    assert "quantity" in caught.value.fields


# invalid charges ----------------------------------------------------------------------------------


def fields_of(build) -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as caught:
        build()
    assert caught.value.code == "invalid_price"
    return caught.value.fields


@pytest.mark.parametrize(
    ("tiers", "field"),
    [
        ((Tier(100, D(1)), Tier(50, D(1)), Tier(None, D(1))), "tiers[1].up_to"),  # descending
        ((Tier(100, D(1)), Tier(100, D(1)), Tier(None, D(1))), "tiers[1].up_to"),  # equal
        ((Tier(100, D(1)), Tier(1000, D(1))), "tiers[1].up_to"),  # last tier capped
        ((Tier(None, D(1)), Tier(None, D(1))), "tiers[0].up_to"),  # open-ended before the end
        ((Tier(None, D(1)), Tier(100, D(1))), "tiers[0].up_to"),
        ((), "tiers"),  # a tiered model without tiers
    ],
)
def test_invalid_tier_shapes_are_refused(tiers, field):
    for model in (PriceModel.GRADUATED, PriceModel.VOLUME):
        assert field in fields_of(lambda model=model: Charge(model=model, currency="EUR", tiers=tiers))


def test_the_last_tier_capped_message_is_clear():
    fields = fields_of(
        lambda: Charge(model=PriceModel.GRADUATED, currency="EUR", tiers=(Tier(100, D(1)), Tier(1000, D(1))))
    )
    assert fields == {
        "tiers[1].up_to": ["the last tier must be open-ended (up_to None), not capped at 1000."]
    }


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Tier(up_to=0, unit_amount=D(1)), "up_to"),
        (lambda: Tier(up_to=-10, unit_amount=D(1)), "up_to"),
        (lambda: Tier(up_to=D("10.5"), unit_amount=D(1)), "up_to"),
        (lambda: Tier(up_to=10, unit_amount=D("-0.01")), "unit_amount"),
        (lambda: Tier(up_to=10, unit_amount=D(1), flat_amount=D(-1)), "flat_amount"),
        (lambda: Tier(up_to=10, unit_amount=0.1), "unit_amount"),
        (lambda: Tier(up_to=10, unit_amount=D("NaN")), "unit_amount"),
    ],
)
def test_invalid_tiers_are_refused(build, field):
    assert field in fields_of(build)


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: Charge(model=PriceModel.PER_UNIT, currency="XXY", unit_amount=D(1)), "currency"),
        (lambda: Charge(model="monthly", currency="EUR", unit_amount=D(1)), "model"),
        (lambda: Charge(model=PriceModel.PER_UNIT, currency="EUR", unit_amount=D(-1)), "unit_amount"),
        (lambda: Charge(model=PriceModel.PER_UNIT, currency="EUR"), "unit_amount"),
        (lambda: Charge(model=PriceModel.FLAT, currency="EUR"), "flat_amount"),
        (
            lambda: Charge(model=PriceModel.FLAT, currency="EUR", flat_amount=D(1), unit_amount=D(1)),
            "unit_amount",
        ),
        (
            lambda: Charge(model=PriceModel.PACKAGE, currency="EUR", unit_amount=D(9), package_size=0),
            "package_size",
        ),
        (
            lambda: Charge(model=PriceModel.PACKAGE, currency="EUR", unit_amount=D(9), package_size=-5),
            "package_size",
        ),
        (lambda: Charge(model=PriceModel.PACKAGE, currency="EUR", unit_amount=D(9)), "package_size"),
        (
            lambda: Charge(model=PriceModel.PER_UNIT, currency="EUR", unit_amount=D(1), package_size=10),
            "package_size",
        ),
        (
            lambda: Charge(model=PriceModel.GRADUATED, currency="EUR", tiers=usage_tiers(), unit_amount=D(1)),
            "unit_amount",
        ),
        (
            lambda: Charge(
                model=PriceModel.PER_UNIT, currency="EUR", unit_amount=D(1), minimum_amount=D("-10")
            ),
            "minimum_amount",
        ),
    ],
)
def test_invalid_charges_are_refused(build, field):
    assert field in fields_of(build)


def test_every_problem_is_reported_at_once():
    fields = fields_of(
        lambda: Charge(model=PriceModel.PACKAGE, currency="EURO", unit_amount=D(-9), package_size=0)
    )
    assert set(fields) == {"currency", "unit_amount", "package_size"}


def test_charges_are_frozen_and_normalised():
    charge = Charge(model="per_unit", currency="eur", unit_amount=3)
    assert charge.model is PriceModel.PER_UNIT
    assert charge.currency == "EUR"
    assert charge.unit_amount == D(3)
    assert isinstance(charge.unit_amount, Decimal)
    with pytest.raises(AttributeError):
        charge.unit_amount = D(4)  # type: ignore[misc]


# proration ----------------------------------------------------------------------------------------

JANUARY = {"period_start": date(2026, 1, 1), "period_end": date(2026, 2, 1)}


def eur(amount: str) -> Money:
    return Money(D(amount), "EUR")


def test_upgrade_mid_month_from_the_issue():
    # 30.00 → 60.00 EUR/month on 16 Jan; 16 Jan..31 Jan = 16 of 31 days remain.
    result = proration_for_change(eur("30.00"), eur("60.00"), change_date=date(2026, 1, 16), **JANUARY)
    assert (result.days_remaining, result.days_in_period) == (16, 31)
    assert result.credit == eur("15.48")  # 30 * 16 / 31 = 15.4838…
    assert result.charge == eur("30.97")  # 60 * 16 / 31 = 30.9677…
    assert result.net == eur("15.49")  # 30.97 - 15.48: the two invoice lines add up to the net


def test_leap_year_change_on_29_february():
    result = proration_for_change(
        eur("30.00"),
        eur("60.00"),
        period_start=date(2028, 2, 1),
        period_end=date(2028, 3, 1),
        change_date=date(2028, 2, 29),
    )
    assert (result.days_remaining, result.days_in_period) == (1, 29)
    assert result.credit == eur("1.03")  # 30 / 29 = 1.0344…
    assert result.charge == eur("2.07")  # 60 / 29 = 2.0689…
    assert result.net == eur("1.04")


def test_downgrade_gives_a_negative_net():
    result = proration_for_change(eur("60.00"), eur("30.00"), change_date=date(2026, 1, 16), **JANUARY)
    assert result.credit == eur("30.97")
    assert result.charge == eur("15.48")
    assert result.net == eur("-15.49")


def test_quantity_change():
    # 3 seats → 5 seats at 10.00 EUR: 30.00 → 50.00 for the rest of January.
    result = proration_for_change(eur("30.00"), eur("50.00"), change_date=date(2026, 1, 16), **JANUARY)
    assert result.credit == eur("15.48")
    assert result.charge == eur("25.81")  # 50 * 16 / 31 = 25.8064…
    assert result.net == eur("10.33")


@pytest.mark.parametrize("change_date", [date(2026, 1, 1), date(2026, 2, 1)])
def test_change_on_a_period_boundary_prorates_nothing(change_date):
    result = proration_for_change(eur("30.00"), eur("60.00"), change_date=change_date, **JANUARY)
    assert result.credit == eur("0.00")
    assert result.charge == eur("0.00")
    assert result.net == eur("0.00")
    assert (result.days_remaining, result.days_in_period) == (0, 31)


def test_jpy_proration():
    result = proration_for_change(
        Money(D(3000), "JPY"), Money(D(6000), "JPY"), change_date=date(2026, 1, 16), **JANUARY
    )
    assert result.credit == Money(D(1548), "JPY")  # 3000 * 16 / 31 = 1548.38…
    assert result.charge == Money(D(3097), "JPY")  # 6000 * 16 / 31 = 3096.77…
    assert result.net == Money(D(1549), "JPY")
    assert str(result.net) == "1549 JPY"


def test_prorate():
    assert prorate(eur("30.00"), change_date=date(2026, 1, 16), **JANUARY) == eur("15.48")
    assert prorate(eur("30.00"), change_date=date(2026, 1, 1), **JANUARY) == eur("30.00")
    assert prorate(eur("30.00"), change_date=date(2026, 2, 1), **JANUARY) == eur("0.00")
    assert prorate(eur("30.00"), change_date=date(2026, 1, 31), **JANUARY) == eur("0.97")  # 30/31
    # 0.05 * 1 / 2 = 0.025 → 0.03: half up
    two_days = {"period_start": date(2026, 1, 1), "period_end": date(2026, 1, 3)}
    assert prorate(eur("0.05"), change_date=date(2026, 1, 2), **two_days) == eur("0.03")


@pytest.mark.parametrize("change_date", [date(2025, 12, 31), date(2026, 2, 2)])
def test_change_outside_the_period_is_refused(change_date):
    with pytest.raises(ValidationFailed) as caught:
        proration_for_change(eur("30.00"), eur("60.00"), change_date=change_date, **JANUARY)
    assert "change_date" in caught.value.fields
    with pytest.raises(ValidationFailed):
        prorate(eur("30.00"), change_date=change_date, **JANUARY)


def test_period_ending_before_it_starts_is_refused():
    for end in (date(2026, 1, 1), date(2025, 12, 1)):
        with pytest.raises(ValidationFailed) as caught:
            prorate(eur("30.00"), period_start=date(2026, 1, 1), period_end=end, change_date=date(2026, 1, 1))
        assert "period_end" in caught.value.fields


def test_datetimes_are_refused():
    with pytest.raises(ValidationFailed) as caught:
        prorate(
            eur("30.00"),
            period_start=date(2026, 1, 1),
            period_end=date(2026, 2, 1),
            change_date=datetime(2026, 1, 16, 12),
        )
    assert "change_date" in caught.value.fields


def test_currency_mismatch_is_refused():
    with pytest.raises(ValidationFailed) as caught:
        proration_for_change(eur("30.00"), Money(D("60.00"), "USD"), change_date=date(2026, 1, 16), **JANUARY)
    assert caught.value.code == "currency_mismatch"
    assert "new_price" in caught.value.fields
