"""The IVR area's tables: flows with immutable published versions, the session of each call in the IVR,
which phone number answers with which flow, and document-on-demand (documents and their sends).

A flow's ``definition`` is the parsed JSON (see ivr/flow.py for the format); ``source`` keeps the text
the editor typed (JSON or YAML) so the author gets their own formatting back.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fedele.contact_center.models.core import Interaction

__all__ = [
    "Document",
    "DocumentChannel",
    "DocumentKind",
    "DocumentRequest",
    "DocumentRequestSource",
    "DocumentRequestStatus",
    "DocumentSendLog",
    "IvrFlow",
    "IvrFlowVersion",
    "IvrNumber",
    "IvrSession",
    "IvrSessionState",
    "IvrVersionStatus",
]


class IvrFlow(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True, default="")
    published_version = models.ForeignKey(
        "IvrFlowVersion",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("published version"),
    )
    created_at = models.DateTimeField(_("created"))

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class IvrVersionStatus(models.TextChoices):
    DRAFT = "draft", _("draft")
    PUBLISHED = "published", _("published")
    RETIRED = "retired", _("retired")


class IvrFlowVersion(models.Model):
    """One version of a flow. A draft may be edited; once published its definition never changes
    (calls in progress keep walking the version they started on)."""

    flow = models.ForeignKey(IvrFlow, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField(_("version"))
    status = models.CharField(
        _("status"), max_length=10, choices=IvrVersionStatus.choices, default=IvrVersionStatus.DRAFT
    )
    definition = models.JSONField(_("definition"), default=dict)
    source = models.TextField(_("source"), blank=True, default="")
    source_format = models.CharField(_("format"), max_length=4, default="json")
    note = models.CharField(_("note"), max_length=200, blank=True, default="")
    created_at = models.DateTimeField(_("created"))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    published_at = models.DateTimeField(_("published"), null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ["flow", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["flow", "number"], name="cc_ivrversion_number_once"),
            # One draft at a time per flow: edits go to it until it is published.
            models.UniqueConstraint(
                fields=["flow"], condition=Q(status="draft"), name="cc_ivrversion_one_draft"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.flow_id} v{self.number}"


class IvrNumber(models.Model):
    """A dialled number (E.164) and the flow that answers it."""

    number = models.CharField(_("number (E.164)"), max_length=20, unique=True)
    flow = models.ForeignKey(IvrFlow, on_delete=models.PROTECT, related_name="numbers")
    created_at = models.DateTimeField(_("created"))

    class Meta:
        ordering = ["number"]

    def __str__(self) -> str:
        return self.number


class IvrSessionState(models.TextChoices):
    ACTIVE = "active", _("in the IVR")
    QUEUED = "queued", _("handed to a queue")
    FINISHED = "finished", _("finished")


class IvrSession(models.Model):
    """Where one call is in its flow. ``awaiting`` is the node waiting for the caller's input (empty
    when none); ``history`` lists every node visited and input received, in order."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    interaction = models.OneToOneField(Interaction, on_delete=models.CASCADE, related_name="ivr_session")
    flow_version = models.ForeignKey(IvrFlowVersion, on_delete=models.PROTECT, related_name="sessions")
    state = models.CharField(
        _("state"), max_length=10, choices=IvrSessionState.choices, default=IvrSessionState.ACTIVE
    )
    current_node = models.CharField(max_length=60, blank=True, default="")
    awaiting = models.CharField(max_length=60, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=0)
    language = models.CharField(max_length=8, default="it")
    variables = models.JSONField(default=dict, blank=True)
    digits_history = models.JSONField(default=list, blank=True)
    history = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.interaction_id}@{self.current_node}"


class DocumentKind(models.TextChoices):
    FILE = "file", _("uploaded file (contract terms, manual…)")
    INVOICE_COPY = "invoice_copy", _("copy of the customer's latest invoice")


class Document(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    code = models.SlugField(_("code"), max_length=40, unique=True)
    title_it = models.CharField(_("title (Italian)"), max_length=120)
    title_en = models.CharField(_("title (English)"), max_length=120)
    kind = models.CharField(_("kind"), max_length=16, choices=DocumentKind.choices, default=DocumentKind.FILE)
    file = models.FileField(_("file"), upload_to="contact_center/documents/", blank=True)
    content_type = models.CharField(max_length=100, default="application/pdf")
    sms_keyword = models.CharField(
        _("SMS keyword"), max_length=20, blank=True, default="", help_text=_("e.g. FATTURA, MANUALE")
    )
    requires_customer = models.BooleanField(
        _("only for identified customers"), default=False, help_text=_("always on for invoice copies")
    )
    active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created"))

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(
                fields=["sms_keyword"], condition=~Q(sms_keyword=""), name="cc_document_keyword_once"
            )
        ]

    def __str__(self) -> str:
        return self.code


class DocumentChannel(models.TextChoices):
    EMAIL = "email", _("e-mail")
    SMS_LINK = "sms_link", _("SMS link")
    FAX = "fax", _("fax")


class DocumentRequestSource(models.TextChoices):
    IVR = "ivr", _("IVR")
    SMS_KEYWORD = "sms_keyword", _("SMS keyword")
    AGENT = "agent", _("agent")


class DocumentRequestStatus(models.TextChoices):
    PENDING = "pending", _("pending")
    SENT = "sent", _("sent")
    FAILED = "failed", _("failed")


class DocumentRequest(models.Model):
    """A document someone asked for, and where it goes. ``idempotency_key`` makes a retried request
    (the same IVR step, the same inbound SMS) the same row: it is sent once."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    document = models.ForeignKey(Document, on_delete=models.PROTECT, related_name="requests")
    customer_public_id = models.CharField(max_length=36, blank=True, default="")
    channel = models.CharField(_("sent by"), max_length=10, choices=DocumentChannel.choices)
    destination = models.CharField(_("to"), max_length=200)
    language = models.CharField(max_length=8, default="it")
    source = models.CharField(max_length=12, choices=DocumentRequestSource.choices)
    interaction = models.ForeignKey(
        Interaction, on_delete=models.SET_NULL, null=True, blank=True, related_name="document_requests"
    )
    idempotency_key = models.CharField(max_length=120, unique=True)
    status = models.CharField(
        _("status"),
        max_length=10,
        choices=DocumentRequestStatus.choices,
        default=DocumentRequestStatus.PENDING,
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    provider_ref = models.CharField(max_length=120, blank=True, default="")
    last_error = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField(_("requested"))
    sent_at = models.DateTimeField(_("sent"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.document_id}→{self.destination}"


class DocumentSendLog(models.Model):
    """Every attempt to send a requested document, with what happened."""

    request = models.ForeignKey(DocumentRequest, on_delete=models.CASCADE, related_name="log")
    attempt = models.PositiveSmallIntegerField()
    status = models.CharField(max_length=10, choices=DocumentRequestStatus.choices)
    detail = models.CharField(max_length=300, blank=True, default="")
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        return f"{self.request_id}#{self.attempt}={self.status}"
