"""Customer import from CSV and XLSX: a preview that checks every row, then a commit the user chooses.

The preview stores each data row with its spreadsheet line number (the header is line 1) and its
field errors. The commit validates again (the data may have changed since) and creates the customers
through customer_create, so imported customers get the same checks, numbers, audit rows and events as
those created by hand, all in one transaction.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction

from fedele.accounts.facade import Actor
from fedele.customers.contracts import CustomerKind, CustomerStatus
from fedele.customers.models import Customer, CustomerImport
from fedele.customers.selectors import customer_import_queryset_for
from fedele.customers.services.customers import (
    DEFAULTS,
    EDITABLE_FIELDS,
    clean_customer_data,
    customer_create,
)
from fedele.customers.services.guards import require
from fedele.shared import audit, clock
from fedele.shared.errors import (
    ApplicationError,
    Conflict,
    NotFound,
    PayloadTooLarge,
    ValidationFailed,
)

MAX_ROWS = 20_000
MODES = (CustomerImport.Mode.ALL_OR_NOTHING.value, CustomerImport.Mode.VALID_ROWS.value)
XLSX_MAGIC = b"PK\x03\x04"

# Normalised header (lower case, no accents, single spaces) -> customer field.
HEADER_ALIASES: dict[str, str] = {
    "tipo": "kind",
    "tipo cliente": "kind",
    "kind": "kind",
    "type": "kind",
    "nome": "first_name",
    "first name": "first_name",
    "firstname": "first_name",
    "given name": "first_name",
    "cognome": "last_name",
    "last name": "last_name",
    "lastname": "last_name",
    "surname": "last_name",
    "family name": "last_name",
    "ragione sociale": "company_name",
    "denominazione": "company_name",
    "azienda": "company_name",
    "company name": "company_name",
    "company": "company_name",
    "codice fiscale": "fiscal_code",
    "cf": "fiscal_code",
    "c f": "fiscal_code",
    "fiscal code": "fiscal_code",
    "tax code": "fiscal_code",
    "partita iva": "vat_number",
    "p iva": "vat_number",
    "piva": "vat_number",
    "vat number": "vat_number",
    "vat": "vat_number",
    "email": "email",
    "e mail": "email",
    "posta elettronica": "email",
    "pec": "pec",
    "telefono": "phone",
    "tel": "phone",
    "cellulare": "phone",
    "phone": "phone",
    "telephone": "phone",
    "segmento": "segment",
    "segment": "segment",
    "indirizzo": "street",
    "via": "street",
    "street": "street",
    "address": "street",
    "cap": "postal_code",
    "postal code": "postal_code",
    "postcode": "postal_code",
    "zip": "postal_code",
    "zip code": "postal_code",
    "citta": "city",
    "comune": "city",
    "city": "city",
    "town": "city",
    "provincia": "province",
    "prov": "province",
    "province": "province",
    "nazione": "country",
    "paese": "country",
    "country": "country",
    "lingua": "language",
    "language": "language",
    "codice sdi": "sdi_code",
    "codice destinatario": "sdi_code",
    "sdi": "sdi_code",
    "sdi code": "sdi_code",
    "data di nascita": "birth_date",
    "birth date": "birth_date",
    "date of birth": "birth_date",
    "note": "notes",
    "notes": "notes",
}
KIND_VALUES = {
    "persona": "person",
    "persona fisica": "person",
    "privato": "person",
    "person": "person",
    "individual": "person",
    "azienda": "company",
    "societa": "company",
    "impresa": "company",
    "persona giuridica": "company",
    "company": "company",
    "business": "company",
}
SEGMENT_VALUES = {
    "consumer": "consumer",
    "consumatore": "consumer",
    "privato": "consumer",
    "small business": "small_business",
    "piccola impresa": "small_business",
    "pmi": "small_business",
    "enterprise": "enterprise",
    "grande impresa": "enterprise",
    "grande azienda": "enterprise",
    "public administration": "public_administration",
    "pubblica amministrazione": "public_administration",
    "pa": "public_administration",
}
LANGUAGE_VALUES = {
    "it": "it",
    "italiano": "it",
    "italian": "it",
    "en": "en",
    "inglese": "en",
    "english": "en",
}
COUNTRY_VALUES = {"italia": "IT", "italy": "IT"}
# Spreadsheets store these as numbers and drop their leading zeros; put them back.
NUMERIC_CODE_WIDTHS = {"postal_code": 5, "vat_number": 11, "fiscal_code": 11}
_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y")


def normalise_header(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", str(text or ""))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return " ".join(re.split(r"[\s_\-./]+", plain)).strip()


def _plain(text: str) -> str:
    return normalise_header(text)


def _column_letter(index: int) -> str:
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(65 + remainder) + letters
    return letters


# --- reading files ----------------------------------------------------------------------------------


def _cell_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _read_csv(content: bytes) -> Iterator[list[Any]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValidationFailed(
            "The file is not UTF-8 text. Save it as 'CSV UTF-8' and upload it again.",
            code="invalid_encoding",
            fields={"file": "Not UTF-8 text."},
        ) from error
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    yield from csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)


def _read_xlsx(content: bytes) -> Iterator[list[Any]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise ValidationFailed(
            "The spreadsheet cannot be read. Save it as .xlsx and upload it again.",
            code="invalid_spreadsheet",
            fields={"file": "Not a readable .xlsx file."},
        ) from error
    try:
        if not workbook.worksheets:
            return
        sheet = workbook.worksheets[0]
        for row in sheet.iter_rows(values_only=True):
            yield list(row)
    finally:
        workbook.close()


def _is_xlsx(filename: str, content: bytes) -> bool:
    return filename.lower().endswith((".xlsx", ".xlsm")) or content.startswith(XLSX_MAGIC)


@dataclass(frozen=True, slots=True)
class ParsedFile:
    columns: dict[int, str]  # column index -> field
    rows: list[tuple[int, dict[str, Any]]]  # (line number, field -> raw cell value)


def parse_file(filename: str, content: bytes) -> ParsedFile:
    """Read the header and the data rows; refuse files whose columns cannot be understood."""
    if len(content) > settings.FEDELE_MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(
            f"The file is too large (limit {settings.FEDELE_MAX_UPLOAD_BYTES} bytes).",
            code="file_too_large",
            fields={"file": "Too large."},
        )
    if not content.strip(b"\xef\xbb\xbf \t\r\n"):
        raise ValidationFailed("The file is empty.", code="empty_file", fields={"file": "The file is empty."})
    reader = _read_xlsx(content) if _is_xlsx(filename, content) else _read_csv(content)
    header = next(reader, None)
    if header is None or not any(_cell_text(cell) for cell in header):
        raise ValidationFailed(
            "The first line must hold the column headers (e.g. nome, cognome, email).",
            code="missing_header",
            fields={"file": "No header line."},
        )
    columns: dict[int, str] = {}
    problems: list[str] = []
    seen: dict[str, str] = {}
    for index, cell in enumerate(header):
        title = _cell_text(cell)
        if not title:
            continue
        field = HEADER_ALIASES.get(normalise_header(title))
        if field is None:
            problems.append(f"Unknown column '{title}' (column {_column_letter(index)}).")
        elif field in seen:
            problems.append(f"Columns '{seen[field]}' and '{title}' both mean {field}.")
        else:
            seen[field] = title
            columns[index] = field
    if problems:
        raise ValidationFailed(
            "Some column headers are not known; rename or remove them and upload the file again.",
            code="unknown_columns",
            fields={"columns": problems},
        )
    rows: list[tuple[int, dict[str, Any]]] = []
    for line, cells in enumerate(reader, start=2):
        if not any(_cell_text(cell) for cell in cells):
            continue
        if len(rows) >= MAX_ROWS:
            raise ValidationFailed(
                f"The file has more than {MAX_ROWS} rows; split it into smaller files.",
                code="too_many_rows",
                fields={"file": f"At most {MAX_ROWS} rows."},
            )
        values = {field: cells[index] if index < len(cells) else None for index, field in columns.items()}
        rows.append((line, values))
    if not rows:
        raise ValidationFailed(
            "The file has a header but no customer rows.", code="no_rows", fields={"file": "No rows."}
        )
    return ParsedFile(columns=columns, rows=rows)


# --- one row ------------------------------------------------------------------------------------------


def row_values(raw: dict[str, Any]) -> dict[str, str]:
    """Cell values as text, with spreadsheet numbers turned back into codes."""
    values: dict[str, str] = {}
    for field, cell in raw.items():
        text = _cell_text(cell)
        width = NUMERIC_CODE_WIDTHS.get(field)
        if width and isinstance(cell, (int, float)) and not isinstance(cell, bool) and text.isdigit():
            text = text.zfill(width)
        values[field] = text
    return values


def _parse_date(text: str) -> date | str:
    for pattern in _DATE_FORMATS:
        try:
            return datetime.strptime(text, pattern).date()  # noqa: DTZ007  (a calendar date, no time)
        except ValueError:
            continue
    return text


def row_data(values: dict[str, str]) -> dict[str, Any]:
    """Text values -> the data customer_create takes (codes for kind, segment, language, country)."""
    data: dict[str, Any] = dict(DEFAULTS)
    for field, text in values.items():
        if field not in EDITABLE_FIELDS or text == "":
            continue
        if field == "kind":
            data[field] = KIND_VALUES.get(_plain(text), text)
        elif field == "segment":
            data[field] = SEGMENT_VALUES.get(_plain(text), _plain(text).replace(" ", "_"))
        elif field == "language":
            data[field] = LANGUAGE_VALUES.get(_plain(text), text)
        elif field == "country":
            data[field] = COUNTRY_VALUES.get(_plain(text), text)
        elif field == "birth_date":
            data[field] = _parse_date(text)
        else:
            data[field] = text
    if not values.get("kind"):
        has_person_name = bool(values.get("first_name") or values.get("last_name"))
        if values.get("company_name") and not has_person_name:
            data["kind"] = CustomerKind.COMPANY.value
    return data


def validate_row(values: dict[str, str]) -> tuple[dict[str, Any] | None, dict[str, list[str]]]:
    """(cleaned data, {}) or (None, field errors), with the same rules as customer_create."""
    try:
        return clean_customer_data(row_data(values)), {}
    except ValidationFailed as error:
        return None, error.fields


def _emails_in_use(emails: Iterable[str]) -> set[str]:
    wanted = sorted({e for e in emails if e})
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(
            e.lower()
            for e in Customer.objects.filter(status=CustomerStatus.ACTIVE, email__in=chunk).values_list(
                "email", flat=True
            )
        )
    return found


def check_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Validate every row again: fields, e-mails repeated in the file, e-mails of existing customers."""
    results: list[dict[str, Any]] = []
    cleaned_by_line: dict[int, dict[str, Any]] = {}
    for row in rows:
        cleaned, errors = validate_row(row["values"])
        if cleaned is not None:
            cleaned_by_line[row["line"]] = cleaned
        results.append({"line": row["line"], "values": row["values"], "errors": errors})
    first_line_of: dict[str, int] = {}
    for result in results:
        cleaned = cleaned_by_line.get(result["line"])
        email = cleaned["email"] if cleaned else ""
        if not email:
            continue
        if email in first_line_of:
            message = f"The e-mail address {email} is also on line {first_line_of[email]}."
            result["errors"].setdefault("email", []).append(message)
        else:
            first_line_of[email] = result["line"]
    in_use = _emails_in_use(first_line_of)
    for result in results:
        cleaned = cleaned_by_line.get(result["line"])
        if cleaned and cleaned["email"] in in_use:
            message = f"The e-mail address {cleaned['email']} is already used by another customer."
            result["errors"].setdefault("email", []).append(message)
    for result in results:
        result["valid"] = not result["errors"]
    return results


# --- services -----------------------------------------------------------------------------------------


def customer_import_preview(*, actor: Actor, filename: str, content: bytes) -> CustomerImport:
    """Read and check a file; nothing is created until customer_import_commit."""
    require(actor, "customers.import_customers")
    filename = (filename or "").strip()[:255] or "import"
    parsed = parse_file(filename, content)
    rows = check_rows([{"line": line, "values": row_values(raw)} for line, raw in parsed.rows])
    valid = sum(1 for row in rows if row["valid"])
    with transaction.atomic():
        customer_import = CustomerImport.objects.create(
            created_by_id=actor.user_id,
            filename=filename,
            total_rows=len(rows),
            valid_rows=valid,
            rows=rows,
            created_at=clock.now(),
        )
        audit.record(
            action="customer_import.previewed",
            object_type="customer_import",
            object_id=str(customer_import.public_id),
            after={
                "filename": filename,
                "columns": sorted(parsed.columns.values()),
                "total_rows": len(rows),
                "valid_rows": valid,
            },
        )
    return customer_import


def _bad_lines_error(bad: list[dict[str, Any]]) -> ValidationFailed:
    fields: dict[str, list[str]] = {}
    for row in bad:
        for field, messages in row["errors"].items():
            fields[f"line_{row['line']}.{field}"] = list(messages)
    lines = ", ".join(str(row["line"]) for row in bad)
    count = len(bad)
    noun = "row is" if count == 1 else "rows are"
    return ValidationFailed(
        f"{count} {noun} not valid (line {lines}); nothing was imported.",
        code="invalid_rows",
        fields=fields,
    )


def customer_import_commit(*, actor: Actor, import_public_id: str, mode: str) -> CustomerImport:
    """Create the customers of a previewed import: every row or none, or only the valid rows."""
    require(actor, "customers.import_customers")
    if mode not in MODES:
        raise ValidationFailed("Unknown import mode.", fields={"mode": f"Choose one of: {', '.join(MODES)}."})
    with transaction.atomic():
        customer_import = (
            customer_import_queryset_for(actor).select_for_update().filter(public_id=import_public_id).first()
        )
        if customer_import is None:
            raise NotFound("Import not found.")
        if customer_import.status != CustomerImport.Status.PREVIEWED:
            raise Conflict(
                f"This import is already {customer_import.status}; upload the file again to import it anew.",
                code="import_already_committed",
            )
        rows = check_rows(customer_import.rows)
        bad = [row for row in rows if not row["valid"]]
        if bad and mode == CustomerImport.Mode.ALL_OR_NOTHING:
            raise _bad_lines_error(bad)
        if len(bad) == len(rows):
            raise ValidationFailed("No row is valid; there is nothing to import.", code="nothing_to_import")
        created = 0
        for row in rows:
            if not row["valid"]:
                continue
            cleaned, _errors = validate_row(row["values"])
            assert cleaned is not None
            try:
                customer = customer_create(
                    actor=actor, data={name: cleaned[name] for name in EDITABLE_FIELDS}, source="import"
                )
            except ApplicationError as failure:
                if mode == CustomerImport.Mode.ALL_OR_NOTHING:
                    raise ValidationFailed(
                        f"Line {row['line']}: {failure.message} Nothing was imported.",
                        code="invalid_rows",
                        fields={f"line_{row['line']}.{k}": v for k, v in failure.fields.items()},
                    ) from failure
                row["errors"] = failure.fields or {"__all__": [failure.message]}
                row["valid"] = False
                continue
            row["customer_id"] = str(customer.public_id)
            row["customer_number"] = customer.number
            created += 1
        customer_import.rows = rows
        customer_import.valid_rows = sum(1 for row in rows if row["valid"])
        customer_import.status = CustomerImport.Status.COMMITTED
        customer_import.committed_at = clock.now()
        customer_import.created_count = created
        customer_import.save(update_fields=["rows", "valid_rows", "status", "committed_at", "created_count"])
        audit.record(
            action="customer_import.committed",
            object_type="customer_import",
            object_id=str(customer_import.public_id),
            before={"status": CustomerImport.Status.PREVIEWED.value},
            after={
                "status": customer_import.status,
                "mode": mode,
                "created_count": created,
                "skipped_lines": [row["line"] for row in rows if not row["valid"]],
            },
        )
    return customer_import


def customer_import_purge_stale(*, older_than: timedelta = timedelta(days=7)) -> int:
    """Previews never committed keep personal data in their rows: drop them after a week."""
    cutoff = clock.now() - older_than
    deleted, _ = CustomerImport.objects.filter(
        status=CustomerImport.Status.PREVIEWED, created_at__lt=cutoff
    ).delete()
    return deleted
