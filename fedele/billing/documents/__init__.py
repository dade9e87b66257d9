"""Invoice documents: the PDF a person reads and the FatturaPA XML the SdI receives.

The seller's identity comes from ``settings.FEDELE_SELLER`` (a dict) when the project defines it,
else from these environment variables (defaults are a placeholder company, clearly not real):
FEDELE_SELLER_NAME, _VAT_NUMBER (11 digits, no IT prefix), _FISCAL_CODE, _STREET, _POSTAL_CODE,
_CITY, _PROVINCE, _COUNTRY, _IBAN, _BIC, _BANK, _EMAIL, _PEC, _PHONE, _TAX_REGIME (RF01 ordinary).
"""

from __future__ import annotations

import os

from django.conf import settings

from fedele.shared.errors import ValidationFailed

SELLER_KEYS = {
    "name": "fedele S.r.l.",
    "vat_number": "01234567890",
    "fiscal_code": "01234567890",
    "street": "Via Roma 1",
    "postal_code": "00100",
    "city": "Roma",
    "province": "RM",
    "country": "IT",
    "iban": "IT60X0542811101000000123456",
    "bic": "",
    "bank": "",
    "email": "billing@fedele.local",
    "pec": "",
    "phone": "",
    "tax_regime": "RF01",
}


def seller() -> dict[str, str]:
    """The issuing company: settings.FEDELE_SELLER overrides the environment, which overrides defaults."""
    configured: dict[str, str] = getattr(settings, "FEDELE_SELLER", None) or {}
    if not getattr(settings, "FEDELE_ALLOW_PLACEHOLDER_IDENTITY", False):
        missing = [
            key
            for key in ("name", "vat_number", "street", "postal_code", "city", "iban")
            if not (configured.get(key) or os.environ.get(f"FEDELE_SELLER_{key.upper()}"))
        ]
        if missing:
            raise ValidationFailed(
                "Invoices need the issuing company's details: set "
                + ", ".join(f"FEDELE_SELLER_{key.upper()}" for key in missing)
                + ".",
                code="seller_not_configured",
            )
    return {
        key: str(configured.get(key) or os.environ.get(f"FEDELE_SELLER_{key.upper()}") or default)
        for key, default in SELLER_KEYS.items()
    }
