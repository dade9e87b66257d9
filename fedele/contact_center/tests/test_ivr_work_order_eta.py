"""The IVR lookup ``work_order_eta``: the identified caller's next technician visit (number, day, window,
ETA once on the way, technician, status) in the call's language and Europe/Rome time, or a work order
the caller keyed in — only their own. Run through the real engine and rendered to TwiML."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.utils.translation import gettext, override

from fedele.contact_center.ivr import demo
from fedele.contact_center.ivr.engine import ivr_continue, ivr_start
from fedele.contact_center.ivr.lookups import (
    LOOKUPS,
    LookupContext,
    keyed_work_order_number,
    spoken_work_order_number,
    work_order_eta,
)
from fedele.contact_center.ivr.steps import StepKind
from fedele.contact_center.ivr.twiml import render_twiml
from fedele.contact_center.ivr.validator import validate_flow
from fedele.contact_center.models import IvrSession
from fedele.contact_center.tests.factories import QueueFactory, SkillFactory
from fedele.contact_center.tests.ivr_support import CALLER, incoming_call, make_queues, published_flow
from fedele.customers.tests.factories import CustomerFactory
from fedele.field_service.tests.factories import TechnicianFactory, WorkOrderFactory
from fedele.shared.demo import DemoContext

pytestmark = pytest.mark.django_db

GATHER = "/contact-center/telephony/twilio/gather/CA0001/"
HEAD = '<?xml version="1.0" encoding="UTF-8"?><Response>'
NOW = "2026-12-08T08:00:00+00:00"  # Tuesday 8 December 2026, 09:00 in Rome


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture(autouse=True)
def _now(time_machine: Any, settings: Any) -> None:
    time_machine.move_to(NOW, tick=False)
    settings.FEDELE_PUBLIC_URL = "https://cc.example.it"
    settings.LANGUAGE_CODE = "en"


def ask(customer: Any | None, *, language: str = "en", **variables: Any) -> dict[str, str] | None:
    return work_order_eta(
        LookupContext(
            customer_public_id=str(customer.public_id) if customer is not None else "",
            ticket_public_id="",
            variables=variables,
            language=language,
        )
    )


def visit(customer: Any, **fields: Any) -> Any:
    values: dict[str, Any] = {
        "summary": "Manutenzione caldaia",
        "status": "scheduled",
        "window_start": utc(2026, 12, 8, 9, 0),
        "window_end": utc(2026, 12, 8, 11, 0),
        "technician": TechnicianFactory(display_name="Luca Bianchi"),
    }
    values.update(fields)
    return WorkOrderFactory(customer=customer, **values)


def spoken(order: Any) -> str:
    year, sequence = order.number.split("-")[1:]
    return f"WO {year} {int(sequence)}"


# -- keyed and spoken numbers ------------------------------------------------------------------------------


def test_keyed_work_order_numbers() -> None:
    assert keyed_work_order_number("202642") == "WO-2026-000042"
    assert keyed_work_order_number("2026*42") == "WO-2026-000042"
    assert keyed_work_order_number("2026000042") == "WO-2026-000042"
    assert keyed_work_order_number("WO-2026-000042") == "WO-2026-000042"
    assert keyed_work_order_number(" wo 2026 42 ") == "WO-2026-000042"
    assert keyed_work_order_number("2027999999") == "WO-2027-999999"
    assert keyed_work_order_number("20261234567") == "WO-2026-1234567"  # the series outgrew 6 digits
    for bad in ("", "2026", "20260", "2026*0", "12345", "19991", "20261234567890", "2026#42", "abc", "**"):
        assert keyed_work_order_number(bad) is None, bad


def test_spoken_work_order_numbers() -> None:
    assert spoken_work_order_number("WO-2026-000042") == "WO 2026 42"
    assert spoken_work_order_number("WO-2027-120000") == "WO 2027 120000"
    assert spoken_work_order_number("ODD-NUMBER") == "ODD NUMBER"


def test_the_lookup_is_registered_and_a_flow_using_it_is_valid() -> None:
    make_queues()
    assert LOOKUPS["work_order_eta"] is work_order_eta
    assert validate_flow(eta_flow()) == []


# -- the next visit --------------------------------------------------------------------------------------


def test_next_visit_today_in_english() -> None:
    customer = CustomerFactory()
    order = visit(customer)
    assert ask(customer) == {
        "work_order_number": spoken(order),
        "work_order_summary": "Manutenzione caldaia",
        "visit_date": "Tuesday 8 December",
        "visit_day": "today",
        "window_start": "10:00",
        "window_end": "12:00",
        "eta_time": "",
        "technician_name": "Luca Bianchi",
        "status_label": "scheduled",
    }


def test_next_visit_tomorrow_in_italian_dates() -> None:
    customer = CustomerFactory()
    order = visit(customer, window_start=utc(2026, 12, 9, 13, 0), window_end=utc(2026, 12, 9, 15, 0))
    found = ask(customer, language="it")
    assert found is not None
    assert (found["work_order_number"], found["visit_date"], found["window_start"], found["window_end"]) == (
        spoken(order),
        "mercoledì 9 dicembre",
        "14:00",
        "16:00",
    )
    with override("it"):
        assert found["visit_day"] == gettext("tomorrow")
    english = ask(customer)
    assert english is not None and (english["visit_day"], english["visit_date"]) == (
        "tomorrow",
        "Wednesday 9 December",
    )


def test_after_midnight_in_rome_is_tomorrow_though_still_today_in_utc(time_machine: Any) -> None:
    time_machine.move_to("2026-12-08T21:30:00+00:00", tick=False)  # 22:30 in Rome
    customer = CustomerFactory()
    visit(customer, window_start=utc(2026, 12, 8, 23, 30), window_end=utc(2026, 12, 9, 1, 0))
    found = ask(customer)
    assert found is not None
    assert (found["visit_day"], found["visit_date"], found["window_start"], found["window_end"]) == (
        "tomorrow",
        "Wednesday 9 December",
        "00:30",
        "02:00",
    )


def test_a_later_visit_says_its_date_and_a_dst_day_reads_local_time(time_machine: Any) -> None:
    time_machine.move_to("2026-03-27T10:00:00+00:00", tick=False)
    customer = CustomerFactory()
    visit(customer, window_start=utc(2026, 3, 29, 7, 0), window_end=utc(2026, 3, 29, 9, 0))
    found = ask(customer, language="it")
    assert found is not None
    assert (found["visit_day"], found["visit_date"], found["window_start"], found["window_end"]) == (
        "domenica 29 marzo",
        "domenica 29 marzo",
        "09:00",
        "11:00",
    )


def test_technician_en_route_gives_the_eta() -> None:
    customer = CustomerFactory()
    order = visit(
        customer,
        status="en_route",
        window_start=utc(2026, 12, 8, 8, 0),
        window_end=utc(2026, 12, 8, 10, 0),
        eta=utc(2026, 12, 8, 8, 40),
        technician=TechnicianFactory(display_name="Anna Neri"),
    )
    assert ask(customer) == {
        "work_order_number": spoken(order),
        "work_order_summary": "Manutenzione caldaia",
        "visit_date": "Tuesday 8 December",
        "visit_day": "today",
        "window_start": "09:00",
        "window_end": "11:00",
        "eta_time": "09:40",
        "technician_name": "Anna Neri",
        "status_label": "en route",
    }


def test_nothing_planned_is_missing() -> None:
    customer = CustomerFactory()
    assert ask(customer) is None
    visit(customer, status="completed")
    visit(customer, status="cancelled")
    visit(CustomerFactory())  # someone else's visit
    assert ask(customer) is None


def test_an_unidentified_caller_hears_nothing_even_with_a_valid_number() -> None:
    order = visit(CustomerFactory())
    digits = order.number.replace("WO-", "").replace("-", "")
    assert ask(None) is None
    assert ask(None, work_order=digits) is None


# -- a keyed work-order number -------------------------------------------------------------------------


def test_a_keyed_number_of_the_callers_own_work_order() -> None:
    customer = CustomerFactory()
    visit(customer)  # the next visit
    later = visit(
        customer,
        summary="Sostituzione contatore",
        window_start=utc(2026, 12, 15, 13, 0),
        window_end=utc(2026, 12, 15, 14, 0),
    )
    year, sequence = later.number.split("-")[1:]
    found = ask(customer, work_order=f"{year}{int(sequence)}")
    assert found is not None
    assert (
        found["work_order_number"],
        found["work_order_summary"],
        found["visit_date"],
        found["window_start"],
    ) == (
        spoken(later),
        "Sostituzione contatore",
        "Tuesday 15 December",
        "14:00",
    )
    assert ask(customer, work_order=f"{year}*{int(sequence)}") == found


def test_a_keyed_number_of_another_customer_is_refused() -> None:
    caller = CustomerFactory()
    visit(caller)
    theirs = visit(CustomerFactory(), summary="Di un altro cliente")
    year, sequence = theirs.number.split("-")[1:]
    assert ask(caller, work_order=f"{year}{int(sequence)}") is None
    # A number that does not exist, or keys that are no number, are missing too (not the next visit).
    assert ask(caller, work_order="2026999999") is None
    assert ask(caller, work_order="12") is None


# -- through the engine, rendered to TwiML -----------------------------------------------------------------


def eta_flow() -> dict[str, Any]:
    return {
        "languages": ["it", "en"],
        "default_language": "it",
        "start": "visit",
        "nodes": {
            "visit": {"type": "lookup", "lookup": "work_order_eta", "next": "tell", "on_missing": "none"},
            "tell": {
                "type": "say",
                "prompt": {
                    "it": "Intervento {work_order_number}: il tecnico {technician_name} arriva {visit_date} "
                    "alle {eta_time}, finestra dalle {window_start} alle {window_end}.",
                    "en": "Work order {work_order_number}: {technician_name} arrives {visit_date} at "
                    "{eta_time}, window {window_start} to {window_end}.",
                },
                "next": "support",
            },
            "none": {
                "type": "say",
                "prompt": {"it": "Nessun intervento programmato.", "en": "No visit planned."},
                "next": "support",
            },
            "support": {"type": "queue", "queue": "support", "announce": False},
        },
    }


def test_the_eta_is_said_in_italian_in_twiml() -> None:
    make_queues()
    customer = CustomerFactory(phone=CALLER)
    order = visit(
        customer,
        status="en_route",
        window_start=utc(2026, 12, 8, 8, 0),
        window_end=utc(2026, 12, 8, 10, 0),
        eta=utc(2026, 12, 8, 8, 40),
        technician=TechnicianFactory(display_name="Anna Neri"),
    )
    flow = published_flow(eta_flow(), code="eta-line")
    call = incoming_call()
    assert call.customer_public_id == str(customer.public_id)
    xml = render_twiml(
        ivr_start(interaction=call, flow_code=flow.code),
        gather_action=GATHER,
        queue_wait_url="/contact-center/telephony/twilio/wait/",
    )
    assert xml == (
        HEAD
        + f'<Say language="it-IT">Intervento {spoken(order)}: il tecnico Anna Neri arriva martedì 8 dicembre '
        "alle 09:40, finestra dalle 09:00 alle 11:00.</Say>"
        '<Enqueue waitUrl="https://cc.example.it/contact-center/telephony/twilio/wait/">support</Enqueue>'
        "</Response>"
    )
    session = IvrSession.objects.get(interaction=call)
    assert session.variables["eta_time"] == "09:40"


def test_an_unknown_caller_goes_to_on_missing_in_twiml() -> None:
    make_queues()
    visit(CustomerFactory(phone="+393339999999"))
    flow = published_flow(eta_flow(), code="eta-line")
    call = incoming_call()
    assert call.customer_public_id in ("", None)
    steps = ivr_start(interaction=call, flow_code=flow.code)
    xml = render_twiml(steps, gather_action=GATHER, queue_wait_url="/contact-center/telephony/twilio/wait/")
    assert xml == (
        HEAD + '<Say language="it-IT">Nessun intervento programmato.</Say>'
        '<Enqueue waitUrl="https://cc.example.it/contact-center/telephony/twilio/wait/">support</Enqueue>'
        "</Response>"
    )


def test_a_collected_number_of_another_customer_in_the_flow_goes_to_on_missing() -> None:
    make_queues()
    caller = CustomerFactory(phone=CALLER)
    visit(caller)
    theirs = visit(CustomerFactory(), summary="Di un altro cliente")
    year, sequence = theirs.number.split("-")[1:]
    definition = eta_flow()
    definition["start"] = "ask"
    definition["nodes"]["ask"] = {
        "type": "collect",
        "variable": "work_order",
        "prompt": {
            "it": "Digita il numero dell'intervento e cancelletto.",
            "en": "Key the work order number.",
        },
        "min_length": 5,
        "max_length": 12,
        "finish_on": "#",
        "next": "visit",
    }
    flow = published_flow(definition, code="eta-keyed")
    call = incoming_call()
    ivr_start(interaction=call, flow_code=flow.code)
    steps = ivr_continue(interaction=call, digits=f"{year}{int(sequence)}", timed_out=False)
    assert [step.text for step in steps if step.text] == ["Nessun intervento programmato."]
    assert "technician_name" not in IvrSession.objects.get(interaction=call).variables


def test_the_demo_line_tells_the_visit_on_4(time_machine: Any) -> None:
    time_machine.move_to("2026-03-10T10:00:00+00:00", tick=False)  # a Tuesday, 11:00 in Rome: open
    for code in ("billing", "technical"):
        SkillFactory(code=code)
        QueueFactory(code=code, channels=["voice"])
    demo.load(DemoContext(faker=None, seed=1))
    customer = CustomerFactory(phone=CALLER)
    order = visit(customer, window_start=utc(2026, 3, 10, 12, 0), window_end=utc(2026, 3, 10, 14, 0))
    call = incoming_call(call_ref="CA-demo")
    ivr_start(interaction=call, number=demo.DEMO_NUMBER)
    menu = ivr_continue(interaction=call, digits="2", timed_out=False)  # English
    assert menu[0].text.endswith("To hear when the technician comes press 4.")
    told = ivr_continue(interaction=call, digits="4", timed_out=False)
    assert told[0].text == (
        f"For work order {spoken(order)} the technician comes today, between 13:00 and 15:00. "
        "Status: scheduled."
    )
    assert told[-1].kind == StepKind.QUEUE and told[-1].params["queue_code"] == "technical"
    stranger = incoming_call("+393339999999", call_ref="CA-demo-2")
    ivr_start(interaction=stranger, number=demo.DEMO_NUMBER)
    ivr_continue(interaction=stranger, digits="2", timed_out=False)
    nothing = ivr_continue(interaction=stranger, digits="4", timed_out=False)
    assert nothing[0].text == "We find no technician visit planned for this number."
