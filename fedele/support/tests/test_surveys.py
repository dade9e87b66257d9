"""CSAT surveys (sent on solve, answered once, expiry, low-score follow-up), NPS campaigns, reports
and the surveys API."""

from __future__ import annotations

import hashlib
import re
from datetime import date, timedelta
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.test import Client
from django.utils import timezone

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.customers.tests.factories import ConsentRecordFactory, ContactFactory, CustomerFactory
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent
from fedele.support.models import NpsCampaign, Survey, Ticket, TicketEvent
from fedele.support.selectors import surveys as selectors
from fedele.support.services import surveys as services
from fedele.support.services.tickets import ticket_create, ticket_update
from fedele.support.tests.factories import ticket_kwargs

pytestmark = pytest.mark.django_db
NOW = "2026-03-10 10:00 +01:00"


def _solved_ticket(django_capture_on_commit_callbacks: Any, **overrides: Any) -> Ticket:
    agent = user_with_roles("agent")
    with django_capture_on_commit_callbacks(execute=True):
        ticket = ticket_create(actor=None, **ticket_kwargs(**overrides))
    with django_capture_on_commit_callbacks(execute=True):
        ticket_update(actor=actor_for(agent), ticket=ticket, changes={"status": "solved"})
    ticket.refresh_from_db()
    return ticket


def _token_from_mail() -> str:
    found = re.search(r"/help/survey/([A-Za-z0-9_\-]+)/", mail.outbox[-1].body)
    assert found is not None
    return found.group(1)


@time_machine.travel(NOW, tick=False)
def test_solving_a_ticket_sends_one_csat_survey_by_email(django_capture_on_commit_callbacks: Any) -> None:
    mail.outbox.clear()
    ticket = _solved_ticket(django_capture_on_commit_callbacks, language="en")
    survey = Survey.objects.get(ticket=ticket)
    assert survey.kind == "csat"
    assert survey.email == "mario.rossi@example.it"
    assert survey.language == "en"
    assert survey.expires_at.isoformat() == "2026-03-24T09:00:00+00:00"
    survey_mails = [m for m in mail.outbox if "/help/survey/" in m.body]
    assert len(survey_mails) == 1
    assert survey_mails[0].to == ["mario.rossi@example.it"]
    token = _token_from_mail()
    # Only the hash is stored.
    assert survey.token_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in survey.token_hash
    # Solved again after a reopen: still one survey, no second mail.
    with django_capture_on_commit_callbacks(execute=True):
        assert services.survey_send_csat(ticket.pk) == survey
    assert Survey.objects.filter(ticket=ticket).count() == 1
    assert len([m for m in mail.outbox if "/help/survey/" in m.body]) == 1


@time_machine.travel(NOW, tick=False)
def test_no_survey_without_anyone_to_ask(django_capture_on_commit_callbacks: Any) -> None:
    ticket = _solved_ticket(django_capture_on_commit_callbacks, requester_email="", channel="phone")
    assert Survey.objects.filter(ticket=ticket).count() == 0


@time_machine.travel(NOW, tick=False)
def test_answering_records_score_event_and_publishes(django_capture_on_commit_callbacks: Any) -> None:
    ticket = _solved_ticket(django_capture_on_commit_callbacks)
    token = _token_from_mail()
    survey = services.survey_respond(token=token, score="5", comment="  Bravissimi  ")
    assert (survey.score, survey.comment) == (5, "Bravissimi")
    assert survey.responded_at is not None
    assert survey.follow_up_ticket is None
    event = TicketEvent.objects.filter(ticket=ticket, kind="survey", field="csat").last()
    assert event is not None and event.new_value == "5"
    completed = OutboxEvent.objects.get(event_type="support.survey_completed")
    assert completed.payload["score"] == 5
    assert completed.payload["ticket_id"] == str(ticket.public_id)
    assert completed.payload["kind"] == "csat"


@time_machine.travel(NOW, tick=False)
def test_second_answer_is_a_conflict_and_changes_nothing(django_capture_on_commit_callbacks: Any) -> None:
    _solved_ticket(django_capture_on_commit_callbacks)
    token = _token_from_mail()
    services.survey_respond(token=token, score=4, comment="ok")
    events_before = OutboxEvent.objects.count()
    with pytest.raises(Conflict) as error:
        services.survey_respond(token=token, score=1, comment="changed my mind")
    assert error.value.code == "already_answered"
    survey = Survey.objects.get()
    assert (survey.score, survey.comment) == (4, "ok")
    assert OutboxEvent.objects.count() == events_before


@pytest.mark.parametrize("score", [0, 6, -1, 10**9, "abc", "", None, True, 4.5])
@time_machine.travel(NOW, tick=False)
def test_bad_csat_scores_are_refused(django_capture_on_commit_callbacks: Any, score: Any) -> None:
    _solved_ticket(django_capture_on_commit_callbacks)
    token = _token_from_mail()
    events_before = OutboxEvent.objects.count()
    with pytest.raises(ValidationFailed) as error:
        services.survey_respond(token=token, score=score)
    assert error.value.code == "invalid_score"
    assert Survey.objects.get().responded_at is None
    assert OutboxEvent.objects.count() == events_before


def test_expired_and_unknown_tokens(django_capture_on_commit_callbacks: Any) -> None:
    with time_machine.travel(NOW, tick=False):
        _solved_ticket(django_capture_on_commit_callbacks)
        token = _token_from_mail()
    with time_machine.travel("2026-03-24 10:00 +01:00", tick=False), pytest.raises(ValidationFailed) as error:
        services.survey_respond(token=token, score=5)
    assert error.value.code == "survey_expired"
    assert Survey.objects.get().responded_at is None
    with pytest.raises(NotFound):
        services.survey_respond(token="nope" * 5, score=5)
    with pytest.raises(NotFound):
        services.survey_respond(token="", score=5)


@time_machine.travel(NOW, tick=False)
def test_low_score_opens_one_follow_up_complaint(django_capture_on_commit_callbacks: Any) -> None:
    customer = CustomerFactory(email="mario.rossi@example.it", language="it")
    ticket = _solved_ticket(django_capture_on_commit_callbacks, customer_public_id=str(customer.public_id))
    token = _token_from_mail()
    with django_capture_on_commit_callbacks(execute=True):
        survey = services.survey_respond(token=token, score=2, comment="Nessuno mi ha richiamato")
    follow_up = survey.follow_up_ticket
    assert follow_up is not None
    follow_up.refresh_from_db()
    assert follow_up.parent_id == ticket.pk
    assert follow_up.ticket_type is not None and follow_up.ticket_type.code == "complaint"
    assert follow_up.priority == "high"
    assert follow_up.customer_id == customer.pk
    assert ticket.number in follow_up.subject
    notes = list(follow_up.messages.filter(kind="note").values_list("body_text", flat=True))
    assert any("Nessuno mi ha richiamato" in note for note in notes)
    assert Ticket.objects.filter(parent=ticket).count() == 1


@time_machine.travel(NOW, tick=False)
def test_portal_requester_rates_solved_ticket(django_capture_on_commit_callbacks: Any) -> None:
    customer = CustomerFactory()
    user = user_with_roles("portal_customer", email="giulia@example.it")
    ContactFactory(customer=customer, portal_user=user)
    actor = actor_for(user)
    with django_capture_on_commit_callbacks(execute=True):
        ticket = ticket_create(
            actor=None,
            **ticket_kwargs(
                requester_user_id=user.pk,
                requester_email="",
                customer_public_id=str(customer.public_id),
            ),
        )
    with pytest.raises(ValidationFailed) as error:
        services.survey_rate_ticket(actor=actor, ticket=ticket, score=5)
    assert error.value.code == "ticket_not_solved"
    assert Survey.objects.count() == 0
    ticket_update(actor=None, ticket=ticket, changes={"status": "solved"})
    survey = services.survey_rate_ticket(actor=actor, ticket=str(ticket.public_id), score=5, comment="")
    assert survey.score == 5
    assert Survey.objects.filter(ticket=ticket).count() == 1
    with pytest.raises(Conflict):
        services.survey_rate_ticket(actor=actor, ticket=ticket, score=3)
    stranger = actor_for(user_with_roles("portal_customer"))
    with pytest.raises(NotFound):
        services.survey_rate_ticket(actor=stranger, ticket=ticket, score=1)


# NPS -----------------------------------------------------------------------------------------------


def _consented(email: str, segment: str = "consumer", granted: bool = True) -> Any:
    customer = CustomerFactory(email=email, segment=segment)
    ConsentRecordFactory(customer=customer, granted=granted)
    return customer


@time_machine.travel(NOW, tick=False)
def test_nps_campaign_goes_only_to_consenting_customers_once(django_capture_on_commit_callbacks: Any) -> None:
    admin = actor_for(user_with_roles("admin"))
    yes = _consented("yes@example.it")
    _consented("no@example.it", granted=False)
    _consented("other@example.it", segment="enterprise")
    CustomerFactory(email="never@example.it")
    withdrawn = _consented("withdrawn@example.it")
    ConsentRecordFactory(customer=withdrawn, granted=False, recorded_at=timezone.now() + timedelta(seconds=1))
    campaign = services.nps_campaign_create(actor=admin, name="Primavera", segment="consumer")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        sent = services.nps_campaign_send(actor=admin, campaign_public_id=str(campaign.public_id))
    assert sent.sent_count == 1
    survey = Survey.objects.get(kind="nps")
    assert survey.customer_id == yes.pk
    assert [m.to for m in mail.outbox] == [["yes@example.it"]]
    with pytest.raises(Conflict) as error:
        services.nps_campaign_send(actor=admin, campaign_public_id=str(campaign.public_id))
    assert error.value.code == "already_sent"
    assert Survey.objects.filter(kind="nps").count() == 1
    token = _token_from_mail()
    with pytest.raises(ValidationFailed):
        services.survey_respond(token=token, score=11)
    assert services.survey_respond(token=token, score=0).score == 0


def test_nps_campaign_validation_and_permission() -> None:
    agent = actor_for(user_with_roles("agent"))
    with pytest.raises(PermissionDenied):
        services.nps_campaign_create(actor=agent, name="X")
    admin = actor_for(user_with_roles("admin"))
    with pytest.raises(ValidationFailed) as error:
        services.nps_campaign_create(actor=admin, name=" ", segment="martians")
    assert set(error.value.fields) == {"name", "segment"}
    assert NpsCampaign.objects.count() == 0
    assert not AuditLog.objects.filter(action="nps_campaign.created").exists()


def test_nps_score_arithmetic() -> None:
    assert selectors.nps_score(5, 2, 10) == 30
    assert selectors.nps_score(0, 3, 3) == -100
    assert selectors.nps_score(1, 0, 3) == 33
    assert selectors.nps_score(1, 0, 8) == 13  # 12.5 rounds half up
    assert selectors.nps_score(0, 0, 0) is None


# reports -------------------------------------------------------------------------------------------


def _survey(**values: Any) -> Survey:
    import secrets

    from django.utils import timezone

    defaults: dict[str, Any] = {
        "kind": "csat",
        "token_hash": hashlib.sha256(secrets.token_bytes(16)).hexdigest(),
        "sent_at": timezone.now(),
        "expires_at": timezone.now(),
    }
    defaults.update(values)
    return Survey.objects.create(**defaults)


@time_machine.travel(NOW, tick=False)
def test_csat_report_figures_by_agent_and_day() -> None:
    from django.utils import timezone

    agent = user_with_roles("agent", first_name="Anna", last_name="Bianchi")
    now = timezone.now()
    for score in (5, 4, 2):
        _survey(agent=agent, score=score, responded_at=now)
    _survey(agent=agent)  # not answered
    _survey(score=1, responded_at=now)  # nobody assigned
    report = selectors.csat_report(
        actor=actor_for(user_with_roles("supervisor")), start=date(2026, 3, 9), end=date(2026, 3, 10)
    )
    assert (report.overall.sent, report.overall.responses, report.overall.satisfied) == (5, 4, 2)
    assert str(report.overall.csat_percent) == "50.0"
    assert str(report.overall.average) == "3.00"
    assert str(report.overall.response_rate) == "80.0"
    anna = report.by_agent[0]
    assert (anna.label, anna.sent, anna.responses) == ("Anna Bianchi", 4, 3)
    assert str(anna.csat_percent) == "66.7"
    assert str(anna.average) == "3.67"
    assert report.by_agent[1].key == ""
    assert [row.key for row in report.over_time] == ["2026-03-09", "2026-03-10"]
    assert [row.sent for row in report.over_time] == [0, 5]
    with pytest.raises(PermissionDenied):
        selectors.csat_report(
            actor=actor_for(user_with_roles("agent")), start=date(2026, 3, 1), end=date(2026, 3, 2)
        )
    with pytest.raises(ValidationFailed):
        selectors.csat_report(
            actor=actor_for(user_with_roles("supervisor")), start=date(2026, 3, 2), end=date(2026, 3, 1)
        )


@time_machine.travel(NOW, tick=False)
def test_report_page_and_csv(client: Client) -> None:
    from django.utils import timezone

    _survey(score=5, responded_at=timezone.now())
    client.force_login(user_with_roles("supervisor"))
    page = client.get("/support/reports/csat/")
    assert page.status_code == 200
    assert 'data-kpi="csat">100.0%' in page.content.decode()
    csv_response = client.get("/support/reports/csat/?start=2026-03-10&end=2026-03-10&format=csv")
    lines = csv_response.content.decode().splitlines()
    assert lines[0] == "dimension,key,label,sent,responses,response_rate,csat_percent,average"
    assert lines[1] == "overall,,,1,1,100.0,100.0,5.00"
    client.force_login(user_with_roles("agent"))
    assert client.get("/support/reports/csat/").status_code == 403


# API -----------------------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_api_list_report_campaign_and_public_answer(
    client: Client, django_capture_on_commit_callbacks: Any, django_assert_max_num_queries: Any
) -> None:
    from django.utils import timezone

    for score in (5, 3):
        _survey(score=score, responded_at=timezone.now(), ticket=None)
    supervisor = user_with_roles("supervisor")
    header = auth_header(supervisor)
    with django_assert_max_num_queries(7):  # token, its last use, roles and permissions, one for the surveys
        listed = client.get("/api/v1/support/surveys?kind=csat", **header)
    assert listed.status_code == 200
    assert len(listed.json()["items"]) == 2
    report = client.get(
        "/api/v1/support/surveys/report?start=2026-03-10&end=2026-03-10", **auth_header(supervisor)
    )
    assert report.status_code == 200
    assert report.json()["overall"]["csat_percent"] == "50.0"
    assert client.get("/api/v1/support/surveys", **auth_header(user_with_roles("agent"))).status_code == 403

    admin = user_with_roles("admin")
    created = client.post(
        "/api/v1/support/surveys/nps-campaigns",
        {"name": "Q1", "segment": ""},
        content_type="application/json",
        **auth_header(admin),
    )
    assert created.status_code == 201
    campaign_id = created.json()["id"]
    _consented("api@example.it")
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(f"/api/v1/support/surveys/nps-campaigns/{campaign_id}/send", **auth_header(admin))
    assert sent.status_code == 200 and sent.json()["sent_count"] == 1
    again = client.post(f"/api/v1/support/surveys/nps-campaigns/{campaign_id}/send", **auth_header(admin))
    assert again.status_code == 409
    token = _token_from_mail()
    answer = client.post(
        "/api/v1/support/surveys/respond", {"token": token, "score": 9}, content_type="application/json"
    )
    assert answer.status_code == 200 and answer.json()["score"] == 9
    twice = client.post(
        "/api/v1/support/surveys/respond", {"token": token, "score": 9}, content_type="application/json"
    )
    assert twice.status_code == 409
    assert twice.json()["error"]["code"] == "already_answered"
