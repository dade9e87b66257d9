"""Self-service portal: sign-up with verification (no account takeover), new request with the SLA
promise, own requests only, reply, mark as solved, inline rating, and the public survey page."""

from __future__ import annotations

import re
from typing import Any

import pytest
import time_machine
from django.core import mail
from django.core.cache import cache
from django.test import Client, TestCase

from fedele.accounts.models import User
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.models import Contact, Customer
from fedele.customers.tests.factories import ContactFactory, CustomerFactory
from fedele.shared.errors import ValidationFailed
from fedele.support.models import Survey, Ticket
from fedele.support.services import portal as services
from fedele.support.services.tickets import message_add, ticket_create, ticket_update
from fedele.support.tests.factories import ticket_kwargs

pytestmark = pytest.mark.django_db
NOW = "2026-11-20 10:00 +01:00"  # a Friday
PASSWORD = "Lampone-Verde-2026!"


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    cache.clear()


def _verify_link() -> str:
    found = re.search(r"/help/signup/verify/([^/\s]+)/", mail.outbox[-1].body)
    assert found is not None
    return found.group(0)


def _signup(client: Client, email: str = "nuovo@example.it", **extra: str) -> Any:
    data = {"name": "Anna Verdi", "email": email, "password": PASSWORD, "language": "en", "consent": "on"}
    data.update(extra)
    # The e-mail leaves after commit.
    with TestCase.captureOnCommitCallbacks(execute=True):
        return client.post("/help/signup/", data)


def test_signup_creates_nothing_until_the_link_is_opened(client: Client) -> None:
    users_before, customers_before = User.objects.count(), Customer.objects.count()
    response = _signup(client)
    assert response.status_code == 200
    assert "Check your e-mail" in response.content.decode()
    assert (User.objects.count(), Customer.objects.count()) == (users_before, customers_before)
    link = _verify_link()
    assert PASSWORD not in mail.outbox[-1].body and PASSWORD not in link
    assert client.get(link).status_code == 200  # a mail scanner's GET activates nothing
    assert User.objects.count() == users_before
    done = client.post(link)
    assert done.status_code == 200 and "Your account is ready" in done.content.decode()
    user = User.objects.get(email="nuovo@example.it")
    assert user.check_password(PASSWORD)
    assert user.role_names == frozenset({"portal_customer"}) or "portal_customer" in user.role_names
    customer = Customer.objects.get(email="nuovo@example.it")
    assert (customer.kind, customer.first_name, customer.last_name, customer.language) == (
        "person",
        "Anna",
        "Verdi",
        "en",
    )
    assert Contact.objects.get(portal_user=user).customer_id == customer.pk
    again = client.post(link)
    assert "already active" in again.content.decode()
    assert User.objects.filter(email="nuovo@example.it").count() == 1


def test_signup_links_to_the_existing_customer_only_after_verification(client: Client) -> None:
    existing = CustomerFactory(email="cliente@example.it")
    _signup(client, email="cliente@example.it")
    assert not Contact.objects.filter(customer=existing, portal_user__isnull=False).exists()
    client.post(_verify_link())
    user = User.objects.get(email="cliente@example.it")
    assert Contact.objects.get(portal_user=user).customer_id == existing.pk
    assert Customer.objects.filter(email="cliente@example.it").count() == 1


def test_signup_for_a_registered_address_reveals_nothing(client: Client) -> None:
    user_with_roles("portal_customer", email="gia@example.it")
    response = _signup(client, email="gia@example.it")
    assert "Check your e-mail" in response.content.decode()
    assert "/help/signup/verify/" not in mail.outbox[-1].body
    assert "already have one" in mail.outbox[-1].body


@pytest.mark.parametrize(
    ("extra", "field"),
    [({"password": "123"}, "password"), ({"consent": ""}, "consent"), ({"email": "not-an-email"}, "email")],
)
def test_signup_form_errors_send_nothing(client: Client, extra: dict[str, str], field: str) -> None:
    response = _signup(client, **extra)
    assert response.status_code == 200
    assert f'data-field="{field}"' in response.content.decode()
    assert "is-invalid" in response.content.decode()
    assert mail.outbox == []


def test_tampered_or_expired_links_are_refused(client: Client) -> None:
    with time_machine.travel("2026-01-01 10:00 +01:00", tick=False):
        _signup(client)
        link = _verify_link()
    with time_machine.travel("2026-01-03 10:01 +01:00", tick=False):
        with pytest.raises(ValidationFailed) as error:
            services.signup_verify(link.split("/")[-2])
        assert error.value.code == "link_expired"
        assert client.post(link).status_code == 400
    assert client.post(link[:-5] + "xxxx/").status_code == 400
    assert not User.objects.filter(email="nuovo@example.it").exists()


def test_signup_is_rate_limited_per_ip(client: Client, settings: Any) -> None:
    settings.FEDELE_PORTAL_SIGNUPS_PER_HOUR = 2
    for index in range(2):
        _signup(client, email=f"n{index}@example.it")
    response = _signup(client, email="n3@example.it")
    assert "Too many requests" in response.content.decode()
    assert len(mail.outbox) == 2


# requests ------------------------------------------------------------------------------------------


def _portal_user(client: Client) -> tuple[User, Customer]:
    customer = CustomerFactory()
    user = user_with_roles("portal_customer", email="giulia@example.it", language="en")
    ContactFactory(customer=customer, portal_user=user)
    client.force_login(user)
    return user, customer


@time_machine.travel(NOW, tick=False)
def test_new_request_form_shows_the_sla_promise_and_creates_the_ticket(client: Client) -> None:
    user, customer = _portal_user(client)
    page = client.get("/help/requests/new/?ticket_type=question")
    assert page.status_code == 200
    # Normal priority: 240 business minutes from Friday 10:00 → Friday 14:00.
    assert "We usually answer by Friday 20 November, 14:00" in page.content.decode()
    response = client.post(
        "/help/requests/new/",
        {
            "ticket_type": "question",
            "subject": "  Fattura   doppia ",
            "description": "Mi avete addebitato due volte.",
        },
    )
    ticket = Ticket.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/help/requests/{ticket.public_id}/"
    assert (ticket.subject, ticket.channel, ticket.requester_user_id, ticket.customer_id) == (
        "Fattura doppia",
        "portal",
        user.pk,
        customer.pk,
    )
    assert ticket.requester_email == "giulia@example.it"


@time_machine.travel(NOW, tick=False)
def test_new_request_errors_create_nothing(client: Client) -> None:
    _portal_user(client)
    response = client.post(
        "/help/requests/new/", {"ticket_type": "collections", "subject": "", "description": ""}
    )
    assert response.status_code == 422
    assert Ticket.objects.count() == 0


@time_machine.travel(NOW, tick=False)
def test_request_pages_show_only_own_requests_and_public_thread(
    client: Client, django_assert_max_num_queries: Any
) -> None:
    user, _customer = _portal_user(client)
    mine = ticket_create(actor=None, **ticket_kwargs(requester_user_id=user.pk, requester_email=user.email))
    message_add(actor=None, ticket=mine, kind="note", body="Cliente difficile", send_email=False)
    message_add(actor=None, ticket=mine, kind="reply", body="Stiamo verificando.", send_email=False)
    theirs = ticket_create(actor=None, **ticket_kwargs(requester_email="altro@example.it"))
    with django_assert_max_num_queries(12):
        listing = client.get("/help/requests/")
    assert mine.number in listing.content.decode()
    assert theirs.number not in listing.content.decode()
    page = client.get(f"/help/requests/{mine.public_id}/").content.decode()
    assert "Stiamo verificando." in page and "Cliente difficile" not in page
    assert client.get(f"/help/requests/{theirs.public_id}/").status_code == 404
    assert client.post(f"/help/requests/{theirs.public_id}/reply/", {"body": "x"}).status_code == 404
    assert theirs.messages.count() == 1
    client.force_login(user_with_roles("agent"))
    assert client.get("/help/requests/").status_code == 403


@time_machine.travel(NOW, tick=False)
def test_reply_solve_and_rate_from_the_request_page(
    client: Client, django_capture_on_commit_callbacks: Any
) -> None:
    user, _customer = _portal_user(client)
    ticket = ticket_create(actor=None, **ticket_kwargs(requester_user_id=user.pk, requester_email=user.email))
    reply = client.post(f"/help/requests/{ticket.public_id}/reply/", {"body": "Ancora non va"})
    assert reply.status_code == 302
    assert ticket.messages.filter(kind="customer").count() == 2
    empty = client.post(f"/help/requests/{ticket.public_id}/reply/", {"body": "  "})
    assert empty.status_code == 422
    assert ticket.messages.count() == 2
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/help/requests/{ticket.public_id}/solve/")
    ticket.refresh_from_db()
    assert ticket.status_kind == "solved"
    page = client.get(f"/help/requests/{ticket.public_id}/").content.decode()
    assert 'id="rating-form"' in page
    bad = client.post(f"/help/requests/{ticket.public_id}/rate/", {"score": "9"})
    assert bad.status_code == 422
    assert Survey.objects.get(ticket=ticket).responded_at is None
    client.post(f"/help/requests/{ticket.public_id}/rate/", {"score": "5", "comment": "Grazie"})
    survey = Survey.objects.get(ticket=ticket)
    assert (survey.score, survey.comment) == (5, "Grazie")
    page = client.get(f"/help/requests/{ticket.public_id}/").content.decode()
    assert 'id="rating-thanks"' in page and 'id="rating-form"' not in page


@time_machine.travel(NOW, tick=False)
def test_public_survey_page(client: Client, django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        ticket = ticket_create(actor=None, **ticket_kwargs())
    with django_capture_on_commit_callbacks(execute=True):
        ticket_update(actor=None, ticket=ticket, changes={"status": "solved"})
    found = re.search(r"(/help/survey/[A-Za-z0-9_\-]+/)", mail.outbox[-1].body)
    assert found is not None
    url = found.group(1)
    page = client.get(f"{url}?score=4")
    assert page.status_code == 200
    assert 'value="4" id="score-4" x-model="score" checked' in page.content.decode()
    assert Survey.objects.get().responded_at is None  # opening the link answers nothing
    thanks = client.post(url, {"score": "4", "comment": ""})
    assert 'id="survey-thanks"' in thanks.content.decode()
    assert "already answered" in client.get(url).content.decode()
    assert client.get("/help/survey/bogus-token/").status_code == 404


def test_home_page_for_visitors_and_customers(client: Client) -> None:
    visitor = client.get("/help/")
    assert visitor.status_code == 200
    assert "/help/signup/" in visitor.content.decode()
    _portal_user(client)
    page = client.get("/help/").content.decode()
    assert 'id="my-requests-card"' in page
