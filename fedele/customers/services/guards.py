"""Checks every customers service makes before it writes: permission, visibility, unique e-mail."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from django.db import IntegrityError, transaction

from fedele.accounts.facade import Actor
from fedele.customers.contracts import CustomerStatus
from fedele.customers.models import Customer
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed


def require(actor: Actor, permission: str) -> None:
    if not actor.can(permission):
        raise PermissionDenied("You do not have permission for this action.")


def require_on_customer(actor: Actor, permission: str, customer_public_id: str) -> None:
    """A customer the actor cannot see is 404 whatever the action, so an id reveals nothing (no IDOR)."""
    if actor.can(permission):
        return
    from fedele.customers.selectors import customer_queryset_for

    if not customer_queryset_for(actor).filter(public_id=customer_public_id).exists():
        raise NotFound("Customer not found.")
    raise PermissionDenied("You do not have permission for this action.")


def email_taken() -> Conflict:
    return Conflict(
        "Another customer already uses this e-mail address.",
        code="duplicate_email",
        fields={"email": "Already used by another customer."},
    )


def ensure_email_free(email: str, *, exclude_pk: int | None = None) -> None:
    if not email:
        return
    clash = Customer.objects.filter(email__iexact=email, status=CustomerStatus.ACTIVE)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise email_taken()


def save_guarding_email(customer: Customer) -> None:
    """Save; the unique index on active e-mails catches a concurrent writer the pre-check missed."""
    try:
        with transaction.atomic():
            customer.save()
    except IntegrityError as error:
        raise email_taken() from error


def refuse_unknown_fields(data: Mapping[str, Any], allowed: Collection[str]) -> None:
    """Callers other than the API (imports, other modules) get the same strictness as its schemas."""
    unknown = set(data) - set(allowed)
    if unknown:
        raise ValidationFailed("Unknown fields.", fields=dict.fromkeys(sorted(unknown), "Unknown field."))
