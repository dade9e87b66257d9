"""IVR demo data: the "main-line" flow (Italian and English) published and answering +390200000000,
and the invoice-copy document (SMS keyword FATTURA). Runs after the contact-center demo, which makes
the billing, technical and sales queues; built through the real services, so it is a valid flow.

Idempotent: nothing is added when the flow exists.
"""

from __future__ import annotations

from typing import Any

from fedele.shared.demo import DemoContext

DEMO_NUMBER = "+390200000000"

FLOW: dict[str, Any] = {
    "languages": ["it", "en"],
    "default_language": "it",
    "start": "welcome",
    "nodes": {
        "welcome": {
            "type": "say",
            "prompt": {"it": "Benvenuti in Fedele.", "en": "Welcome to Fedele."},
            "next": "language",
        },
        "language": {
            "type": "language",
            "prompt": {
                "it": "Per continuare in italiano premi 1. For English, press 2.",
                "en": "For English, press 2.",
            },
            "options": {"1": "it", "2": "en"},
            "timeout_seconds": 4,
            "retries": 0,
            "next": "hours",
        },
        "hours": {"type": "hours", "calendar": "Italia 9-18", "open": "main", "closed": "closed"},
        "main": {
            "type": "menu",
            "prompt": {
                "it": "Per fatture e pagamenti premi 1. Per l'assistenza tecnica premi 2. "
                "Per ricevere una copia dell'ultima fattura premi 3. "
                "Per sapere quando arriva il tecnico premi 4.",
                "en": "For billing and payments press 1. For technical support press 2. "
                "For a copy of your latest invoice press 3. To hear when the technician comes press 4.",
            },
            "options": {"1": "code", "2": "ticket", "3": "invoice", "4": "visit"},
            "invalid_prompt": {"it": "Scelta non valida.", "en": "That is not a valid choice."},
            "retries": 2,
            "on_fail": "billing",
        },
        "code": {
            "type": "collect",
            "variable": "customer_code",
            "prompt": {
                "it": "Digita il tuo codice cliente, solo le cifre, seguito da cancelletto.",
                "en": "Enter your customer code, digits only, followed by hash.",
            },
            "invalid_prompt": {"it": "Codice cliente non trovato.", "en": "Customer code not found."},
            "min_length": 3,
            "max_length": 12,
            "check": "customer_code",
            "retries": 1,
            "next": "balance",
            "on_fail": "billing",
        },
        "balance": {
            "type": "lookup",
            "lookup": "balance_due",
            "next": "tell_balance",
            "on_missing": "billing",
        },
        "tell_balance": {
            "type": "say",
            "prompt": {
                "it": "Il saldo da pagare è di {balance_due} euro.",
                "en": "Your balance due is {balance_due} euros.",
            },
            "next": "billing",
        },
        "billing": {"type": "queue", "queue": "billing", "skills": {"billing": 1}},
        "ticket": {"type": "lookup", "lookup": "ticket_status", "next": "tell_ticket", "on_missing": "offer"},
        "tell_ticket": {
            "type": "say",
            "prompt": {
                "it": "La tua pratica {ticket_number} è nello stato {ticket_status}.",
                "en": "Your ticket {ticket_number} is {ticket_status}.",
            },
            "next": "offer",
        },
        "offer": {
            "type": "callback",
            "prompt": {
                "it": "Per essere richiamato senza perdere il posto in coda premi 1, per attendere premi 2.",
                "en": "To be called back without losing your place press 1, to wait press 2.",
            },
            "queue": "technical",
            "declined": "technical",
        },
        "technical": {"type": "queue", "queue": "technical", "skills": {"technical": 1}},
        "visit": {
            "type": "lookup",
            "lookup": "work_order_eta",
            "next": "tell_visit",
            "on_missing": "no_visit",
        },
        "tell_visit": {
            "type": "say",
            "prompt": {
                "it": "Per l'intervento {work_order_number} il tecnico arriva {visit_day}, "
                "tra le {window_start} e le {window_end}. Stato: {status_label}.",
                "en": "For work order {work_order_number} the technician comes {visit_day}, between "
                "{window_start} and {window_end}. Status: {status_label}.",
            },
            "next": "technical",
        },
        "no_visit": {
            "type": "say",
            "prompt": {
                "it": "Non risultano interventi programmati per questo numero.",
                "en": "We find no technician visit planned for this number.",
            },
            "next": "technical",
        },
        "invoice": {
            "type": "document",
            "document": "invoice-copy",
            "channel": "sms_link",
            "next": "sent",
            "on_fail": "not_sent",
        },
        "sent": {
            "type": "hangup",
            "prompt": {
                "it": "Ti abbiamo inviato un SMS con il link alla fattura. Arrivederci.",
                "en": "We have sent you a text with a link to the invoice. Goodbye.",
            },
        },
        "not_sent": {
            "type": "say",
            "prompt": {
                "it": "Non riusciamo a riconoscere il tuo numero.",
                "en": "We cannot recognise your number.",
            },
            "next": "billing",
        },
        "closed": {
            "type": "hangup",
            "prompt": {
                "it": "I nostri uffici sono aperti dal lunedì al venerdì dalle 9 alle 18. Arrivederci.",
                "en": "Our offices are open Monday to Friday from 9 to 6 pm. Goodbye.",
            },
        },
    },
}


def load(context: DemoContext) -> None:
    from fedele.contact_center.ivr.flow import render_source
    from fedele.contact_center.models import Document, IvrFlow, Queue
    from fedele.contact_center.services.documents import document_create
    from fedele.contact_center.services.ivr import ivr_flow_create, ivr_number_assign, ivr_publish

    if IvrFlow.objects.filter(code="main-line").exists():
        return
    if Queue.objects.filter(code__in=["billing", "technical"]).count() != 2:
        return  # the contact-center demo did not run: nothing to route to
    if not Document.objects.filter(code="invoice-copy").exists():
        document_create(
            actor=None,
            code="invoice-copy",
            title_it="Copia dell'ultima fattura",
            title_en="Copy of your latest invoice",
            kind="invoice_copy",
            sms_keyword="FATTURA",
        )
    flow = ivr_flow_create(
        actor=None,
        code="main-line",
        name="Numero principale",
        description=(
            "Lingua, orari, fatture con saldo, stato pratica con richiamata, copia fattura via SMS, "
            "quando arriva il tecnico."
        ),
        source=render_source(FLOW, "yaml"),
        source_format="yaml",
    )
    ivr_publish(actor=None, flow=flow)
    ivr_number_assign(actor=None, number=DEMO_NUMBER, flow=flow)
    context.counts["IVR flows"] = 1
