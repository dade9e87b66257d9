"""Members pages (list, search, detail, actions through htmx), the customer 360 panel, the global
search source and the ledger management commands."""

from __future__ import annotations

import io
import uuid

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.loyalty.models import Member, PointsTransaction
from fedele.loyalty.services.ledger import ledger_check, points_earn, reservation_hold
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory, standard_tiers

pytestmark = pytest.mark.django_db


@pytest.fixture
def member():
    programme = ProgrammeFactory(code="club", name_it="Club Fedele", name_en="Loyal Club")
    standard_tiers(programme)
    customer = CustomerFactory(
        first_name="Anna", last_name="Bruni", display_name="Anna Bruni", email="anna@b.it"
    )
    member = MemberFactory(programme=programme, customer=customer, tier=programme.tiers.get(rank=0))
    points_earn(actor=None, member=member, points=1200, source="t", idempotency_key="seed", reference="INV-7")
    return member


def _client(*roles: str, language: str = "en") -> Client:
    client = Client()
    client.force_login(user_with_roles(*roles, language=language))
    return client


def test_list_search_and_filters(member) -> None:
    client = _client("agent")
    MemberFactory(programme=member.programme)
    page = client.get("/loyalty/members/")
    assert page.status_code == 200
    html = page.content.decode()
    assert member.card_number in html and "Anna Bruni" in html
    partial = client.get("/loyalty/members/", {"q": "bruni"}, HTTP_HX_REQUEST="true")
    body = partial.content.decode()
    assert "<html" not in body and body.count("data-member=") == 1 and member.card_number in body
    by_status = client.get("/loyalty/members/", {"status": "suspended"}, HTTP_HX_REQUEST="true")
    assert "No members found." in by_status.content.decode()


def test_list_needs_loyalty_view_permission(member) -> None:
    assert _client("portal_customer").get("/loyalty/members/").status_code == 404
    assert Client().get("/loyalty/members/").status_code == 302


def test_detail_shows_balances_lots_and_history(member) -> None:
    reservation_hold(actor=None, member=member, points=200, idempotency_key="h", source="t")
    page = _client("agent").get(f"/loyalty/members/{member.public_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-balance="available">1,000<' in html
    assert 'data-balance="reserved">200<' in html
    assert "INV-7" in html and 'data-kind="earn"' in html
    assert 'id="member-adjust-form"' in html
    assert _client("agent").get(f"/loyalty/members/{uuid.uuid4()}/").status_code == 404


def test_detail_in_italian(member) -> None:
    page = _client("agent", language="it").get(
        f"/loyalty/members/{member.public_id}/", HTTP_ACCEPT_LANGUAGE="it"
    )
    html = page.content.decode()
    assert 'data-balance="available">1.200<' in html  # Italian digit grouping
    assert "Club Fedele" in html
    assert "Disponibili" in html and "Cronologia" in html and "Rettifica punti" in html


def test_adjust_through_htmx_and_a_reason_is_required(member) -> None:
    client = _client("agent")
    url = f"/loyalty/members/{member.public_id}/adjust/"
    before = PointsTransaction.objects.count()
    refused = client.post(
        url, {"points": "50", "reason": "", "idempotency_key": "k1"}, HTTP_HX_REQUEST="true"
    )
    assert refused.status_code == 422
    assert PointsTransaction.objects.count() == before
    done = client.post(
        url, {"points": "-200", "reason": "duplicate", "idempotency_key": "k1"}, HTTP_HX_REQUEST="true"
    )
    assert done.status_code == 200
    assert 'data-balance="available">1,000<' in done.content.decode()
    again = client.post(
        url, {"points": "-200", "reason": "duplicate", "idempotency_key": "k1"}, HTTP_HX_REQUEST="true"
    )
    assert again.status_code == 200
    member.refresh_from_db()
    assert member.available == 1000
    too_much = client.post(
        url, {"points": "-5000", "reason": "x", "idempotency_key": "k2"}, HTTP_HX_REQUEST="true"
    )
    assert too_much.status_code == 422 and "Not enough points" in too_much.content.decode()
    viewer = _client("billing_clerk")
    assert viewer.post(url, {"points": "5", "reason": "x", "idempotency_key": "k3"}).status_code == 422
    member.refresh_from_db()
    assert member.available == 1000
    assert ledger_check() == []


def test_reverse_and_suspend(member) -> None:
    client = _client("agent")
    earn = PointsTransaction.objects.get(kind="earn")
    response = client.post(
        f"/loyalty/members/{member.public_id}/transactions/{earn.public_id}/reverse/",
        {"reason": "fraud"},
        follow=True,
    )
    assert response.status_code == 200
    assert "Transaction reversed." in response.content.decode()
    member.refresh_from_db()
    assert member.available == 0
    client.post(
        f"/loyalty/members/{member.public_id}/status/", {"status": "suspended", "reason": "card lost"}
    )
    assert Member.objects.get(pk=member.pk).status == "suspended"


def test_customer_panel_and_global_search(member) -> None:
    client = _client("agent")
    page = client.get(f"/customers/{member.customer.public_id}/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="customer-loyalty"' in html and member.card_number in html
    assert "1,200 points" in html
    results = client.get("/search/", {"q": member.card_number})
    assert results.status_code == 200
    assert f"/loyalty/members/{member.public_id}/" in results.content.decode()


def test_check_ledger_command_fails_on_a_tampered_cache(member) -> None:
    out = io.StringIO()
    call_command("loyalty_check_ledger", stdout=out)
    assert "no problems" in out.getvalue()
    Member.objects.filter(pk=member.pk).update(available=1300)
    out = io.StringIO()
    with pytest.raises(CommandError) as failure:
        call_command("loyalty_check_ledger", stdout=out)
    assert failure.value.returncode == 1
    assert f"member {member.card_number}: cache available=1300" in out.getvalue()
    assert "ledger available=1200" in out.getvalue()


def test_expire_command_runs_the_jobs(member) -> None:
    out = io.StringIO()
    call_command("loyalty_expire", "--today", "2099-01-01", "--no-notices", stdout=out)
    assert "expired lots: 1" in out.getvalue()
    member.refresh_from_db()
    assert (member.available, member.lifetime_expired) == (0, 1200)
    with pytest.raises(CommandError):
        call_command("loyalty_expire", "--today", "yesterday")
