"""Checks a ``collect`` node can apply to the keys a caller typed.

Each check returns the value to keep (normalised) or ``None`` when the input is not acceptable; a check
may also name the customer it identified (``customer_code`` and ``codice_fiscale`` do), which the
session keeps for later lookups and document requests.

A codice fiscale has letters, which a phone keypad cannot type directly, so callers key each letter
as two digits, the key and the letter's place on it (A = 21, B = 22, C = 23, … S = 74, Z = 94), and
each digit as itself. The code's layout is fixed (6 letters, 2 digits, 1 letter, 2 digits, 1 letter,
3 digits, 1 letter), so 25 keys always decode one way. A code written out
(a chat, a form) is accepted as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from stdnum import luhn
from stdnum.it import codicefiscale

from fedele.customers import facade as customers_facade


@dataclass(frozen=True, slots=True)
class CheckResult:
    value: str
    customer_public_id: str = ""


KEYPAD = {
    "2": "ABC",
    "3": "DEF",
    "4": "GHI",
    "5": "JKL",
    "6": "MNO",
    "7": "PQRS",
    "8": "TUV",
    "9": "WXYZ",
}
# L = letter, D = digit: the layout of a codice fiscale (without omocodia).
FISCAL_CODE_LAYOUT = "LLLLLLDDLDDLDDDL"


def keypad_letter(key: str, place: str) -> str | None:
    letters = KEYPAD.get(key, "")
    if not place.isdigit() or not 1 <= int(place) <= len(letters):
        return None
    return letters[int(place) - 1]


def decode_fiscal_code_keys(keys: str) -> str | None:
    """The codice fiscale 25 keypad digits spell (see the module docstring), or None."""
    if not keys.isdigit():
        return None
    position = 0
    decoded = []
    for slot in FISCAL_CODE_LAYOUT:
        if slot == "D":
            if position >= len(keys):
                return None
            decoded.append(keys[position])
            position += 1
        else:
            letter = keypad_letter(keys[position : position + 1], keys[position + 1 : position + 2])
            if letter is None:
                return None
            decoded.append(letter)
            position += 2
    return "".join(decoded) if position == len(keys) else None


def check_luhn(value: str) -> CheckResult | None:
    return CheckResult(value) if value.isdigit() and luhn.is_valid(value) else None


def check_codice_fiscale(value: str) -> CheckResult | None:
    written = value.strip().upper()
    code = written if len(written) == 16 and not written.isdigit() else decode_fiscal_code_keys(written)
    if code is None or not codicefiscale.is_valid(code):
        return None
    customer = customers_facade.find_customer_by_fiscal_code(code)
    return CheckResult(code, str(customer.public_id) if customer else "")


def check_customer_code(value: str) -> CheckResult | None:
    customer = customers_facade.find_customer_by_code(value)
    return CheckResult(customer.number, str(customer.public_id)) if customer else None


CHECKS: dict[str, Callable[[str], CheckResult | None]] = {
    "luhn": check_luhn,
    "codice_fiscale": check_codice_fiscale,
    "customer_code": check_customer_code,
}
