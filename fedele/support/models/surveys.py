"""CSAT surveys sent when a ticket is solved, NPS campaigns on demand, and ticket imports."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class NpsCampaign(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    name = models.CharField(_("name"), max_length=120)
    question_it = models.CharField(max_length=300)
    question_en = models.CharField(max_length=300)
    segment = models.CharField(max_length=24, blank=True)  # customers.Segment value or "" for all
    sent_count = models.PositiveIntegerField(default=0)
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name


class Survey(models.Model):
    """One survey sent to one person. CSAT: score 1–5 about a solved ticket; NPS: score 0–10.

    The link in the e-mail carries a random token; only its SHA-256 is stored. Agent/team/category
    are copied at sending time so reports do not move when the ticket is reassigned later.
    """

    class Kind(models.TextChoices):
        CSAT = "csat", _("CSAT")
        NPS = "nps", _("NPS")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    kind = models.CharField(max_length=4, choices=Kind.choices)
    ticket = models.ForeignKey(
        "support.Ticket", null=True, blank=True, on_delete=models.CASCADE, related_name="surveys"
    )
    campaign = models.ForeignKey(
        NpsCampaign, null=True, blank=True, on_delete=models.CASCADE, related_name="surveys"
    )
    customer = models.ForeignKey(
        "customers.Customer", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    email = models.EmailField(blank=True)
    language = models.CharField(max_length=2, default="it")
    token_hash = models.CharField(max_length=64, unique=True)
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    team = models.ForeignKey(
        "accounts.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    category = models.ForeignKey(
        "support.Category", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    sent_at = models.DateTimeField()
    expires_at = models.DateTimeField()
    responded_at = models.DateTimeField(null=True, blank=True)
    score = models.PositiveSmallIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True)
    follow_up_ticket = models.ForeignKey(
        "support.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["ticket", "kind"], condition=Q(kind="csat"), name="support_one_csat_per_ticket"
            ),
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__lte=10), name="support_survey_score_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.public_id}"


class TicketImport(models.Model):
    """A bulk import from another helpdesk's export (Zendesk or Zammad, CSV or JSON)."""

    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        DONE = "done", _("done")
        FAILED = "failed", _("failed")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    source = models.CharField(max_length=12)  # zendesk | zammad
    file_format = models.CharField(max_length=4)  # csv | json
    mode = models.CharField(max_length=12, default="all_or_none")  # all_or_none | good_rows
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RUNNING)
    total = models.PositiveIntegerField(default=0)
    imported = models.PositiveIntegerField(default=0)
    skipped = models.PositiveIntegerField(default=0)  # already imported (same external id)
    messages_imported = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list, blank=True)  # [{"line": n, "message": "..."}]
    created_by_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.source} {self.public_id}"
