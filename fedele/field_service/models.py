"""Field service tables: technicians, the installed base (equipment at customers' sites), work orders and
their status history.

Dispatch optimisation, route planning, the technician's offline app and maintenance contracts come
later: they hang off these tables (a work order's technician and window, a technician's home base, an
equipment's category and warranty) without changing them.
"""

from __future__ import annotations

import calendar
import uuid
from datetime import date

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Upper
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

from fedele.field_service.contracts import (
    CLOSED_STATUSES,
    EquipmentStatus,
    WorkOrderKind,
    WorkOrderPriority,
    WorkOrderStatus,
)

EQUIPMENT_STATUS_LABELS = {
    EquipmentStatus.ACTIVE.value: pgettext_lazy("equipment status", "active"),
    EquipmentStatus.UNDER_REPAIR.value: pgettext_lazy("equipment status", "under repair"),
    EquipmentStatus.RETIRED.value: pgettext_lazy("equipment status", "retired"),
}
WORK_ORDER_STATUS_LABELS = {
    WorkOrderStatus.NEW.value: pgettext_lazy("work order status", "new"),
    WorkOrderStatus.SCHEDULED.value: pgettext_lazy("work order status", "scheduled"),
    WorkOrderStatus.DISPATCHED.value: pgettext_lazy("work order status", "dispatched"),
    WorkOrderStatus.EN_ROUTE.value: pgettext_lazy("work order status", "en route"),
    WorkOrderStatus.IN_PROGRESS.value: pgettext_lazy("work order status", "in progress"),
    WorkOrderStatus.ON_HOLD.value: pgettext_lazy("work order status", "on hold"),
    WorkOrderStatus.COMPLETED.value: pgettext_lazy("work order status", "completed"),
    WorkOrderStatus.CANCELLED.value: pgettext_lazy("work order status", "cancelled"),
}
PRIORITY_LABELS = {
    WorkOrderPriority.LOW.value: _("low"),
    WorkOrderPriority.NORMAL.value: _("normal"),
    WorkOrderPriority.HIGH.value: _("high"),
    WorkOrderPriority.URGENT.value: _("urgent"),
}
KIND_LABELS = {
    WorkOrderKind.INSTALLATION.value: _("installation"),
    WorkOrderKind.REPAIR.value: _("repair"),
    WorkOrderKind.MAINTENANCE.value: _("maintenance"),
    WorkOrderKind.INSPECTION.value: _("inspection"),
}


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later, or the last day of that month when it is shorter:
    31 Jan + 1 month = 28 (29) Feb; 29 Feb 2024 + 12 months = 28 Feb 2025."""
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


class Technician(models.Model):
    """Someone who goes to customers' sites. May have a login (to see and move their own work orders)."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    display_name = models.CharField(_("name"), max_length=150)
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("login"),
    )
    phone = models.CharField(_("phone"), max_length=20, blank=True, help_text=_("E.164, e.g. +393351234567"))
    email = models.EmailField(_("e-mail"), max_length=254, blank=True)
    active = models.BooleanField(_("active"), default=True)
    home_base_address = models.CharField(_("home base"), max_length=300, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["display_name", "id"]

    def __str__(self) -> str:
        return self.display_name


class Equipment(models.Model):
    """One installed unit at a customer's site: a boiler, a router, a meter."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="+")
    serial_number = models.CharField(_("serial number"), max_length=100)
    name = models.CharField(_("name"), max_length=200)
    category = models.CharField(_("category"), max_length=40, blank=True)
    manufacturer = models.CharField(_("manufacturer"), max_length=100, blank=True)
    model_code = models.CharField(_("model code"), max_length=100, blank=True)
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=list(EQUIPMENT_STATUS_LABELS.items()),
        default=EquipmentStatus.ACTIVE.value,
    )
    installed_on = models.DateField(_("installed on"), null=True, blank=True)
    warranty_ends_on = models.DateField(_("warranty ends on"), null=True, blank=True)
    site_street = models.CharField(_("street"), max_length=200, blank=True)
    site_postal_code = models.CharField(_("postal code"), max_length=16, blank=True)
    site_city = models.CharField(_("city"), max_length=100, blank=True)
    site_province = models.CharField(_("province"), max_length=2, blank=True)
    site_country = models.CharField(_("country"), max_length=2, default="IT")
    notes = models.TextField(_("notes"), blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-installed_on", "-id"]
        constraints = [
            models.UniqueConstraint(Upper("serial_number"), name="field_service_equipment_serial_unique"),
        ]
        indexes = [models.Index(fields=["customer", "status"], name="field_service_equip_customer")]

    def __str__(self) -> str:
        return f"{self.name} ({self.serial_number})"

    @property
    def site_address(self) -> str:
        """One line: "Via Roma 12, 40121 Bologna (BO)"."""
        place = " ".join(part for part in (self.site_postal_code, self.site_city) if part)
        if self.site_province:
            place = f"{place} ({self.site_province})" if place else self.site_province
        return ", ".join(part for part in (self.site_street, place) if part)

    def under_warranty_on(self, day: date) -> bool:
        """Covered through the end date, inclusive; no end date means no warranty on record."""
        if self.warranty_ends_on is None or self.status == EquipmentStatus.RETIRED.value:
            return False
        if self.installed_on is not None and day < self.installed_on:
            return False
        return day <= self.warranty_ends_on

    @property
    def status_label(self) -> str:
        return str(EQUIPMENT_STATUS_LABELS.get(self.status, self.status))


class WorkOrder(models.Model):
    """A visit to a customer's site. Number ``WO-2026-000042`` from the gapless series ``WO-<year>``."""

    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    number = models.CharField(_("number"), max_length=32, unique=True)
    customer = models.ForeignKey("customers.Customer", on_delete=models.PROTECT, related_name="+")
    equipment = models.ForeignKey(
        Equipment, on_delete=models.PROTECT, null=True, blank=True, related_name="work_orders"
    )
    ticket_public_id = models.UUIDField(_("support ticket"), null=True, blank=True)
    kind = models.CharField(
        _("kind"), max_length=20, choices=list(KIND_LABELS.items()), default=WorkOrderKind.REPAIR.value
    )
    summary = models.CharField(_("summary"), max_length=200)
    description = models.TextField(_("description"), blank=True)
    priority = models.CharField(
        _("priority"),
        max_length=10,
        choices=list(PRIORITY_LABELS.items()),
        default=WorkOrderPriority.NORMAL.value,
    )
    status = models.CharField(
        _("status"),
        max_length=20,
        choices=list(WORK_ORDER_STATUS_LABELS.items()),
        default=WorkOrderStatus.NEW.value,
    )
    window_start = models.DateTimeField(_("window start"), null=True, blank=True)
    window_end = models.DateTimeField(_("window end"), null=True, blank=True)
    technician = models.ForeignKey(
        Technician, on_delete=models.PROTECT, null=True, blank=True, related_name="work_orders"
    )
    eta = models.DateTimeField(_("expected arrival"), null=True, blank=True)
    dispatched_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    resolution = models.TextField(_("resolution"), blank=True)
    hold_reason = models.CharField(_("reason for the hold"), max_length=500, blank=True)
    cancellation_reason = models.CharField(_("reason for the cancellation"), max_length=500, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        ordering = ["-id"]
        permissions = [
            ("view_field_service", "Can view technicians, equipment and work orders"),
            ("work_field_service", "Can move own work orders on site (en route, start, hold, complete)"),
            ("manage_field_service", "Can manage equipment, technicians and work orders"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=(Q(window_start__isnull=True) & Q(window_end__isnull=True))
                | Q(window_start__isnull=False, window_end__isnull=False, window_end__gt=F("window_start")),
                name="field_service_work_order_window_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["customer", "status"], name="field_service_wo_customer"),
            models.Index(fields=["technician", "window_start"], name="field_service_wo_technician"),
            models.Index(fields=["status", "window_start"], name="field_service_wo_status"),
        ]

    def __str__(self) -> str:
        return self.number

    @property
    def is_open(self) -> bool:
        return self.status not in CLOSED_STATUSES

    @property
    def status_label(self) -> str:
        return str(WORK_ORDER_STATUS_LABELS.get(self.status, self.status))

    @property
    def priority_label(self) -> str:
        return str(PRIORITY_LABELS.get(self.priority, self.priority))

    @property
    def kind_label(self) -> str:
        return str(KIND_LABELS.get(self.kind, self.kind))


class WorkOrderEvent(models.Model):
    """One line of a work order's history: a status change (or a reschedule/reassignment) with who and why."""

    work_order = models.ForeignKey(WorkOrder, on_delete=models.CASCADE, related_name="history")
    at = models.DateTimeField()
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    actor_label = models.CharField(max_length=200, blank=True)
    action = models.CharField(max_length=30)
    from_status = models.CharField(max_length=20, blank=True)
    to_status = models.CharField(max_length=20)
    note = models.TextField(blank=True)

    class Meta:
        ordering = ["at", "id"]
        indexes = [models.Index(fields=["work_order", "at"], name="field_service_wo_history")]

    def __str__(self) -> str:
        return f"{self.work_order_id}: {self.from_status} -> {self.to_status}"

    @property
    def from_label(self) -> str:
        return str(WORK_ORDER_STATUS_LABELS.get(self.from_status, self.from_status))

    @property
    def to_label(self) -> str:
        return str(WORK_ORDER_STATUS_LABELS.get(self.to_status, self.to_status))
