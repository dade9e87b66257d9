"""Customers API: the model CRUD that every later module copies."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal
from uuid import UUID

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import Field, File, Query, Router, Schema, Status, UploadedFile

from fedele.accounts.facade import actor_for
from fedele.customers import selectors
from fedele.customers.contracts import ConsentChannel, ConsentPurpose
from fedele.customers.models import ConsentRecord, Contact, Customer, CustomerImport, TimelineEntry
from fedele.customers.services import contacts as contact_services
from fedele.customers.services import customers as customer_services
from fedele.customers.services import gdpr as gdpr_services
from fedele.customers.services import importing as import_services
from fedele.customers.services import merging as merge_services
from fedele.shared import audit
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import PayloadTooLarge
from fedele.shared.pagination import paginate

router = Router(tags=["customers"])

KindLiteral = Literal["person", "company"]
SegmentLiteral = Literal["consumer", "small_business", "enterprise", "public_administration"]
LanguageLiteral = Literal["it", "en"]


class CustomerIn(StrictSchema):
    kind: KindLiteral
    first_name: str = Field("", max_length=100)
    last_name: str = Field("", max_length=100)
    company_name: str = Field("", max_length=200)
    fiscal_code: str = Field("", max_length=32)
    vat_number: str = Field("", max_length=32)
    email: str = Field("", max_length=254)
    pec: str = Field("", max_length=254)
    sdi_code: str = Field("", max_length=7)
    phone: str = Field("", max_length=40)
    language: LanguageLiteral = "it"
    segment: SegmentLiteral = "consumer"
    street: str = Field("", max_length=200)
    postal_code: str = Field("", max_length=16)
    city: str = Field("", max_length=100)
    province: str = Field("", max_length=2)
    country: str = Field("IT", min_length=2, max_length=2)
    birth_date: date | None = None
    notes: str = Field("", max_length=10_000)


class CustomerPatch(StrictSchema):
    kind: KindLiteral | None = None
    first_name: str | None = Field(None, max_length=100)
    last_name: str | None = Field(None, max_length=100)
    company_name: str | None = Field(None, max_length=200)
    fiscal_code: str | None = Field(None, max_length=32)
    vat_number: str | None = Field(None, max_length=32)
    email: str | None = Field(None, max_length=254)
    pec: str | None = Field(None, max_length=254)
    sdi_code: str | None = Field(None, max_length=7)
    phone: str | None = Field(None, max_length=40)
    language: LanguageLiteral | None = None
    segment: SegmentLiteral | None = None
    street: str | None = Field(None, max_length=200)
    postal_code: str | None = Field(None, max_length=16)
    city: str | None = Field(None, max_length=100)
    province: str | None = Field(None, max_length=2)
    country: str | None = Field(None, min_length=2, max_length=2)
    birth_date: date | None = None
    notes: str | None = Field(None, max_length=10_000)


class CustomerOut(Schema):
    id: UUID
    number: str
    kind: str
    display_name: str
    first_name: str
    last_name: str
    company_name: str
    fiscal_code: str
    vat_number: str
    email: str
    pec: str
    sdi_code: str
    phone: str
    language: str
    segment: str
    street: str
    postal_code: str
    city: str
    province: str
    country: str
    birth_date: date | None
    status: str
    created_at: datetime
    updated_at: datetime

    @staticmethod
    def resolve_id(obj: Customer | dict[str, Any]) -> UUID:
        # A dict is a row already shaped by customer_row() (the list page): its id is the public id.
        return UUID(str(obj["id"])) if isinstance(obj, dict) else obj.public_id


CUSTOMER_OUT_FIELDS = tuple(name for name in CustomerOut.model_fields if name != "id")


def customer_row(customer: Customer) -> dict[str, object]:
    """CustomerOut as a plain dict. A list page is written straight to JSON from these rows: ninja's
    per-attribute validation of ORM objects was most of the cost of the page, and the types here
    are already those of the schema (the tests check the page against CustomerPage)."""
    row: dict[str, object] = {name: getattr(customer, name) for name in CUSTOMER_OUT_FIELDS}
    row["id"] = customer.public_id
    return row


class CustomerPage(Schema):
    items: list[CustomerOut]
    next_cursor: str | None


class CustomerListQuery(Schema):
    search: str = Field("", max_length=100)
    segment: SegmentLiteral | Literal[""] = ""
    kind: KindLiteral | Literal[""] = ""
    city: str = Field("", max_length=100)
    status: Literal["active", "merged", "erased", ""] = "active"
    ordering: Literal["name", "-name", "created_at", "-created_at", "number", "-number", "city", "-city"] = (
        "name"
    )
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


class ContactIn(StrictSchema):
    first_name: str = Field("", max_length=100)
    last_name: str = Field("", max_length=100)
    job_title: str = Field("", max_length=100)
    email: str = Field("", max_length=254)
    phone: str = Field("", max_length=40)
    mobile: str = Field("", max_length=40)
    language: LanguageLiteral = "it"
    is_primary: bool = False


class ContactPatch(StrictSchema):
    first_name: str | None = Field(None, max_length=100)
    last_name: str | None = Field(None, max_length=100)
    job_title: str | None = Field(None, max_length=100)
    email: str | None = Field(None, max_length=254)
    phone: str | None = Field(None, max_length=40)
    mobile: str | None = Field(None, max_length=40)
    language: LanguageLiteral | None = None
    is_primary: bool | None = None


class ContactOut(Schema):
    id: UUID
    customer_id: UUID
    first_name: str
    last_name: str
    job_title: str
    email: str
    phone: str
    mobile: str
    language: str
    is_primary: bool

    @staticmethod
    def resolve_id(obj: Contact) -> UUID:
        return obj.public_id

    @staticmethod
    def resolve_customer_id(obj: Contact) -> UUID:
        return obj.customer.public_id


class ConsentIn(StrictSchema):
    channel: Literal[tuple(c.value for c in ConsentChannel)]  # type: ignore[valid-type]
    purpose: Literal[tuple(p.value for p in ConsentPurpose)]  # type: ignore[valid-type]
    granted: bool
    source: str = Field("api", min_length=1, max_length=64)
    evidence: str = Field("", max_length=2000)
    contact_id: UUID | None = None


class ConsentOut(Schema):
    id: UUID
    channel: str
    purpose: str
    granted: bool
    source: str
    evidence: str
    recorded_at: datetime

    @staticmethod
    def resolve_id(obj: ConsentRecord) -> UUID:
        return obj.public_id


class TimelineOut(Schema):
    id: UUID
    occurred_at: datetime
    module: str
    kind: str
    title: str
    summary: str
    link: str

    @staticmethod
    def resolve_id(obj: TimelineEntry) -> UUID:
        return obj.public_id


@router.get("/customers", response={200: CustomerPage, **ERROR_RESPONSES}, summary="List customers")
def list_customers(request: HttpRequest, query: Query[CustomerListQuery]) -> HttpResponse:
    require_scope(request, "read")
    actor = actor_for(request.user)
    queryset = selectors.customer_list(
        actor=actor,
        filters=selectors.CustomerFilters(
            search=query.search, segment=query.segment, kind=query.kind, city=query.city, status=query.status
        ),
    )
    page = paginate(
        queryset, ordering=query.ordering, allowed=selectors.ORDERINGS, cursor=query.cursor, limit=query.limit
    )
    body = {"items": [customer_row(customer) for customer in page.items], "next_cursor": page.next_cursor}
    return JsonResponse(body)


@router.post("/customers", response={201: CustomerOut, **ERROR_RESPONSES}, summary="Create a customer")
def create_customer(request: HttpRequest, payload: CustomerIn) -> Status[Customer]:
    require_scope(request, "write")
    customer = customer_services.customer_create(
        actor=actor_for(request.user), data=payload.model_dump(), source="api"
    )
    return Status(201, customer)


@router.get(
    "/customers/{customer_id}", response={200: CustomerOut, **ERROR_RESPONSES}, summary="Get a customer"
)
def get_customer(request: HttpRequest, customer_id: UUID) -> Customer:
    require_scope(request, "read")
    customer = selectors.customer_get(actor=actor_for(request.user), public_id=str(customer_id))
    audit.record(action="customer.pii_viewed", object_type="customer", object_id=str(customer.public_id))
    return customer


@router.patch(
    "/customers/{customer_id}", response={200: CustomerOut, **ERROR_RESPONSES}, summary="Change a customer"
)
def update_customer(request: HttpRequest, customer_id: UUID, payload: CustomerPatch) -> Customer:
    require_scope(request, "write")
    data = payload.model_dump(exclude_unset=True)
    nulls = [k for k, v in data.items() if v is None and k != "birth_date"]
    if nulls:
        from fedele.shared.errors import ValidationFailed

        raise ValidationFailed(
            "Fields cannot be null; send an empty string to clear.",
            fields=dict.fromkeys(nulls, "Cannot be null."),
        )
    return customer_services.customer_update(
        actor=actor_for(request.user), customer_public_id=str(customer_id), data=data
    )


@router.get(
    "/customers/{customer_id}/contacts",
    response={200: list[ContactOut], **ERROR_RESPONSES},
    summary="List contacts",
)
def list_contacts(request: HttpRequest, customer_id: UUID) -> list[Contact]:
    require_scope(request, "read")
    return list(
        selectors.contact_list(
            actor=actor_for(request.user), customer_public_id=str(customer_id)
        ).select_related("customer")
    )


@router.post(
    "/customers/{customer_id}/contacts",
    response={201: ContactOut, **ERROR_RESPONSES},
    summary="Add a contact",
)
def create_contact(request: HttpRequest, customer_id: UUID, payload: ContactIn) -> Status[Contact]:
    require_scope(request, "write")
    contact = contact_services.contact_create(
        actor=actor_for(request.user), customer_public_id=str(customer_id), data=payload.model_dump()
    )
    return Status(201, contact)


@router.patch(
    "/contacts/{contact_id}", response={200: ContactOut, **ERROR_RESPONSES}, summary="Change a contact"
)
def update_contact(request: HttpRequest, contact_id: UUID, payload: ContactPatch) -> Contact:
    require_scope(request, "write")
    data = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if v is not None}
    return contact_services.contact_update(
        actor=actor_for(request.user), contact_public_id=str(contact_id), data=data
    )


@router.delete("/contacts/{contact_id}", response={204: None, **ERROR_RESPONSES}, summary="Delete a contact")
def delete_contact(request: HttpRequest, contact_id: UUID) -> Status[None]:
    require_scope(request, "write")
    contact_services.contact_delete(actor=actor_for(request.user), contact_public_id=str(contact_id))
    return Status(204, None)


@router.get(
    "/customers/{customer_id}/consents",
    response={200: list[ConsentOut], **ERROR_RESPONSES},
    summary="Consent history",
)
def list_consents(request: HttpRequest, customer_id: UUID) -> list[ConsentRecord]:
    require_scope(request, "read")
    customer = selectors.customer_get(actor=actor_for(request.user), public_id=str(customer_id))
    return list(selectors.consent_history(customer=customer))


@router.post(
    "/customers/{customer_id}/consents",
    response={201: ConsentOut, **ERROR_RESPONSES},
    summary="Record consent",
)
def record_consent(request: HttpRequest, customer_id: UUID, payload: ConsentIn) -> Status[ConsentRecord]:
    require_scope(request, "write")
    record = contact_services.consent_record(
        actor=actor_for(request.user),
        customer_public_id=str(customer_id),
        channel=payload.channel,
        purpose=payload.purpose,
        granted=payload.granted,
        source=payload.source,
        evidence=payload.evidence,
        contact_public_id=str(payload.contact_id) if payload.contact_id else None,
    )
    return Status(201, record)


@router.get(
    "/customers/{customer_id}/timeline",
    response={200: list[TimelineOut], **ERROR_RESPONSES},
    summary="360 timeline",
)
def list_timeline(
    request: HttpRequest, customer_id: UUID, module: str = "", limit: int = 100
) -> list[TimelineEntry]:
    require_scope(request, "read")
    customer = selectors.customer_get(actor=actor_for(request.user), public_id=str(customer_id))
    return list(selectors.timeline_list(customer=customer, module=module[:32], limit=max(1, min(limit, 500))))


# --- customer data operations: import, duplicates and merge, GDPR export and erasure ---------------------


class ImportRowOut(Schema):
    line: int
    valid: bool
    values: dict[str, str]
    errors: dict[str, list[str]]
    customer_id: UUID | None = None
    customer_number: str | None = None


class ImportOut(Schema):
    id: UUID
    filename: str
    status: str
    total_rows: int
    valid_rows: int
    invalid_rows: int
    created_count: int
    created_at: datetime
    committed_at: datetime | None
    rows: list[ImportRowOut]

    @staticmethod
    def resolve_id(obj: CustomerImport) -> UUID:
        return obj.public_id

    @staticmethod
    def resolve_invalid_rows(obj: CustomerImport) -> int:
        return obj.total_rows - obj.valid_rows


class ImportCommitIn(StrictSchema):
    mode: Literal["all_or_nothing", "valid_rows"]


class DuplicateOut(Schema):
    customer: CustomerOut
    score: int
    reasons: list[str]


class MergeIn(StrictSchema):
    duplicate_id: UUID


class EraseIn(StrictSchema):
    reason: str = Field(..., min_length=1, max_length=500)


@router.post(
    "/customers/imports",
    response={201: ImportOut, **ERROR_RESPONSES},
    summary="Upload a CSV or XLSX file of customers and preview it",
)
def preview_import(request: HttpRequest, file: File[UploadedFile]) -> Status[CustomerImport]:
    require_scope(request, "write")
    if file.size is not None and file.size > settings.FEDELE_MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(
            f"The file is too large (limit {settings.FEDELE_MAX_UPLOAD_BYTES} bytes).",
            code="file_too_large",
            fields={"file": "Too large."},
        )
    customer_import = import_services.customer_import_preview(
        actor=actor_for(request.user), filename=file.name or "import", content=file.read()
    )
    return Status(201, customer_import)


@router.get(
    "/customers/imports/{import_id}", response={200: ImportOut, **ERROR_RESPONSES}, summary="Get an import"
)
def get_import(request: HttpRequest, import_id: UUID) -> CustomerImport:
    require_scope(request, "read")
    return selectors.customer_import_get(actor=actor_for(request.user), public_id=str(import_id))


@router.post(
    "/customers/imports/{import_id}/commit",
    response={200: ImportOut, **ERROR_RESPONSES},
    summary="Create the customers of a previewed import",
)
def commit_import(request: HttpRequest, import_id: UUID, payload: ImportCommitIn) -> CustomerImport:
    require_scope(request, "write")
    return import_services.customer_import_commit(
        actor=actor_for(request.user), import_public_id=str(import_id), mode=payload.mode
    )


@router.get(
    "/customers/{customer_id}/duplicates",
    response={200: list[DuplicateOut], **ERROR_RESPONSES},
    summary="Possible duplicates of a customer",
)
def list_duplicates(request: HttpRequest, customer_id: UUID) -> list[dict[str, object]]:
    require_scope(request, "read")
    candidates = selectors.customer_find_duplicates(
        actor=actor_for(request.user), customer_public_id=str(customer_id)
    )
    return [{"customer": c.customer, "score": c.score, "reasons": list(c.reasons)} for c in candidates]


@router.post(
    "/customers/{customer_id}/merge",
    response={200: CustomerOut, **ERROR_RESPONSES},
    summary="Merge a duplicate into this customer",
)
def merge_customers(request: HttpRequest, customer_id: UUID, payload: MergeIn) -> Customer:
    require_scope(request, "write")
    return merge_services.customers_merge(
        actor=actor_for(request.user),
        survivor_public_id=str(customer_id),
        duplicate_public_id=str(payload.duplicate_id),
    )


@router.get(
    "/customers/{customer_id}/personal-data",
    response={200: None, **ERROR_RESPONSES},
    summary="Export a customer's personal data (GDPR), as a ZIP",
    openapi_extra={
        "responses": {"200": {"description": "ZIP", "content": {"application/zip": {"schema": {}}}}}
    },
)
def export_personal_data(request: HttpRequest, customer_id: UUID) -> HttpResponse:
    require_scope(request, "read")
    actor = actor_for(request.user)
    content = gdpr_services.customer_export_personal_data(actor=actor, customer_public_id=str(customer_id))
    number = selectors.customer_get(actor=actor, public_id=str(customer_id)).number
    response = HttpResponse(content, content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="personal-data-{number}.zip"'
    response["Cache-Control"] = "no-store"
    return response


@router.post(
    "/customers/{customer_id}/erase",
    response={200: CustomerOut, **ERROR_RESPONSES},
    summary="Erase a customer's personal data (GDPR)",
)
def erase_customer(request: HttpRequest, customer_id: UUID, payload: EraseIn) -> Customer:
    require_scope(request, "write")
    return gdpr_services.customer_erase(
        actor=actor_for(request.user), customer_public_id=str(customer_id), reason=payload.reason
    )


# Django matches URL patterns in order and "/customers/{customer_id}" takes any text, so the literal
# "/customers/imports" must come first or its POST would be answered 405 by the customer route.
router.path_operations = {
    "/customers/imports": router.path_operations.pop("/customers/imports"),
    **router.path_operations,
}
