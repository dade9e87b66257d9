"""E-mailing issued invoices and credit notes with their PDF, once, in the customer's language.

Sending is claimed first (``sent_at`` set by a conditional UPDATE), so two workers delivering the
same invoice send it once; if the mail backend fails the claim is released for the next attempt.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.conf import settings
from django.core.mail import EmailMessage
from django.template.loader import render_to_string
from django.utils import translation

from fedele.billing.contracts import InvoiceStatus
from fedele.billing.models import Invoice
from fedele.shared import audit, clock

logger = logging.getLogger(__name__)

DELIVERABLE = (InvoiceStatus.FINALISED, InvoiceStatus.PAID)


def recipient_for(invoice: Invoice) -> str:
    return invoice.account.billing_email or str(invoice.customer_snapshot.get("email") or "")


def language_for(invoice: Invoice) -> str:
    language = str(invoice.customer_snapshot.get("language") or "it")
    return language if language in ("it", "en") else "it"


def invoice_send(*, invoice_id: int, force: bool = False) -> bool:
    """E-mail the PDF; True when sent now, False when already sent, not issued or no address."""
    invoice = Invoice.objects.select_related("account").filter(pk=invoice_id).first()
    if invoice is None or invoice.status not in DELIVERABLE:
        return False
    recipient = recipient_for(invoice)
    if not recipient:
        return False
    claimed_at = clock.now()
    claim = Invoice.objects.filter(pk=invoice_id)
    if not force:
        claim = claim.filter(sent_at__isnull=True)
    if not claim.update(sent_at=claimed_at):
        return False
    try:
        message = _message(invoice, recipient)
        message.send(fail_silently=False)
    except Exception:
        Invoice.objects.filter(pk=invoice_id, sent_at=claimed_at).update(sent_at=None)
        raise
    audit.record(
        action="billing.invoice_sent",
        object_type="billing.invoice",
        object_id=str(invoice.public_id),
        after={"to": recipient, "sent_at": claimed_at},
    )
    return True


def _message(invoice: Invoice, recipient: str) -> EmailMessage:
    from fedele.billing.documents.pdf import render_invoice_pdf

    language = language_for(invoice)
    with translation.override(language):
        context = {
            "invoice": invoice,
            "customer_name": invoice.customer_snapshot.get("name", ""),
            "seller": seller_name(),
            "is_credit_note": invoice.kind == "credit_note",
        }
        subject = render_to_string("billing/emails/invoice_subject.txt", context).strip()
        body = render_to_string("billing/emails/invoice_body.txt", context)
    message = EmailMessage(
        subject=" ".join(subject.split()),
        body=body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[recipient],
    )
    message.attach(f"{invoice.number}.pdf", render_invoice_pdf(invoice, language), "application/pdf")
    return message


def seller_name() -> str:
    from fedele.billing.documents import seller

    return seller()["name"]


def invoice_send_later(invoice_id: int) -> None:
    """Queue the e-mail (after commit); a broker outage leaves it to the periodic sweep."""
    from fedele.billing.tasks import deliver_invoices

    try:
        deliver_invoices.delay([invoice_id])
    except Exception:
        logger.exception("Could not queue delivery of invoice %s; the sweep will send it", invoice_id)


def deliver_many(invoice_ids: Iterable[int]) -> int:
    sent = 0
    for invoice_id in invoice_ids:
        try:
            sent += invoice_send(invoice_id=invoice_id)
        except Exception:
            logger.exception("Delivery of invoice %s failed; it will be retried", invoice_id)
    return sent


def deliver_pending(limit: int = 500) -> int:
    """The sweep: issued invoices not sent yet (e.g. the broker was down after a billing run)."""
    ids = list(
        Invoice.objects.filter(status__in=DELIVERABLE, sent_at__isnull=True, finalised_at__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)[:limit]
    )
    return deliver_many(ids)
