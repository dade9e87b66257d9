from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _

from fedele.customers.contracts import ConsentChannel, ConsentPurpose, CustomerKind, CustomerStatus, Segment


def _choices(enum: type) -> list[tuple[str, str]]:
    return [(member.value, member.value.replace("_", " ")) for member in enum]  # type: ignore[attr-defined]


class Customer(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number = models.CharField(_("number"), max_length=32, unique=True)
    kind = models.CharField(_("kind"), max_length=16, choices=_choices(CustomerKind))
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    company_name = models.CharField(_("company name"), max_length=200, blank=True)
    display_name = models.CharField(_("name"), max_length=220, db_index=True)
    fiscal_code = models.CharField(_("fiscal code"), max_length=16, blank=True, db_index=True)
    vat_number = models.CharField(_("VAT number"), max_length=16, blank=True, db_index=True)
    email = models.EmailField(_("e-mail"), blank=True)
    pec = models.EmailField(_("certified e-mail (PEC)"), blank=True)
    sdi_code = models.CharField(_("SdI recipient code"), max_length=7, blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True, db_index=True)
    language = models.CharField(_("language"), max_length=8, default="it")
    segment = models.CharField(
        _("segment"), max_length=32, choices=_choices(Segment), default=Segment.CONSUMER.value
    )
    street = models.CharField(_("street"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=16, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    province = models.CharField(_("province"), max_length=2, blank=True)
    country = models.CharField(_("country"), max_length=2, default="IT")
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=_choices(CustomerStatus),
        default=CustomerStatus.ACTIVE.value,
        db_index=True,
    )
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="merged_from"
    )
    managed_by = models.ForeignKey(
        "accounts.Organisation",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("The partner organisation that manages this customer, if any."),
    )
    search_text = models.TextField(blank=True, help_text="Lower-case names, codes and contacts for search.")
    created_at = models.DateTimeField(db_index=True)
    updated_at = models.DateTimeField()
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                Lower("email"), condition=Q(status="active") & ~Q(email=""), name="uniq_active_customer_email"
            ),
        ]
        permissions = [
            ("import_customers", "Can import customers"),
            ("merge_customers", "Can merge duplicate customers"),
            ("export_personal_data", "Can export a customer's personal data (GDPR)"),
            ("erase_personal_data", "Can erase a customer's personal data (GDPR)"),
            ("export_customers", "Can export customer lists"),
            ("record_consent", "Can record consent"),
        ]

    def __str__(self) -> str:
        return f"{self.number} {self.display_name}"


class Contact(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contacts")
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    job_title = models.CharField(_("role"), max_length=100, blank=True)
    email = models.EmailField(_("e-mail"), blank=True)
    phone = models.CharField(_("phone"), max_length=20, blank=True, db_index=True)
    mobile = models.CharField(_("mobile"), max_length=20, blank=True, db_index=True)
    language = models.CharField(_("language"), max_length=8, default="it")
    is_primary = models.BooleanField(_("primary contact"), default=False)
    portal_user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="customer_contact",
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-is_primary", "last_name", "first_name", "id"]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.email


class ConsentRecord(models.Model):
    """Append-only evidence of consent given or withdrawn; the latest per channel/purpose is in force."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="consents")
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="consents"
    )
    channel = models.CharField(max_length=16, choices=_choices(ConsentChannel))
    purpose = models.CharField(max_length=16, choices=_choices(ConsentPurpose))
    granted = models.BooleanField()
    source = models.CharField(
        max_length=64, help_text="Where it was given: web form, call, import, portal, API ..."
    )
    evidence = models.TextField(blank=True)
    recorded_at = models.DateTimeField(db_index=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-recorded_at", "-id"]
        indexes = [models.Index(fields=["customer", "channel", "purpose", "-recorded_at"])]

    def __str__(self) -> str:
        return f"{self.customer_id} {self.channel}/{self.purpose}={self.granted}"


class TimelineEntry(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="timeline")
    occurred_at = models.DateTimeField()
    module = models.CharField(max_length=32)
    kind = models.CharField(max_length=64)
    title = models.CharField(max_length=200)
    summary = models.TextField(blank=True)
    link = models.CharField(max_length=500, blank=True)
    data = models.JSONField(default=dict, blank=True)
    source_event_id = models.UUIDField(null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["customer", "-occurred_at"])]

    def __str__(self) -> str:
        return self.title


class CustomerImport(models.Model):
    class Status(models.TextChoices):
        PREVIEWED = "previewed", _("Previewed")
        COMMITTED = "committed", _("Committed")
        REJECTED = "rejected", _("Rejected")

    class Mode(models.TextChoices):
        ALL_OR_NOTHING = "all_or_nothing", _("All rows or none")
        VALID_ROWS = "valid_rows", _("Only the valid rows")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    filename = models.CharField(max_length=255)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PREVIEWED)
    total_rows = models.PositiveIntegerField(default=0)
    valid_rows = models.PositiveIntegerField(default=0)
    rows = models.JSONField(default=list, help_text="Normalised rows with their line numbers and errors.")
    created_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()
    committed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.filename} ({self.status})"
