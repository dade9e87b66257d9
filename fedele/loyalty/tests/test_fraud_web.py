"""Fraud review pages: the queue, a flag with the member's transactions, clear and confirm+reverse
through the forms, the manual flag form, permissions, Italian rendering and the dashboard card."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import translation

from fedele.accounts.tests.factories import user_with_roles
from fedele.loyalty.models import FraudFlag, Member, PointsTransaction, Programme
from fedele.loyalty.tests.evaluation_support import earn, member_at, utc
from fedele.loyalty.tests.factories import ProgrammeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def flagged() -> tuple[Member, FraudFlag, list[PointsTransaction]]:
    programme: Programme = ProgrammeFactory(code="club-web", velocity_max_earns_per_hour=2)
    member = member_at(programme, utc(2026, 3, 1))
    flood = [earn(member, 100, utc(2026, 3, 10, 10, minute)) for minute in range(3)]
    return member, FraudFlag.objects.get(member=member), flood


@pytest.fixture
def reviewer_client(client: Client) -> Client:
    client.force_login(user_with_roles("supervisor"))
    return client


def test_queue_and_detail_pages(
    reviewer_client: Client, flagged: tuple[Member, FraudFlag, list[PointsTransaction]]
) -> None:
    member, flag, flood = flagged
    queue = reviewer_client.get(reverse("loyalty:fraud_queue"))
    assert queue.status_code == 200
    assert f'data-flag="{flag.public_id}"'.encode() in queue.content
    assert member.card_number.encode() in queue.content
    assert b"3 earns in an hour (limit 2)" in queue.content
    detail = reviewer_client.get(reverse("loyalty:fraud_detail", args=[flag.public_id]))
    assert detail.status_code == 200
    for row in flood:
        assert f'value="{row.public_id}"'.encode() in detail.content
    assert b'id="confirm-button"' in detail.content
    # The public id is in every link; the internal key is no address.
    assert f'action="/loyalty/fraud/{flag.public_id}/confirm/"'.encode() in detail.content
    assert reviewer_client.get(f"/loyalty/fraud/{flag.pk}/").status_code == 404
    assert reviewer_client.get(f"/loyalty/fraud/{uuid.uuid4()}/").status_code == 404


def test_confirm_form_reverses_the_ticked_transactions(
    reviewer_client: Client, flagged: tuple[Member, FraudFlag, list[PointsTransaction]]
) -> None:
    member, flag, flood = flagged
    response = reviewer_client.post(
        reverse("loyalty:fraud_confirm", args=[flag.public_id]),
        {"note": "bot", "reverse": [str(flood[1].public_id), str(flood[2].public_id)]},
    )
    assert response.status_code == 302
    flag.refresh_from_db()
    member.refresh_from_db()
    assert (flag.state, member.available, member.flagged) == ("confirmed", 100, False)
    page = reviewer_client.get(reverse("loyalty:fraud_detail", args=[flag.public_id]))
    assert b"Fraud confirmed: 2 transaction(s) reversed." in page.content
    assert b'id="review-outcome"' in page.content


def test_clear_form_and_form_errors(
    reviewer_client: Client, flagged: tuple[Member, FraudFlag, list[PointsTransaction]]
) -> None:
    member, flag, _flood = flagged
    missing_note = reviewer_client.post(reverse("loyalty:fraud_clear", args=[flag.public_id]), {"note": ""})
    assert missing_note.status_code == 422
    assert b'id="review-errors"' in missing_note.content
    flag.refresh_from_db()
    assert flag.state == "open"
    cleared = reviewer_client.post(reverse("loyalty:fraud_clear", args=[flag.public_id]), {"note": "genuine"})
    assert cleared.status_code == 302
    flag.refresh_from_db()
    member.refresh_from_db()
    assert (flag.state, member.available, member.flagged) == ("cleared", 300, False)


def test_manual_flag_form_and_permissions(
    client: Client, flagged: tuple[Member, FraudFlag, list[PointsTransaction]]
) -> None:
    member, _flag, _flood = flagged
    client.force_login(user_with_roles("agent"))
    assert client.get(reverse("loyalty:fraud_queue")).status_code == 403
    response = client.post(
        reverse("loyalty:fraud_flag_member"), {"card_number": member.card_number, "note": "odd"}
    )
    assert response.status_code == 302
    assert FraudFlag.objects.filter(member=member, rule="manual").count() == 1
    client.force_login(user_with_roles("analyst"))
    assert (
        client.post(
            reverse("loyalty:fraud_flag_member"), {"card_number": member.card_number, "note": "x"}
        ).status_code
        == 403
    )
    assert client.get(reverse("loyalty:fraud_detail", args=[_flag.public_id])).status_code == 403


def test_queue_in_italian_and_the_dashboard_card(
    reviewer_client: Client, flagged: tuple[Member, FraudFlag, list[PointsTransaction]]
) -> None:
    reviewer_client.force_login(user_with_roles("supervisor", language="it"))
    page = reviewer_client.get(reverse("loyalty:fraud_queue"), HTTP_ACCEPT_LANGUAGE="it")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'lang="it"' in html
    assert "10/03/2026 11:02" in html  # Italian date format, programme time (Rome)
    with translation.override("it"):
        assert translation.gettext("Flag a member for review") in html
        assert translation.gettext("too many earn transactions in an hour") in html
    home = reviewer_client.get("/")
    assert b'id="loyalty-fraud-card"' in home.content
    assert b'data-open-flags="1"' in home.content
