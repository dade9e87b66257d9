"""Flows: validation problems, publishing refused for invalid flows (nothing changes), drafts, rollback,
YAML sources, number mapping, permissions, collect checks and the editor's test call."""

from __future__ import annotations

import json
from typing import Any

import pytest

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.contact_center.ivr.checks import check_codice_fiscale, check_luhn, decode_fiscal_code_keys
from fedele.contact_center.ivr.flow import parse_source
from fedele.contact_center.ivr.steps import StepKind
from fedele.contact_center.ivr.validator import validate_flow
from fedele.contact_center.models import (
    Interaction,
    IvrFlow,
    IvrFlowVersion,
    IvrNumber,
    IvrSession,
    IvrVersionStatus,
)
from fedele.contact_center.services.ivr import (
    ivr_draft_save,
    ivr_flow_create,
    ivr_number_assign,
    ivr_publish,
    ivr_rollback,
    ivr_simulate,
)
from fedele.contact_center.tests.ivr_support import BILLING_FLOW, billing_flow, make_queues, published_flow
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english(settings):
    settings.LANGUAGE_CODE = "en"


def _problems(definition):
    return [str(problem) for problem in validate_flow(definition)]


def test_the_sample_flow_is_valid():
    make_queues()
    assert _problems(BILLING_FLOW) == []


def test_dead_ends_unreachable_nodes_unknown_targets_and_types():
    make_queues()
    definition = billing_flow()
    definition["nodes"]["tell"] = {"type": "say", "prompt": {"it": "Ciao", "en": "Hi"}}  # no next
    definition["nodes"]["orphan"] = {"type": "hangup"}
    definition["nodes"]["balance"]["on_missing"] = "nowhere"
    definition["nodes"]["odd"] = {"type": "dance"}
    assert _problems(definition) == [
        "balance: Goes to “nowhere”, which is not a node.",
        "tell: A say node needs “next”.",
        "odd: Unknown node type “dance”.",
        "orphan: No call can reach this node.",
        "odd: No call can reach this node.",
        "tell: Dead end: the call stops here without ending.",
    ]


def test_a_loop_without_input_is_found_but_a_menu_loop_is_fine():
    make_queues()
    definition = billing_flow()
    definition["nodes"]["tell"]["next"] = "again"
    definition["nodes"]["again"] = {"type": "say", "prompt": {"it": "Ancora", "en": "Again"}, "next": "tell"}
    assert _problems(definition) == ["tell: Loop with no input: tell → again → tell."]
    menu_loop = billing_flow()
    menu_loop["nodes"]["main"]["options"]["9"] = "welcome"  # back to the welcome, then the menu waits again
    assert _problems(menu_loop) == []


def test_missing_prompts_bad_digit_maps_bad_collect_rules_and_missing_things():
    make_queues()
    definition = billing_flow()
    definition["nodes"]["welcome"]["prompt"] = {"it": "Benvenuti"}
    definition["nodes"]["main"]["options"] = {"1": "support", "22": "code", "x": "code"}
    definition["nodes"]["code"].update(min_length=9, max_length=3, pattern="([", check="horoscope")
    definition["nodes"]["billing"]["queue"] = "ghost"
    definition["nodes"]["billing"]["skills"] = {"billing": 6}
    definition["nodes"]["balance"]["lookup"] = "horoscope"
    assert _problems(definition) == [
        "welcome: “prompt” has no prompt in en.",
        "main: “22” is not a phone key (0-9, *, #).",
        "main: “x” is not a phone key (0-9, *, #).",
        "code: Lengths must satisfy 1 ≤ min_length ≤ max_length ≤ 40.",
        "code: “pattern” is not a valid regular expression: unterminated character set at position 1",
        "code: Unknown check “horoscope” (luhn, codice_fiscale, customer_code).",
        "balance: Unknown lookup “horoscope”.",
        "billing: The queue “ghost” does not exist.",
        "billing: “skills” must map skill codes to a proficiency from 1 to 5.",
    ]


def test_structure_problems():
    assert _problems([]) == ["The flow must be a mapping with languages, start and nodes."]
    assert _problems({"languages": ["de"], "start": "x", "nodes": {}}) == [
        "Unknown language(s): de.",
        "The flow has no nodes.",
    ]
    assert _problems({"languages": ["en"], "start": "x", "nodes": {"a": {"type": "hangup"}}}) == [
        "The start node “x” does not exist.",
    ]


def test_an_invalid_flow_cannot_be_published_and_nothing_changes():
    make_queues()
    flow = published_flow()
    broken = billing_flow()
    broken["nodes"]["billing"]["queue"] = "ghost"
    draft = ivr_draft_save(actor=None, flow=flow, source=json.dumps(broken))
    audits = AuditLog.objects.count()
    with pytest.raises(ValidationFailed) as refused:
        ivr_publish(actor=None, flow=flow)
    assert refused.value.code == "ivr_flow_invalid"
    assert refused.value.fields == {"definition": ["billing: The queue “ghost” does not exist."]}
    flow.refresh_from_db()
    draft.refresh_from_db()
    assert flow.published_version is not None and flow.published_version.number == 1
    assert draft.status == IvrVersionStatus.DRAFT
    assert AuditLog.objects.count() == audits


def test_drafts_versions_and_rollback():
    make_queues()
    flow = published_flow()
    first = flow.published_version
    assert first is not None
    # Editing a published flow opens draft 2; saving again edits the same draft.
    draft = ivr_draft_save(actor=None, flow=flow, source=json.dumps(billing_flow(default_language="en")))
    again = ivr_draft_save(
        actor=None, flow=flow, source=json.dumps(billing_flow(default_language="en")), note="x"
    )
    assert (draft.pk, draft.number, again.pk, again.note) == (again.pk, 2, draft.pk, "x")
    ivr_publish(actor=None, flow=flow)
    first.refresh_from_db()
    assert first.status == IvrVersionStatus.RETIRED
    assert first.definition == BILLING_FLOW  # a published version never changed
    with pytest.raises(Conflict):
        ivr_publish(actor=None, flow=flow)  # no draft left
    rolled = ivr_rollback(actor=None, flow=flow, version_number=1)
    flow.refresh_from_db()
    assert (rolled.number, rolled.status, rolled.definition) == (3, IvrVersionStatus.PUBLISHED, BILLING_FLOW)
    assert flow.published_version == rolled
    assert list(
        IvrFlowVersion.objects.filter(flow=flow).order_by("number").values_list("number", "status")
    ) == [
        (1, "retired"),
        (2, "retired"),
        (3, "published"),
    ]


def test_yaml_source_and_syntax_errors():
    make_queues()
    yaml_source = """
languages: [en]
start: hello
nodes:
  hello: {type: say, prompt: {en: "Hello"}, next: bye}
  bye: {type: hangup}
"""
    flow = ivr_flow_create(
        actor=None, code="yaml-line", name="YAML", source=yaml_source, source_format="yaml"
    )
    version = ivr_publish(actor=None, flow=flow)
    assert version.definition["nodes"]["bye"] == {"type": "hangup"}
    assert version.source == yaml_source
    with pytest.raises(ValidationFailed) as bad_json:
        parse_source('{"start": ', "json")
    assert bad_json.value.message == "JSON: Expecting value (line 1, column 11)"
    with pytest.raises(ValidationFailed) as bad_yaml:
        parse_source("a: [1, 2", "yaml")
    assert bad_yaml.value.code == "ivr_flow_syntax"
    assert "line 1" in bad_yaml.value.message
    count = IvrFlow.objects.count()
    with pytest.raises(ValidationFailed):
        ivr_flow_create(actor=None, code="Bad Code", name="x", source="{}")
    with pytest.raises(ValidationFailed):
        ivr_flow_create(actor=None, code="ok", name="x", source="[1]")
    assert IvrFlow.objects.count() == count


def test_only_managers_change_flows():
    make_queues()
    agent = actor_for(user_with_roles("agent"))
    with pytest.raises(PermissionDenied):
        ivr_flow_create(actor=agent, code="x", name="x", source=json.dumps(BILLING_FLOW))
    admin = actor_for(user_with_roles("admin"))
    flow = ivr_flow_create(actor=admin, code="x", name="x", source=json.dumps(BILLING_FLOW))
    with pytest.raises(PermissionDenied):
        ivr_publish(actor=agent, flow=flow)
    assert ivr_publish(actor=admin, flow=flow).published_by_id == admin.user_id


def test_number_mapping_is_e164_and_moves_between_flows():
    make_queues()
    first = published_flow()
    second = published_flow(code="second")
    ivr_number_assign(actor=None, number="02 1234 5678", flow=first)
    ivr_number_assign(actor=None, number="+39 02 12345678", flow=second)
    assert list(IvrNumber.objects.values_list("number", "flow__code")) == [("+390212345678", "second")]
    with pytest.raises(ValidationFailed):
        ivr_number_assign(actor=None, number="not a number", flow=first)
    assert IvrNumber.objects.count() == 1


def test_fiscal_code_checks_written_and_keyed():
    customer = CustomerFactory(fiscal_code="RSSMRA85T10A562S")
    written = check_codice_fiscale("rssmra85t10a562s")
    assert written is not None and (written.value, written.customer_public_id) == (
        "RSSMRA85T10A562S",
        str(customer.public_id),
    )
    # R=73 S=74 S=74 M=61 R=73 A=21 8 5 T=81 1 0 A=21 5 6 2 S=74
    keys = "737474617321" + "85" + "81" + "10" + "21" + "562" + "74"
    assert decode_fiscal_code_keys(keys) == "RSSMRA85T10A562S"
    keyed = check_codice_fiscale(keys)
    assert keyed is not None and keyed.value == "RSSMRA85T10A562S"
    assert check_codice_fiscale("RSSMRA85T10A562X") is None  # wrong check letter
    assert check_codice_fiscale(keys[:-1] + "3") is None  # S → R changes the check letter
    assert decode_fiscal_code_keys("7") is None
    assert decode_fiscal_code_keys(keys + "1") is None
    assert decode_fiscal_code_keys("19" + keys[2:]) is None  # key 1 has no letters
    unknown = check_codice_fiscale("BNCGNN80A01H501T")  # valid, but nobody's
    assert unknown is not None and (unknown.value, unknown.customer_public_id) == ("BNCGNN80A01H501T", "")


def test_luhn_check():
    assert check_luhn("79927398713") is not None
    assert check_luhn("79927398710") is None
    assert check_luhn("") is None


def test_simulated_call_uses_the_real_engine_and_leaves_no_trace():
    make_queues()
    flow = ivr_flow_create(actor=None, code="sim", name="Sim", source=json.dumps(BILLING_FLOW))
    draft = flow.versions.get()
    interactions = Interaction.objects.count()
    turns = ivr_simulate(version=draft, inputs=["7", "1"])
    assert [turn.input for turn in turns] == [None, "7", "1"]
    assert [turn.waiting_at for turn in turns] == ["main", "main", ""]
    assert [step.kind for step in turns[2].steps] == [StepKind.SAY, StepKind.QUEUE]
    assert turns[2].steps[1].params["queue_code"] == "support"
    assert Interaction.objects.count() == interactions
    assert not IvrSession.objects.exists()
    # Inputs after the call left the IVR are ignored; an empty input is a timeout.
    assert len(ivr_simulate(version=draft, inputs=["1", "2", "3"])) == 2
    timed_out = ivr_simulate(version=draft, inputs=[""])
    assert timed_out[1].steps[0].text == "Spiacenti, non è stata ricevuta alcuna scelta."
    with pytest.raises(ValidationFailed):
        ivr_simulate(version=draft, inputs=["1"] * 31)


def test_unknown_voicemail_box_calendar_document_and_bad_transfer_target():
    make_queues()
    definition: dict[str, Any] = {
        "languages": ["it"],
        "start": "hours",
        "nodes": {
            "hours": {"type": "hours", "calendar": "Nowhere 24/7", "open": "send", "closed": "box"},
            "send": {"type": "document", "document": "ghost", "channel": "pigeon", "next": "desk"},
            "desk": {"type": "transfer", "target": "0612345678"},
            "box": {"type": "voicemail", "box": "ghost"},
        },
    }
    assert _problems(definition) == [
        "hours: The business calendar “Nowhere 24/7” does not exist.",
        "send: The document “ghost” does not exist.",
        "send: “channel” must be email, sms_link or fax.",
        "desk: Transfer to an E.164 number (+39…) or a SIP URI (sip:user@host).",
        "box: The voicemail box “ghost” does not exist.",
    ]
    definition["nodes"]["hours"]["calendar"] = "Italia 9-18"
    definition["nodes"]["box"]["box"] = "support"
    definition["nodes"]["desk"]["target"] = "+390612345678"
    definition["nodes"]["send"] = {"type": "say", "prompt": {"it": "Ciao"}, "next": "desk"}
    assert _problems(definition) == []
