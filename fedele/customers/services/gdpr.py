"""GDPR: export a customer's personal data (art. 15 and 20) and erase it (art. 17)."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from django.db import transaction
from django.db.models import TextField
from django.db.models.functions import Cast

from fedele.accounts.facade import Actor, erase_user
from fedele.customers import events
from fedele.customers.contracts import CustomerKind, CustomerStatus
from fedele.customers.models import ConsentRecord, Contact, Customer, CustomerImport, TimelineEntry
from fedele.customers.services.customers import EDITABLE_FIELDS, PII_FIELDS, search_text_for
from fedele.customers.services.guards import require
from fedele.shared import audit, clock, gdpr
from fedele.shared.audit import jsonable
from fedele.shared.errors import Conflict, NotFound, ValidationFailed
from fedele.shared.events import publish

EXPORT_FORMAT = "fedele.personal-data.v1"
CONTACT_EXPORT_FIELDS = ("first_name", "last_name", "job_title", "email", "phone", "mobile", "language")
CONTACT_PII_FIELDS = ("first_name", "last_name", "job_title", "email", "phone", "mobile")
CLEARED_TEXT_FIELDS = (
    "fiscal_code",
    "email",
    "pec",
    "phone",
    "street",
    "postal_code",
    "city",
    "province",
    "notes",
)
MAX_REASON_LENGTH = 500
README = """Personal data export / Esportazione dei dati personali
========================================================

customer.json holds, in JSON (UTF-8):
  customer  - the customer record (number, names, codes, contacts details, address, status)
  contacts  - the people of this customer and how to reach them
  consents  - every consent given or withdrawn, newest first (channel, purpose, source, evidence)
  timeline  - the history of the relationship (the customer 360 timeline), newest first
  modules   - the data other parts of the service keep about this customer, one key per module

customer.json contiene, in formato JSON (UTF-8):
  customer  - l'anagrafica del cliente (numero, nomi, codici, recapiti, indirizzo, stato)
  contacts  - i referenti del cliente e i loro recapiti
  consents  - ogni consenso dato o revocato, dal piu' recente (canale, finalita', fonte, prova)
  timeline  - la storia del rapporto (timeline 360 del cliente), dalla piu' recente
  modules   - i dati che le altre parti del servizio conservano sul cliente, una chiave per modulo

Exported on / Esportato il: {exported_at}
Customer / Cliente: {number}
"""


def _visible_customer(actor: Actor, customer_public_id: str, *, lock: bool = False) -> Customer:
    """The customer if the actor may see it (else 404, even when the actor lacks the permission)."""
    from fedele.customers.selectors import customer_queryset_for

    queryset = customer_queryset_for(actor)
    if lock:
        queryset = queryset.select_for_update()
    customer = queryset.filter(public_id=customer_public_id).first()
    if customer is None:
        raise NotFound("Customer not found.")
    return customer


def personal_data(customer: Customer) -> dict[str, Any]:
    """Everything this module keeps about the customer, as JSON-ready values."""
    record = {
        "id": str(customer.public_id),
        "number": customer.number,
        "display_name": customer.display_name,
        **{name: getattr(customer, name) for name in EDITABLE_FIELDS},
        "status": customer.status,
        "created_at": customer.created_at,
        "updated_at": customer.updated_at,
        "erased_at": customer.erased_at,
    }
    contacts = [
        {
            "id": str(contact.public_id),
            **{name: getattr(contact, name) for name in CONTACT_EXPORT_FIELDS},
            "is_primary": contact.is_primary,
            "has_portal_login": contact.portal_user_id is not None,
            "created_at": contact.created_at,
        }
        for contact in customer.contacts.order_by("id")
    ]
    consents = [
        {
            "id": str(consent.public_id),
            "channel": consent.channel,
            "purpose": consent.purpose,
            "granted": consent.granted,
            "source": consent.source,
            "evidence": consent.evidence,
            "contact_id": str(consent.contact.public_id) if consent.contact else None,
            "recorded_at": consent.recorded_at,
        }
        for consent in customer.consents.select_related("contact").order_by("-recorded_at", "-id")
    ]
    timeline = [
        {
            "id": str(entry.public_id),
            "occurred_at": entry.occurred_at,
            "module": entry.module,
            "kind": entry.kind,
            "title": entry.title,
            "summary": entry.summary,
            "data": entry.data,
        }
        for entry in customer.timeline.order_by("-occurred_at", "-id")
    ]
    result: dict[str, Any] = jsonable(
        {"customer": record, "contacts": contacts, "consents": consents, "timeline": timeline}
    )
    return result


def customer_export_personal_data(*, actor: Actor, customer_public_id: str) -> bytes:
    """A ZIP with customer.json (this module's data plus every registered module's) and README.txt."""
    customer = _visible_customer(actor, customer_public_id)
    require(actor, "customers.export_personal_data")
    exported_at = clock.now()
    with transaction.atomic():
        document = {
            "format": EXPORT_FORMAT,
            "exported_at": exported_at.isoformat(),
            **personal_data(customer),
            "modules": jsonable(gdpr.export_all(str(customer.public_id))),
        }
        # Reading personal data is itself recorded (who exported whose data, and when).
        audit.record(
            action="customer.personal_data_exported",
            object_type="customer",
            object_id=str(customer.public_id),
            after={"modules": sorted(document["modules"])},
        )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("customer.json", json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False))
        archive.writestr(
            "README.txt", README.format(exported_at=exported_at.isoformat(), number=customer.number)
        )
    return buffer.getvalue()


def erased_name(customer: Customer) -> str:
    return f"Erased customer {customer.number}"


def _pseudonymise(customer: Customer, now: Any) -> dict[str, int]:
    """Clear one customer's personal data and its contacts'; returns what was touched."""
    pseudonym = erased_name(customer)
    customer.first_name = ""
    customer.last_name = ""
    customer.company_name = pseudonym if customer.kind == CustomerKind.COMPANY else ""
    customer.display_name = pseudonym
    for name in CLEARED_TEXT_FIELDS:
        setattr(customer, name, "")
    if customer.kind != CustomerKind.COMPANY:
        customer.vat_number = ""
    customer.birth_date = None
    customer.status = CustomerStatus.ERASED.value
    customer.erased_at = now
    customer.updated_at = now
    customer.search_text = search_text_for(customer)
    customer.save()

    logins = 0
    contacts = list(Contact.objects.select_for_update().filter(customer=customer).order_by("id"))
    for contact in contacts:
        if contact.portal_user_id is not None and erase_user(contact.portal_user_id):
            logins += 1
    Contact.objects.filter(customer=customer).update(
        first_name="",
        last_name="Erased contact",
        job_title="",
        email="",
        phone="",
        mobile="",
        updated_at=now,
    )
    timeline = TimelineEntry.objects.filter(customer=customer).update(summary="", data={})
    _erase_import_rows(customer)
    consents = ConsentRecord.objects.filter(customer=customer).update(evidence="")
    kept = {"vat_number"} if customer.kind == CustomerKind.COMPANY else set()
    gdpr.redact_audit_values(
        object_type="customer",
        object_ids=[str(customer.public_id)],
        keys=[name for name in (*PII_FIELDS, "display_name") if name not in kept],
    )
    gdpr.redact_audit_values(
        object_type="contact", object_ids=[str(c.public_id) for c in contacts], keys=CONTACT_PII_FIELDS
    )
    return {"contacts": len(contacts), "portal_logins": logins, "timeline": timeline, "consents": consents}


def _erase_import_rows(customer: Customer) -> None:
    """The spreadsheet rows an import created this customer from hold the same personal data."""
    public_id = str(customer.public_id)
    imports = (
        CustomerImport.objects.select_for_update()
        .annotate(rows_text=Cast("rows", TextField()))
        .filter(rows_text__contains=public_id)
    )
    for customer_import in imports:
        rows = customer_import.rows
        for row in rows:
            if row.get("customer_id") == public_id:
                row["values"] = {}
                row["errors"] = {}
                row["erased"] = True
        CustomerImport.objects.filter(pk=customer_import.pk).update(rows=rows)


def customer_erase(*, actor: Actor, customer_public_id: str, reason: str) -> Customer:
    """Erase a customer's personal data (GDPR art. 17) by pseudonymisation, in one transaction.

    Cleared: first and last name, fiscal code, e-mail, PEC, phone, street, postal code, city, province,
    birth date and notes, also in the import rows the customer was created from. The name becomes
    "Erased customer C-000123" (display name, and company name of a company). Contacts lose names, role,
    e-mail and phones ("Erased contact") and their portal logins are deactivated. Timeline entries keep
    their title and date but lose summary and data; consent records stay as evidence that consent was
    given or withdrawn, without their evidence text. Personal values in this customer's audit rows are
    replaced with "[erased]". Customers previously merged into this one are erased with it. Every
    module registered in fedele.shared.gdpr erases its own data.

    Kept: the customer number and, for a company, the VAT number (and SdI code, kind, segment, country,
    language): Italian law (art. 2220 c.c., DPR 633/1972) requires invoices and the records behind them to
    be kept for 10 years, and they must still point to an identifiable taxable party. GDPR art. 17(3)(b)
    allows keeping data needed to comply with such a legal obligation.
    """
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON_LENGTH:
        raise ValidationFailed(
            "Say why the data is erased (1-500 characters).",
            fields={"reason": f"Give a reason of 1-{MAX_REASON_LENGTH} characters."},
        )
    with transaction.atomic():
        customer = _visible_customer(actor, customer_public_id, lock=True)
        require(actor, "customers.erase_personal_data")
        if customer.status == CustomerStatus.ERASED:
            raise Conflict("This customer's personal data has already been erased.", code="already_erased")
        now = clock.now()
        # Duplicates merged into this customer hold the same person's data.
        merged: list[Customer] = []
        frontier = [customer.pk]
        while frontier:
            found = list(
                Customer.objects.select_for_update()
                .filter(merged_into_id__in=frontier)
                .exclude(status=CustomerStatus.ERASED)
                .order_by("pk")
            )
            merged.extend(found)
            frontier = [c.pk for c in found]
        touched = _pseudonymise(customer, now)
        for duplicate in merged:
            _pseudonymise(duplicate, now)
        modules = gdpr.erase_all(str(customer.public_id))
        for duplicate in merged:
            gdpr.erase_all(str(duplicate.public_id))
        audit.record(
            action="customer.erased",
            object_type="customer",
            object_id=str(customer.public_id),
            after={
                "reason": reason,
                "number": customer.number,
                "contacts": touched["contacts"],
                "portal_logins_deactivated": touched["portal_logins"],
                "merged_customers": [c.number for c in merged],
                "modules": modules,
            },
        )
        publish(
            events.CustomerErased(str(customer.public_id)),
            aggregate_type="customer",
            aggregate_id=str(customer.public_id),
        )
        for duplicate in merged:
            publish(
                events.CustomerErased(str(duplicate.public_id)),
                aggregate_type="customer",
                aggregate_id=str(duplicate.public_id),
            )
    return customer
