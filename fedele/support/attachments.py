"""Files arriving on tickets (portal uploads, e-mail parts, API multipart): checked before anything is
written, then stored through Django storage under support/attachments/.

Checks: count and size limits, a refusal list of executables and scripts decided from the bytes
(whatever the sender declared) and from the name, and a safe filename. The content type stored is the
sniffed one (puremagic), not the declared one.
"""

from __future__ import annotations

import hashlib
import mimetypes
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import puremagic
from django.conf import settings
from django.core.files.base import ContentFile
from django.db.models.fields.files import FieldFile
from django.http import FileResponse
from django.utils.translation import gettext as _

from fedele.shared.errors import ValidationFailed

if TYPE_CHECKING:
    from fedele.support.models import Attachment, Ticket, TicketMessage

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_MAX_FILES = 20
MAX_FILENAME_LENGTH = 150

REFUSED_EXTENSIONS = frozenset(
    {
        "exe", "dll", "msi", "msp", "mst", "bat", "cmd", "com", "cpl", "scr", "pif", "js", "jse", "mjs",
        "vbs", "vbe", "wsf", "wsh", "wsc", "hta", "jar", "ps1", "psm1", "psd1", "sh", "bash", "zsh",
        "csh", "ksh", "app", "apk", "deb", "rpm", "dmg", "pkg", "reg", "lnk", "inf", "gadget", "msc",
        "scf", "url", "appref-ms", "application", "xbap", "iso", "img", "vhd", "vhdx", "elf", "bin",
        "run", "ps2", "sys", "drv", "ocx", "action", "workflow", "command", "py", "pyc", "pl", "rb",
        "php", "phtml", "asp", "aspx", "jsp", "cgi", "svgz",
    }
)  # fmt: skip
_EXECUTABLE_MAGIC = (
    b"MZ",  # Windows PE / DOS executables and DLLs
    b"\x7fELF",  # Linux/Unix executables
    b"\xfe\xed\xfa\xce",  # Mach-O 32-bit
    b"\xfe\xed\xfa\xcf",  # Mach-O 64-bit
    b"\xce\xfa\xed\xfe",
    b"\xcf\xfa\xed\xfe",
    b"\xca\xfe\xba\xbe",  # Mach-O universal binary / Java class
    b"#!",  # any script with an interpreter line
    b"\x4c\x00\x00\x00\x01\x14\x02\x00",  # Windows shortcut (.lnk)
)
_ACTIVE_MARKUP = re.compile(
    rb"<\s*script\b|javascript\s*:|vbscript\s*:|\bon[a-z]+\s*=|<\s*iframe\b|<\s*object\b|<\s*embed\b",
    re.IGNORECASE,
)
_MARKUP_START = re.compile(rb"^\s*(<\?xml|<!doctype\s+html|<html|<svg|<head|<body|<script)", re.IGNORECASE)
_FILENAME_FORBIDDEN = re.compile(r'[<>:"|?*\\/\x00-\x1f\x7f]')


@dataclass(frozen=True, slots=True)
class IncomingFile:
    filename: str
    content: bytes
    declared_type: str = ""
    content_id: str = ""


@dataclass(frozen=True, slots=True)
class CheckedFile:
    filename: str  # safe, normalised
    content: bytes
    content_type: str  # sniffed
    size: int
    sha256: str
    content_id: str = ""


def max_attachment_bytes() -> int:
    return int(getattr(settings, "FEDELE_SUPPORT_MAX_ATTACHMENT_BYTES", DEFAULT_MAX_BYTES))


def max_attachments() -> int:
    return int(getattr(settings, "FEDELE_SUPPORT_MAX_ATTACHMENTS", DEFAULT_MAX_FILES))


def safe_filename(name: str) -> str:
    """Unicode-normalised (NFC), no directories, no control or shell-special characters, at most 150
    characters with the extension kept, never empty or hidden (leading dot)."""
    normalised = unicodedata.normalize("NFC", name or "")
    base = re.split(r"[\\/]", normalised)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C")
    base = _FILENAME_FORBIDDEN.sub("_", base)
    base = re.sub(r"\s+", " ", base).strip().strip(".").strip()
    stem, dot, extension = base.rpartition(".")
    if not dot:
        stem, extension = base, ""
    extension = extension[:20]
    if not stem:
        stem = "attachment"
    suffix = f".{extension}" if extension else ""
    stem = stem[: MAX_FILENAME_LENGTH - len(suffix)].rstrip(" .") or "attachment"
    return f"{stem}{suffix}"


def _extension(filename: str) -> str:
    _stem, dot, extension = filename.rpartition(".")
    return extension.lower() if dot else ""


def _looks_like_text(content: bytes) -> bool:
    sample = content[:4096]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as error:
        # A multi-byte character cut at the sample's end is still text.
        return error.start >= len(sample) - 3
    return True


def _is_active_markup(content: bytes) -> bool:
    head = content[:1024]
    if not _MARKUP_START.search(head) and b"<svg" not in head.lower() and b"<html" not in head.lower():
        return False
    return bool(_ACTIVE_MARKUP.search(content[: 2 * 1024 * 1024]))


def sniff_content_type(content: bytes, filename: str) -> str:
    """What the bytes are. puremagic's best match with a MIME type, preferring the one whose
    extension matches the name (many formats share a header, e.g. docx/xlsx/zip)."""
    extension = _extension(filename)
    try:
        matches = puremagic.magic_string(content[:65536]) if content else []
    except (puremagic.PureError, ValueError):
        matches = []
    with_mime = [match for match in matches if match.mime_type]
    for match in with_mime:
        if match.extension.lstrip(".").lower() == extension:
            return str(match.mime_type)
    if with_mime:
        # A zip-based office file is reported as a zip first: trust the name when it agrees.
        guessed = mimetypes.guess_type(filename)[0] or ""
        if str(with_mime[0].mime_type) == "application/zip" and guessed.startswith(
            "application/vnd.openxmlformats"
        ):
            return guessed
        return str(with_mime[0].mime_type)
    if _looks_like_text(content):
        guessed = mimetypes.guess_type(filename)[0] or ""
        if guessed in {"text/csv", "text/calendar", "text/vcard", "text/x-vcard", "application/json"}:
            return guessed
        return "text/plain"
    return "application/octet-stream"


def _refusal_reason(content: bytes, filename: str, content_type: str) -> str | None:
    if _extension(filename) in REFUSED_EXTENSIONS:
        return "extension"
    if content.startswith(_EXECUTABLE_MAGIC):
        return "executable"
    if content_type in {
        "application/x-msdownload",
        "application/x-dosexec",
        "application/x-executable",
        "application/x-sharedlib",
        "application/java-archive",
        "application/x-msi",
        "application/x-ms-installer",
        "application/javascript",
        "text/javascript",
    }:
        return "executable"
    if _is_active_markup(content):
        return "script"
    return None


def check_files(files: Sequence[IncomingFile], *, max_bytes: int | None = None) -> list[CheckedFile]:
    """All the files or none: the first refused file raises ValidationFailed and nothing is stored."""
    limit_count = max_attachments()
    if len(files) > limit_count:
        raise ValidationFailed(
            _("At most %(count)d attachments are allowed.") % {"count": limit_count},
            code="too_many_attachments",
            fields={"attachments": _("Too many files.")},
        )
    limit_bytes = max_bytes if max_bytes is not None else max_attachment_bytes()
    checked: list[CheckedFile] = []
    for incoming in files:
        filename = safe_filename(incoming.filename)
        size = len(incoming.content)
        if size > limit_bytes:
            raise ValidationFailed(
                _("%(name)s is larger than the %(limit)s MB allowed.")
                % {"name": filename, "limit": f"{limit_bytes / (1024 * 1024):g}"},
                code="attachment_too_large",
                fields={"attachments": _("%(name)s is too large.") % {"name": filename}},
            )
        content_type = sniff_content_type(incoming.content, filename)
        if _refusal_reason(incoming.content, filename, content_type) is not None:
            raise ValidationFailed(
                _("%(name)s is a kind of file that cannot be accepted (programs and scripts).")
                % {"name": filename},
                code="attachment_type_refused",
                fields={"attachments": _("%(name)s is not accepted.") % {"name": filename}},
            )
        checked.append(
            CheckedFile(
                filename=filename,
                content=incoming.content,
                content_type=content_type,
                size=size,
                sha256=hashlib.sha256(incoming.content).hexdigest(),
                content_id=incoming.content_id.strip().strip("<>")[:255],
            )
        )
    return checked


def store_files(
    files: Sequence[CheckedFile],
    *,
    ticket: Ticket,
    message: TicketMessage | None,
    uploaded_by_id: int | None,
) -> list[Attachment]:
    """Write already-checked files to storage and their Attachment rows (caller's transaction)."""
    from fedele.shared import clock
    from fedele.support.models import Attachment

    now = clock.now()
    rows: list[Attachment] = []
    for checked in files:
        attachment = Attachment(
            ticket=ticket,
            message=message,
            filename=checked.filename,
            content_type=checked.content_type,
            size=checked.size,
            sha256=checked.sha256,
            content_id=checked.content_id,
            uploaded_by_id=uploaded_by_id,
            created_at=now,
        )
        attachment.file.save(checked.filename, ContentFile(checked.content), save=False)
        attachment.save()
        rows.append(attachment)
    return rows


class StoredFile(Protocol):
    """A stored upload (a ticket's or an article's attachment)."""

    file: FieldFile
    filename: str
    content_type: str


def download_response(stored: StoredFile) -> FileResponse:
    """A stored file streamed from storage (local or a private bucket) as a download, never rendered
    inline: an uploaded HTML or SVG file cannot run in our origin."""
    response = FileResponse(
        stored.file.open("rb"),
        as_attachment=True,
        filename=stored.filename,
        content_type=stored.content_type or "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    return response
