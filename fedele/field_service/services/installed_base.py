"""Technicians and the installed base (equipment at customers' sites).

Serial numbers are unique whatever their letter case ("ab-12" and "AB-12" are one unit); a warranty is
either an end date or a number of months from the installation day (31 Jan + 1 month ends on the last
day of February; 29 Feb + 12 months ends on 28 Feb), covered through that day inclusive.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.customers.facade import customer_summary
from fedele.field_service.contracts import CLOSED_STATUSES, EquipmentStatus
from fedele.field_service.models import Equipment, Technician, WorkOrder, add_months
from fedele.field_service.services import common
from fedele.shared import audit, clock
from fedele.shared.errors import Conflict, NotFound, ValidationFailed

MAX_WARRANTY_MONTHS = 600
TECHNICIAN_FIELDS = ("display_name", "phone", "email", "active", "home_base_address", "user_id")
EQUIPMENT_TEXT_LIMITS = {
    "name": 200,
    "category": 40,
    "manufacturer": 100,
    "model_code": 100,
    "site_street": 200,
    "site_postal_code": 16,
    "site_city": 100,
    "site_province": 2,
    "site_country": 2,
    "notes": 5000,
}
EQUIPMENT_EDITABLE = frozenset(
    {*EQUIPMENT_TEXT_LIMITS, "serial_number", "installed_on", "warranty_ends_on", "warranty_months", "status"}
)


# ----------------------------------------------------------------------------------------------
# Technicians


def _technician_snapshot(technician: Technician) -> dict[str, Any]:
    return {name: getattr(technician, name) for name in TECHNICIAN_FIELDS}


def _clean_technician(values: Mapping[str, Any]) -> dict[str, Any]:
    cleaned: dict[str, Any] = {}
    if "display_name" in values:
        cleaned["display_name"] = common.text(
            values["display_name"], "display_name", max_length=150, required=True
        )
    if "phone" in values:
        cleaned["phone"] = common.phone(values["phone"])
    if "email" in values:
        cleaned["email"] = common.email(values["email"])
    if "home_base_address" in values:
        cleaned["home_base_address"] = common.text(
            values["home_base_address"], "home_base_address", max_length=300
        )
    if "active" in values:
        cleaned["active"] = bool(values["active"])
    if "user_id" in values:
        user_id = values["user_id"]
        if user_id is not None:
            from fedele.accounts.facade import user_summary

            if not isinstance(user_id, int) or user_summary(user_id) is None:
                raise ValidationFailed(
                    _("That login does not exist."),
                    code="user_not_found",
                    fields={"user_id": _("Not found.")},
                )
        cleaned["user_id"] = user_id
    return cleaned


def _check_user_free(user_id: int | None, *, exclude_pk: int | None = None) -> None:
    if user_id is None:
        return
    taken = Technician.objects.filter(user_id=user_id)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise Conflict(_("That login already belongs to another technician."), code="user_already_technician")


def technician_create(
    *,
    actor: Actor | None,
    display_name: str,
    phone: str = "",
    email: str = "",
    home_base_address: str = "",
    user_id: int | None = None,
    active: bool = True,
) -> Technician:
    common.require(actor, common.MANAGE)
    values = _clean_technician(
        {
            "display_name": display_name,
            "phone": phone,
            "email": email,
            "home_base_address": home_base_address,
            "user_id": user_id,
            "active": active,
        }
    )
    now = clock.now()
    try:
        with transaction.atomic():
            _check_user_free(values["user_id"])
            technician = Technician.objects.create(**values, created_at=now, updated_at=now)
            audit.record(
                action="field_service.technician_created",
                object_type="field_service.technician",
                object_id=str(technician.public_id),
                after=_technician_snapshot(technician),
                actor_id=common.actor_id(actor),
            )
    except IntegrityError:
        raise Conflict(
            _("That login already belongs to another technician."), code="user_already_technician"
        ) from None
    return technician


def technician_update(
    *, actor: Actor | None, technician_public_id: str, changes: Mapping[str, Any]
) -> Technician:
    common.require(actor, common.MANAGE)
    unknown = sorted(set(changes) - set(TECHNICIAN_FIELDS))
    if unknown:
        raise ValidationFailed(
            _("Some fields cannot be changed."), fields={name: _("Not allowed.") for name in unknown}
        )
    values = _clean_technician(changes)
    try:
        with transaction.atomic():
            technician = _lock_technician(technician_public_id)
            before = _technician_snapshot(technician)
            if "user_id" in values:
                _check_user_free(values["user_id"], exclude_pk=technician.pk)
            for name, value in values.items():
                setattr(technician, name, value)
            technician.updated_at = clock.now()
            technician.save()
            audit.record(
                action="field_service.technician_updated",
                object_type="field_service.technician",
                object_id=str(technician.public_id),
                before=before,
                after=_technician_snapshot(technician),
                actor_id=common.actor_id(actor),
            )
    except IntegrityError:
        raise Conflict(
            _("That login already belongs to another technician."), code="user_already_technician"
        ) from None
    return technician


def _lock_technician(public_id: str) -> Technician:
    key = _uuid_or_none(public_id)
    technician = Technician.objects.select_for_update().filter(public_id=key).first() if key else None
    if technician is None:
        raise NotFound(_("Technician not found."), code="technician_not_found")
    return technician


def _uuid_or_none(value: Any) -> str | None:
    import uuid

    try:
        return str(uuid.UUID(str(value).strip()))
    except (ValueError, AttributeError):
        return None


# ----------------------------------------------------------------------------------------------
# Equipment


def _equipment_snapshot(equipment: Equipment) -> dict[str, Any]:
    return {
        "serial_number": equipment.serial_number,
        "name": equipment.name,
        "category": equipment.category,
        "manufacturer": equipment.manufacturer,
        "model_code": equipment.model_code,
        "status": equipment.status,
        "installed_on": equipment.installed_on,
        "warranty_ends_on": equipment.warranty_ends_on,
        "site_address": equipment.site_address,
        "customer_id": equipment.customer_id,
    }


def _date(value: Any, field: str) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValidationFailed(
            _("The date is not valid."), fields={field: _("Use the form YYYY-MM-DD.")}
        ) from None


def _clean_serial(value: Any) -> str:
    serial = common.text(value, "serial_number", max_length=100, required=True)
    return " ".join(serial.split())


def _warranty_end(installed_on: date | None, warranty_ends_on: date | None, months: Any) -> date | None:
    if months in (None, ""):
        return warranty_ends_on
    if warranty_ends_on is not None:
        raise ValidationFailed(
            _("Give either the warranty end date or its length in months, not both."),
            code="warranty_ambiguous",
            fields={"warranty_months": _("Leave empty when the end date is given.")},
        )
    try:
        count = int(months)
    except (TypeError, ValueError):
        raise ValidationFailed(
            _("The warranty length is not valid."), fields={"warranty_months": _("A whole number of months.")}
        ) from None
    if isinstance(months, float) and months != count:
        raise ValidationFailed(
            _("The warranty length is not valid."), fields={"warranty_months": _("A whole number of months.")}
        )
    if count < 0 or count > MAX_WARRANTY_MONTHS:
        raise ValidationFailed(
            _("The warranty length is not valid."),
            fields={"warranty_months": _("Between 0 and %(max)s months.") % {"max": MAX_WARRANTY_MONTHS}},
        )
    if installed_on is None:
        raise ValidationFailed(
            _("A warranty in months needs the installation date."),
            code="installed_on_required",
            fields={"installed_on": _("Required for a warranty in months.")},
        )
    return add_months(installed_on, count)


def _check_dates(installed_on: date | None, warranty_ends_on: date | None) -> None:
    if installed_on is not None and installed_on > clock.today(common.BUSINESS_TZ):
        raise ValidationFailed(
            _("The installation date is in the future."),
            code="installed_on_in_future",
            fields={"installed_on": _("Not after today.")},
        )
    if installed_on is not None and warranty_ends_on is not None and warranty_ends_on < installed_on:
        raise ValidationFailed(
            _("The warranty cannot end before the installation."),
            code="warranty_before_installation",
            fields={"warranty_ends_on": _("On or after the installation date.")},
        )


def _check_serial_free(serial_number: str, *, exclude_pk: int | None = None) -> None:
    taken = Equipment.objects.filter(serial_number__iexact=serial_number)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise Conflict(
            _("Another unit already has this serial number."),
            code="serial_number_taken",
            fields={"serial_number": _("Already registered.")},
        )


def _clean_equipment_texts(values: Mapping[str, Any]) -> dict[str, str]:
    cleaned = {
        name: common.text(values[name], name, max_length=limit, required=name == "name")
        for name, limit in EQUIPMENT_TEXT_LIMITS.items()
        if name in values
    }
    for name in ("site_province", "site_country"):
        if name in cleaned:
            cleaned[name] = cleaned[name].upper()
    if "site_country" in cleaned and not cleaned["site_country"]:
        cleaned["site_country"] = "IT"
    return cleaned


def equipment_register(
    *,
    actor: Actor | None,
    customer_public_id: str,
    serial_number: str,
    name: str,
    category: str = "",
    manufacturer: str = "",
    model_code: str = "",
    installed_on: date | str | None = None,
    warranty_ends_on: date | str | None = None,
    warranty_months: int | None = None,
    site_street: str = "",
    site_postal_code: str = "",
    site_city: str = "",
    site_province: str = "",
    site_country: str = "IT",
    notes: str = "",
) -> Equipment:
    """A unit installed at a customer's site. With no site address, the customer's own address is used."""
    common.require(actor, common.MANAGE)
    customer = customer_summary(str(customer_public_id)) if _uuid_or_none(customer_public_id) else None
    if customer is None:
        raise ValidationFailed(
            _("Customer not found."), code="customer_not_found", fields={"customer_id": _("Not found.")}
        )
    serial = _clean_serial(serial_number)
    texts = _clean_equipment_texts(
        {
            "name": name,
            "category": category,
            "manufacturer": manufacturer,
            "model_code": model_code,
            "site_street": site_street,
            "site_postal_code": site_postal_code,
            "site_city": site_city,
            "site_province": site_province,
            "site_country": site_country,
            "notes": notes,
        }
    )
    texts["category"] = texts["category"].lower()
    if not any(texts[name] for name in ("site_street", "site_postal_code", "site_city")):
        texts.update(
            site_street=customer.street[:200],
            site_postal_code=customer.postal_code[:16],
            site_city=customer.city[:100],
            site_province=customer.province[:2].upper(),
        )
    installed = _date(installed_on, "installed_on")
    warranty_end = _warranty_end(installed, _date(warranty_ends_on, "warranty_ends_on"), warranty_months)
    _check_dates(installed, warranty_end)
    now = clock.now()
    try:
        with transaction.atomic():
            _check_serial_free(serial)
            equipment = Equipment.objects.create(
                customer_id=customer.customer_id,
                serial_number=serial,
                installed_on=installed,
                warranty_ends_on=warranty_end,
                status=EquipmentStatus.ACTIVE.value,
                created_at=now,
                updated_at=now,
                **texts,
            )
            audit.record(
                action="field_service.equipment_registered",
                object_type="field_service.equipment",
                object_id=str(equipment.public_id),
                after=_equipment_snapshot(equipment),
                actor_id=common.actor_id(actor),
            )
    except IntegrityError:
        # Two registrations of one serial at once: the unique index refused the second.
        raise Conflict(
            _("Another unit already has this serial number."),
            code="serial_number_taken",
            fields={"serial_number": _("Already registered.")},
        ) from None
    return equipment


def _lock_equipment(public_id: str) -> Equipment:
    key = _uuid_or_none(public_id)
    equipment = Equipment.objects.select_for_update().filter(public_id=key).first() if key else None
    if equipment is None:
        raise NotFound(_("Equipment not found."), code="equipment_not_found")
    return equipment


def equipment_update(
    *, actor: Actor | None, equipment_public_id: str, changes: Mapping[str, Any]
) -> Equipment:
    """Change a unit's data. Status moves between active and under repair here; retiring is its own action."""
    common.require(actor, common.MANAGE)
    unknown = sorted(set(changes) - EQUIPMENT_EDITABLE)
    if unknown:
        raise ValidationFailed(
            _("Some fields cannot be changed."), fields={name: _("Not allowed.") for name in unknown}
        )
    texts = _clean_equipment_texts(changes)
    if "category" in texts:
        texts["category"] = texts["category"].lower()
    status = changes.get("status")
    if status is not None and status not in (
        EquipmentStatus.ACTIVE.value,
        EquipmentStatus.UNDER_REPAIR.value,
    ):
        raise ValidationFailed(
            _("The status is not valid."),
            code="invalid_status",
            fields={"status": _("Active or under repair; retire the unit with its own action.")},
        )
    try:
        with transaction.atomic():
            equipment = _lock_equipment(equipment_public_id)
            if equipment.status == EquipmentStatus.RETIRED.value:
                raise Conflict(_("The unit is retired: it cannot be changed."), code="equipment_retired")
            before = _equipment_snapshot(equipment)
            if "serial_number" in changes:
                serial = _clean_serial(changes["serial_number"])
                _check_serial_free(serial, exclude_pk=equipment.pk)
                equipment.serial_number = serial
            for name, value in texts.items():
                setattr(equipment, name, value)
            installed = (
                _date(changes["installed_on"], "installed_on")
                if "installed_on" in changes
                else equipment.installed_on
            )
            if "warranty_months" in changes and changes["warranty_months"] not in (None, ""):
                warranty_end = _warranty_end(
                    installed,
                    _date(changes.get("warranty_ends_on"), "warranty_ends_on"),
                    changes["warranty_months"],
                )
            elif "warranty_ends_on" in changes:
                warranty_end = _date(changes["warranty_ends_on"], "warranty_ends_on")
            else:
                warranty_end = equipment.warranty_ends_on
            _check_dates(installed, warranty_end)
            equipment.installed_on = installed
            equipment.warranty_ends_on = warranty_end
            if status is not None:
                equipment.status = status
            equipment.updated_at = clock.now()
            equipment.save()
            audit.record(
                action="field_service.equipment_updated",
                object_type="field_service.equipment",
                object_id=str(equipment.public_id),
                before=before,
                after=_equipment_snapshot(equipment),
                actor_id=common.actor_id(actor),
            )
    except IntegrityError:
        raise Conflict(
            _("Another unit already has this serial number."),
            code="serial_number_taken",
            fields={"serial_number": _("Already registered.")},
        ) from None
    return equipment


def equipment_retire(*, actor: Actor | None, equipment_public_id: str, reason: str = "") -> Equipment:
    """Take a unit out of service (replaced, removed). Not while a work order on it is still open."""
    common.require(actor, common.MANAGE)
    note = common.text(reason, "reason", max_length=500)
    with transaction.atomic():
        equipment = _lock_equipment(equipment_public_id)
        if equipment.status == EquipmentStatus.RETIRED.value:
            raise Conflict(_("The unit is already retired."), code="equipment_retired")
        if WorkOrder.objects.filter(equipment=equipment).exclude(status__in=CLOSED_STATUSES).exists():
            raise Conflict(
                _("The unit has open work orders: complete or cancel them first."),
                code="equipment_has_open_work_orders",
            )
        before = _equipment_snapshot(equipment)
        now = clock.now()
        equipment.status = EquipmentStatus.RETIRED.value
        equipment.retired_at = now
        if note:
            stamp = clock.local(now, common.BUSINESS_TZ).date().isoformat()
            equipment.notes = "\n".join(part for part in (equipment.notes, f"{stamp}: {note}") if part)
        equipment.updated_at = now
        equipment.save()
        audit.record(
            action="field_service.equipment_retired",
            object_type="field_service.equipment",
            object_id=str(equipment.public_id),
            before=before,
            after={**_equipment_snapshot(equipment), "reason": note},
            actor_id=common.actor_id(actor),
        )
    return equipment
