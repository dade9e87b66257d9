"""Document-on-demand: requested in the IVR or by SMS keyword, sent by e-mail, SMS link or fax, every
attempt logged, retries idempotent, links signed and expiring, refusals change nothing."""

from __future__ import annotations

import json
from datetime import date, timedelta
from decimal import Decimal

import httpx
import pytest
import time_machine
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile

from fedele.billing.tests.factories import BillingAccountFactory, InvoiceFactory
from fedele.contact_center.ivr.engine import ivr_continue, ivr_start
from fedele.contact_center.ivr.fax import FaxSendFailed, HttpFaxProvider
from fedele.contact_center.ivr.steps import StepKind
from fedele.contact_center.models import (
    Document,
    DocumentRequest,
    DocumentSendLog,
    InteractionEvent,
)
from fedele.contact_center.services.documents import (
    document_create,
    document_for_token,
    document_link_token,
    document_request_by_keyword,
    document_requests_retry_failed,
    document_send,
)
from fedele.contact_center.tests.ivr_support import incoming_call, make_queues, published_flow
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared import sms
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db

PDF = b"%PDF-1.4\n% manual\n"
FISCAL_CODE = "RSSMRA85T10A562S"
FISCAL_KEYS = "737474617321" + "85" + "81" + "10" + "21" + "562" + "74"


@pytest.fixture(autouse=True)
def _settings(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FEDELE_FAX_SPOOL_DIR = str(tmp_path / "fax")
    settings.FEDELE_PUBLIC_URL = "https://cc.example.it"
    settings.LANGUAGE_CODE = "en"
    sms.outbox.clear()


def _manual(keyword: str = "MANUALE") -> Document:
    return document_create(
        actor=None,
        code="manual",
        title_it="Manuale d'uso",
        title_en="User manual",
        upload=SimpleUploadedFile("manuale.pdf", PDF, content_type="application/pdf"),
        sms_keyword=keyword,
    )


def _invoice_copy() -> Document:
    return document_create(
        actor=None, code="invoice", title_it="Copia fattura", title_en="Invoice copy", kind="invoice_copy"
    )


def _document_flow(channel: str = "email") -> dict:
    return {
        "languages": ["it"],
        "start": "fiscal",
        "nodes": {
            "fiscal": {
                "type": "collect",
                "variable": "fiscal_code",
                "prompt": {"it": "Digita il codice fiscale."},
                "min_length": 16,
                "max_length": 25,
                "check": "codice_fiscale",
                "retries": 0,
                "next": "send",
                "on_fail": "sorry",
            },
            "send": {
                "type": "document",
                "document": "invoice",
                "channel": channel,
                "next": "done",
                "on_fail": "sorry",
            },
            "done": {"type": "hangup", "prompt": {"it": "Documento inviato."}},
            "sorry": {"type": "hangup", "prompt": {"it": "Non possiamo inviare il documento."}},
        },
    }


def _billed_customer(phone: str = ""):
    customer = CustomerFactory(fiscal_code=FISCAL_CODE, email="mario@example.it", phone=phone)
    account = BillingAccountFactory(customer=customer)
    InvoiceFactory(
        account=account, number="INV-2026-000007", total=Decimal("61.00"), issue_date=date(2026, 2, 1)
    )
    return customer


def test_ivr_collects_the_fiscal_code_and_emails_the_latest_invoice(django_capture_on_commit_callbacks):
    make_queues()
    _invoice_copy()
    customer = _billed_customer()
    flow = published_flow(_document_flow(), code="documents-line")
    call = incoming_call("+393330000000")
    ivr_start(interaction=call, flow_code=flow.code)
    with django_capture_on_commit_callbacks(execute=True):
        steps = ivr_continue(interaction=call, digits=FISCAL_KEYS, timed_out=False)
    assert [(step.kind, step.text) for step in steps] == [
        (StepKind.SAY, "Documento inviato."),
        (StepKind.HANGUP, ""),
    ]
    request = DocumentRequest.objects.get()
    assert (request.channel, request.destination, request.status, request.attempts, request.source) == (
        "email",
        "mario@example.it",
        "sent",
        1,
        "ivr",
    )
    assert request.customer_public_id == str(customer.public_id)
    assert request.interaction == call
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["mario@example.it"]
    assert message.subject == "Il tuo documento: Copia fattura"
    (name, content, content_type) = message.attachments[0]
    assert (name, content_type) == ("INV-2026-000007.pdf", "application/pdf")
    assert content[:5] == b"%PDF-"
    assert list(DocumentSendLog.objects.values_list("attempt", "status")) == [(1, "sent")]
    assert InteractionEvent.objects.filter(interaction=call, kind="ivr.document").get().data == {
        "node": "send",
        "document": "invoice",
        "sent": True,
    }
    # Sending the same request again (a retried job) sends nothing more.
    document_send(request_id=request.pk)
    assert len(mail.outbox) == 1
    assert DocumentSendLog.objects.count() == 1


def test_ivr_invoice_copy_for_an_unknown_caller_goes_to_on_fail_and_sends_nothing():
    make_queues()
    _invoice_copy()
    flow = published_flow(_document_flow(), code="documents-line")
    call = incoming_call("+393330000000")
    ivr_start(interaction=call, flow_code=flow.code)
    # A valid fiscal code nobody has: the check passes, but no customer → the document node's on_fail.
    # BNCGNN80A01H501T keyed: B=22 N=62 C=23 G=41 N=62 N=62 8 0 A=21 0 1 H=42 5 0 1 T=81
    steps = ivr_continue(
        interaction=call, digits="226223416262" + "80" + "21" + "01" + "42" + "501" + "81", timed_out=False
    )
    assert [step.text for step in steps] == ["Non possiamo inviare il documento.", ""]
    assert not DocumentRequest.objects.exists()
    assert mail.outbox == []


def _fax_flow() -> dict:
    definition = _document_flow("fax")
    definition["nodes"]["send"]["fax_variable"] = "fax_number"
    definition["nodes"]["fiscal"]["next"] = "fax"
    definition["nodes"]["fax"] = {
        "type": "collect",
        "variable": "fax_number",
        "prompt": {"it": "Digita il numero di fax."},
        "min_length": 6,
        "max_length": 15,
        "next": "send",
    }
    return definition


def test_ivr_fax_goes_to_the_spool_directory(settings, django_capture_on_commit_callbacks, tmp_path):
    make_queues()
    _invoice_copy()
    # The invoice is the customer's own: by fax only when the call comes from their phone on file.
    _billed_customer(phone="+393330000000")
    flow = published_flow(_fax_flow(), code="fax-line")
    call = incoming_call("+393330000000")
    ivr_start(interaction=call, flow_code=flow.code)
    ivr_continue(interaction=call, digits=FISCAL_KEYS, timed_out=False)
    with django_capture_on_commit_callbacks(execute=True):
        ivr_continue(interaction=call, digits="0612345678#", timed_out=False)
    request = DocumentRequest.objects.get()
    assert (request.channel, request.destination, request.status) == ("fax", "+390612345678", "sent")
    spool = tmp_path / "fax"
    reference = f"doc-{request.public_id}"
    assert request.provider_ref == reference
    assert (spool / f"{reference}.pdf").read_bytes()[:5] == b"%PDF-"
    assert json.loads((spool / f"{reference}.json").read_text()) == {
        "to": "+390612345678",
        "file_name": "INV-2026-000007.pdf",
        "content_type": "application/pdf",
    }
    assert sorted(path.name for path in spool.iterdir()) == [f"{reference}.json", f"{reference}.pdf"]


def test_ivr_invoice_by_fax_from_a_number_not_on_file_goes_to_on_fail_and_sends_nothing(
    django_capture_on_commit_callbacks, tmp_path
):
    """Keying in a (guessable) fiscal code is not enough to fax a customer's invoice to any number."""
    make_queues()
    _invoice_copy()
    _billed_customer(phone="+393471112233")
    flow = published_flow(_fax_flow(), code="fax-line")
    call = incoming_call("+393330000000")
    ivr_start(interaction=call, flow_code=flow.code)
    ivr_continue(interaction=call, digits=FISCAL_KEYS, timed_out=False)
    with django_capture_on_commit_callbacks(execute=True):
        steps = ivr_continue(interaction=call, digits="0612345678#", timed_out=False)
    assert [step.text for step in steps] == ["Non possiamo inviare il documento.", ""]
    assert not DocumentRequest.objects.exists()
    assert not DocumentSendLog.objects.exists()
    assert not (tmp_path / "fax").exists() or list((tmp_path / "fax").iterdir()) == []


def test_ivr_invoice_by_sms_goes_to_the_phone_on_file_not_the_callers_number(
    django_capture_on_commit_callbacks,
):
    make_queues()
    _invoice_copy()
    _billed_customer(phone="+393471112233")
    flow = published_flow(_document_flow("sms_link"), code="sms-line")
    call = incoming_call("+393330000000")
    ivr_start(interaction=call, flow_code=flow.code)
    with django_capture_on_commit_callbacks(execute=True):
        ivr_continue(interaction=call, digits=FISCAL_KEYS, timed_out=False)
    request = DocumentRequest.objects.get()
    assert (request.channel, request.destination) == ("sms_link", "+393471112233")


def test_ivr_invoice_by_sms_without_a_phone_on_file_goes_to_on_fail():
    make_queues()
    _invoice_copy()
    _billed_customer()
    flow = published_flow(_document_flow("sms_link"), code="sms-line")
    call = incoming_call("+393330000000")
    ivr_start(interaction=call, flow_code=flow.code)
    steps = ivr_continue(interaction=call, digits=FISCAL_KEYS, timed_out=False)
    assert [step.text for step in steps] == ["Non possiamo inviare il documento.", ""]
    assert not DocumentRequest.objects.exists()


@time_machine.travel("2026-03-10 10:00:00+00:00", tick=False)
def test_sms_keyword_sends_a_signed_link_once_per_message(django_capture_on_commit_callbacks):
    _manual()
    with django_capture_on_commit_callbacks(execute=True):
        request = document_request_by_keyword(
            from_number="333 123 4567", keyword=" manuale please ", message_ref="SM1"
        )
    with django_capture_on_commit_callbacks(execute=True):
        again = document_request_by_keyword(from_number="+393331234567", keyword="MANUALE", message_ref="SM1")
    assert again.pk == request.pk
    request.refresh_from_db()
    assert (request.channel, request.destination, request.status, request.source) == (
        "sms_link",
        "+393331234567",
        "sent",
        "sms_keyword",
    )
    assert len(sms.outbox) == 1
    token = document_link_token(request)
    url = f"https://cc.example.it/contact-center/documents/d/{token}/"
    assert sms.outbox[0].to == "+393331234567"
    assert sms.outbox[0].body == f"Manuale d'uso: {url} (valido per 72 ore)"
    found_request, found = document_for_token(token)
    assert (found_request, found.content, found.name) == (request, PDF, found.name)
    assert found.name.startswith("manuale") and found.name.endswith(".pdf")


def test_the_download_link_expires_and_forged_links_are_refused(client, django_capture_on_commit_callbacks):
    _manual()
    with time_machine.travel("2026-03-10 10:00:00+00:00", tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            request = document_request_by_keyword(from_number="+393331234567", keyword="MANUALE")
        token = document_link_token(request)
    path = f"/contact-center/documents/d/{token}/"
    with time_machine.travel("2026-03-13 09:59:00+00:00", tick=False):
        response = client.get(path)
        assert response.status_code == 200
        assert response.content == PDF
        assert response["Content-Type"] == "application/pdf"
        assert response["Cache-Control"] == "private, no-store"
        assert AuditLog.objects.filter(action="contact_center.document_downloaded").count() == 1
    with time_machine.travel("2026-03-13 10:00:01+00:00", tick=False):
        assert client.get(path).status_code == 404
        with pytest.raises(NotFound):
            document_for_token(token)
        forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with time_machine.travel("2026-03-10 11:00:00+00:00", tick=False):
        assert client.get(f"/contact-center/documents/d/{forged}/").status_code == 404


def test_unknown_keyword_and_invoice_for_unknown_number_are_refused_without_writing():
    _invoice_copy().__class__.objects.filter(code="invoice").update(sms_keyword="FATTURA")
    audits = AuditLog.objects.count()
    with pytest.raises(NotFound) as unknown:
        document_request_by_keyword(from_number="+393331234567", keyword="HELLO")
    assert unknown.value.code == "document_keyword_unknown"
    with pytest.raises(PermissionDenied) as anonymous:
        document_request_by_keyword(from_number="+393339999999", keyword="fattura")
    assert anonymous.value.code == "document_needs_customer"
    with pytest.raises(ValidationFailed):
        document_request_by_keyword(from_number="not a phone", keyword="fattura")
    with pytest.raises(NotFound):
        document_request_by_keyword(from_number="+393331234567", keyword="   ")
    assert not DocumentRequest.objects.exists()
    assert AuditLog.objects.count() == audits
    assert sms.outbox == []


def test_document_create_refuses_bad_input_and_writes_nothing():
    _manual()
    for kwargs in (
        {"code": "Bad Code"},
        {"code": "manual"},  # taken
        {"sms_keyword": "STOP"},
        {"sms_keyword": "MANUALE"},  # taken
        {"sms_keyword": "x"},
        {"title_it": ""},
        {"upload": None},
    ):
        arguments = {
            "actor": None,
            "code": "terms",
            "title_it": "Condizioni",
            "title_en": "Terms",
            "upload": SimpleUploadedFile("t.pdf", PDF, content_type="application/pdf"),
            "sms_keyword": "",
        }
        arguments.update(kwargs)
        with pytest.raises(ValidationFailed):
            document_create(**arguments)
    assert list(Document.objects.values_list("code", flat=True)) == ["manual"]


def test_a_failed_send_is_logged_and_retried_until_it_works(settings, django_capture_on_commit_callbacks):
    _manual()
    settings.FEDELE_SMS_BACKEND = "fedele.contact_center.tests.test_documents.RefusingBackend"
    with django_capture_on_commit_callbacks(execute=True):
        request = document_request_by_keyword(from_number="+393331234567", keyword="MANUALE")
    request.refresh_from_db()
    assert (request.status, request.attempts, request.last_error) == ("failed", 1, "provider said no")
    settings.FEDELE_SMS_BACKEND = "fedele.shared.sms.LocmemBackend"
    assert document_requests_retry_failed() == 1
    assert document_requests_retry_failed() == 0
    request.refresh_from_db()
    assert (request.status, request.attempts, request.last_error) == ("sent", 2, "")
    assert list(DocumentSendLog.objects.order_by("attempt").values_list("attempt", "status", "detail")) == [
        (1, "failed", "provider said no"),
        (2, "sent", "locmem-1"),
    ]
    assert len(sms.outbox) == 1


class RefusingBackend(sms.BaseSmsBackend):
    def send(self, message: sms.SmsMessage) -> sms.SentSms:
        raise sms.SmsSendFailed("provider said no", status=400)


def test_http_fax_provider_posts_the_document_with_our_reference():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.headers["Idempotency-Key"] == "doc-bad":
            return httpx.Response(502, text="gateway down")
        return httpx.Response(200, json={"id": "FX-42"})

    provider = HttpFaxProvider(
        "https://fax.example/v1/faxes", "secret", client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    assert (
        provider.send(
            to_number="+390612345678",
            file_name="a.pdf",
            content=PDF,
            content_type="application/pdf",
            reference="doc-1",
        )
        == "FX-42"
    )
    request = seen[0]
    assert (request.method, str(request.url)) == ("POST", "https://fax.example/v1/faxes")
    assert request.headers["Authorization"] == "Bearer secret"
    body = request.content
    assert b'name="to"\r\n\r\n+390612345678' in body
    assert b'name="document"; filename="a.pdf"' in body and PDF in body
    with pytest.raises(FaxSendFailed, match="refused \\(502\\)"):
        provider.send(
            to_number="+390612345678",
            file_name="a.pdf",
            content=PDF,
            content_type="application/pdf",
            reference="doc-bad",
        )


def test_link_lifetime_setting(settings, django_capture_on_commit_callbacks):
    settings.FEDELE_DOCUMENT_LINK_SECONDS = 3600
    _manual()
    with time_machine.travel("2026-03-10 10:00:00+00:00", tick=False):
        with django_capture_on_commit_callbacks(execute=True):
            request = document_request_by_keyword(from_number="+393331234567", keyword="MANUALE")
        token = document_link_token(request)
        assert sms.outbox[0].body.endswith("(valido per 1 ore)")
    with time_machine.travel(timedelta(minutes=61) + request.created_at, tick=False), pytest.raises(NotFound):
        document_for_token(token)
