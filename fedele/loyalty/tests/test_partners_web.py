"""Partner pages: the back office under /loyalty/partners/ and the partner portal under /partner/."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from fedele.accounts.models import ApiToken, User
from fedele.accounts.tests.factories import OrganisationFactory, user_with_roles
from fedele.loyalty.models import Partner, PartnerSettlement
from fedele.loyalty.services.partners import partner_burn, partner_earn
from fedele.loyalty.services.settlements import settlement_generate, settlement_issue
from fedele.loyalty.tests.partners_fixtures import (
    at,
    coalition,
    member_with,
    partner_actor,
    partner_with_user,
)
from fedele.shared.navigation import SECTIONS

pytestmark = pytest.mark.django_db
D = Decimal


@pytest.fixture(autouse=True)
def _frozen() -> Any:
    with time_machine.travel(at(2026, 3, 10), tick=False) as traveller:
        yield traveller


@pytest.fixture
def world() -> dict[str, Any]:
    programme = coalition(code="coal")
    shop, shop_user = partner_with_user(
        programme,
        code="shop",
        name="Bottega",
        earn_price_per_point=D("0.012345"),
        burn_price_per_point=D("0.0095"),
    )
    fuel, fuel_user = partner_with_user(programme, code="fuel", name="Benzina")
    member = member_with(programme, 1_000, card="9000000000000001")
    actor = partner_actor(shop_user)
    partner_earn(actor=actor, partner=shop, card_number=member.card_number, points=81, external_id="E1")
    partner_burn(actor=actor, partner=shop, card_number=member.card_number, points=250, external_id="B1")
    return {
        "programme": programme,
        "shop": shop,
        "shop_user": shop_user,
        "fuel": fuel,
        "fuel_user": fuel_user,
    }


def _manager(client: Client, language: str = "en") -> User:
    user = user_with_roles("loyalty_manager", language=language)
    client.force_login(user)
    return user


# -- back office ------------------------------------------------------------------------------------


def test_list_and_detail_show_prices_figures_and_chart(client: Client, world: dict[str, Any]) -> None:
    _manager(client)
    listing = client.get(reverse("loyalty:partners_list")).content.decode()
    assert "Bottega" in listing and "0.012345" in listing and 'id="new-partner"' in listing
    page = client.get(reverse("loyalty:partners_detail", args=[world["shop"].public_id]))
    assert page.status_code == 200
    html = page.content.decode()
    assert '<div class="fs-4 fw-semibold" id="figure-issued">81</div>' in html
    assert '<span id="figure-to">2.38</span>' in html
    assert 'id="figure-net">-1.38 EUR' in html
    assert html.count("<g transform=") == 12  # twelve months in the chart
    assert '<td>2026-03</td><td class="text-end">81</td><td class="text-end">250</td>' in html
    assert world["shop_user"].email in html
    assert any(item.url_name == "loyalty:partners_list" for item in SECTIONS["loyalty"].items)


def test_pages_need_loyalty_permissions(client: Client, world: dict[str, Any]) -> None:
    shop = world["shop"]
    client.force_login(user_with_roles("technician"))
    assert client.get(reverse("loyalty:partners_list")).status_code == 403
    client.force_login(user_with_roles("agent"))
    assert client.get(reverse("loyalty:partners_list")).status_code == 200
    assert client.get(reverse("loyalty:partners_new")).status_code == 403
    response = client.post(reverse("loyalty:partners_status", args=[shop.public_id]), {"status": "suspended"})
    assert response.status_code == 403
    assert Partner.objects.get(pk=shop.pk).status == "active"
    client.force_login(world["fuel_user"])
    assert client.get(reverse("loyalty:partners_detail", args=[shop.public_id])).status_code == 403


def test_create_a_partner_through_the_form(client: Client, world: dict[str, Any]) -> None:
    _manager(client)
    form = {
        "programme": str(world["programme"].public_id),
        "code": "air",
        "name": "Air Fedele",
        "earn_price_per_point": "0,008",
        "burn_price_per_point": "0.0095",
        "can_earn": "on",
        "user_email": "ops@air.example",
        "user_language": "en",
    }
    bad = client.post(reverse("loyalty:partners_new"), {**form, "code": "Bad Code"})
    assert bad.status_code == 422 and 'id="partner-errors"' in bad.content.decode()
    assert not Partner.objects.filter(name="Air Fedele").exists()
    created = client.post(reverse("loyalty:partners_new"), form)
    partner = Partner.objects.get(code="air")
    assert created.status_code == 302 and created["Location"] == reverse(
        "loyalty:partners_detail", args=[partner.public_id]
    )
    assert (partner.earn_price_per_point, partner.can_earn, partner.can_burn) == (D("0.008000"), True, False)
    assert User.objects.get(email="ops@air.example").organisation_id == partner.organisation_id


def test_edit_suspend_and_issue_a_token_shown_once(client: Client, world: dict[str, Any]) -> None:
    _manager(client)
    shop = world["shop"]
    detail = reverse("loyalty:partners_detail", args=[shop.public_id])
    edited = client.post(
        reverse("loyalty:partners_edit", args=[shop.public_id]),
        {
            "name": "Bottega 2",
            "earn_price_per_point": "0.02",
            "burn_price_per_point": "0.01",
            "can_earn": "on",
        },
    )
    assert edited.status_code == 302
    shop.refresh_from_db()
    assert (shop.name, shop.earn_price_per_point, shop.can_burn) == ("Bottega 2", D("0.020000"), False)
    bad = client.post(
        reverse("loyalty:partners_edit", args=[shop.public_id]), {"name": "X", "earn_price_per_point": "-1"}
    )
    assert bad.status_code == 422 and "earn_price_per_point" in bad.content.decode()
    suspended = client.post(
        reverse("loyalty:partners_status", args=[shop.public_id]), {"status": "suspended", "reason": "x"}
    )
    assert suspended.status_code == 302
    assert Partner.objects.get(pk=shop.pk).status == "suspended"
    issued = client.post(
        reverse("loyalty:partners_credentials_issue", args=[shop.public_id]),
        {"user_id": str(world["shop_user"].pk), "scopes": ["loyalty:partner:read"], "name": "tills"},
    )
    html = issued.content.decode()
    token = ApiToken.objects.get(name="tills")
    assert issued.status_code == 200 and 'id="new-token"' in html and f"fdl_{token.prefix}_" in html
    assert token.scopes == ["loyalty:partner:read"]
    again = client.get(detail).content.decode()
    assert 'id="new-token"' not in again and f"fdl_{token.prefix}_" not in again
    revoked = client.post(
        reverse("loyalty:partners_credentials_revoke", args=[shop.public_id, token.public_id])
    )
    assert revoked.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_statements_generate_issue_pay_and_download(
    client: Client, world: dict[str, Any], _frozen: Any
) -> None:
    shop = world["shop"]
    _frozen.move_to(at(2026, 4, 2))
    _manager(client)
    generated = client.post(
        reverse("loyalty:partners_settlement_generate", args=[shop.public_id]), {"month": "2026-03"}
    )
    settlement = PartnerSettlement.objects.get(partner=shop)
    assert generated["Location"] == reverse(
        "loyalty:partners_settlement", args=[shop.public_id, settlement.public_id]
    )
    page = client.get(generated["Location"]).content.decode()
    assert 'id="settlement-net">-1.38 EUR' in page and 'id="issue-settlement"' in page
    client.post(reverse("loyalty:partners_settlement_issue", args=[shop.public_id, settlement.public_id]))
    client.post(reverse("loyalty:partners_settlement_paid", args=[shop.public_id, settlement.public_id]))
    settlement.refresh_from_db()
    assert settlement.state == "paid"
    csv = client.get(reverse("loyalty:partners_settlement_csv", args=[shop.public_id, settlement.public_id]))
    assert csv["Content-Disposition"] == 'attachment; filename="settlement-shop-2026-03.csv"'
    assert "net;-1,38" in csv.content.decode()
    bad = client.post(
        reverse("loyalty:partners_settlement_generate", args=[shop.public_id]), {"month": "2026-05"}
    )
    assert bad.status_code == 409 and PartnerSettlement.objects.count() == 1


def test_detail_in_italian(client: Client, world: dict[str, Any]) -> None:
    _manager(client, language="it")
    html = client.get(
        reverse("loyalty:partners_detail", args=[world["shop"].public_id]), HTTP_ACCEPT_LANGUAGE="it"
    ).content.decode()
    assert "Questo mese (marzo 2026)" in html
    assert "Punti emessi e accettati per mese" in html
    assert "Credenziali API" in html


# -- partner portal ------------------------------------------------------------------------------------


def test_portal_dashboard_transactions_and_lookup(client: Client, world: dict[str, Any]) -> None:
    client.force_login(world["shop_user"])
    dashboard = client.get(reverse("partner:partners_dashboard")).content.decode()
    assert (
        "Bottega" in dashboard
        and 'id="figure-issued">81<' in dashboard
        and 'id="figure-from">1.00<' in dashboard
    )
    assert "Benzina" not in dashboard
    transactions = client.get(reverse("partner:partners_transactions") + "?month=2026-03").content.decode()
    assert transactions.count("9000000000000001") == 2 and "2.38" in transactions
    empty = client.get(reverse("partner:partners_transactions") + "?month=2026-02").content.decode()
    assert "9000000000000001" not in empty
    found = client.get(reverse("partner:partners_member") + "?card=9000000000000001").content.decode()
    assert 'id="member-card"' in found and "831 points" in found and "Member M." in found
    assert "Rossi" not in found
    missing = client.get(reverse("partner:partners_member") + "?card=123", HTTP_HX_REQUEST="true")
    assert missing.status_code == 200 and "No member with this card number." in missing.content.decode()
    assert "<html" not in missing.content.decode()


def test_portal_shows_only_own_issued_statements(client: Client, world: dict[str, Any], _frozen: Any) -> None:
    _frozen.move_to(at(2026, 4, 2))
    shop_statement = settlement_issue(
        actor=None, settlement=settlement_generate(actor=None, partner=world["shop"], year=2026, month=3)
    )
    fuel_draft = settlement_generate(actor=None, partner=world["fuel"], year=2026, month=3)
    client.force_login(world["shop_user"])
    listing = client.get(reverse("partner:partners_settlements")).content.decode()
    assert str(shop_statement.public_id) in listing and str(fuel_draft.public_id) not in listing
    detail = client.get(reverse("partner:partners_settlement", args=[shop_statement.public_id]))
    assert detail.status_code == 200 and 'id="settlement-net">-1.38 EUR' in detail.content.decode()
    assert 'id="issue-settlement"' not in detail.content.decode()
    csv = client.get(reverse("partner:partners_settlement_csv", args=[shop_statement.public_id]))
    assert csv.status_code == 200 and csv.content.decode().startswith(
        "date;kind;transactions;points;amount_eur"
    )
    client.force_login(world["fuel_user"])
    assert (
        client.get(reverse("partner:partners_settlement", args=[shop_statement.public_id])).status_code == 404
    )
    assert (
        client.get(reverse("partner:partners_settlement_csv", args=[shop_statement.public_id])).status_code
        == 404
    )
    assert client.get(reverse("partner:partners_settlement", args=[fuel_draft.public_id])).status_code == 404


def test_portal_is_for_partner_users_only(client: Client, world: dict[str, Any]) -> None:
    assert client.get(reverse("partner:partners_dashboard")).status_code == 302  # to the sign-in page
    client.force_login(user_with_roles("loyalty_manager"))
    assert client.get(reverse("partner:partners_dashboard")).status_code == 403
    client.force_login(user_with_roles("portal_customer"))
    assert client.get(reverse("partner:partners_transactions")).status_code == 403


def test_partner_staff_land_on_their_portal(client: Client, world: dict[str, Any]) -> None:
    client.force_login(world["shop_user"])
    response = client.get("/")
    assert (response.status_code, response["Location"]) == (302, reverse("partner:partners_dashboard"))
    # A partner organisation that is not a loyalty partner keeps the customers list as its home.
    client.force_login(user_with_roles("partner", organisation=OrganisationFactory(kind="partner")))
    assert client.get("/")["Location"] == reverse("customers:list")
