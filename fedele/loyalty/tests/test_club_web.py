"""Member portal pages (/club/): who may see them, the home card (balance, value, pending, expiring,
tier progress, last movements), history with filters and pages, the digital card, the referral page,
in English and Italian; and that a member only ever sees their own membership."""

from __future__ import annotations

import re
from datetime import date

import pytest
import time_machine
from django.test import Client

from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.loyalty.models import Member
from fedele.loyalty.services.ledger import points_adjust
from fedele.loyalty.tests.club_fixtures import earn, enrol, portal_customer, programme_with_tiers, voucher
from fedele.loyalty.tests.factories import ProgrammeFactory

pytestmark = pytest.mark.django_db
NOW = "2026-03-10 10:00 +01:00"


def _html(response) -> str:
    return response.content.decode()


def _text(response) -> str:
    """The page's visible text with whitespace collapsed (no tags)."""
    return " ".join(re.sub(r"<[^>]+>", " ", _html(response)).split())


# who may see the portal ------------------------------------------------------------------------------


def test_anonymous_visitors_go_to_the_login_and_come_back() -> None:
    client = Client()
    response = client.get("/club/")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/club/"
    response = client.get("/club/rewards/")
    assert response["Location"] == "/accounts/login/?next=/club/rewards/"


def test_an_anonymous_referral_link_keeps_the_code_for_after_the_login() -> None:
    client = Client()
    response = client.get("/club/join/?ref=abcd2345")
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/club/join/%3Fref%3Dabcd2345"
    assert client.session["club_referral_code"] == "ABCD2345"


def test_staff_get_a_403_and_an_unlinked_login_an_explanation() -> None:
    staff = Client()
    staff.force_login(user_with_roles("agent"))
    assert staff.get("/club/").status_code == 403

    unlinked = Client()
    unlinked.force_login(user_with_roles("portal_customer", email="solo@example.it"))
    response = unlinked.get("/club/")
    assert response.status_code == 403
    assert "Your login is not linked to a customer yet" in _html(response)


def test_a_customer_who_is_not_a_member_is_sent_to_the_enrolment_page() -> None:
    programme_with_tiers()
    portal = portal_customer()
    response = portal.client.get("/club/?ref=XYZ")
    assert response.status_code == 302
    assert response["Location"] == "/club/join/?ref=XYZ"
    for page in ("/club/history/", "/club/card/", "/club/rewards/", "/club/preferences/"):
        assert portal.client.get(page)["Location"] == "/club/join/"


# home ------------------------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_home_shows_balance_value_pending_tier_progress_and_the_last_five_movements() -> None:
    programme = programme_with_tiers(point_value="0.012500")
    portal = portal_customer()
    member = enrol(programme, portal.customer)
    for points in (100, 150, 200, 250, 300, 250):  # 1,250 available
        earn(member, points)
    earn(member, 40, pending_days=14)

    response = portal.client.get("/club/")

    assert response.status_code == 200
    text = _text(response)
    assert "Friends Club" in text
    assert re.search(r'id="club-balance">1,250 <small>points</small>', _html(response))
    assert "Worth €15.63" in text  # 1,250 × 0.0125 = 15.625 → 15.63 (half up)
    assert "40 pending" in text
    # 1,290 qualifying points (pending ones count): Silver reached at 1,000 → the next is Gold (5,000).
    member.refresh_from_db()
    assert member.tier.code == "silver"
    assert re.search(r'id="club-tier-badge">.*Silver</span>', _html(response))
    assert "3,710 points to Gold" in text
    assert 'aria-valuenow="25"' in _html(response)  # 1,290 / 5,000 = 25.8 % → 25
    recent = re.findall(r'<li class="list-group-item[^"]*" data-kind="(\w+)"', _html(response))
    assert recent == ["earn"] * 5
    assert "+40" in text and "+250" in text and "+100" not in text  # newest five only
    assert member.card_number[:4] in text


@time_machine.travel(NOW, tick=False)
def test_home_of_a_member_with_nothing_yet() -> None:
    programme = programme_with_tiers()
    portal = portal_customer()
    enrol(programme, portal.customer)
    text = _text(portal.client.get("/club/"))
    assert "Worth €0.00" in text
    assert "1,000 points to Silver" in text
    assert "No movements yet" in text
    assert "expire soon" not in text and "pending" not in text


def test_home_warns_about_points_that_expire_soon() -> None:
    programme = programme_with_tiers(expiry_months=12, expiry_notice_days=30)
    portal = portal_customer()
    member = enrol(programme, portal.customer)
    with time_machine.travel("2025-03-20 12:00 +01:00", tick=False):
        earn(member, 120)  # expires on 20 March 2026
    with time_machine.travel("2025-06-01 12:00 +02:00", tick=False):
        earn(member, 80)  # expires on 1 June 2026
    with time_machine.travel("2026-02-10 12:00 +01:00", tick=False):
        assert "expire soon" not in _text(portal.client.get("/club/"))  # 38 days ahead
    with time_machine.travel(NOW, tick=False):
        text = _text(portal.client.get("/club/"))
    assert "120 points expire soon" in text
    assert "The first ones expire on 20 March 2026" in text


@time_machine.travel(NOW, tick=False)
def test_home_in_italian_uses_the_italian_names_and_number_format() -> None:
    programme = programme_with_tiers(point_value="0.010000")
    portal = portal_customer(language="it")
    member = enrol(programme, portal.customer)
    earn(member, 1234)

    response = portal.client.get("/club/")

    html = _html(response)
    assert 'lang="it"' in html
    assert "Club Amici" in html and "Friends Club" not in html
    assert 'id="club-balance">1.234 <small>punti</small>' in html
    assert "12,34" in html
    assert "Argento" in html and "Oro" in html


# history ---------------------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_history_pages_and_filters() -> None:
    programme = programme_with_tiers()
    portal = portal_customer()
    member = enrol(programme, portal.customer)
    for index in range(24):
        earn(member, 10 + index)
    reward = voucher(programme, cost=100)
    from fedele.loyalty.services.rewards import reward_redeem

    reward_redeem(actor=None, member=member, reward=reward, idempotency_key="history-1")
    points_adjust(actor=None, member=member, points=-5, reason="goodwill correction", idempotency_key="adj-1")

    first = portal.client.get("/club/history/")
    rows = re.findall(r'data-kind="(\w+)"', _html(first))
    assert len(rows) == 20
    assert rows[:3] == ["adjust", "redeem", "earn"]
    assert "-100" in _text(first) and "−5" not in _text(first) and "-5" in _text(first)
    assert "€5 voucher" in _text(first)
    more = re.search(r'href="/club/history/\?before=(\d+)"', _html(first))
    assert more is not None

    second = portal.client.get(f"/club/history/?before={more.group(1)}", HTTP_HX_REQUEST="true")
    assert "<html" not in _html(second)
    assert len(re.findall(r'data-kind="(\w+)"', _html(second))) == 6
    assert "Show older movements" not in _html(second)

    redeemed = portal.client.get("/club/history/?kind=redeem")
    assert re.findall(r'data-kind="(\w+)"', _html(redeemed)) == ["redeem"]
    earned = portal.client.get("/club/history/?kind=earn")
    assert len(re.findall(r'data-kind="(\w+)"', _html(earned))) == 20
    expired = portal.client.get("/club/history/?kind=expire")
    assert "No movements to show." in _html(expired)
    assert portal.client.get("/club/history/?kind=nonsense").status_code == 200


@time_machine.travel(NOW, tick=False)
def test_history_query_count_does_not_grow_with_the_page(django_assert_max_num_queries) -> None:
    programme = programme_with_tiers()
    portal = portal_customer()
    member = enrol(programme, portal.customer)
    for _index in range(20):
        earn(member, 5)
    portal.client.get("/club/history/")  # warm the session and caches
    with django_assert_max_num_queries(12):
        response = portal.client.get("/club/history/")
    assert len(re.findall(r'data-kind="earn"', _html(response))) == 20


# card and referral -----------------------------------------------------------------------------------


def test_the_digital_card_shows_the_card_number_and_its_qr_code() -> None:
    programme = programme_with_tiers()
    portal = portal_customer()
    member = enrol(programme, portal.customer)

    response = portal.client.get("/club/card/")

    html = _html(response)
    spaced = " ".join(member.card_number[i : i + 4] for i in range(0, 16, 4))
    assert f'id="club-card-number">{spaced}<' in html
    svg = re.search(r'<figure class="club-qr-frame[^>]*>\s*(<svg[^>]*>)', html)
    assert svg is not None and 'class="club-qr"' in svg.group(1) and "viewBox" in svg.group(1)
    import segno

    # The code on the page is the card number's QR code, module for module: redraw the SVG path's
    # runs ("M x y", "h n", "m dx dy") into a grid and compare it with the card number's matrix.
    expected = segno.make_qr(member.card_number, error="m")
    size = expected.symbol_size(border=0)[0]
    assert f'viewBox="0 0 {size + 4} {size + 4}"' in svg.group(1)
    path = re.search(r'<path stroke="#000" d="([^"]+)"', html)
    assert path is not None
    dark: set[tuple[int, int]] = set()
    x = y = 0.0
    for command, first, second in re.findall(r"([Mmh])(-?[\d.]+)(?: (-?[\d.]+))?", path.group(1)):
        if command == "M":
            x, y = float(first), float(second)
        elif command == "m":
            x, y = x + float(first), y + float(second)
        else:
            dark.update((int(y - 0.5) - 2, int(x) - 2 + step) for step in range(int(first)))
            x += float(first)
    matrix = {(row, col) for row, line in enumerate(expected.matrix) for col, bit in enumerate(line) if bit}
    assert dark == matrix


@time_machine.travel(NOW, tick=False)
def test_the_referral_page_shows_the_link_and_counts_the_friends(settings) -> None:
    settings.FEDELE_PUBLIC_URL = "https://club.example.it"
    programme = programme_with_tiers()
    portal = portal_customer()
    member = enrol(programme, portal.customer)
    for _index in range(2):
        enrol(programme, CustomerFactory(), referral_code=member.referral_code)
    enrol(programme, CustomerFactory())  # not referred

    response = portal.client.get("/club/referral/")

    html = _html(response)
    assert f'value="https://club.example.it/club/join/?ref={member.referral_code}"' in html
    assert 'id="club-referral-count">2<' in html
    assert "friends joined with your link" in html


# one member never sees another's ---------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_each_member_sees_only_their_own_membership() -> None:
    programme = programme_with_tiers()
    other_programme = programme_with_tiers(code="other", name_en="Other Club", name_it="Altro Club")
    anna, bruno = portal_customer(name="Anna Rossi"), portal_customer(name="Bruno Verdi")
    anna_member = enrol(programme, anna.customer)
    bruno_member = enrol(programme, bruno.customer)
    enrol(other_programme, bruno.customer)
    earn(anna_member, 700)
    earn(bruno_member, 300)

    page = _html(anna.client.get("/club/"))
    assert 'id="club-balance">700 ' in page and bruno_member.card_number[:8] not in page
    # Asking for a programme Anna has not joined shows her own membership, never someone else's.
    page = _html(anna.client.get("/club/?programme=other"))
    assert "Other Club" not in page and 'id="club-balance">700 ' in page
    card = _html(anna.client.get("/club/card/"))
    assert anna_member.card_number[:4] in card and bruno_member.card_number[-4:] not in card
    # Bruno chooses between his two programmes; the choice stays.
    assert "Other Club" in _html(bruno.client.get("/club/?programme=other"))
    assert 'id="club-balance">0 ' in _html(bruno.client.get("/club/"))
    assert 'id="club-balance">300 ' in _html(bruno.client.get(f"/club/?programme={programme.code}"))


def test_draft_programmes_and_closed_memberships_stay_out_of_the_portal() -> None:
    draft = ProgrammeFactory(status="draft", name_en="Secret Club")
    portal = portal_customer()
    Member.objects.create(
        programme=draft,
        customer=portal.customer,
        card_number="8000000000009999",
        referral_code="DRAFT001",
        enrolled_at=date(2026, 1, 1).isoformat() + "T00:00:00Z",
    )
    response = portal.client.get("/club/join/")
    assert "Secret Club" not in _html(response)
    assert "There is no programme to join at the moment." in _html(response)


# the home dashboard card ------------------------------------------------------------------------------


@time_machine.travel(NOW, tick=False)
def test_the_home_dashboard_shows_the_club_card_or_an_invitation() -> None:
    programme = programme_with_tiers(point_value="0.020000")
    portal = portal_customer()

    invitation = _html(portal.client.get("/"))
    assert 'id="portal-club-card"' in invitation and 'href="/club/join/"' in invitation

    member = enrol(programme, portal.customer)
    earn(member, 450)
    card = _html(portal.client.get("/"))
    assert 'id="portal-club-balance">450 <span class="fs-6 fw-normal">points</span>' in card
    assert "Worth €9.00" in card and "Bronze" in card

    staff = Client()
    staff.force_login(user_with_roles("agent"))
    assert 'id="portal-club-card"' not in _html(staff.get("/"))
