"""Members (a customer enrolled in a programme), households for family pooling, tier history."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fedele.loyalty.models.programmes import Programme, Tier


class MemberStatus(models.TextChoices):
    ACTIVE = "active", _("active")
    SUSPENDED = "suspended", _("suspended")
    CLOSED = "closed", _("closed")


class Household(models.Model):
    """A family pool: members of one household may transfer points to each other within limits."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    programme = models.ForeignKey(Programme, on_delete=models.CASCADE, related_name="households")
    name = models.CharField(_("name"), max_length=120)
    owner = models.ForeignKey("loyalty.Member", on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return self.name


class Member(models.Model):
    """A customer enrolled in a programme.

    The balance fields are a cache of the ledger, changed only by the ledger services under a row lock
    on this member (``select_for_update``): each equals the sum of this member's ``PointsEntry`` rows on
    the matching account (``available`` ↔ ``member_available`` and so on). ``debt`` is ≥ 0: points the
    member owes after a reversal took more than was left (settled first by the next earnings).
    ``loyalty.check_ledger`` verifies every cache against the ledger.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, related_name="members")
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="+")
    card_number = models.CharField(_("card number"), max_length=20, unique=True)
    status = models.CharField(_("status"), max_length=12, choices=MemberStatus.choices, default="active")
    tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="members")
    tier_since = models.DateTimeField(_("in this tier since"), null=True, blank=True)
    tier_review_on = models.DateField(_("tier review date"), null=True, blank=True)
    enrolled_at = models.DateTimeField(_("enrolled at"))
    enrolment_channel = models.CharField(_("enrolment channel"), max_length=16, default="backoffice")
    referral_code = models.CharField(_("referral code"), max_length=16, unique=True)
    referred_by = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="referrals"
    )
    birthday = models.DateField(_("birthday"), null=True, blank=True)
    language = models.CharField(_("language"), max_length=2, default="it")
    household = models.ForeignKey(
        Household, null=True, blank=True, on_delete=models.SET_NULL, related_name="members"
    )
    available = models.BigIntegerField(_("available points"), default=0)
    pending = models.BigIntegerField(_("pending points"), default=0)
    reserved = models.BigIntegerField(_("reserved points"), default=0)
    debt = models.BigIntegerField(_("points owed"), default=0)
    lifetime_earned = models.BigIntegerField(default=0)
    lifetime_redeemed = models.BigIntegerField(default=0)
    lifetime_expired = models.BigIntegerField(default=0)
    flagged = models.BooleanField(_("flagged for review"), default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["programme", "customer"], name="loyalty_member_once_per_programme"
            ),
            models.CheckConstraint(
                condition=Q(available__gte=0), name="loyalty_member_available_not_negative"
            ),
            models.CheckConstraint(condition=Q(pending__gte=0), name="loyalty_member_pending_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="loyalty_member_reserved_not_negative"),
            models.CheckConstraint(condition=Q(debt__gte=0), name="loyalty_member_debt_not_negative"),
        ]
        indexes = [
            models.Index(fields=["customer"], name="loyalty_member_customer"),
            models.Index(fields=["programme", "tier"], name="loyalty_member_tier"),
        ]

    def __str__(self) -> str:
        return self.card_number


class TierChange(models.Model):
    class Reason(models.TextChoices):
        ENROLMENT = "enrolment", _("enrolment")
        UPGRADE = "upgrade", _("upgrade")
        DOWNGRADE = "downgrade", _("downgrade at review")
        RETAINED = "retained", _("retained at review")
        MANUAL = "manual", _("manual")

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="tier_changes")
    from_tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    to_tier = models.ForeignKey(Tier, null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=12, choices=Reason.choices)
    metric_value = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    changed_at = models.DateTimeField()
    changed_by_id = models.BigIntegerField(null=True, blank=True)
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["-changed_at", "-id"]
        indexes = [models.Index(fields=["member", "-changed_at"], name="loyalty_tierchange_member")]

    def __str__(self) -> str:
        return f"{self.reason} {self.changed_at:%Y-%m-%d}"
