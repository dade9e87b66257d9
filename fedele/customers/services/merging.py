"""Merge a duplicate customer into the one that survives."""

from __future__ import annotations

from django.db import transaction

from fedele.accounts.facade import Actor
from fedele.customers import events
from fedele.customers.contracts import CustomerKind, CustomerStatus
from fedele.customers.models import ConsentRecord, Contact, Customer, TimelineEntry
from fedele.customers.services.customers import (
    EDITABLE_FIELDS,
    clean_customer_data,
    display_name_for,
    search_text_for,
    snapshot,
)
from fedele.customers.services.guards import save_guarding_email
from fedele.customers.services.timeline import timeline_append
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fedele.shared.events import publish

# Fields with a default value (kind, language, segment, country) are never "empty", so never filled.
FILLABLE_FIELDS = tuple(
    name for name in EDITABLE_FIELDS if name not in ("kind", "language", "segment", "country")
)
PERSON_ONLY_FIELDS = frozenset({"first_name", "last_name", "birth_date"})
COMPANY_ONLY_FIELDS = frozenset({"company_name"})


def _is_empty(value: object) -> bool:
    return value is None or value == ""


def fields_to_fill(survivor: Customer, duplicate: Customer) -> dict[str, object]:
    """The duplicate's values for the survivor's empty fields that make sense for the survivor's kind."""
    skip = COMPANY_ONLY_FIELDS if survivor.kind == CustomerKind.PERSON else PERSON_ONLY_FIELDS
    values: dict[str, object] = {}
    for name in FILLABLE_FIELDS:
        if name in skip:
            continue
        if _is_empty(getattr(survivor, name)) and not _is_empty(getattr(duplicate, name)):
            values[name] = getattr(duplicate, name)
    if survivor.notes and duplicate.notes and duplicate.notes not in survivor.notes:
        values["notes"] = f"{survivor.notes}\n\n[{duplicate.number}] {duplicate.notes}"[:10_000]
    return values


def customers_merge(*, actor: Actor, survivor_public_id: str, duplicate_public_id: str) -> Customer:
    """Move the duplicate's contacts, consent and timeline to the survivor, fill the survivor's empty
    fields from it, and mark it merged (it keeps its number; references to it resolve to the survivor).

    Both rows are locked in primary-key order, so two merges of the same pair never deadlock: the second
    waits, then finds a customer no longer active and is refused.
    """
    if str(survivor_public_id) == str(duplicate_public_id):
        raise ValidationFailed(
            "A customer cannot be merged into itself.",
            code="self_merge",
            fields={"duplicate_id": "Choose another customer."},
        )
    from fedele.customers.selectors import customer_queryset_for

    with transaction.atomic():
        locked = list(
            customer_queryset_for(actor)
            .select_for_update()
            .filter(public_id__in=[str(survivor_public_id), str(duplicate_public_id)])
            .order_by("pk")
        )
        by_public_id = {str(customer.public_id): customer for customer in locked}
        survivor = by_public_id.get(str(survivor_public_id))
        duplicate = by_public_id.get(str(duplicate_public_id))
        if survivor is None:
            raise NotFound("Customer not found.")
        if duplicate is None:
            raise NotFound("The duplicate customer was not found.", fields={"duplicate_id": "Not found."})
        if not actor.can("customers.merge_customers"):
            raise PermissionDenied("You do not have permission for this action.")
        for customer in (survivor, duplicate):
            if customer.status != CustomerStatus.ACTIVE:
                raise Conflict(
                    f"Customer {customer.number} is {customer.status} and cannot be merged.",
                    code="customer_not_active",
                )
        before = snapshot(survivor)
        fill = fields_to_fill(survivor, duplicate)
        try:
            cleaned = clean_customer_data({**before, **fill})
        except ValidationFailed as error:
            raise ValidationFailed(
                "The merged data would not be valid; correct one of the customers first.",
                code="merge_invalid",
                fields=error.fields,
            ) from error
        now = clock.now()

        # The duplicate stops being active first, so its e-mail leaves the active-email uniqueness check.
        duplicate.status = CustomerStatus.MERGED.value
        duplicate.merged_into = survivor
        duplicate.updated_at = now
        duplicate.save(update_fields=["status", "merged_into", "updated_at"])
        Customer.objects.filter(merged_into=duplicate).update(merged_into=survivor, updated_at=now)

        has_primary = Contact.objects.filter(customer=survivor, is_primary=True).exists()
        moved_contacts = Contact.objects.filter(customer=duplicate).update(
            customer=survivor, updated_at=now, **({"is_primary": False} if has_primary else {})
        )
        moved_consents = ConsentRecord.objects.filter(customer=duplicate).update(customer=survivor)
        moved_timeline = TimelineEntry.objects.filter(customer=duplicate).update(customer=survivor)

        for name in fill:
            setattr(survivor, name, cleaned[name])
        survivor.display_name = display_name_for(cleaned)
        survivor.search_text = search_text_for(survivor)
        survivor.updated_at = now
        save_guarding_email(survivor)

        audit.record(
            action="customer.merged",
            object_type="customer",
            object_id=str(survivor.public_id),
            before={**before, "merged_customer": None},
            after={
                **snapshot(survivor),
                "merged_customer": duplicate.number,
                "moved_contacts": moved_contacts,
                "moved_consents": moved_consents,
                "moved_timeline_entries": moved_timeline,
            },
        )
        audit.record(
            action="customer.merged_into",
            object_type="customer",
            object_id=str(duplicate.public_id),
            before={"status": CustomerStatus.ACTIVE.value, "merged_into": None},
            after={"status": duplicate.status, "merged_into": survivor.number},
        )
        outbox = publish(
            events.CustomersMerged(str(survivor.public_id), str(duplicate.public_id)),
            aggregate_type="customer",
            aggregate_id=str(survivor.public_id),
        )
        # Same source event id as a timeline handler would use, so the line is written once either way.
        timeline_append(
            customer=survivor,
            module="customers",
            kind="customer.merged",
            title="Duplicate merged into this customer",
            summary=f"{duplicate.number} {duplicate.display_name}".strip(),
            occurred_at=now,
            source_event_id=str(outbox.event_id),
        )
    return survivor
