"""Rewards in the member portal: the catalogue with eligibility reasons, the confirmation step, a
double submit that redeems once, insufficient points that write nothing, a physical reward's
shipping address, voucher codes on "My rewards", and no way to reach another programme's rewards or
another member's redemptions."""

from __future__ import annotations

import re
import uuid

import pytest
import time_machine

from fedele.loyalty.models import PointsTransaction, Redemption, Reservation, VoucherCode
from fedele.loyalty.services import club as club_services
from fedele.loyalty.services.rewards import reward_redeem
from fedele.loyalty.tests.club_fixtures import earn, enrol, portal_customer, programme_with_tiers, voucher
from fedele.loyalty.tests.factories import RewardFactory
from fedele.shared.errors import NotFound, ValidationFailed
from fedele.shared.models import OutboxEvent

pytestmark = pytest.mark.django_db
NOW = "2026-03-10 10:00 +01:00"
ADDRESS = {
    "shipping_name": "Giulia Neri",
    "shipping_street": "Via Roma 1",
    "shipping_postcode": "20121",
    "shipping_city": "Milano",
    "shipping_province": "MI",
    "shipping_country": "it",
    "shipping_phone": "",
}


def _html(response) -> str:
    return response.content.decode()


def _form_key(html: str) -> str:
    found = re.search(r'name="idempotency_key" value="([0-9a-f-]{36})"', html)
    assert found is not None
    return found.group(1)


@pytest.fixture
def setting():
    with time_machine.travel(NOW, tick=False):
        programme = programme_with_tiers()
        portal = portal_customer()
        member = enrol(programme, portal.customer)
        earn(member, 1_200)
        yield programme, portal, member


def test_the_catalogue_shows_what_can_be_redeemed_and_why_not(setting) -> None:
    programme, portal, _member = setting
    voucher(programme, cost=500, name_en="Coffee voucher")
    voucher(programme, cost=2_000, name_en="Dinner voucher")
    RewardFactory(
        programme=programme, kind="physical", points_cost=300, name_en="Mug", eligible_tiers=["gold"]
    )
    other = programme_with_tiers(code="elsewhere")
    voucher(other, cost=10, name_en="Someone else's reward")

    response = portal.client.get("/club/rewards/")

    html = _html(response)
    assert "You have 1,200 points" in html
    assert "Someone else" not in html
    cards = dict(re.findall(r'data-reward="([\w-]+)".*?<h2[^>]*>([^<]+)</h2>', html, flags=re.S))
    assert sorted(cards.values()) == ["Coffee voucher", "Dinner voucher", "Mug"]
    coffee = html.split("Coffee voucher")[1].split("</article>")[0]
    assert "Redeem</a>" in coffee
    dinner = html.split("Dinner voucher")[1].split("</article>")[0]
    assert "You need 800 more points." in dinner and "Redeem</a>" not in dinner
    mug = html.split(">Mug<")[1].split("</article>")[0]
    assert "This reward is reserved to other tiers." in mug


def test_redeeming_a_voucher_shows_the_code_and_a_double_submit_redeems_once(setting) -> None:
    programme, portal, member = setting
    reward = voucher(programme, cost=500)
    page = portal.client.get(f"/club/rewards/{reward.public_id}/")
    assert page.status_code == 200
    assert 'id="club-balance-after">700 points' in _html(page)
    key = _form_key(_html(page))

    with time_machine.travel(NOW, tick=False):
        first = portal.client.post(f"/club/rewards/{reward.public_id}/", {"idempotency_key": key})
        second = portal.client.post(f"/club/rewards/{reward.public_id}/", {"idempotency_key": key})

    redemption = Redemption.objects.get(member=member)
    assert first.status_code == second.status_code == 302
    assert first["Location"] == second["Location"] == f"/club/redemptions/?new={redemption.public_id}"
    member.refresh_from_db()
    assert (member.available, member.reserved, member.lifetime_redeemed) == (700, 0, 500)
    assert PointsTransaction.objects.filter(member=member, kind="redeem").count() == 1
    assert redemption.state == "fulfilled" and redemption.voucher is not None
    assert VoucherCode.objects.filter(reward=reward, state="issued").count() == 1
    assert OutboxEvent.objects.filter(event_type="loyalty.points_redeemed").count() == 1

    mine = portal.client.get(first["Location"])
    html = _html(mine)
    assert f'id="voucher-{redemption.public_id}">{redemption.voucher.code}</code>' in html
    assert 'id="club-redemption-new"' in html and "Done! You redeemed €5 voucher." in html
    # A new visit to the confirmation page is a new choice: a new key.
    assert _form_key(_html(portal.client.get(f"/club/rewards/{reward.public_id}/"))) != key


def test_not_enough_points_gives_a_clear_message_and_writes_nothing(setting) -> None:
    programme, portal, member = setting
    reward = voucher(programme, cost=1_500)
    page = portal.client.get(f"/club/rewards/{reward.public_id}/")
    assert "Not enough points available." in _html(page)
    assert 'id="club-redeem-form"' not in _html(page)
    before = (PointsTransaction.objects.count(), Reservation.objects.count(), OutboxEvent.objects.count())

    response = portal.client.post(
        f"/club/rewards/{reward.public_id}/", {"idempotency_key": str(uuid.uuid4())}
    )

    assert response.status_code == 422
    assert 'id="club-redeem-error">Not enough points available.<' in _html(response)
    assert (
        PointsTransaction.objects.count(),
        Reservation.objects.count(),
        OutboxEvent.objects.count(),
    ) == before
    assert not Redemption.objects.exists()
    member.refresh_from_db()
    assert (member.available, member.reserved) == (1_200, 0)
    assert VoucherCode.objects.filter(reward=reward, state="available").count() == 3


def test_a_physical_reward_asks_for_the_address(setting) -> None:
    programme, portal, member = setting
    mug = RewardFactory(programme=programme, kind="physical", points_cost=300, stock=5, name_en="Mug")
    page = portal.client.get(f"/club/rewards/{mug.public_id}/")
    assert "Where should we send it?" in _html(page)
    key = _form_key(_html(page))

    missing = portal.client.post(f"/club/rewards/{mug.public_id}/", {"idempotency_key": key})
    assert missing.status_code == 422
    html = _html(missing)
    for field in ("shipping_name", "shipping_street", "shipping_postcode", "shipping_city"):
        assert re.search(rf'name="{field}"[^>]*is-invalid', html), field
    assert not Redemption.objects.exists()
    bad_postcode = portal.client.post(
        f"/club/rewards/{mug.public_id}/", {**ADDRESS, "shipping_postcode": "2012", "idempotency_key": key}
    )
    assert "An Italian postcode has 5 digits." in _html(bad_postcode)
    assert not Redemption.objects.exists()

    done = portal.client.post(f"/club/rewards/{mug.public_id}/", {**ADDRESS, "idempotency_key": key})

    assert done.status_code == 302
    redemption = Redemption.objects.get(member=member)
    assert redemption.state == "awaiting_shipment"
    assert redemption.shipping_address == {
        "name": "Giulia Neri",
        "street": "Via Roma 1",
        "postcode": "20121",
        "city": "Milano",
        "province": "MI",
        "country": "IT",
    }
    mug.refresh_from_db()
    member.refresh_from_db()
    assert (mug.stock, member.available) == (4, 900)
    assert "Via Roma 1, 20121 Milano" in _html(portal.client.get("/club/redemptions/"))


def test_another_programmes_reward_and_a_bad_form_key_are_refused(setting) -> None:
    programme, portal, member = setting
    elsewhere = voucher(programme_with_tiers(code="elsewhere"), cost=10)
    assert portal.client.get(f"/club/rewards/{elsewhere.public_id}/").status_code == 404
    assert (
        portal.client.post(
            f"/club/rewards/{elsewhere.public_id}/", {"idempotency_key": str(uuid.uuid4())}
        ).status_code
        == 404
    )
    assert portal.client.get(f"/club/rewards/{uuid.uuid4()}/").status_code == 404
    reward = voucher(programme, cost=100)
    response = portal.client.post(f"/club/rewards/{reward.public_id}/", {"idempotency_key": "not-a-uuid"})
    assert response.status_code == 422
    assert "This form has expired: open the reward again." in _html(response)
    assert not Redemption.objects.exists()
    with pytest.raises(NotFound):
        club_services.club_redeem(
            actor=_actor(portal), member=member, reward=elsewhere, form_key=str(uuid.uuid4())
        )


def test_my_rewards_lists_only_my_redemptions(setting) -> None:
    programme, portal, member = setting
    reward = voucher(programme, cost=100, codes=4)
    other = portal_customer(name="Bruno Verdi")
    other_member = enrol(programme, other.customer)
    earn(other_member, 500)
    theirs = reward_redeem(actor=None, member=other_member, reward=reward, idempotency_key="theirs")
    mine = reward_redeem(actor=None, member=member, reward=reward, idempotency_key="mine")

    html = _html(portal.client.get(f"/club/redemptions/?new={theirs.public_id}"))

    assert mine.voucher.code in html
    assert theirs.voucher.code not in html and f'data-redemption="{theirs.public_id}"' not in html
    assert re.findall(r'data-redemption="([0-9a-f-]+)"', html) == [str(mine.public_id)]
    assert 'id="club-redemption-new"' not in html


def test_the_same_form_key_of_two_members_never_meets(setting) -> None:
    programme, portal, member = setting
    reward = voucher(programme, cost=100)
    other = portal_customer(name="Bruno Verdi")
    other_member = enrol(programme, other.customer)
    earn(other_member, 500)
    key = str(uuid.uuid4())

    mine = club_services.club_redeem(actor=_actor(portal), member=member, reward=reward, form_key=key)
    theirs = club_services.club_redeem(actor=_actor(other), member=other_member, reward=reward, form_key=key)

    assert mine.pk != theirs.pk
    assert (mine.member_id, theirs.member_id) == (member.pk, other_member.pk)
    # A member cannot redeem on someone else's membership through the service either.
    with pytest.raises(NotFound):
        club_services.club_redeem(actor=_actor(portal), member=other_member, reward=reward, form_key=key)


def test_the_form_key_is_bound_to_the_member() -> None:
    with time_machine.travel(NOW, tick=False):
        programme = programme_with_tiers()
        member = enrol(programme, portal_customer().customer)
    key = "1b4e28ba-2fa1-11d2-883f-0016d3cca427"
    assert (
        club_services.redemption_key(member, key)
        == f"club:{member.public_id.hex}:1b4e28ba2fa111d2883f0016d3cca427"
    )
    assert club_services.redemption_key(member, key.upper()) == club_services.redemption_key(member, key)
    with pytest.raises(ValidationFailed):
        club_services.redemption_key(member, "")


def _actor(portal):
    from fedele.accounts.facade import actor_for

    return actor_for(portal.user)
