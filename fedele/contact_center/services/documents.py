"""Document-on-demand (the modern fax-on-demand): a caller asks in the IVR, or texts a keyword, and gets
a document — a copy of their latest invoice (through the billing facade), the contract terms, a manual —
by e-mail (attached), by SMS (a signed download link that expires) or by fax (through the fax port).

A request is one row keyed by an idempotency key (the IVR step, the inbound SMS): a retried request is
the same row and is sent once. Sending happens after the request commits; every attempt is logged with
its outcome (``DocumentSendLog``), a failed send is retried by the scheduler up to ``MAX_ATTEMPTS``.

No provider is called inside a transaction or under a row lock: an attempt is claimed and logged as
``pending`` in one short transaction that commits, the provider is called, and a second short
transaction settles the log row and the request (see ``document_send``).
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.core.files.uploadedfile import UploadedFile
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.billing import facade as billing_facade
from fedele.contact_center.ivr.fax import FaxSendFailed, fax_provider
from fedele.contact_center.models import (
    Document,
    DocumentChannel,
    DocumentKind,
    DocumentRequest,
    DocumentRequestSource,
    DocumentRequestStatus,
    DocumentSendLog,
    Interaction,
    IvrSession,
)
from fedele.contact_center.services.ivr import require_manager
from fedele.customers import facade as customers_facade
from fedele.shared import audit, clock, sms
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
LINK_SALT = "fedele.contact_center.document-link"
DEFAULT_LINK_SECONDS = 72 * 3600
MAX_FILE_BYTES = 20 * 1024 * 1024
_CODE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
_KEYWORD = re.compile(r"^[A-Z0-9]{2,20}$")


def link_seconds() -> int:
    return int(getattr(settings, "FEDELE_DOCUMENT_LINK_SECONDS", DEFAULT_LINK_SECONDS))


# Documents -------------------------------------------------------------------------------------------


def document_create(
    *,
    actor: Actor | None,
    code: str,
    title_it: str,
    title_en: str,
    kind: str = DocumentKind.FILE,
    upload: UploadedFile | None = None,
    sms_keyword: str = "",
    requires_customer: bool = False,
) -> Document:
    require_manager(actor)
    code = (code or "").strip()
    keyword = (sms_keyword or "").strip().upper()
    errors: dict[str, str] = {}
    if not _CODE.match(code):
        errors["code"] = _("Use 1-40 lower-case letters, digits and hyphens.")
    for field, value in (("title_it", title_it), ("title_en", title_en)):
        if not (value or "").strip() or len(value.strip()) > 120:
            errors[field] = _("Enter a title of at most 120 characters.")
    if kind not in DocumentKind.values:
        errors["kind"] = _("Unknown kind.")
    if kind == DocumentKind.FILE and upload is None:
        errors["file"] = _("Upload the document.")
    if upload is not None and (upload.size or 0) > MAX_FILE_BYTES:
        errors["file"] = _("At most 20 MB.")
    if keyword and not _KEYWORD.match(keyword):
        errors["sms_keyword"] = _("A keyword is 2-20 letters or digits.")
    if keyword and keyword in ("STOP", "ANNULLA", "CANCELLA", "START", "HELP", "INFO"):
        errors["sms_keyword"] = _("This keyword is reserved.")
    if errors:
        raise ValidationFailed(_("Check the highlighted fields."), fields=errors)
    with transaction.atomic():
        if Document.objects.filter(code=code).exists():
            raise ValidationFailed(_("Check the highlighted fields."), fields={"code": _("Already used.")})
        if keyword and Document.objects.filter(sms_keyword=keyword).exists():
            raise ValidationFailed(
                _("Check the highlighted fields."), fields={"sms_keyword": _("Already used.")}
            )
        document = Document(
            code=code,
            title_it=title_it.strip(),
            title_en=title_en.strip(),
            kind=kind,
            sms_keyword=keyword,
            requires_customer=requires_customer or kind == DocumentKind.INVOICE_COPY,
            content_type=(upload.content_type if upload is not None else "") or "application/pdf",
            created_at=clock.now(),
        )
        if upload is not None:
            document.file.save(upload.name or f"{code}.pdf", upload, save=False)
        document.save()
        audit.record(
            action="contact_center.document_created",
            object_type="document",
            object_id=str(document.public_id),
            after={"code": code, "kind": kind, "sms_keyword": keyword},
        )
    return document


# Requests --------------------------------------------------------------------------------------------


def document_request_create(
    *,
    document: Document,
    channel: str,
    destination: str,
    source: str,
    idempotency_key: str,
    customer_public_id: str = "",
    language: str = "it",
    interaction: Interaction | None = None,
) -> DocumentRequest:
    """Record the request and send it after commit. The same ``idempotency_key`` returns the existing
    request and sends nothing again. Bad input raises and writes nothing."""
    if channel not in DocumentChannel.values:
        raise ValidationFailed(_("Unknown channel."), fields={"channel": channel})
    if not document.active:
        raise NotFound(_("This document is not available."), code="document_not_found")
    if (document.requires_customer or document.kind == DocumentKind.INVOICE_COPY) and not customer_public_id:
        raise PermissionDenied(
            _("This document is sent only to identified customers."), code="document_needs_customer"
        )
    if not idempotency_key or len(idempotency_key) > 120:
        raise ValidationFailed(
            _("An idempotency key of 1-120 characters is required."), fields={"idempotency_key": "required"}
        )
    destination = _destination(channel, destination)
    existing = DocumentRequest.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            request = DocumentRequest.objects.create(
                document=document,
                customer_public_id=customer_public_id,
                channel=channel,
                destination=destination,
                language=language if language in ("it", "en") else "it",
                source=source,
                interaction=interaction,
                idempotency_key=idempotency_key,
                created_at=clock.now(),
            )
            audit.record(
                action="contact_center.document_requested",
                object_type="document_request",
                object_id=str(request.public_id),
                after={"document": document.code, "channel": channel, "source": source},
            )
            request_id = request.pk
            # robust: an unexpected provider error is logged (and the attempt settled as failed), not
            # raised into the IVR step or the inbound SMS that already committed.
            transaction.on_commit(lambda: document_send(request_id=request_id), robust=True)
    except IntegrityError:
        # A concurrent retry of the same request won the insert: it is that one.
        return DocumentRequest.objects.get(idempotency_key=idempotency_key)
    return request


def _destination(channel: str, destination: str) -> str:
    value = (destination or "").strip()
    if channel == DocumentChannel.EMAIL:
        if not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", value) or len(value) > 200:
            raise ValidationFailed(
                _("No valid e-mail address to send to."),
                code="document_no_email",
                fields={"destination": value},
            )
        return value
    try:
        return sms.e164(value, field="destination")
    except sms.InvalidPhoneNumber as error:
        raise ValidationFailed(
            _("No valid phone number to send to."), code="document_no_number", fields={"destination": value}
        ) from error


def document_request_from_ivr(
    *,
    interaction: Interaction,
    session: IvrSession,
    node_name: str,
    document_code: str,
    channel: str,
    fax_number: str = "",
) -> DocumentRequest | None:
    """A ``document`` node: send to the caller (identified by the call or by what they keyed in).
    None when it cannot be sent (unknown caller, no e-mail address, bad fax number): the flow goes on
    to the node's ``on_fail``.

    A customer's own document (an invoice copy, or one marked ``requires_customer``) goes only to the
    contact details on file: by e-mail to the customer's address, by SMS to the customer's phone, and
    by fax only when the call comes from the customer's phone on file. A caller who merely keyed in a
    fiscal code or customer code cannot have it sent to a number of their choosing."""
    document = Document.objects.filter(code=document_code, active=True).first()
    if document is None:
        return None
    customer_public_id = str(
        session.variables.get("customer_public_id") or interaction.customer_public_id or ""
    )
    personal = document.requires_customer or document.kind == DocumentKind.INVOICE_COPY
    customer = customers_facade.customer_summary(customer_public_id) if customer_public_id else None
    if channel == DocumentChannel.EMAIL:
        destination = customer.email if customer else ""
    elif channel == DocumentChannel.FAX:
        if personal and not _calls_from_phone_on_file(interaction, customer):
            logger.info(
                "IVR fax of %s refused for %s: the call does not come from the customer's phone on file",
                document.code,
                interaction.number,
            )
            return None
        destination = fax_number
    elif personal:
        destination = customer.phone if customer else ""
    else:
        destination = interaction.from_address
    try:
        with transaction.atomic():
            return document_request_create(
                document=document,
                channel=channel,
                destination=destination,
                source=DocumentRequestSource.IVR,
                idempotency_key=f"ivr:{interaction.public_id}:{node_name}:{document.code}",
                customer_public_id=customer_public_id,
                language=session.language,
                interaction=interaction,
            )
    except (ValidationFailed, PermissionDenied, NotFound):
        return None


def _calls_from_phone_on_file(
    interaction: Interaction, customer: customers_facade.CustomerSummary | None
) -> bool:
    if customer is None or not customer.phone or not interaction.from_address:
        return False
    try:
        return sms.e164(customer.phone, field="phone") == sms.e164(interaction.from_address, field="from")
    except sms.InvalidPhoneNumber:
        return False


def document_request_by_keyword(*, from_number: str, keyword: str, message_ref: str = "") -> DocumentRequest:
    """An inbound SMS whose first word is a document's keyword (FATTURA, MANUALE…): the document goes
    back to the sender as an SMS link. ``message_ref`` (the provider's message id) makes a redelivered
    SMS the same request. Raises NotFound for an unknown keyword (the messaging area then treats the
    text as a conversation) and PermissionDenied when the document needs an identified customer and
    the number is not one."""
    words = (keyword or "").strip().upper().split()
    word = words[0] if words else ""
    document = Document.objects.filter(sms_keyword=word, active=True).first() if word else None
    if document is None:
        raise NotFound(_("No document has this keyword."), code="document_keyword_unknown")
    number = sms.e164(from_number, field="from_number")
    customer = customers_facade.find_customer_by_phone(number)
    key = f"sms:{message_ref}" if message_ref else f"sms:{number}:{word}:{uuid.uuid4().hex}"
    with transaction.atomic():
        return document_request_create(
            document=document,
            channel=DocumentChannel.SMS_LINK,
            destination=number,
            source=DocumentRequestSource.SMS_KEYWORD,
            idempotency_key=key[:120],
            customer_public_id=str(customer.public_id) if customer else "",
            language=(customer.language if customer else "") or "it",
        )


# Sending ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DocumentFile:
    name: str
    content: bytes
    content_type: str


def document_file(request: DocumentRequest) -> DocumentFile | None:
    """The bytes to send (or download) for a request; None when there are none (no invoice yet)."""
    document = request.document
    if document.kind == DocumentKind.INVOICE_COPY:
        found = billing_facade.latest_invoice_pdf(request.customer_public_id, language=request.language)
        return DocumentFile(found[0], found[1], "application/pdf") if found else None
    if not document.file:
        return None
    with document.file.open("rb") as handle:
        content = handle.read()
    return DocumentFile(
        (document.file.name or document.code).rsplit("/", 1)[-1], content, document.content_type
    )


def document_title(document: Document, language: str) -> str:
    return document.title_en if language == "en" else document.title_it


def document_link_token(request: DocumentRequest) -> str:
    return signing.TimestampSigner(salt=LINK_SALT).sign(str(request.public_id))


def document_link_url(request: DocumentRequest) -> str:
    path = reverse("contact_center:document_download", args=[document_link_token(request)])
    return f"{str(settings.FEDELE_PUBLIC_URL).rstrip('/')}{path}"


def document_for_token(token: str) -> tuple[DocumentRequest, DocumentFile]:
    """What a download link serves. Raises NotFound for a forged, altered or expired link (alike, so
    a guesser learns nothing)."""
    try:
        public_id = signing.TimestampSigner(salt=LINK_SALT).unsign(token, max_age=link_seconds())
        request = DocumentRequest.objects.select_related("document").get(
            public_id=public_id, channel=DocumentChannel.SMS_LINK, status=DocumentRequestStatus.SENT
        )
    except (signing.BadSignature, DocumentRequest.DoesNotExist, ValueError) as error:
        raise NotFound(_("This link is not valid or has expired."), code="document_link_invalid") from error
    found = document_file(request)
    if found is None:
        raise NotFound(_("This link is not valid or has expired."), code="document_link_invalid")
    audit.record(
        action="contact_center.document_downloaded",
        object_type="document_request",
        object_id=str(request.public_id),
    )
    return request, found


def document_send(*, request_id: int) -> DocumentRequest:
    """Send one request now, in three steps so no row lock is held while a provider is called:

    1. claim (short transaction, row locked): count the attempt and write its log row as ``pending``,
       then commit. A request already sent, out of attempts, or with another attempt in flight (a
       ``pending`` log row younger than ``CLAIM_STALE_SECONDS``) is left alone: a retried job or a
       second worker sends nothing.
    2. deliver: call the e-mail / SMS / fax provider with no transaction open.
    3. settle (short transaction): the attempt's log row and the request become ``sent`` or ``failed``
       (with the provider's answer). The log row exists from step 1 on, so a provider failure, or a
       crash, never loses it.

    An attempt whose process died between 1 and 3 stays ``pending``; after ``CLAIM_STALE_SECONDS`` the
    next claim settles it as ``failed`` ("interrupted") and the request can be tried again."""
    claimed = _claim(request_id)
    if claimed is None:
        return DocumentRequest.objects.select_related("document").get(pk=request_id)
    request, log_id = claimed
    try:
        provider_ref = _deliver(request)
    except (OSError, sms.SmsSendFailed, FaxSendFailed, _NothingToSend, ValidationFailed) as error:
        detail = str(getattr(error, "message", None) or error)[:300]
        logger.warning("document request %s failed: %s", request.public_id, detail)
        return _settle(request_id, log_id, status=DocumentRequestStatus.FAILED, detail=detail)
    except Exception as error:  # an unexpected provider error must not leave the attempt pending
        logger.exception("document request %s failed unexpectedly", request.public_id)
        _settle(request_id, log_id, status=DocumentRequestStatus.FAILED, detail=type(error).__name__)
        raise
    return _settle(request_id, log_id, status=DocumentRequestStatus.SENT, detail=provider_ref)


CLAIM_STALE_SECONDS = 10 * 60
INTERRUPTED = "interrupted before the provider answered"


def _claim(request_id: int) -> tuple[DocumentRequest, int] | None:
    with transaction.atomic():
        request = DocumentRequest.objects.select_for_update().select_related("document").get(pk=request_id)
        if request.status == DocumentRequestStatus.SENT:
            return None
        now = clock.now()
        in_flight = DocumentSendLog.objects.filter(request=request, status=DocumentRequestStatus.PENDING)
        stale_before = now - timedelta(seconds=CLAIM_STALE_SECONDS)
        if in_flight.filter(created_at__gt=stale_before).exists():
            return None
        if in_flight.exists():
            in_flight.update(status=DocumentRequestStatus.FAILED, detail=INTERRUPTED)
            request.status = DocumentRequestStatus.FAILED
            request.last_error = INTERRUPTED
            request.save(update_fields=["status", "last_error"])
        if request.attempts >= MAX_ATTEMPTS:
            return None
        request.attempts += 1
        # In flight: neither "failed" (the retry job would pick it up) nor "sent".
        request.status = DocumentRequestStatus.PENDING
        request.save(update_fields=["attempts", "status"])
        log = DocumentSendLog.objects.create(
            request=request,
            attempt=request.attempts,
            status=DocumentRequestStatus.PENDING,
            detail="queued",
            created_at=now,
        )
    return request, log.pk


def _settle(request_id: int, log_id: int, *, status: str, detail: str) -> DocumentRequest:
    with transaction.atomic():
        request = DocumentRequest.objects.select_for_update().select_related("document").get(pk=request_id)
        updated = DocumentSendLog.objects.filter(pk=log_id, status=DocumentRequestStatus.PENDING).update(
            status=status, detail=detail[:300]
        )
        if not updated:
            # A later claim judged this attempt lost and settled it as interrupted; record what the
            # provider said after all. A late success still counts; a late failure changes nothing more.
            DocumentSendLog.objects.filter(pk=log_id).update(status=status, detail=detail[:300])
            if status != DocumentRequestStatus.SENT:
                return request
        request.status = status
        if status == DocumentRequestStatus.SENT:
            request.provider_ref = detail[:120]
            request.sent_at = clock.now()
            request.last_error = ""
        else:
            request.last_error = detail[:300]
        request.save(update_fields=["status", "provider_ref", "sent_at", "last_error"])
    return request


class _NothingToSend(Exception):
    pass


def _deliver(request: DocumentRequest) -> str:
    with translation.override(request.language):
        title = document_title(request.document, request.language)
        if request.channel == DocumentChannel.SMS_LINK:
            if request.document.kind == DocumentKind.FILE and not request.document.file:
                raise _NothingToSend(_("The document has no file."))
            if request.document.kind == DocumentKind.INVOICE_COPY and document_file(request) is None:
                raise _NothingToSend(_("There is no invoice to send."))
            hours = link_seconds() // 3600
            body = _("%(title)s: %(url)s (valid for %(hours)d hours)") % {
                "title": title,
                "url": document_link_url(request),
                "hours": hours,
            }
            sent = sms.send_sms(request.destination, body)
            return sent.provider_id or "sms"
        found = document_file(request)
        if found is None:
            raise _NothingToSend(_("There is no document to send."))
        if request.channel == DocumentChannel.EMAIL:
            message = EmailMessage(
                subject=_("Your document: %(title)s") % {"title": title},
                body=_("Hello,\n\nattached is the document you asked for: %(title)s.\n") % {"title": title},
                to=[request.destination],
                headers={"X-Fedele-Document-Request": str(request.public_id)},
            )
            message.attach(found.name, found.content, found.content_type)
            message.send(fail_silently=False)
            return f"email:{request.public_id}"
        return fax_provider().send(
            to_number=request.destination,
            file_name=found.name,
            content=found.content,
            content_type=found.content_type,
            reference=f"doc-{request.public_id}",
        )


def document_requests_retry_failed(*, limit: int = 100) -> int:
    """The scheduler's job: try failed requests again (each at most ``MAX_ATTEMPTS`` times), and the
    ones still pending ``CLAIM_STALE_SECONDS`` after they were made (the process died before or while
    sending: ``document_send`` settles a lost attempt as interrupted first). Returns how many it tried."""
    stale_before = clock.now() - timedelta(seconds=CLAIM_STALE_SECONDS)
    ids = list(
        DocumentRequest.objects.filter(
            Q(status=DocumentRequestStatus.FAILED, attempts__lt=MAX_ATTEMPTS)
            | Q(status=DocumentRequestStatus.PENDING, created_at__lte=stale_before)
        )
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    for request_id in ids:
        document_send(request_id=request_id)
    return len(ids)
