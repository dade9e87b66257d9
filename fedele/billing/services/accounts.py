"""Billing accounts: the billing side of a customer (currency, payment terms, billing e-mail)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from fedele.billing.models import BillingAccount, Invoice, Subscription
from fedele.customers.facade import customer_summary
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, NotFound, ValidationFailed
from fedele.shared.money import Money

MAX_PAYMENT_TERMS_DAYS = 365


def _account_snapshot(account: BillingAccount) -> dict[str, Any]:
    return {
        "currency": account.currency,
        "payment_terms_days": account.payment_terms_days,
        "billing_email": account.billing_email,
    }


def _valid_currency(currency: str) -> str:
    try:
        return Money.zero(str(currency)).currency
    except ValidationFailed as error:
        raise ValidationFailed(
            f"'{currency}' is not an ISO-4217 currency code.",
            code="invalid_currency",
            fields={"currency": "must be an ISO-4217 code such as EUR."},
        ) from error


def billing_account_for_customer(*, customer_public_id: str, currency: str = "EUR") -> BillingAccount:
    """The customer's billing account, created on first use in ``currency``.

    An existing account is returned as it is (its currency is changed only by
    :func:`billing_account_update`, and never once it has subscriptions or invoices).
    """
    currency = _valid_currency(currency)
    try:
        summary = customer_summary(str(customer_public_id))
    except DjangoValidationError:
        summary = None
    if summary is None or not summary.customer_id:
        raise NotFound("Customer not found.", code="customer_not_found")
    existing = BillingAccount.objects.filter(customer_id=summary.customer_id).first()
    if existing is not None:
        return existing
    now = clock.now()
    try:
        with transaction.atomic():
            account = BillingAccount.objects.create(
                customer_id=summary.customer_id,
                currency=currency,
                billing_email=summary.email,
                created_at=now,
                updated_at=now,
            )
            audit.record(
                action="billing.account.created",
                object_type="billing_account",
                object_id=str(account.public_id),
                after=_account_snapshot(account),
            )
    except IntegrityError:
        # A concurrent request created it first: the unique customer key makes this get-or-create safe.
        return BillingAccount.objects.get(customer_id=summary.customer_id)
    return account


def billing_account_update(
    *,
    account: BillingAccount,
    currency: str | None = None,
    payment_terms_days: int | None = None,
    billing_email: str | None = None,
    actor_id: int | None = None,
) -> BillingAccount:
    """Change the terms, the billing e-mail or (while nothing was billed in it) the currency."""
    errors: dict[str, str] = {}
    new_currency: str | None = None
    if currency is not None:
        try:
            new_currency = _valid_currency(currency)
        except ValidationFailed:
            errors["currency"] = "must be an ISO-4217 code such as EUR."
    if payment_terms_days is not None and not 0 <= payment_terms_days <= MAX_PAYMENT_TERMS_DAYS:
        errors["payment_terms_days"] = f"must be between 0 and {MAX_PAYMENT_TERMS_DAYS} days."
    email = billing_email.strip().lower() if billing_email is not None else None
    if email:
        try:
            validate_email(email)
        except DjangoValidationError:
            errors["billing_email"] = "is not a valid e-mail address."
    if errors:
        raise ValidationFailed("The billing account details are not valid.", fields=errors)
    with transaction.atomic():
        locked = BillingAccount.objects.select_for_update().get(pk=account.pk)
        before = _account_snapshot(locked)
        if new_currency is not None and new_currency != locked.currency:
            in_use = (
                Subscription.objects.filter(account=locked).exists()
                or Invoice.objects.filter(account=locked).exists()
            )
            if in_use:
                raise Conflict(
                    "The currency of an account is fixed once it has subscriptions or invoices.",
                    code="currency_locked",
                    fields={"currency": f"stays {locked.currency}."},
                )
            locked.currency = new_currency
        if payment_terms_days is not None:
            locked.payment_terms_days = payment_terms_days
        if email is not None:
            locked.billing_email = email
        locked.updated_at = clock.now()
        locked.save(update_fields=["currency", "payment_terms_days", "billing_email", "updated_at"])
        audit.record(
            action="billing.account.updated",
            object_type="billing_account",
            object_id=str(locked.public_id),
            before=before,
            after=_account_snapshot(locked),
            actor_id=actor_id,
        )
    return locked
