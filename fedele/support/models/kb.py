"""Knowledge base: categories, articles in Italian and English with versions, feedback and deflection."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class Visibility(models.TextChoices):
    PUBLIC = "public", _("customers and agents")
    INTERNAL = "internal", _("agents only")


class KbCategory(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    slug = models.SlugField(max_length=80, unique=True)
    name_it = models.CharField(_("name (Italian)"), max_length=120)
    name_en = models.CharField(_("name (English)"), max_length=120)
    description_it = models.CharField(max_length=300, blank=True)
    description_en = models.CharField(max_length=300, blank=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="children"
    )
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PUBLIC)
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position", "slug"]
        verbose_name_plural = "knowledge base categories"

    def __str__(self) -> str:
        return self.slug


class Article(models.Model):
    """One language version of an article. Translations share ``translation_group``.

    The published text is ``title``/``body_html`` of the row; edits happen on new ArticleVersion rows
    (draft → in review → published), publishing copies the version onto the article. ``search_text``
    is the plain text used by the search index.
    """

    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        IN_REVIEW = "in_review", _("in review")
        PUBLISHED = "published", _("published")
        ARCHIVED = "archived", _("archived")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    translation_group = models.UUIDField(default=uuid.uuid4, db_index=True)
    language = models.CharField(max_length=2)
    category = models.ForeignKey(
        KbCategory, null=True, blank=True, on_delete=models.SET_NULL, related_name="articles"
    )
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PUBLIC)
    slug = models.SlugField(max_length=120)
    title = models.CharField(_("title"), max_length=200)
    summary = models.CharField(_("summary"), max_length=300, blank=True)
    body_html = models.TextField(blank=True)
    search_text = models.TextField(blank=True)
    keywords = models.CharField(max_length=300, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT, db_index=True)
    published_version = models.PositiveIntegerField(default=0)
    published_at = models.DateTimeField(null=True, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    view_count = models.PositiveIntegerField(default=0)
    helpful_count = models.PositiveIntegerField(default=0)
    not_helpful_count = models.PositiveIntegerField(default=0)
    embedding = models.BinaryField(null=True, blank=True)  # float32 vector for optional semantic ranking
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["translation_group", "language"], name="support_article_translation"
            ),
            models.UniqueConstraint(fields=["language", "slug"], name="support_article_slug"),
        ]

    def __str__(self) -> str:
        return f"{self.language}:{self.slug}"


class ArticleVersion(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("draft")
        IN_REVIEW = "in_review", _("in review")
        PUBLISHED = "published", _("published")
        REJECTED = "rejected", _("changes requested")
        SUPERSEDED = "superseded", _("superseded")

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    title = models.CharField(max_length=200)
    summary = models.CharField(max_length=300, blank=True)
    body_html = models.TextField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    note = models.CharField(max_length=300, blank=True)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    reviewed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["article", "number"], name="support_article_version")]

    def __str__(self) -> str:
        return f"{self.article_id} v{self.number}"


class ArticleAttachment(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="attachments")
    file = models.FileField(upload_to="support/kb/%Y/%m/")
    filename = models.CharField(max_length=200)
    content_type = models.CharField(max_length=120)
    size = models.PositiveBigIntegerField()
    created_at = models.DateTimeField()

    def __str__(self) -> str:
        return self.filename


class ArticleFeedback(models.Model):
    """ "Did this help?" — one vote per user (or per anonymous session) per article."""

    article = models.ForeignKey(Article, on_delete=models.CASCADE, related_name="feedback")
    helpful = models.BooleanField()
    comment = models.CharField(max_length=1000, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    session_key = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["article", "user"], condition=Q(user__isnull=False), name="support_feedback_user"
            ),
            models.UniqueConstraint(
                fields=["article", "session_key"],
                condition=~Q(session_key=""),
                name="support_feedback_session",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.article_id} {self.helpful}"


class Deflection(models.Model):
    """Articles suggested to a customer while writing a request, and whether the request was then
    abandoned (deflected) or sent anyway. ``token`` ties the suggestions to the form session."""

    class Outcome(models.TextChoices):
        SUGGESTED = "suggested", _("suggested")
        OPENED = "opened", _("article opened")
        DEFLECTED = "deflected", _("no request sent")
        SUBMITTED = "submitted", _("request sent anyway")

    token = models.CharField(max_length=64, db_index=True)
    query = models.CharField(max_length=300)
    article = models.ForeignKey(Article, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    outcome = models.CharField(max_length=10, choices=Outcome.choices, default=Outcome.SUGGESTED)
    ticket = models.ForeignKey(
        "support.Ticket", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.token} {self.outcome}"
