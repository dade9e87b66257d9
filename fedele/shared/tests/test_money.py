"""Money: one rounding rule (ROUND_HALF_UP to the minor unit), exact allocation, no floats."""

from __future__ import annotations

from decimal import Decimal

import pytest

from fedele.shared.errors import ValidationFailed
from fedele.shared.money import Money, minor_unit_exponent, money_sum

NBSP = "\xa0"


@pytest.mark.parametrize(
    ("currency", "exponent"),
    [("EUR", Decimal("0.01")), ("JPY", Decimal("1")), ("KWD", Decimal("0.001")), ("USD", Decimal("0.01"))],
)
def test_minor_unit_per_currency(currency: str, exponent: Decimal) -> None:
    assert minor_unit_exponent(currency) == exponent


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("0.005", "EUR", "0.01"),
        ("-0.005", "EUR", "-0.01"),
        ("0.004", "EUR", "0.00"),
        ("-0.004", "EUR", "0.00"),
        ("1.005", "EUR", "1.01"),
        ("2.675", "EUR", "2.68"),
        ("10", "EUR", "10.00"),
        ("0.5", "JPY", "1"),
        ("1.5", "JPY", "2"),
        ("2.5", "JPY", "3"),
        ("-2.5", "JPY", "-3"),
        ("2.4999", "JPY", "2"),
        ("0.0005", "KWD", "0.001"),
        ("1.2344", "KWD", "1.234"),
        ("-1.2345", "KWD", "-1.235"),
    ],
)
def test_rounding_is_half_up_to_the_minor_unit(amount: str, currency: str, expected: str) -> None:
    money = Money.of(amount, currency)
    assert money.amount == Decimal(expected)
    assert str(money.amount) == expected
    assert money.currency == currency


def test_construction_keeps_exact_amount_and_normalises_currency() -> None:
    raw = Money(Decimal("1.005"), "eur")
    assert raw.currency == "EUR"
    assert raw.amount == Decimal("1.005")  # not rounded until asked
    assert raw.rounded().amount == Decimal("1.01")
    assert Money.of(7).amount == Decimal("7.00")
    assert Money.of("12.30").minor_units == 1230
    assert Money.of("-12.30").minor_units == -1230
    assert Money.of("1234", "JPY").minor_units == 1234
    assert Money.of("1.234", "KWD").minor_units == 1234
    assert Money.from_minor_units(12345, "EUR").amount == Decimal("123.45")
    assert Money.from_minor_units(12345, "JPY").amount == Decimal("12345")
    assert Money.from_minor_units(12345, "KWD").amount == Decimal("12.345")
    assert Money.zero("JPY").amount == Decimal("0")
    assert Money.zero().is_zero()


def test_floats_are_refused_everywhere() -> None:
    with pytest.raises(TypeError):
        Money.of(0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money(0.1, "EUR")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        Money.of("1.00") * 1.5  # type: ignore[operator]
    with pytest.raises(TypeError):
        Money.of("1.00").allocate([0.5, 0.5])  # type: ignore[list-item]


@pytest.mark.parametrize("bad", ["abc", "", "1,50", "NaN", "Infinity", "-inf"])
def test_invalid_amounts_are_validation_errors(bad: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        Money.of(bad)
    assert caught.value.code == "invalid_amount"


def test_amount_beyond_decimal_precision_is_a_validation_error() -> None:
    with pytest.raises(ValidationFailed) as caught:
        Money.of(10**30)
    assert caught.value.code == "invalid_amount"


def test_unknown_currency_is_refused() -> None:
    with pytest.raises(ValidationFailed) as caught:
        Money.of("1", "XYZ")
    assert caught.value.code == "invalid_currency"


def test_arithmetic_and_currency_mismatch() -> None:
    a = Money.of("10.10")
    b = Money.of("0.25")
    assert (a + b).amount == Decimal("10.35")
    assert (a - b).amount == Decimal("9.85")
    assert (b - a).amount == Decimal("-9.85")
    assert (-a).amount == Decimal("-10.10")
    assert abs(Money.of("-3.50")).amount == Decimal("3.50")
    assert (a * 3).amount == Decimal("30.30")
    assert (3 * a).amount == Decimal("30.30")
    assert (a * Decimal("0.333")).rounded().amount == Decimal("3.36")  # 3.3633 -> 3.36
    assert a > b and b < a and a >= a and a <= a
    assert money_sum([a, b, b]).amount == Decimal("10.60")
    assert money_sum([], "JPY") == Money.zero("JPY")
    usd = Money.of("1", "USD")
    for operation in (lambda: a + usd, lambda: a - usd, lambda: a < usd, lambda: a >= usd):
        with pytest.raises(ValidationFailed) as caught:
            operation()
        assert caught.value.code == "currency_mismatch"
    with pytest.raises(ValidationFailed):
        money_sum([a, usd])
    with pytest.raises(TypeError):
        a + Decimal("1")  # type: ignore[operator]
    with pytest.raises(TypeError):
        a * a  # type: ignore[operator]


def _amounts(parts: list[Money]) -> list[str]:
    return [str(p.amount) for p in parts]


@pytest.mark.parametrize(
    ("total", "currency", "ratios", "expected"),
    [
        ("100.00", "EUR", [1, 1, 1], ["33.34", "33.33", "33.33"]),
        ("-100.00", "EUR", [1, 1, 1], ["-33.34", "-33.33", "-33.33"]),
        ("0.00", "EUR", [1, 1, 1], ["0.00", "0.00", "0.00"]),
        ("0.01", "EUR", [1, 1, 1], ["0.01", "0.00", "0.00"]),
        ("0.02", "EUR", [1, 1, 1], ["0.01", "0.01", "0.00"]),
        ("100.00", "EUR", [70, 20, 10], ["70.00", "20.00", "10.00"]),
        ("10.00", "EUR", [1, 2], ["3.33", "6.67"]),
        ("5.00", "EUR", [0, 1], ["0.00", "5.00"]),
        ("1.00", "EUR", [Decimal("0.5"), Decimal("0.25"), Decimal("0.25")], ["0.50", "0.25", "0.25"]),
        ("100", "JPY", [1, 1, 1], ["34", "33", "33"]),
        ("1.000", "KWD", [1, 1, 1], ["0.334", "0.333", "0.333"]),
        (
            "1000000000000000.00",
            "EUR",
            [1, 1, 1],
            ["333333333333333.34", "333333333333333.33", "333333333333333.33"],
        ),
        (
            "-1000000000000000.01",
            "EUR",
            [1, 1, 1],
            ["-333333333333333.34", "-333333333333333.34", "-333333333333333.33"],
        ),
    ],
)
def test_allocation_adds_up_exactly(total: str, currency: str, ratios: list, expected: list[str]) -> None:
    money = Money.of(total, currency)
    parts = money.allocate(ratios)
    assert _amounts(parts) == expected
    assert sum((p.amount for p in parts), Decimal(0)) == money.amount
    assert all(p.currency == currency for p in parts)


def test_allocation_of_an_unrounded_amount_adds_up_to_the_rounded_total() -> None:
    parts = Money(Decimal("10.005"), "EUR").allocate([1, 1])
    assert _amounts(parts) == ["5.01", "5.00"]


def test_split() -> None:
    assert _amounts(Money.of("10.00").split(3)) == ["3.34", "3.33", "3.33"]
    assert _amounts(Money.of("-0.05").split(2)) == ["-0.03", "-0.02"]
    assert _amounts(Money.of("7", "JPY").split(7)) == ["1"] * 7
    assert _amounts(Money.of("1.00").split(1)) == ["1.00"]
    for parts in (0, -1):
        with pytest.raises(ValidationFailed) as caught:
            Money.of("1.00").split(parts)
        assert caught.value.code == "invalid_allocation"


@pytest.mark.parametrize("ratios", [[], [0, 0], [1, -1]])
def test_invalid_allocations(ratios: list[int]) -> None:
    with pytest.raises(ValidationFailed) as caught:
        Money.of("1.00").allocate(ratios)
    assert caught.value.code == "invalid_allocation"


@pytest.mark.parametrize(
    ("amount", "currency", "locale", "expected"),
    [
        ("1234.56", "EUR", "it", f"1.234,56{NBSP}€"),
        ("1234.56", "EUR", "en", "€1,234.56"),
        ("-1234.5", "EUR", "it", f"-1.234,50{NBSP}€"),
        ("-1234.5", "EUR", "en", "-€1,234.50"),
        ("0.005", "EUR", "it", f"0,01{NBSP}€"),
        ("1234.56", "JPY", "en", "¥1,235"),
        ("1234.56", "JPY", "it", f"1.235{NBSP}JPY"),
        ("1234.56", "KWD", "en", "KWD1,234.560"),
    ],
)
def test_formatting_is_locale_aware(amount: str, currency: str, locale: str, expected: str) -> None:
    assert Money.of(amount, currency).format(locale) == expected


def test_format_defaults_to_italian_and_str_is_plain() -> None:
    money = Money(Decimal("1234.565"), "EUR")
    assert money.format() == f"1.234,57{NBSP}€"
    assert str(money) == "1234.57 EUR"


def test_zero_is_never_negative() -> None:
    assert not Money.of("-0.004").amount.is_signed()
    assert Money.of("-0.004").format("it") == f"0,00{NBSP}€"
    assert str(Money.of("-0.004")) == "0.00 EUR"
    assert not (-Money.zero()).amount.is_signed()
    assert not (Money.of("1.00") - Money.of("1.00")).amount.is_signed()
