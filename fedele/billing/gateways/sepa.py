"""SEPA Direct Debit (Core): mandate checks and the pain.008.001.02 collection file.

A collection is not instant: the file goes to the bank, the money arrives at settlement, and a
debit can still come back (R-transaction) for weeks. So a charge here only queues the invoice for
the next file; :mod:`fedele.billing.services.sepa` builds files and records settlements and returns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from django.conf import settings
from lxml import etree
from stdnum import bic as stdnum_bic
from stdnum import iban as stdnum_iban
from stdnum.exceptions import ValidationError as StdnumError

from fedele.billing.gateways.base import ChargeRequest, GatewayResult, ResultStatus, register
from fedele.shared.errors import ValidationFailed

PAIN_008 = "urn:iso:std:iso:20022:tech:xsd:pain.008.001.02"
SEPA_COUNTRIES_ONLY_EUR = "EUR"


def validated_iban(value: str, field: str = "iban") -> str:
    """The IBAN in its compact form (no spaces, upper case), or a 422 naming the field."""
    try:
        return str(stdnum_iban.validate(value))
    except StdnumError as error:
        raise ValidationFailed(
            f"'{value}' is not a valid IBAN.", code="invalid_iban", fields={field: "Not a valid IBAN."}
        ) from error


def validated_bic(value: str, field: str = "bic") -> str:
    if not value:
        return ""
    try:
        return str(stdnum_bic.validate(value))
    except StdnumError as error:
        raise ValidationFailed(
            f"'{value}' is not a valid BIC.", code="invalid_bic", fields={field: "Not a valid BIC."}
        ) from error


@dataclass(frozen=True, slots=True)
class Creditor:
    name: str
    iban: str
    bic: str
    creditor_id: str
    """The SEPA creditor identifier (Italy: IT + 2 check digits + ZZZ + fiscal code)."""


def configured_creditor() -> Creditor:
    if not getattr(settings, "FEDELE_ALLOW_PLACEHOLDER_IDENTITY", False) and not (
        getattr(settings, "SEPA_CREDITOR_IBAN", "") and getattr(settings, "SEPA_CREDITOR_ID", "")
    ):
        raise ValidationFailed(
            "SEPA collections need the creditor's IBAN and creditor identifier "
            "(SEPA_CREDITOR_IBAN, SEPA_CREDITOR_ID).",
            code="sepa_not_configured",
        )
    creditor = Creditor(
        name=getattr(settings, "SEPA_CREDITOR_NAME", "") or "fedele",
        iban=getattr(settings, "SEPA_CREDITOR_IBAN", "") or "IT60X0542811101000000123456",
        bic=getattr(settings, "SEPA_CREDITOR_BIC", "") or "",
        creditor_id=getattr(settings, "SEPA_CREDITOR_ID", "") or "IT66ZZZA1B2C3D4E5F6G7H8",
    )
    validated_iban(creditor.iban, "SEPA_CREDITOR_IBAN")
    return creditor


@dataclass(frozen=True, slots=True)
class DirectDebit:
    end_to_end_id: str
    amount: Decimal
    currency: str
    mandate_reference: str
    mandate_signed_on: date
    sequence: str
    debtor_name: str
    debtor_iban: str
    debtor_bic: str
    remittance: str


def _text(parent: etree._Element, tag: str, value: str, **attributes: str) -> etree._Element:
    element = etree.SubElement(parent, tag, **attributes)
    element.text = value
    return element


def _path(parent: etree._Element, *tags: str) -> etree._Element:
    for tag in tags:
        parent = etree.SubElement(parent, tag)
    return parent


def _latin(value: str, length: int) -> str:
    """SEPA allows a restricted Latin character set; keep what fits and cut to the field length."""
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/-?:().,'+ ")
    return "".join(ch if ch in allowed else " " for ch in value)[:length].strip() or "-"


def pain_008(
    *,
    message_id: str,
    created_at: datetime,
    collection_date: date,
    creditor: Creditor,
    debits: Sequence[DirectDebit],
) -> bytes:
    """A pain.008.001.02 CustomerDirectDebitInitiation: one PmtInf per sequence type (FRST, RCUR)."""
    if not debits:
        raise ValidationFailed("A collection file needs at least one direct debit.", code="empty_batch")
    total = sum((debit.amount for debit in debits), Decimal(0))
    root = etree.Element("Document", nsmap={None: PAIN_008})
    initiation = etree.SubElement(root, "CstmrDrctDbtInitn")
    header = etree.SubElement(initiation, "GrpHdr")
    _text(header, "MsgId", message_id)
    _text(header, "CreDtTm", created_at.replace(microsecond=0, tzinfo=None).isoformat())
    _text(header, "NbOfTxs", str(len(debits)))
    _text(header, "CtrlSum", f"{total:.2f}")
    _text(_path(header, "InitgPty"), "Nm", _latin(creditor.name, 70))
    for sequence in ("FRST", "RCUR"):
        group = [debit for debit in debits if debit.sequence == sequence]
        if not group:
            continue
        info = etree.SubElement(initiation, "PmtInf")
        _text(info, "PmtInfId", f"{message_id}-{sequence}"[:35])
        _text(info, "PmtMtd", "DD")
        _text(info, "NbOfTxs", str(len(group)))
        _text(info, "CtrlSum", f"{sum((d.amount for d in group), Decimal(0)):.2f}")
        kind = etree.SubElement(info, "PmtTpInf")
        _text(_path(kind, "SvcLvl"), "Cd", "SEPA")
        _text(_path(kind, "LclInstrm"), "Cd", "CORE")
        _text(kind, "SeqTp", sequence)
        _text(info, "ReqdColltnDt", collection_date.isoformat())
        _text(_path(info, "Cdtr"), "Nm", _latin(creditor.name, 70))
        _text(_path(info, "CdtrAcct", "Id"), "IBAN", creditor.iban)
        agent = _path(info, "CdtrAgt", "FinInstnId")
        if creditor.bic:
            _text(agent, "BIC", creditor.bic)
        else:
            _text(_path(agent, "Othr"), "Id", "NOTPROVIDED")
        _text(info, "ChrgBr", "SLEV")
        scheme = _path(info, "CdtrSchmeId", "Id", "PrvtId", "Othr")
        _text(scheme, "Id", creditor.creditor_id)
        _text(_path(scheme, "SchmeNm"), "Prtry", "SEPA")
        for debit in group:
            transaction = etree.SubElement(info, "DrctDbtTxInf")
            _text(_path(transaction, "PmtId"), "EndToEndId", debit.end_to_end_id)
            _text(transaction, "InstdAmt", f"{debit.amount:.2f}", Ccy=debit.currency)
            mandate = _path(transaction, "DrctDbtTx", "MndtRltdInf")
            _text(mandate, "MndtId", debit.mandate_reference)
            _text(mandate, "DtOfSgntr", debit.mandate_signed_on.isoformat())
            debtor_agent = _path(transaction, "DbtrAgt", "FinInstnId")
            if debit.debtor_bic:
                _text(debtor_agent, "BIC", debit.debtor_bic)
            else:
                _text(_path(debtor_agent, "Othr"), "Id", "NOTPROVIDED")
            _text(_path(transaction, "Dbtr"), "Nm", _latin(debit.debtor_name, 70))
            _text(_path(transaction, "DbtrAcct", "Id"), "IBAN", debit.debtor_iban)
            _text(_path(transaction, "RmtInf"), "Ustrd", _latin(debit.remittance, 140))
    result: bytes = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return result


class SepaGateway:
    """Charging by direct debit queues the invoice for the next collection file."""

    name = "sepa"

    def charge(self, request: ChargeRequest) -> GatewayResult:
        if request.currency != SEPA_COUNTRIES_ONLY_EUR:
            return GatewayResult(
                ResultStatus.FAILED,
                "",
                request.amount,
                request.currency,
                failure_code="currency_not_supported",
                failure_reason="SEPA direct debits are in euro only.",
            )
        return GatewayResult(ResultStatus.PENDING, "", request.amount, request.currency)

    def confirm(self, external_id: str) -> GatewayResult:
        return GatewayResult(ResultStatus.PENDING, external_id, Decimal(0), SEPA_COUNTRIES_ONLY_EUR)

    def refund(
        self, *, payment_external_id: str, amount: Decimal, currency: str, idempotency_key: str
    ) -> GatewayResult:
        # A collected debit is paid back by credit transfer (the debtor's 8-week right is the bank's).
        return GatewayResult(ResultStatus.SUCCEEDED, f"sepa-refund:{idempotency_key}", amount, currency)


def install() -> None:
    register("sepa", SepaGateway)
