"""Production never prints a placeholder company on an invoice or a SEPA file."""

from __future__ import annotations

import pytest
from django.test import override_settings

from fedele.billing.documents import seller
from fedele.billing.gateways.sepa import configured_creditor
from fedele.shared.errors import ValidationFailed


def test_placeholders_are_used_only_where_allowed(monkeypatch):
    for key in ("NAME", "VAT_NUMBER", "STREET", "POSTAL_CODE", "CITY", "IBAN"):
        monkeypatch.delenv(f"FEDELE_SELLER_{key}", raising=False)
    assert seller()["name"] == "fedele S.r.l."
    with override_settings(FEDELE_ALLOW_PLACEHOLDER_IDENTITY=False, FEDELE_SELLER=None):
        with pytest.raises(ValidationFailed) as error:
            seller()
        assert error.value.code == "seller_not_configured"
        assert "FEDELE_SELLER_VAT_NUMBER" in error.value.message
        with pytest.raises(ValidationFailed) as sepa_error:
            configured_creditor()
        assert sepa_error.value.code == "sepa_not_configured"


def test_configured_identity_is_used_in_production(monkeypatch):
    company = {
        "name": "Esempio Telecomunicazioni S.p.A.",
        "vat_number": "01234567890",
        "street": "Via Roma 1",
        "postal_code": "00100",
        "city": "Roma",
        "iban": "IT60X0542811101000000123456",
    }
    with override_settings(
        FEDELE_ALLOW_PLACEHOLDER_IDENTITY=False,
        FEDELE_SELLER=company,
        SEPA_CREDITOR_IBAN="IT60X0542811101000000123456",
        SEPA_CREDITOR_ID="IT66ZZZA1B2C3D4E5F6G7H8",
        SEPA_CREDITOR_NAME="Esempio Telecomunicazioni S.p.A.",
    ):
        assert seller()["name"] == "Esempio Telecomunicazioni S.p.A."
        assert configured_creditor().creditor_id == "IT66ZZZA1B2C3D4E5F6G7H8"
