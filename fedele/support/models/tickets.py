"""Tickets, their messages, attachments, links, followers, history, tags, saved views and macros."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Priority(models.TextChoices):
    LOW = "low", _("low")
    NORMAL = "normal", _("normal")
    HIGH = "high", _("high")
    URGENT = "urgent", _("urgent")


PRIORITY_RANK = {"low": 0, "normal": 1, "high": 2, "urgent": 3}


class Channel(models.TextChoices):
    EMAIL = "email", _("e-mail")
    PORTAL = "portal", _("portal")
    PHONE = "phone", _("phone")
    CHAT = "chat", _("chat")
    SMS = "sms", _("SMS")
    SOCIAL = "social", _("social")
    API = "api", _("API")
    INTERNAL = "internal", _("internal")
    IMPORT = "import", _("import")


class StatusKind(models.TextChoices):
    """The fixed meaning behind each configurable status: SLA clocks and automations read this."""

    NEW = "new", _("new")
    OPEN = "open", _("open")
    PENDING = "pending", _("pending")
    SOLVED = "solved", _("solved")
    CLOSED = "closed", _("closed")


class TicketStatus(models.Model):
    """A configurable status (e.g. "pending customer", "pending third party") of a fixed kind.

    ``pauses_sla`` stops the SLA clocks while a ticket sits in it (true by default for pending ones).
    Exactly one status per kind is the default for that kind (used when a service moves a ticket to
    "open" or "solved" without naming a status).
    """

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_it = models.CharField(_("name (Italian)"), max_length=80)
    name_en = models.CharField(_("name (English)"), max_length=80)
    kind = models.CharField(_("kind"), max_length=16, choices=StatusKind.choices)
    pauses_sla = models.BooleanField(_("pauses SLA clocks"), default=False)
    is_default_for_kind = models.BooleanField(default=False)
    position = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["kind"],
                condition=Q(is_default_for_kind=True),
                name="support_status_one_default_per_kind",
            )
        ]

    def __str__(self) -> str:
        return self.code


class TicketType(models.Model):
    """Incident, question, request, complaint, collections... each with its own custom fields.

    ``custom_fields`` is a list of field definitions::

        {"key": "serial_number", "label_it": "...", "label_en": "...",
         "type": "text|textarea|number|date|boolean|choice", "required": bool,
         "choices": ["a", "b"], "portal": bool}

    ``portal`` fields appear on the self-service form for this type.
    """

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name_it = models.CharField(_("name (Italian)"), max_length=80)
    name_en = models.CharField(_("name (English)"), max_length=80)
    custom_fields = models.JSONField(default=list, blank=True)
    default_priority = models.CharField(max_length=8, choices=Priority.choices, default=Priority.NORMAL)
    default_team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    portal_visible = models.BooleanField(_("customers can choose it in the portal"), default=True)
    position = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.code


class Category(models.Model):
    name_it = models.CharField(_("name (Italian)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120)
    code = models.SlugField(_("code"), max_length=60, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["code"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.code


class Tag(models.Model):
    name = models.SlugField(_("tag"), max_length=60, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Ticket(models.Model):
    """A customer's request. Number ``T-000123`` from the gapless series ``support.ticket``.

    The SLA due times on the ticket are denormalised from its open ``SlaClock`` rows (earliest due
    per metric) so queues can sort and filter on them with an index.
    ``search_text`` holds subject + message texts for full-text search (PostgreSQL tsvector index /
    SQLite FTS5 table maintained by the ticket services).
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number = models.CharField(_("number"), max_length=16)
    subject = models.CharField(_("subject"), max_length=250)
    customer = models.ForeignKey(
        "customers.Customer",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_index=False,
        related_name="+",
    )
    requester_email = models.EmailField(_("requester e-mail"), blank=True)
    requester_name = models.CharField(_("requester name"), max_length=200, blank=True)
    requester_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_index=False,
        related_name="+",
    )
    language = models.CharField(_("language"), max_length=2, default="it")
    channel = models.CharField(_("channel"), max_length=16, choices=Channel.choices, default=Channel.PORTAL)
    ticket_type = models.ForeignKey(
        TicketType, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    category = models.ForeignKey(
        Category, null=True, blank=True, on_delete=models.PROTECT, db_index=False, related_name="+"
    )
    priority = models.CharField(
        _("priority"), max_length=8, choices=Priority.choices, default=Priority.NORMAL
    )
    status = models.ForeignKey(TicketStatus, on_delete=models.PROTECT, db_index=False, related_name="+")
    status_kind = models.CharField(max_length=16, choices=StatusKind.choices)
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_index=False,
        related_name="+",
    )
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, db_index=False, related_name="+"
    )
    tags = models.ManyToManyField(Tag, blank=True, related_name="tickets")
    custom_fields = models.JSONField(default=dict, blank=True)
    # What the ticket is about, by reference into another module (via its facade).
    subject_kind = models.CharField(
        max_length=24, blank=True
    )  # "entitlement" | "equipment" | "work_order" | ""
    subject_reference = models.CharField(max_length=64, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, db_index=False, related_name="children"
    )
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, db_index=False, related_name="merged_from"
    )
    external_source = models.CharField(max_length=24, blank=True)  # "zendesk" | "zammad" | ""
    external_id = models.CharField(max_length=64, blank=True)
    mailbox = models.ForeignKey(
        "support.Mailbox", null=True, blank=True, on_delete=models.SET_NULL, db_index=False, related_name="+"
    )
    sla_policy = models.ForeignKey(
        "support.SlaPolicy",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_index=False,
        related_name="+",
    )
    first_response_due_at = models.DateTimeField(null=True, blank=True)
    next_response_due_at = models.DateTimeField(null=True, blank=True)
    resolution_due_at = models.DateTimeField(null=True, blank=True)
    sla_breached = models.BooleanField(default=False)
    first_responded_at = models.DateTimeField(null=True, blank=True)
    last_customer_message_at = models.DateTimeField(null=True, blank=True)
    last_agent_message_at = models.DateTimeField(null=True, blank=True)
    solved_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    reopened_count = models.PositiveIntegerField(default=0)
    message_count = models.PositiveIntegerField(default=0)
    search_text = models.TextField(blank=True)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        # Few indexes on purpose (each one slows every write, imports above all, and the planner's
        # work on every join): foreign keys are covered by these composites, and a plain Index()
        # avoids the extra LIKE-pattern copy PostgreSQL gets for text columns with db_index.
        indexes = [
            models.Index(fields=["created_at"], name="support_ticket_created"),
            models.Index(fields=["requester_email"], name="support_ticket_requester"),
            models.Index(
                fields=["subject_reference"], condition=~Q(subject_reference=""), name="support_ticket_about"
            ),
            models.Index(fields=["parent"], condition=Q(parent__isnull=False), name="support_ticket_parent"),
            models.Index(
                fields=["requester_user"],
                condition=Q(requester_user__isnull=False),
                name="support_ticket_req_user",
            ),
            models.Index(
                fields=["category"], condition=Q(category__isnull=False), name="support_ticket_category"
            ),
            models.Index(fields=["status_kind", "priority", "-id"], name="support_ticket_queue"),
            models.Index(fields=["assignee", "status_kind"], name="support_ticket_assignee"),
            models.Index(fields=["team", "status_kind"], name="support_ticket_team"),
            models.Index(fields=["customer", "-id"], name="support_ticket_customer"),
            models.Index(fields=["status_kind", "resolution_due_at"], name="support_ticket_due"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["number"], name="support_ticket_number_unique"),
            models.UniqueConstraint(
                fields=["external_source", "external_id"],
                condition=~Q(external_id=""),
                name="support_ticket_external_unique",
            ),
        ]
        permissions = [
            ("view_all_tickets", "Can see every ticket"),
            ("work_tickets", "Can reply to and update tickets"),
            ("manage_support", "Can configure support (SLA, automations, mailboxes, types)"),
            ("view_support_reports", "Can see SLA and CSAT reports"),
            ("import_tickets", "Can import tickets"),
            ("edit_knowledge_base", "Can write knowledge base articles"),
            ("publish_knowledge_base", "Can review and publish knowledge base articles"),
        ]

    def __str__(self) -> str:
        return self.number


class TicketMessage(models.Model):
    """One entry in a ticket's conversation. Internal notes are never shown to the customer."""

    class Kind(models.TextChoices):
        CUSTOMER = "customer", _("customer message")
        REPLY = "reply", _("public reply")
        NOTE = "note", _("internal note")
        SYSTEM = "system", _("system")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Indexed by (ticket, id) below; a second index on the ticket alone would only slow writes.
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, db_index=False, related_name="messages")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    channel = models.CharField(max_length=16, choices=Channel.choices, default=Channel.PORTAL)
    author_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_index=False,
        related_name="+",
    )
    author_email = models.EmailField(blank=True)
    author_name = models.CharField(max_length=200, blank=True)
    body_text = models.TextField(blank=True)
    body_html = models.TextField(blank=True)  # sanitised with nh3 before it is stored
    # E-mail threading: our own Message-ID for outbound replies, the sender's for inbound ones.
    email_message_id = models.CharField(max_length=255, blank=True)
    email_in_reply_to = models.CharField(max_length=255, blank=True)
    email_references = models.TextField(blank=True)
    email_to = models.TextField(blank=True)
    email_cc = models.TextField(blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)  # outbound e-mail handed to the backend
    external_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        # Partial indexes: most messages (portal, imports, notes) have no Message-ID and no author
        # login, and only unsent e-mail replies are ever looked up by time, so each index holds only
        # the rows it is for and a bulk import writes far fewer index entries.
        indexes = [
            models.Index(fields=["ticket", "id"], name="support_message_ticket"),
            models.Index(
                fields=["email_message_id"], condition=~Q(email_message_id=""), name="support_message_msgid"
            ),
            models.Index(
                fields=["author_user"], condition=Q(author_user__isnull=False), name="support_message_author"
            ),
            models.Index(
                fields=["created_at"],
                condition=Q(kind="reply", sent_at__isnull=True) & ~Q(email_message_id=""),
                name="support_message_unsent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.kind} {self.pk}"


class Attachment(models.Model):
    """A file on a ticket message or on the ticket itself. ``filename`` is already made safe and
    ``content_type`` is what the bytes are (sniffed), not what the sender claimed."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="attachments")
    message = models.ForeignKey(
        TicketMessage, null=True, blank=True, on_delete=models.CASCADE, related_name="attachments"
    )
    file = models.FileField(upload_to="support/attachments/%Y/%m/")
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=120)
    size = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    content_id = models.CharField(max_length=255, blank=True)  # inline images in e-mail (cid:)
    uploaded_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.filename


class TicketLink(models.Model):
    """A "related" or "duplicate of" link between two tickets (parent/child lives on Ticket.parent)."""

    class Kind(models.TextChoices):
        RELATED = "related", _("related")
        DUPLICATE = "duplicate", _("duplicate")

    source = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="links_out")
    target = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="links_in")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.RELATED)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["source", "target"], name="support_link_unique")]

    def __str__(self) -> str:
        return f"{self.source_id} {self.kind} {self.target_id}"


class TicketWatcher(models.Model):
    """Followers are agents notified of every change; CC watchers are e-mail addresses copied on
    public replies."""

    class Kind(models.TextChoices):
        FOLLOWER = "follower", _("follower")
        CC = "cc", _("CC")

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="watchers")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    email = models.EmailField(blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["ticket", "user"], condition=Q(user__isnull=False), name="support_watcher_user_unique"
            ),
            models.UniqueConstraint(
                fields=["ticket", "email"], condition=~Q(email=""), name="support_watcher_email_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.kind} {self.user_id or self.email}"


class TicketEvent(models.Model):
    """The ticket's full history: every field change, reply, SLA event and automation run.

    ``kind`` examples: created, field_changed, status_changed, assigned, replied, noted, merged,
    split, linked, tagged, sla_warning, sla_breached, escalated, automation, survey, imported.
    """

    ticket = models.ForeignKey(Ticket, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=32)
    field = models.CharField(max_length=40, blank=True)
    old_value = models.CharField(max_length=250, blank=True)
    new_value = models.CharField(max_length=250, blank=True)
    data = models.JSONField(default=dict, blank=True)
    actor_id = models.BigIntegerField(null=True, blank=True)  # None = the system / an automation
    actor_name = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["ticket", "id"], name="support_event_ticket")]

    def __str__(self) -> str:
        return f"{self.ticket_id} {self.kind}"


class SavedView(models.Model):
    """A named queue: ``filters`` uses the same keys as the ticket list API (status_kind, priority,
    assignee=me|none|<public_id>, team, tag, type, category, channel, sla=breached|due_soon, q)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=80)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    shared = models.BooleanField(_("shared with every agent"), default=False)
    filters = models.JSONField(default=dict)
    ordering = models.CharField(max_length=40, default="-id")
    position = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["position", "id"]

    def __str__(self) -> str:
        return self.name


class Macro(models.Model):
    """A canned reply and/or a set of actions, applied by an agent in one click.

    ``reply_it``/``reply_en`` may use variables: {{ ticket.number }}, {{ ticket.subject }},
    {{ customer.name }}, {{ customer.first_name }}, {{ agent.name }}, {{ ticket.url }}.
    ``actions`` uses the automation action format (see models.automation.Trigger).
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=120)
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    reply_it = models.TextField(blank=True)
    reply_en = models.TextField(blank=True)
    reply_is_internal = models.BooleanField(default=False)
    actions = models.JSONField(default=list, blank=True)
    active = models.BooleanField(default=True)
    usage_count = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name
