"""One-off charges and credits for a customer's next invoice, asked for by other modules through
``facade.charge_customer`` (field-service parts, penalties, loyalty rewards)."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.db import IntegrityError, transaction

from fedele.billing.contracts import InvoiceLineKind
from fedele.billing.models import BillingAccount, OneOffCharge
from fedele.customers.facade import customer_summary
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, NotFound, ValidationFailed
from fedele.shared.money import Money

MAX_CHARGE = Decimal("1000000")


def _validated_charge(description: str, amount: object, currency: str, idempotency_key: str) -> Decimal:
    errors: dict[str, str] = {}
    if not description.strip():
        errors["description"] = "is required."
    elif len(description) > 500:
        errors["description"] = "must be at most 500 characters."
    if not idempotency_key.strip() or len(idempotency_key) > 120:
        errors["idempotency_key"] = "is required (1-120 characters)."
    value = Decimal(0)
    if isinstance(amount, bool) or not isinstance(amount, (Decimal, int, str)):
        errors["amount"] = "must be a Decimal amount."
    else:
        try:
            value = Decimal(amount)
        except (InvalidOperation, ValueError):
            errors["amount"] = f"'{amount}' is not an amount."
        else:
            if not value.is_finite() or value == 0:
                errors["amount"] = "must be a non-zero finite amount."
            elif abs(value) > MAX_CHARGE:
                errors["amount"] = f"must not exceed {MAX_CHARGE} in absolute value."
            elif value != Money.of(value, currency if len(currency) == 3 else "EUR").amount:
                errors["amount"] = "must not have more decimals than the currency allows."
    if errors:
        raise ValidationFailed("The charge is not valid.", code="invalid_charge", fields=errors)
    return value


def one_off_charge_create(
    *,
    customer_public_id: str,
    description: str,
    amount: Decimal,
    currency: str = "EUR",
    idempotency_key: str,
    source: str,
    vat_rate: Decimal = Decimal("22"),
    vat_nature: str = "",
) -> tuple[OneOffCharge, bool]:
    """A one-off charge (positive) or credit (negative) for the customer's next invoice, and whether it
    was created now. The same ``source`` + ``idempotency_key`` returns the first charge and creates
    nothing, also when two calls race (the unique key decides). ``amount`` is net of VAT."""
    value = _validated_charge(description, amount, currency, idempotency_key)
    key = f"{source}:{idempotency_key}"
    summary = customer_summary(str(customer_public_id))
    if summary is None:
        raise NotFound(f"No customer {customer_public_id}.", code="customer_not_found")
    existing = OneOffCharge.objects.filter(idempotency_key=key).select_related("account").first()
    if existing is not None:
        return _replayed(existing, summary.customer_id), False
    account = BillingAccount.objects.filter(customer_id=summary.customer_id).first()
    if account is None:
        raise Conflict(
            "The customer has no billing account yet; create a subscription or an invoice first.",
            code="no_billing_account",
        )
    if account.currency != currency.upper():
        raise ValidationFailed(
            f"The customer is billed in {account.currency}, not {currency}.",
            code="currency_mismatch",
            fields={"currency": f"must be {account.currency}."},
        )
    kind = InvoiceLineKind.ONE_TIME if value > 0 else InvoiceLineKind.DISCOUNT
    try:
        with transaction.atomic():
            charge = OneOffCharge.objects.create(
                account=account,
                description=description.strip(),
                quantity=Decimal(1),
                unit_amount=value,
                currency=account.currency,
                kind=kind,
                vat_rate=vat_rate,
                vat_nature=vat_nature,
                idempotency_key=key,
                source=source[:64],
                created_at=clock.now(),
            )
            audit.record(
                action="billing.one_off_charge_created",
                object_type="billing.one_off_charge",
                object_id=str(charge.public_id),
                after={
                    "description": charge.description,
                    "amount": value,
                    "currency": charge.currency,
                    "source": source,
                },
            )
    except IntegrityError:
        # A concurrent call with the same key won the race: return its charge.
        existing = OneOffCharge.objects.select_related("account").get(idempotency_key=key)
        return _replayed(existing, summary.customer_id), False
    return charge, True


def _replayed(charge: OneOffCharge, customer_id: int) -> OneOffCharge:
    if charge.account.customer_id != customer_id:
        raise Conflict(
            "This idempotency key was already used for another customer's charge.",
            code="idempotency_key_reused",
        )
    return charge
