"""The member portal's household page (/club/household/): start a household, invite by link, join,
the members by first name only, the pooled balance, the transfer limit left this month, transfers
within the limits with clear errors that move nothing, leaving; in English and Italian."""

from __future__ import annotations

import html as html_lib
import re
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from fedele.accounts.contracts import Actor
from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.loyalty.models import Household, Member, PointsTransaction, Programme
from fedele.loyalty.services.club import club_household_transfer, household_invitation
from fedele.loyalty.tests.club_fixtures import Portal, earn, enrol, portal_customer, programme_with_tiers
from fedele.shared.errors import ValidationFailed
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db
NOW = "2026-03-10 10:00 +01:00"
PAGE = "/club/household/"


def _text(response) -> str:
    return html_lib.unescape(" ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split()))


def _invitation_path(response) -> str:
    found = re.search(
        r'value="([^"]+)" id="club-household-link"',
        response.content.decode(),
    )
    assert found and found.group(1), "no invitation link on the page"
    link = html_lib.unescape(found.group(1))
    assert link.startswith("http://testserver/club/household/join/")
    return link.removeprefix("http://testserver")


def _transfer(portal: Portal, to: Member, points: object, key: str | None = None):
    return portal.client.post(
        f"{PAGE}transfer/",
        {"to_member": str(to.public_id), "points": str(points), "idempotency_key": key or str(uuid.uuid4())},
    )


@pytest.fixture
def programme() -> Programme:
    return programme_with_tiers(
        household_max_members=3, transfer_max_points=500, transfer_max_points_per_month=800
    )


@pytest.fixture
def family(programme: Programme) -> tuple[Portal, Member, Portal, Member]:
    """Giulia started the household "Neri" with 1,000 points; Marco joined through her link with 50."""
    with time_machine.travel(NOW, tick=False):
        giulia = portal_customer(name="Giulia Neri")
        giulia_member = enrol(programme, giulia.customer)
        earn(giulia_member, 1000)
        marco = portal_customer(name="Marco Neri")
        marco_member = enrol(programme, marco.customer)
        earn(marco_member, 50)
        assert giulia.client.post(f"{PAGE}create/", {"name": "Neri"}).status_code == 302
        join = _invitation_path(giulia.client.get(PAGE))
        assert marco.client.post(join).status_code == 302
    giulia_member.refresh_from_db()
    marco_member.refresh_from_db()
    return giulia, giulia_member, marco, marco_member


@time_machine.travel(NOW, tick=False)
def test_without_a_household_the_page_offers_to_start_one(programme: Programme) -> None:
    portal = portal_customer()
    member = enrol(programme, portal.customer)
    page = portal.client.get(PAGE)
    assert page.status_code == 200
    assert 'id="club-household-create-form"' in page.content.decode()
    assert "To join a family member's household, open the invitation link they send you." in _text(page)

    empty = portal.client.post(f"{PAGE}create/", {"name": "   "})
    assert empty.status_code == 422
    assert "This field is required." in _text(empty)
    assert not Household.objects.exists()

    created = portal.client.post(f"{PAGE}create/", {"name": "  Casa   Neri "})
    assert created.status_code == 302 and created["Location"] == PAGE
    household = Household.objects.get()
    member.refresh_from_db()
    assert (household.name, household.owner_id, member.household_id) == ("Casa Neri", member.pk, household.pk)
    page = portal.client.get(PAGE)
    text = _text(page)
    assert "Household Casa Neri created: invite your family." in text
    assert "Members (1 of 3)" in text and "Invite a family member to give them points." in text


@time_machine.travel(NOW, tick=False)
def test_members_by_first_name_pooled_balance_and_the_limit_left(family) -> None:
    _giulia, giulia_member, marco, marco_member = family
    page = marco.client.get(PAGE)
    assert page.status_code == 200
    text = _text(page)
    assert "Neri" in text  # the household's name
    members = re.findall(r'data-mate="([^"]+)"', page.content.decode())
    assert members == [str(giulia_member.public_id), str(marco_member.public_id)]
    assert "Giulia started it" in text and "Marco (you)" in text
    # First names only: no surname, no card number, no e-mail of the others.
    block = page.content.decode().split('id="club-household-members"')[1].split("</ul>")[0]
    assert "Neri" not in block and giulia_member.card_number not in page.content.decode()
    assert 'id="club-household-pooled">1,050 <small>points</small>' in page.content.decode()
    assert "You can still give 800 points this month (of 800); at most 500 at a time." in text
    assert "Up to 50 points now." in text  # Marco's balance is the bound


@time_machine.travel(NOW, tick=False)
def test_transfer_within_the_limits_and_clear_errors_that_move_nothing(family) -> None:
    giulia, giulia_member, _marco, marco_member = family
    key = str(uuid.uuid4())
    sent = _transfer(giulia, marco_member, 300, key)
    assert sent.status_code == 302
    again = _transfer(giulia, marco_member, 300, key)  # the same page submitted twice
    assert again.status_code == 302
    giulia_member.refresh_from_db()
    marco_member.refresh_from_db()
    assert (giulia_member.available, marco_member.available) == (700, 350)
    assert PointsTransaction.objects.filter(kind="transfer").count() == 1
    page = giulia.client.get(PAGE)
    text = _text(page)
    assert "300 points sent to Marco." in text
    assert "You can still give 500 points this month (of 800); at most 500 at a time." in text
    assert 'id="club-household-pooled">1,050 <small>' in page.content.decode()

    def refused(points: object, to: Member, status: int, message: str) -> None:
        response = _transfer(giulia, to, points)
        assert response.status_code == status, response.content
        assert message in _text(response)

    refused(501, marco_member, 422, "At most 500 points can be transferred at once.")
    # The page in error keeps everything else: the invitation link, the members, the limit.
    assert _invitation_path(_transfer(giulia, marco_member, 501)).startswith("/club/household/join/")
    refused(0, marco_member, 422, "Ensure this value is greater than or equal to 1.")
    refused("many", marco_member, 422, "Enter a whole number.")
    refused(giulia_member.pk, giulia_member, 422, "Select a valid choice.")  # not a recipient
    _transfer(giulia, marco_member, 450)
    refused(
        100,
        marco_member,
        422,
        "This transfer would exceed the monthly limit of 800 points (750 already sent).",
    )
    giulia_member.refresh_from_db()
    marco_member.refresh_from_db()
    assert (giulia_member.available, marco_member.available) == (250, 800)
    assert PointsTransaction.objects.filter(kind="transfer").count() == 2
    page = _text(giulia.client.get(PAGE))
    assert "You can still give 50 points this month (of 800)" in page


@time_machine.travel(NOW, tick=False)
def test_a_recipient_outside_the_household_is_refused(family, programme: Programme) -> None:
    giulia, giulia_member, _marco, _marco_member = family
    stranger = enrol(programme, portal_customer(name="Sara Bianchi").customer)

    with pytest.raises(ValidationFailed) as error:
        club_household_transfer(
            actor=actor_for(giulia.user),
            member=giulia_member,
            to_member_id=str(stranger.public_id),
            points=10,
            form_key=str(uuid.uuid4()),
        )
    assert (error.value.code, error.value.fields) == (
        "not_same_household",
        {"to_member": ["Choose a member of your household."]},
    )
    assert PointsTransaction.objects.filter(kind="transfer").count() == 0


@time_machine.travel(NOW, tick=False)
def test_invitations_bad_expired_full_and_other_programme(family, programme: Programme) -> None:
    giulia, giulia_member, _marco, _marco_member = family
    join = _invitation_path(giulia.client.get(PAGE))
    third = portal_customer(name="Luca Neri")
    third_member = enrol(programme, third.customer)
    invitation = third.client.get(join)
    assert invitation.status_code == 200
    assert "Giulia invites you to the household Neri" in _text(invitation)

    forged = third.client.post(join[:-6] + "xxxxx/")
    assert forged.status_code == 422
    assert "This invitation is not valid or has expired: ask for a new link." in _text(forged)
    with time_machine.travel(timezone.now() + timedelta(days=8), tick=False):
        expired = third.client.post(join)
    assert expired.status_code == 422 and "has expired" in _text(expired)
    other_programme = programme_with_tiers(code="other", household_max_members=3)
    outsider = portal_customer(name="Paolo Rossi")
    enrol(other_programme, outsider.customer)
    refused = outsider.client.post(join)
    assert refused.status_code == 422 and "This invitation is for another programme." in _text(refused)

    assert third.client.post(join).status_code == 302
    third_member.refresh_from_db()
    assert third_member.household_id == giulia_member.household_id
    assert AuditLog.objects.filter(action="loyalty.household_member_joined").count() == 2
    full_page = _text(giulia.client.get(PAGE))
    assert "The household is full: it has 3 members." in full_page
    fourth = portal_customer(name="Anna Neri")
    fourth_member = enrol(programme, fourth.customer)
    too_many = fourth.client.post(join)
    assert too_many.status_code == 422 and "A household has at most 3 members." in _text(too_many)
    fourth_member.refresh_from_db()
    assert fourth_member.household_id is None


@time_machine.travel(NOW, tick=False)
def test_leaving_keeps_the_points_and_voids_the_leavers_invitations(family, programme: Programme) -> None:
    giulia, giulia_member, marco, marco_member = family
    marco_link = household_invitation(actor=_actor(marco), member=marco_member)
    left = marco.client.post(f"{PAGE}leave/")
    assert left.status_code == 302
    marco_member.refresh_from_db()
    assert (marco_member.household_id, marco_member.available) == (None, 50)
    assert "You left the household. Your points stay yours." in _text(marco.client.get(PAGE))
    page = giulia.client.get(PAGE)
    assert re.findall(r'data-mate="([^"]+)"', page.content.decode()) == [str(giulia_member.public_id)]
    assert 'id="club-household-pooled">1,000 <small>' in page.content.decode()
    newcomer = portal_customer(name="Elena Neri")
    enrol(programme, newcomer.customer)
    stale = newcomer.client.post(f"{PAGE}join/{marco_link}/")
    assert stale.status_code == 422 and "not valid" in _text(stale)
    not_in = marco.client.post(f"{PAGE}leave/")
    assert not_in.status_code == 422 and "You are not in a household." in _text(not_in)


def _actor(portal: Portal) -> Actor:
    return actor_for(portal.user)


@time_machine.travel(NOW, tick=False)
def test_a_programme_without_pooling_says_so_and_refuses() -> None:
    programme = programme_with_tiers(household_max_members=1)
    portal = portal_customer()
    enrol(programme, portal.customer)
    page = portal.client.get(PAGE)
    assert page.status_code == 200 and "This programme has no family pooling." in _text(page)
    refused = portal.client.post(f"{PAGE}create/", {"name": "Neri"})
    assert refused.status_code == 422 and "This programme has no family pooling." in _text(refused)
    assert not Household.objects.exists()


@time_machine.travel(NOW, tick=False)
def test_the_page_in_italian_on_a_phone(family) -> None:
    giulia, _giulia_member, _marco, _marco_member = family
    giulia.user.language = "it"
    giulia.user.save(update_fields=["language"])
    page = giulia.client.get(PAGE, HTTP_ACCEPT_LANGUAGE="it")
    html = page.content.decode()
    assert 'lang="it"' in html
    assert 'id="club-household-pooled">1.050 <small>punti</small>' in html
    assert '<meta name="viewport" content="width=device-width, initial-scale=1' in html
    assert 'inputmode="numeric"' in html  # the phone's number pad for points
    assert "<table" not in html  # one column of cards on a 390 px screen


def test_anonymous_and_staff_cannot_open_it() -> None:
    assert Client().get(PAGE)["Location"] == f"/accounts/login/?next={PAGE}"
    staff = Client()
    staff.force_login(user_with_roles("agent"))
    assert staff.get(PAGE).status_code == 403
    assert staff.post(f"{PAGE}create/", {"name": "x"}).status_code == 403
