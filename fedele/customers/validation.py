"""Normalisers for customer data. Each returns the canonical form or raises ValidationFailed with a field."""

from __future__ import annotations

import re

import phonenumbers
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from stdnum import exceptions as stdnum_errors
from stdnum.eu import vat as eu_vat
from stdnum.it import codicefiscale, iva

from fedele.shared.errors import ValidationFailed

EU_COUNTRIES = frozenset(
    [
        "AT",
        "BE",
        "BG",
        "CY",
        "CZ",
        "DE",
        "DK",
        "EE",
        "EL",
        "ES",
        "FI",
        "FR",
        "HR",
        "HU",
        "IE",
        "IT",
        "LT",
        "LU",
        "LV",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SE",
        "SI",
        "SK",
        "XI",
    ]
)
_PROVINCE = re.compile(r"^[A-Z]{2}$")
_CAP = re.compile(r"^\d{5}$")
_SDI = re.compile(r"^[A-Z0-9]{6,7}$")


def fail(field: str, message: str, code: str = "validation_error") -> ValidationFailed:
    return ValidationFailed(message, code=code, fields={field: message})


def normalise_email(value: str, field: str = "email") -> str:
    value = (value or "").strip().lower()
    if not value:
        return ""
    try:
        validate_email(value)
    except DjangoValidationError as error:
        raise fail(field, f"'{value}' is not a valid e-mail address.", "invalid_email") from error
    return value


def normalise_phone(value: str, field: str = "phone", default_region: str = "IT") -> str:
    """Any written form -> E.164 (+390612345678). Numbers without a prefix are read as Italian."""
    value = (value or "").strip()
    if not value:
        return ""
    try:
        parsed = phonenumbers.parse(value, default_region)
    except phonenumbers.NumberParseException as error:
        raise fail(field, f"'{value}' is not a phone number.", "invalid_phone") from error
    if not phonenumbers.is_valid_number(parsed):
        raise fail(field, f"'{value}' is not a valid phone number.", "invalid_phone")
    return str(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))


def normalise_fiscal_code(value: str, field: str = "fiscal_code") -> str:
    """Italian codice fiscale: 16 characters for persons, 11 digits for companies."""
    value = re.sub(r"\s", "", value or "").upper()
    if not value:
        return ""
    try:
        if value.isdigit():
            return str(iva.validate(value))
        return str(codicefiscale.validate(value))
    except stdnum_errors.ValidationError as error:
        raise fail(field, f"'{value}' is not a valid Italian fiscal code.", "invalid_fiscal_code") from error


def normalise_vat_number(value: str, field: str = "vat_number") -> str:
    """EU VAT number with its country prefix (IT01234567890); a bare 11-digit number is Italian."""
    value = re.sub(r"[\s.\-]", "", value or "").upper()
    if not value:
        return ""
    if value.isdigit():
        value = "IT" + value
    country = value[:2]
    if country not in EU_COUNTRIES:
        raise fail(field, f"'{value}' does not start with an EU country code.", "invalid_vat_number")
    try:
        if country == "IT":
            return "IT" + str(iva.validate(value[2:]))
        return str(eu_vat.validate(value))
    except stdnum_errors.ValidationError as error:
        raise fail(field, f"'{value}' is not a valid VAT number.", "invalid_vat_number") from error


def normalise_province(value: str, country: str) -> str:
    value = (value or "").strip().upper()
    if value and country == "IT" and not _PROVINCE.match(value):
        raise fail("province", "An Italian province is two letters (e.g. MI).", "invalid_province")
    return value


def normalise_postal_code(value: str, country: str) -> str:
    value = (value or "").strip().upper()
    if value and country == "IT" and not _CAP.match(value):
        raise fail("postal_code", "An Italian postal code (CAP) has five digits.", "invalid_postal_code")
    return value


def normalise_country(value: str) -> str:
    value = (value or "IT").strip().upper()
    if not re.fullmatch(r"[A-Z]{2}", value):
        raise fail("country", "Use a two-letter ISO country code (e.g. IT).", "invalid_country")
    return value


def normalise_sdi_code(value: str) -> str:
    value = (value or "").strip().upper()
    if value and not _SDI.match(value):
        raise fail("sdi_code", "The SdI recipient code has 6 or 7 letters and digits.", "invalid_sdi_code")
    return value
