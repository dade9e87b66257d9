"""Payment methods, SEPA mandates and SEPA collection files (creation, settlement, returns)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from django.db import IntegrityError, transaction

from fedele.billing.contracts import InvoiceKind, InvoiceStatus
from fedele.billing.gateways import sepa
from fedele.billing.models import BillingAccount, Invoice, Payment, PaymentMethod, SepaBatch, SepaMandate
from fedele.billing.models.payments import Gateway, MethodKind
from fedele.billing.services import payments
from fedele.shared import audit, clock, sequences
from fedele.shared.errors import Conflict, NotFound, ValidationFailed

# R-transaction reason codes (EPC): why a debit came back.
RETURN_REASONS = {
    "AC01": "Incorrect account number",
    "AC04": "Account closed",
    "AC06": "Account blocked",
    "AG01": "Direct debit forbidden on this account",
    "AM04": "Insufficient funds",
    "MD01": "No valid mandate",
    "MD06": "Refund requested by the debtor",
    "MS02": "Refused by the debtor",
    "MS03": "Reason not specified",
    "SL01": "Specific service offered by the debtor bank",
}


def mandate_create(
    *,
    account: BillingAccount,
    iban: str,
    debtor_name: str,
    signed_on: date,
    bic: str = "",
    reference: str = "",
    make_default: bool = True,
    actor_id: int | None = None,
) -> SepaMandate:
    """Register a signed mandate and a SEPA payment method that uses it."""
    errors: dict[str, str] = {}
    compact_iban = ""
    try:
        compact_iban = sepa.validated_iban(iban)
    except ValidationFailed as failure:
        errors.update({k: v[0] for k, v in failure.fields.items()})
    try:
        bic = sepa.validated_bic(bic.strip())
    except ValidationFailed as failure:
        errors.update({k: v[0] for k, v in failure.fields.items()})
    debtor_name = (debtor_name or "").strip()
    if not debtor_name or len(debtor_name) > 70:
        errors["debtor_name"] = "The account holder's name is required (at most 70 characters)."
    if signed_on > payments.business_today():
        errors["signed_on"] = "The signature date cannot be in the future."
    reference = (reference or "").strip()
    if reference and (len(reference) > 35 or not all(c.isalnum() or c in "-/?:().,'+ " for c in reference)):
        errors["reference"] = "At most 35 letters, digits or - / ? : ( ) . , ' +."
    if reference and SepaMandate.objects.filter(reference=reference).exists():
        errors["reference"] = "This mandate reference is already used."
    if account.currency != "EUR":
        errors["account"] = "SEPA direct debits are in euro only."
    if errors:
        raise ValidationFailed("The mandate is not valid.", code="invalid_mandate", fields=errors)
    try:
        with transaction.atomic():
            BillingAccount.objects.select_for_update().get(pk=account.pk)
            now = clock.now()
            mandate = SepaMandate.objects.create(
                account=account,
                reference=reference or sequences.next_number("MNDT", width=8),
                iban=compact_iban,
                bic=bic,
                debtor_name=debtor_name,
                signed_on=signed_on,
                created_at=now,
            )
            if make_default:
                PaymentMethod.objects.filter(account=account, is_default=True).update(is_default=False)
            PaymentMethod.objects.create(
                account=account,
                kind=MethodKind.SEPA_DEBIT,
                gateway=Gateway.SEPA,
                label=f"SEPA {compact_iban[:4]}…{compact_iban[-4:]}",
                mandate=mandate,
                is_default=make_default,
                created_at=now,
            )
            audit.record(
                action="billing.sepa_mandate_created",
                object_type="billing.sepa_mandate",
                object_id=str(mandate.public_id),
                after={
                    "reference": mandate.reference,
                    "iban_last4": compact_iban[-4:],
                    "signed_on": signed_on,
                },
                actor_id=actor_id,
            )
    except IntegrityError as error:
        raise ValidationFailed(
            "This mandate reference is already used.",
            code="invalid_mandate",
            fields={"reference": "This mandate reference is already used."},
        ) from error
    return mandate


def mandate_revoke(*, mandate: SepaMandate, actor_id: int | None = None) -> SepaMandate:
    with transaction.atomic():
        locked = SepaMandate.objects.select_for_update().get(pk=mandate.pk)
        if locked.status == SepaMandate.Status.REVOKED:
            return locked
        locked.status = SepaMandate.Status.REVOKED
        locked.revoked_on = payments.business_today()
        locked.save(update_fields=["status", "revoked_on"])
        PaymentMethod.objects.filter(mandate=locked).update(is_active=False, is_default=False)
        audit.record(
            action="billing.sepa_mandate_revoked",
            object_type="billing.sepa_mandate",
            object_id=str(locked.public_id),
            before={"status": "active"},
            after={"status": "revoked"},
            actor_id=actor_id,
        )
    return locked


def card_method_add(
    *,
    account: BillingAccount,
    external_id: str,
    external_customer_id: str,
    label: str,
    make_default: bool = True,
    actor_id: int | None = None,
) -> PaymentMethod:
    """A card saved at Stripe (pm_..., for customer cus_...), charged off-session by the billing run."""
    errors: dict[str, str] = {}
    if not external_id.startswith("pm_") or len(external_id) > 100:
        errors["external_id"] = "A Stripe payment method id (pm_...)."
    if not external_customer_id.startswith("cus_") or len(external_customer_id) > 100:
        errors["external_customer_id"] = "A Stripe customer id (cus_...)."
    if errors:
        raise ValidationFailed("The card is not valid.", code="invalid_payment_method", fields=errors)
    with transaction.atomic():
        BillingAccount.objects.select_for_update().get(pk=account.pk)
        existing = PaymentMethod.objects.filter(
            account=account, external_id=external_id, is_active=True
        ).first()
        if existing is not None:
            return existing
        if make_default:
            PaymentMethod.objects.filter(account=account, is_default=True).update(is_default=False)
        method = PaymentMethod.objects.create(
            account=account,
            kind=MethodKind.CARD,
            gateway=Gateway.STRIPE,
            label=(label or "card")[:100],
            external_id=external_id,
            external_customer_id=external_customer_id,
            is_default=make_default,
            created_at=clock.now(),
        )
        audit.record(
            action="billing.payment_method_added",
            object_type="billing.payment_method",
            object_id=str(method.public_id),
            after={"kind": method.kind, "label": method.label},
            actor_id=actor_id,
        )
    return method


@dataclass(frozen=True, slots=True)
class BatchResult:
    batch: SepaBatch | None
    transactions: int


def sepa_batch_create(*, collection_date: date, actor_id: int | None = None) -> BatchResult:
    """One pain.008 file collecting every finalised invoice due by ``collection_date`` of accounts with
    an active mandate that has no collection already under way. Each debit is a pending payment
    (end-to-end id = its external id) until the bank settles it or returns it."""
    if collection_date < payments.business_today():
        raise ValidationFailed(
            "The collection date cannot be in the past.",
            code="invalid_collection_date",
            fields={"collection_date": "Today or later."},
        )
    creditor = sepa.configured_creditor()
    with transaction.atomic():
        methods = {
            method.account_id: method
            for method in PaymentMethod.objects.filter(
                kind=MethodKind.SEPA_DEBIT, is_active=True, mandate__status=SepaMandate.Status.ACTIVE
            )
            .select_related("mandate")
            .order_by("-is_default", "-pk")
        }
        invoices = list(
            Invoice.objects.select_for_update()
            .filter(
                account_id__in=list(methods),
                kind=InvoiceKind.INVOICE,
                status=InvoiceStatus.FINALISED,
                currency="EUR",
                due_date__lte=collection_date,
            )
            .exclude(payments__status=Payment.Status.PENDING)
            .order_by("pk")
        )
        invoices = [invoice for invoice in invoices if invoice.amount_due > 0]
        if not invoices:
            return BatchResult(None, 0)
        now = clock.now()
        message_id = sequences.next_number("SDD", year=collection_date.year)
        batch = SepaBatch.objects.create(
            message_id=message_id, collection_date=collection_date, xml="", actor_id=actor_id, created_at=now
        )
        debits: list[sepa.DirectDebit] = []
        first_mandates: set[int] = set()
        for invoice in invoices:
            method = methods[invoice.account_id]
            mandate = method.mandate
            assert mandate is not None
            attempt = Payment.objects.filter(invoice=invoice, gateway=Gateway.SEPA).count() + 1
            end_to_end = f"{invoice.number}-{attempt}"[:35]
            payments.payment_pending_record(
                account=invoice.account,
                amount=invoice.amount_due,
                currency=invoice.currency,
                method=MethodKind.SEPA_DEBIT,
                gateway=Gateway.SEPA,
                external_id=end_to_end,
                invoice=invoice,
                payment_method=method,
                attempt=attempt,
                sepa_batch_id=batch.pk,
            )
            sequence = mandate.sequence if mandate.pk not in first_mandates else SepaMandate.Sequence.FIRST
            if mandate.sequence == SepaMandate.Sequence.FIRST:
                first_mandates.add(mandate.pk)
            debits.append(
                sepa.DirectDebit(
                    end_to_end_id=end_to_end,
                    amount=invoice.amount_due,
                    currency=invoice.currency,
                    mandate_reference=mandate.reference,
                    mandate_signed_on=mandate.signed_on,
                    sequence=sequence,
                    debtor_name=mandate.debtor_name,
                    debtor_iban=mandate.iban,
                    debtor_bic=mandate.bic,
                    remittance=f"Fattura {invoice.number}",
                )
            )
        SepaMandate.objects.filter(pk__in=first_mandates).update(sequence=SepaMandate.Sequence.RECURRENT)
        xml = sepa.pain_008(
            message_id=message_id,
            created_at=now,
            collection_date=collection_date,
            creditor=creditor,
            debits=debits,
        )
        batch.xml = xml.decode()
        batch.transactions = len(debits)
        batch.control_sum = sum((debit.amount for debit in debits), batch.control_sum)
        batch.save(update_fields=["xml", "transactions", "control_sum"])
        audit.record(
            action="billing.sepa_batch_created",
            object_type="billing.sepa_batch",
            object_id=str(batch.public_id),
            after={"message_id": message_id, "transactions": len(debits), "control_sum": batch.control_sum},
            actor_id=actor_id,
        )
    return BatchResult(batch, len(debits))


def sepa_batch_settle(*, batch: SepaBatch, settled_on: date, actor_id: int | None = None) -> int:
    """The bank has credited the collection: every debit still pending in the file is paid."""
    settled = 0
    for payment in Payment.objects.filter(sepa_batch=batch, status=Payment.Status.PENDING).order_by("pk"):
        payments.payment_succeed(payment=payment, received_on=settled_on, actor_id=actor_id)
        settled += 1
    return settled


def sepa_return_record(*, end_to_end_id: str, reason_code: str, actor_id: int | None = None) -> Payment:
    """An R-transaction (return, refusal, reject): the debit failed, even if it was already settled."""
    payment = Payment.objects.filter(gateway=Gateway.SEPA, external_id=end_to_end_id.strip()).first()
    if payment is None:
        raise NotFound(f"No direct debit with end-to-end id '{end_to_end_id}'.", code="unknown_debit")
    code = reason_code.strip().upper()
    if code not in RETURN_REASONS:
        raise ValidationFailed(
            f"Unknown return reason '{reason_code}'.",
            code="invalid_reason_code",
            fields={"reason_code": f"Use one of: {', '.join(sorted(RETURN_REASONS))}."},
        )
    if payment.status == Payment.Status.FAILED:
        return payment
    if payment.amount_refunded > 0:
        raise Conflict("The debit was refunded already.", code="payment_refunded")
    with transaction.atomic():
        if (
            code in ("MD01", "AC04", "AG01")
            and payment.method is not None
            and payment.method.mandate is not None
        ):
            # The debtor's account or mandate is gone: collecting again would only be returned again.
            mandate_revoke(mandate=payment.method.mandate, actor_id=actor_id)
        return payments.payment_fail(
            payment=payment, code=code, reason=RETURN_REASONS[code], actor_id=actor_id
        )
