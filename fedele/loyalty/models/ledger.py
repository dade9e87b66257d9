"""The points ledger: append-only double-entry transactions, their entries, lots and reservations.

Every ``PointsTransaction`` has two or more ``PointsEntry`` rows whose ``points`` sum to zero. Member
accounts (``member_*``) carry the member; system accounts carry none (``partner_*`` carry the partner).
Sign convention: a positive entry increases the account. Earning 100: ``issuance`` −100,
``member_available`` +100 (or ``member_pending`` +100 while the return window runs). Redeeming 120:
``member_available`` −100 (lot A) and −20 (lot B), ``redemption`` +120. So the sum over all member
accounts is the programme's outstanding points, and ``−issuance`` is everything ever issued.

Rows are never updated or deleted, except ``PointsLot.remaining``/``state`` and the reservation state,
which are caches kept by the same transaction that writes the entries.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from fedele.loyalty.models.members import Member
from fedele.loyalty.models.programmes import Programme


class TransactionKind(models.TextChoices):
    EARN = "earn", _("earn")
    MATURE = "mature", _("pending points matured")
    CANCEL_PENDING = "cancel_pending", _("pending points cancelled")
    RESERVE = "reserve", _("points reserved")
    RELEASE = "release", _("reservation released")
    REDEEM = "redeem", _("redeem")
    EXPIRE = "expire", _("expire")
    ADJUST = "adjust", _("adjustment")
    TRANSFER = "transfer", _("transfer")
    REVERSE = "reverse", _("reversal")
    DEBT_SETTLE = "debt_settle", _("debt settled")


class Account(models.TextChoices):
    MEMBER_AVAILABLE = "member_available", _("member: available")
    MEMBER_PENDING = "member_pending", _("member: pending")
    MEMBER_RESERVED = "member_reserved", _("member: reserved")
    MEMBER_DEBT = "member_debt", _("member: owed")
    ISSUANCE = "issuance", _("operator: issued")
    REDEMPTION = "redemption", _("operator: redeemed")
    EXPIRY = "expiry", _("operator: expired (breakage)")
    FORFEIT = "forfeit", _("operator: forfeited / written off")
    ADJUSTMENT = "adjustment", _("operator: adjustments")
    PARTNER_ISSUANCE = "partner_issuance", _("partner: issued (bought from the operator)")
    PARTNER_REDEMPTION = "partner_redemption", _("partner: accepted (reimbursed by the operator)")


MEMBER_ACCOUNTS = frozenset(
    {Account.MEMBER_AVAILABLE, Account.MEMBER_PENDING, Account.MEMBER_RESERVED, Account.MEMBER_DEBT}
)


class PointsTransaction(models.Model):
    """One ledger posting. ``points`` is the headline amount (always ≥ 0); the entries say where it went.

    ``idempotency_key`` is unique per programme: a retried request returns the first transaction.
    ``amount_eur`` is the purchase amount that earned the points (spend metric, refunds);
    ``qualifying_points`` counts towards tiers; ``qualifying_count`` is 1 for a qualifying purchase.
    ``reference`` is the outside document (invoice number, order id, partner receipt) a refund names.
    ``details`` holds the rule breakdown of an earn, or the reason of an adjustment.
    """

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    # Foreign keys without an index of their own are covered by the composite indexes in Meta: every
    # index costs each of the thousands of postings a second, so each one here is one a query uses.
    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, db_index=False, related_name="+")
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.PROTECT, db_index=False, related_name="transactions"
    )
    kind = models.CharField(max_length=16, choices=TransactionKind.choices)
    points = models.BigIntegerField()
    idempotency_key = models.CharField(max_length=120, null=True, blank=True)
    source = models.CharField(max_length=24, default="api")
    reference = models.CharField(max_length=80, blank=True)
    amount_eur = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    cash_amount = models.DecimalField(max_digits=14, decimal_places=2, null=True, blank=True)
    qualifying_points = models.BigIntegerField(default=0)
    qualifying_count = models.PositiveSmallIntegerField(default=0)
    partner = models.ForeignKey(
        "loyalty.Partner",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_index=False,
        related_name="transactions",
    )
    partner_amount = models.DecimalField(
        _("partner settlement amount (EUR)"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    campaign = models.ForeignKey(
        "loyalty.Campaign",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        db_index=False,
        related_name="transactions",
    )
    reversal_of = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="reversed_by"
    )
    details = models.JSONField(default=dict, blank=True)
    memo = models.CharField(max_length=200, blank=True)
    occurred_at = models.DateTimeField()
    created_at = models.DateTimeField()
    created_by_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["programme", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="loyalty_transaction_idempotency",
            ),
            models.CheckConstraint(
                condition=Q(points__gte=0), name="loyalty_transaction_points_not_negative"
            ),
        ]
        indexes = [
            models.Index(fields=["member", "-id"], name="loyalty_txn_member"),
            models.Index(fields=["member", "kind", "occurred_at"], name="loyalty_txn_member_kind_at"),
            models.Index(fields=["programme", "reference"], name="loyalty_txn_reference"),
            models.Index(
                fields=["partner", "occurred_at"],
                condition=Q(partner__isnull=False),
                name="loyalty_txn_partner_at",
            ),
            models.Index(
                fields=["campaign"], condition=Q(campaign__isnull=False), name="loyalty_txn_campaign"
            ),
            models.Index(fields=["programme", "kind", "occurred_at"], name="loyalty_txn_programme_kind_at"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.points}"


class PointsLot(models.Model):
    """Points earned together, with their own maturity and expiry. Redemptions consume the lot that
    expires first (then the oldest); ``remaining`` is what is left of ``points``.

    States: ``pending`` (return window running; not spendable), ``available``, ``spent`` (remaining 0),
    ``expired`` (remaining moved to breakage), ``cancelled`` (pending points of a refunded purchase).
    ``expires_on`` is the last day the points can be used (programme time zone); null = never.
    """

    class State(models.TextChoices):
        PENDING = "pending", _("pending")
        AVAILABLE = "available", _("available")
        SPENT = "spent", _("spent")
        EXPIRED = "expired", _("expired")
        CANCELLED = "cancelled", _("cancelled")

    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, db_index=False, related_name="lots")
    earn_transaction = models.ForeignKey(PointsTransaction, on_delete=models.PROTECT, related_name="lots")
    points = models.BigIntegerField()
    remaining = models.BigIntegerField()
    state = models.CharField(max_length=10, choices=State.choices)
    earned_at = models.DateTimeField()
    matures_at = models.DateTimeField(null=True, blank=True)
    expires_on = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["expires_on", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(remaining__gte=0), name="loyalty_lot_remaining_not_negative"),
            models.CheckConstraint(
                condition=Q(remaining__lte=models.F("points")), name="loyalty_lot_remaining_le_points"
            ),
        ]
        indexes = [
            models.Index(fields=["member", "state", "expires_on", "id"], name="loyalty_lot_member_fifo"),
            models.Index(fields=["expires_on"], condition=Q(state="available"), name="loyalty_lot_expiring"),
            models.Index(fields=["matures_at"], condition=Q(state="pending"), name="loyalty_lot_maturing"),
        ]

    def __str__(self) -> str:
        return f"lot {self.pk}: {self.remaining}/{self.points}"


class PointsEntry(models.Model):
    """One leg of a transaction. ``lot`` names the lot a member-account leg added to or took from."""

    transaction = models.ForeignKey(PointsTransaction, on_delete=models.PROTECT, related_name="entries")
    # Half of the legs are the operator's (no member, no lot): those indexes are partial.
    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, db_index=False, related_name="+")
    account = models.CharField(max_length=20, choices=Account.choices)
    member = models.ForeignKey(
        Member, null=True, blank=True, on_delete=models.PROTECT, db_index=False, related_name="+"
    )
    partner = models.ForeignKey(
        "loyalty.Partner", null=True, blank=True, on_delete=models.PROTECT, db_index=False, related_name="+"
    )
    lot = models.ForeignKey(
        PointsLot, null=True, blank=True, on_delete=models.PROTECT, db_index=False, related_name="entries"
    )
    points = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ["id"]
        indexes = [
            models.Index(
                fields=["member", "account"],
                condition=Q(member__isnull=False),
                name="loyalty_entry_member_account",
            ),
            models.Index(fields=["lot"], condition=Q(lot__isnull=False), name="loyalty_entry_lot"),
            models.Index(
                fields=["partner"], condition=Q(partner__isnull=False), name="loyalty_entry_partner"
            ),
            models.Index(fields=["programme", "account", "created_at"], name="loyalty_entry_account_at"),
        ]

    def __str__(self) -> str:
        return f"{self.account} {self.points:+d}"


class Reservation(models.Model):
    """Points held for a redemption: reserve → confirm (redeemed) or cancel/time out (released).

    The hold moves the points from ``member_available`` to ``member_reserved`` taking them from lots
    (nearest expiry first), so a held point can never be spent twice; a release puts them back on the
    same lots. ``idempotency_key`` is unique per programme.
    """

    class State(models.TextChoices):
        HELD = "held", _("held")
        CONFIRMED = "confirmed", _("confirmed")
        CANCELLED = "cancelled", _("cancelled")
        EXPIRED = "expired", _("expired")

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    programme = models.ForeignKey(Programme, on_delete=models.PROTECT, related_name="+")
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="reservations")
    points = models.BigIntegerField()
    cash_amount = models.DecimalField(max_digits=14, decimal_places=2, default=0)
    reward = models.ForeignKey(
        "loyalty.Reward", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    partner = models.ForeignKey(
        "loyalty.Partner", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.HELD)
    idempotency_key = models.CharField(max_length=120)
    reference = models.CharField(max_length=80, blank=True)
    hold_transaction = models.OneToOneField(PointsTransaction, on_delete=models.PROTECT, related_name="+")
    final_transaction = models.OneToOneField(
        PointsTransaction, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField()
    settled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["programme", "idempotency_key"], name="loyalty_reservation_idempotency"
            ),
            models.CheckConstraint(condition=Q(points__gt=0), name="loyalty_reservation_points_positive"),
        ]
        indexes = [
            models.Index(fields=["expires_at"], condition=Q(state="held"), name="loyalty_reservation_due")
        ]

    def __str__(self) -> str:
        return f"reservation {self.points} ({self.state})"


class ExpiryNotice(models.Model):
    """One "your points expire soon" notice per member and expiry date (so the job never sends twice)."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    expires_on = models.DateField()
    points = models.BigIntegerField()
    channel = models.CharField(max_length=12, blank=True)
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["member", "expires_on"], name="loyalty_expiry_notice_once")
        ]

    def __str__(self) -> str:
        return f"{self.points} expiring {self.expires_on}"
