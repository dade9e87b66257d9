"""Who the dialer may call: contact-list imports (CSV or XLSX), the internal do-not-call list and the
imports of the Registro Pubblico delle Opposizioni (RPO), and the one check both the import and the
dialer run before a number is called (``block_reasons``).

RPO rule: a number the latest RPO result lists as registered is not called unless the customer it
belongs to (through the customers facade) gave consent for phone contact for the campaign's purpose
after the registration date (the file's date for the number, else the check date: the latest day we
know it was registered). A known customer's withdrawn phone consent for the purpose also blocks.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils.translation import gettext as _

from fedele.accounts.facade import Actor
from fedele.contact_center.dialer.contacts import normalise_number
from fedele.contact_center.models import (
    Campaign,
    CampaignContact,
    ContactList,
    ContactState,
    DoNotCallEntry,
    DoNotCallSource,
    RpoImportBatch,
)
from fedele.customers import facade as customers_facade
from fedele.shared import audit, clock
from fedele.shared.csvfiles import csv_lines
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed

__all__ = [
    "BLOCK_CONSENT_WITHDRAWN",
    "BLOCK_INTERNAL",
    "BLOCK_RPO",
    "ImportReport",
    "block_reasons",
    "contact_list_import",
    "dnc_add",
    "dnc_remove",
    "rpo_import",
]

PERMISSION = "contact_center.run_campaigns"
MODES = ("all_or_none", "good_rows")
FORMATS = ("csv", "xlsx")
MAX_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000
MAX_REPORTED_ERRORS = 1_000
LOOKUP_CHUNK = 5_000
BLOCK_INTERNAL = "internal_dnc"
BLOCK_RPO = "rpo_registered"
BLOCK_CONSENT_WITHDRAWN = "consent_withdrawn"
_ROME = ZoneInfo("Europe/Rome")
_PHONE_HEADERS = {"phone", "number", "telephone", "telefono", "numero", "cellulare", "mobile"}
_NAME_HEADERS = {"name", "nome", "full name", "nominativo"}
_REFERENCE_HEADERS = {"reference", "ref", "riferimento", "codice", "code", "external_ref"}
_YES = {"1", "y", "yes", "s", "si", "sì", "true", "x", "iscritto", "registered", "opposto"}
_NO = {"0", "n", "no", "false", "non iscritto", "not registered", "libero"}


def _require(actor: Actor) -> None:
    if not actor.can(PERMISSION):
        raise PermissionDenied(_("You cannot run outbound campaigns."))


@dataclass(frozen=True, slots=True)
class ImportReport:
    """What an import did; ``errors`` are (line, message), line 1 being the file's first line."""

    committed: bool
    rows_total: int
    imported: int
    duplicates: int
    blocked: int
    errors: list[tuple[int, str]] = field(default_factory=list)
    contact_list_id: str = ""


# -- reading files ---------------------------------------------------------------------------------


def _xlsx_lines(content: bytes) -> Iterator[tuple[int, list[str]]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise ValidationFailed(
            _("The file cannot be read as an Excel workbook (.xlsx)."), code="invalid_xlsx"
        ) from error
    sheet = workbook.worksheets[0]
    for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
        cells = []
        for value in row:
            if value is None:
                cells.append("")
            elif isinstance(value, float) and value.is_integer():
                cells.append(str(int(value)))  # a number typed into a cell comes back as 3.9333e+11
            else:
                cells.append(str(value))
        yield number, cells
    workbook.close()


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ValidationFailed(_("The file is not UTF-8 or Windows-1252 text."), code="invalid_encoding")


def _rows(content: bytes, file_format: str) -> Iterator[tuple[int, list[str]]]:
    if file_format == "xlsx":
        return _xlsx_lines(content)
    text = _decode(content)
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    return csv_lines(text, delimiter=delimiter)


def _check_upload(content: bytes, file_format: str, mode: str) -> None:
    problems: dict[str, str] = {}
    if file_format not in FORMATS:
        problems["format"] = _("Choose CSV or XLSX.")
    if mode not in MODES:
        problems["mode"] = _("Choose all-or-none or good rows only.")
    if not content:
        problems["file"] = _("The file is empty.")
    elif len(content) > MAX_BYTES:
        problems["file"] = _("The file is larger than 20 MB.")
    if problems:
        raise ValidationFailed(_("The file cannot be imported."), code="invalid_import", fields=problems)


def _error_fields(errors: list[tuple[int, str]]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for line, message in errors[:MAX_REPORTED_ERRORS]:
        fields.setdefault(f"line {line}", []).append(message)
    return fields


# -- the do-not-call check -------------------------------------------------------------------------


def _chunks(values: list[str]) -> Iterator[list[str]]:
    """Lists of at most LOOKUP_CHUNK numbers: SQLite caps the parameters of one statement."""
    for start in range(0, len(values), LOOKUP_CHUNK):
        yield values[start : start + LOOKUP_CHUNK]


def _rpo_status(phones: Iterable[str]) -> dict[str, tuple[bool, date]]:
    """Per number, the latest RPO batch's word: (registered, registration date or check date)."""
    latest: dict[str, tuple[bool, date]] = {}
    for chunk in _chunks(list(phones)):
        rows = (
            DoNotCallEntry.objects.filter(source=DoNotCallSource.RPO, phone__in=chunk)
            .order_by("batch__checked_on", "batch_id")
            .values_list("phone", "registered", "registered_on", "batch__checked_on")
        )
        for phone, registered, registered_on, checked_on in rows:
            latest[phone] = (registered, registered_on or checked_on)
    return latest


def _consent(phone: str, purpose: str) -> tuple[bool | None, datetime | None]:
    """The known customer's phone consent for ``purpose``: (granted, recorded at) or (None, None)."""
    customer = customers_facade.find_customer_by_phone(phone)
    if customer is None:
        return None, None
    state = customers_facade.consents_in_force(str(customer.public_id)).get(("phone", purpose))
    if state is None:
        return None, None
    return state.granted, state.recorded_at


def block_reasons(
    phones: Iterable[str], *, purpose: str, check_rpo: bool, check_consent: bool = True
) -> dict[str, str]:
    """The numbers that may not be called, with why (``internal_dnc``, ``rpo_registered``,
    ``consent_withdrawn``); a number absent from the result may be called. Consent is looked up
    (one customers-facade call per number) for RPO-registered numbers and, when ``check_consent``,
    for every number (the dialer does that right before each call; imports skip it for speed)."""
    numbers = sorted(set(phones))
    if not numbers:
        return {}
    reasons: dict[str, str] = {}
    for chunk in _chunks(numbers):
        internal = DoNotCallEntry.objects.filter(source=DoNotCallSource.INTERNAL, phone__in=chunk)
        reasons.update(dict.fromkeys(internal.values_list("phone", flat=True), BLOCK_INTERNAL))
    rpo = _rpo_status(n for n in numbers if n not in reasons) if check_rpo else {}
    for phone in numbers:
        if phone in reasons:
            continue
        registered, since = rpo.get(phone, (False, None))
        if not (registered or check_consent):
            continue
        granted, recorded_at = _consent(phone, purpose)
        if granted is False:
            reasons[phone] = BLOCK_CONSENT_WITHDRAWN
        elif registered and not (
            granted
            and recorded_at is not None
            and since is not None
            and recorded_at.astimezone(_ROME).date() > since
        ):
            reasons[phone] = BLOCK_RPO
    return reasons


# -- contact lists ---------------------------------------------------------------------------------


def _header_index(cells: list[str]) -> dict[str, int] | None:
    names = [cell.strip().lower() for cell in cells]
    index: dict[str, int] = {}
    for position, name in enumerate(names):
        if name in _PHONE_HEADERS and "phone" not in index:
            index["phone"] = position
        elif name in _NAME_HEADERS and "name" not in index:
            index["name"] = position
        elif name in _REFERENCE_HEADERS and "reference" not in index:
            index["reference"] = position
    return index if "phone" in index else None


def contact_list_import(
    *,
    actor: Actor,
    campaign: Campaign,
    name: str,
    content: bytes,
    file_format: str = "csv",
    mode: str = "all_or_none",
    at: datetime | None = None,
) -> ImportReport:
    """Import numbers into a campaign. The first row names the columns: a phone column (phone, number,
    telefono, numero…) is required; name and reference are optional; other columns are kept as the
    contact's data. Numbers become E.164 (default country: the campaign's), duplicates (in the file or
    already in the campaign) are skipped and counted, numbers on a do-not-call list are kept as
    ``blocked`` (visible, never dialled). ``all_or_none``: any bad row → ValidationFailed listing every
    bad line, nothing written; ``good_rows``: the good rows are written and the bad ones reported."""
    _require(actor)
    at = at or clock.now()
    _check_upload(content, file_format, mode)
    name = (name or "").strip()[:200] or _("contact list")
    errors: list[tuple[int, str]] = []
    good: list[tuple[str, str, str, str, str, dict[str, str]]] = []
    seen: set[str] = set()
    duplicates = rows_total = 0
    header: dict[str, int] | None = None
    header_names: list[str] = []
    for line, cells in _rows(content, file_format):
        if header is None:
            header = _header_index(cells)
            if header is None:
                raise ValidationFailed(
                    _("Line %(line)d must name the columns, with one called phone (or telefono, numero).")
                    % {"line": line},
                    code="missing_phone_column",
                    fields={f"line {line}": [_("No phone column.")]},
                )
            header_names = [cell.strip() for cell in cells]
            continue
        if not any(cell.strip() for cell in cells):
            continue
        rows_total += 1
        if rows_total > MAX_ROWS:
            raise ValidationFailed(
                _("The file has more than %(limit)d rows.") % {"limit": MAX_ROWS}, code="too_many_rows"
            )
        raw = cells[header["phone"]] if header["phone"] < len(cells) else ""
        try:
            number = normalise_number(raw, default_region=campaign.default_region)
        except ValueError as error:
            errors.append((line, str(error)))
            continue
        if number.e164 in seen:
            duplicates += 1
            continue
        seen.add(number.e164)
        known = {header.get("phone"), header.get("name"), header.get("reference")}
        data = {
            header_names[i][:60]: cells[i][:500]
            for i in range(min(len(cells), len(header_names)))
            if i not in known and header_names[i] and cells[i]
        }
        contact_name = (
            cells[header["name"]].strip()[:200] if "name" in header and header["name"] < len(cells) else ""
        )
        reference = (
            cells[header["reference"]].strip()[:100]
            if "reference" in header and header["reference"] < len(cells)
            else ""
        )
        good.append((number.e164, number.region, number.time_zone, contact_name, reference, data))
    if header is None or rows_total == 0:
        raise ValidationFailed(_("The file has no numbers."), code="empty_import")
    if errors and mode == "all_or_none":
        raise ValidationFailed(
            _("%(count)d rows cannot be imported; nothing was imported.") % {"count": len(errors)},
            code="import_rows_invalid",
            fields=_error_fields(errors),
        )
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
        existing: set[str] = set()
        for chunk in _chunks([row[0] for row in good]):
            existing.update(
                CampaignContact.objects.filter(campaign=campaign, phone__in=chunk).values_list(
                    "phone", flat=True
                )
            )
        fresh = [row for row in good if row[0] not in existing]
        duplicates += len(good) - len(fresh)
        blocked = block_reasons(
            [row[0] for row in fresh],
            purpose=campaign.consent_purpose,
            check_rpo=campaign.check_rpo,
            check_consent=False,
        )
        contact_list = ContactList.objects.create(
            campaign=campaign,
            name=name,
            mode=mode,
            rows_total=rows_total,
            rows_imported=len(fresh) - len(blocked),
            rows_duplicate=duplicates,
            rows_blocked=len(blocked),
            rows_invalid=len(errors),
            errors=[[line, message] for line, message in errors[:MAX_REPORTED_ERRORS]],
            imported_by_id=actor.user_id or None,
            imported_at=at,
        )
        CampaignContact.objects.bulk_create(
            [
                CampaignContact(
                    campaign=campaign,
                    contact_list=contact_list,
                    phone=phone,
                    region=region,
                    time_zone=zone,
                    name=contact_name,
                    external_ref=reference,
                    data=data,
                    state=ContactState.BLOCKED if phone in blocked else ContactState.PENDING,
                    blocked_reason=blocked.get(phone, ""),
                    created_at=at,
                )
                for phone, region, zone, contact_name, reference, data in fresh
            ],
            batch_size=2_000,
        )
        audit.record(
            action="contact_center.contact_list_imported",
            object_type="contact_center.campaign",
            object_id=str(campaign.public_id),
            after={
                "list": str(contact_list.public_id),
                "rows": rows_total,
                "imported": len(fresh) - len(blocked),
                "duplicates": duplicates,
                "blocked": len(blocked),
                "invalid": len(errors),
            },
        )
    return ImportReport(
        committed=True,
        rows_total=rows_total,
        imported=len(fresh) - len(blocked),
        duplicates=duplicates,
        blocked=len(blocked),
        errors=errors[:MAX_REPORTED_ERRORS],
        contact_list_id=str(contact_list.public_id),
    )


# -- do-not-call -----------------------------------------------------------------------------------


def _e164(phone: str) -> str:
    try:
        return normalise_number(phone).e164
    except ValueError as error:
        raise ValidationFailed(str(error), code="invalid_phone", fields={"phone": str(error)}) from error


def dnc_add(*, actor: Actor, phone: str, reason: str = "", at: datetime | None = None) -> DoNotCallEntry:
    """Put a number on the internal do-not-call list (adding it again changes nothing). Contacts with
    this number waiting in any campaign are blocked at once."""
    _require(actor)
    e164 = _e164(phone)
    if len(reason) > 200:
        raise ValidationFailed(
            _("The reason is too long."),
            code="invalid_reason",
            fields={"reason": _("At most 200 characters.")},
        )
    at = at or clock.now()
    with transaction.atomic():
        entry, created = DoNotCallEntry.objects.get_or_create(
            phone=e164,
            source=DoNotCallSource.INTERNAL,
            defaults={"reason": reason, "added_by_id": actor.user_id or None, "created_at": at},
        )
        if created:
            CampaignContact.objects.filter(
                phone=e164, state__in=[ContactState.PENDING, ContactState.CALLBACK, ContactState.PREVIEW]
            ).update(state=ContactState.BLOCKED, blocked_reason=BLOCK_INTERNAL)
            audit.record(
                action="contact_center.dnc_added",
                object_type="contact_center.dnc",
                object_id=e164,
                after={"reason": reason},
            )
    return entry


def dnc_remove(*, actor: Actor, phone: str) -> None:
    """Take a number off the internal list. Contacts blocked for it stay blocked (a supervisor
    re-opens them deliberately): an accidental removal must not start calls."""
    _require(actor)
    e164 = _e164(phone)
    with transaction.atomic():
        deleted, _rows_by_model = DoNotCallEntry.objects.filter(
            phone=e164, source=DoNotCallSource.INTERNAL
        ).delete()
        if not deleted:
            raise NotFound(_("This number is not on the do-not-call list."), code="dnc_not_found")
        audit.record(
            action="contact_center.dnc_removed", object_type="contact_center.dnc", object_id=e164, before={}
        )


def _rpo_flag(value: str) -> bool | None:
    text = value.strip().lower()
    if text in _YES:
        return True
    if text in _NO:
        return False
    return None


def _rpo_date(value: str) -> date:
    text = value.strip()
    try:
        return date.fromisoformat(text)
    except ValueError:
        return datetime.strptime(text, "%d/%m/%Y").date()  # noqa: DTZ007 - a calendar date, no time


def rpo_import(
    *,
    actor: Actor,
    name: str,
    content: bytes,
    checked_on: date,
    mode: str = "all_or_none",
    at: datetime | None = None,
) -> RpoImportBatch:
    """Import an RPO result file: either one number per line (every number listed is registered) or
    CSV ``number,flag[,registration date]`` (flag 1/0, sì/no, iscritto/non iscritto; date as
    2026-01-31 or 31/01/2026). An optional first line naming the columns is skipped. Bad lines: as
    for contact lists (all-or-none raises with every line; good rows keeps the rest)."""
    _require(actor)
    at = at or clock.now()
    _check_upload(content, "csv", mode)
    if checked_on > at.astimezone(_ROME).date():
        raise ValidationFailed(
            _("The check date cannot be in the future."),
            code="invalid_date",
            fields={"checked_on": _("In the future.")},
        )
    errors: list[tuple[int, str]] = []
    entries: dict[str, tuple[bool, date | None]] = {}
    rows_total = 0
    for line, cells in _rows(content, "csv"):
        values = [cell.strip() for cell in cells]
        if not any(values):
            continue
        if line == 1 and any(ch.isalpha() for ch in values[0]) and not values[0].lower().startswith("tel:"):
            continue  # the header line
        rows_total += 1
        if rows_total > MAX_ROWS:
            raise ValidationFailed(
                _("The file has more than %(limit)d rows.") % {"limit": MAX_ROWS}, code="too_many_rows"
            )
        try:
            e164 = normalise_number(values[0].removeprefix("tel:")).e164
        except ValueError as error:
            errors.append((line, str(error)))
            continue
        registered: bool | None = True
        registered_on: date | None = None
        if len(values) > 1 and values[1]:
            registered = _rpo_flag(values[1])
            if registered is None:
                errors.append(
                    (line, _("'%(value)s' is neither registered nor not registered.") % {"value": values[1]})
                )
                continue
        if len(values) > 2 and values[2]:
            try:
                registered_on = _rpo_date(values[2])
            except ValueError:
                errors.append((line, _("'%(value)s' is not a date.") % {"value": values[2]}))
                continue
            if registered_on > checked_on:
                errors.append((line, _("The registration date is after the check date.")))
                continue
        if e164 in entries and entries[e164] != (registered, registered_on):
            errors.append((line, _("%(number)s is listed twice with different answers.") % {"number": e164}))
            continue
        entries[e164] = (bool(registered), registered_on)
    if errors and mode == "all_or_none":
        raise ValidationFailed(
            _("%(count)d rows cannot be imported; nothing was imported.") % {"count": len(errors)},
            code="import_rows_invalid",
            fields=_error_fields(errors),
        )
    if not entries and not errors:
        raise ValidationFailed(_("The file has no numbers."), code="empty_import")
    with transaction.atomic():
        batch = RpoImportBatch.objects.create(
            name=(name or "").strip()[:200] or "RPO",
            checked_on=checked_on,
            rows_total=rows_total,
            registered=sum(1 for registered, _on in entries.values() if registered),
            not_registered=sum(1 for registered, _on in entries.values() if not registered),
            errors=[[line, message] for line, message in errors[:MAX_REPORTED_ERRORS]],
            imported_by_id=actor.user_id or None,
            imported_at=at,
        )
        DoNotCallEntry.objects.bulk_create(
            [
                DoNotCallEntry(
                    phone=phone,
                    source=DoNotCallSource.RPO,
                    batch=batch,
                    registered=registered,
                    registered_on=registered_on,
                    created_at=at,
                )
                for phone, (registered, registered_on) in entries.items()
            ],
            batch_size=2_000,
        )
        audit.record(
            action="contact_center.rpo_imported",
            object_type="contact_center.rpo_batch",
            object_id=str(batch.public_id),
            after={
                "checked_on": checked_on,
                "registered": batch.registered,
                "not_registered": batch.not_registered,
            },
        )
    return batch
