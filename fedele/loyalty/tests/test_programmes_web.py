"""Pages: programmes overview, settings form, status buttons and the htmx tiers editor."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from fedele.accounts.tests.factories import user_with_roles
from fedele.loyalty.models import Programme, Tier
from fedele.loyalty.services.ledger import points_earn
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory, standard_tiers
from fedele.shared.navigation import SECTIONS

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def manager_client(client: Client) -> Client:
    client.force_login(user_with_roles("loyalty_manager", language="en"))
    return client


def _programme_with_members() -> tuple[Programme, dict[str, Tier]]:
    programme = ProgrammeFactory(
        code="club", name_en="Fedele Club", name_it="Club Fedele", point_value=Decimal("0.01")
    )
    tiers = {tier.code: tier for tier in standard_tiers(programme)}
    first = MemberFactory(programme=programme, tier=tiers["bronze"])
    MemberFactory(programme=programme, tier=tiers["bronze"])
    MemberFactory(programme=programme, tier=tiers["gold"])
    points_earn(
        actor=None, member=first, points=12_345, source="test", idempotency_key="w1", qualifying_points=0
    )
    return programme, tiers


def test_overview_shows_members_by_tier_and_liability(manager_client: Client) -> None:
    _programme_with_members()
    response = manager_client.get(reverse("loyalty:programmes_overview"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Fedele Club" in page
    assert 'data-figure="members">3<' in page
    assert 'data-figure="outstanding">12,345<' in page
    assert "€ 123.45" in page
    assert page.count('data-tier="bronze"') == 1
    assert any(item.url_name == "loyalty:programmes_overview" for item in SECTIONS["loyalty"].items)


def test_overview_in_italian(client: Client) -> None:
    _programme_with_members()
    client.force_login(user_with_roles("loyalty_manager", language="it"))
    page = client.get(reverse("loyalty:programmes_overview"), HTTP_ACCEPT_LANGUAGE="it").content.decode()
    assert "Club Fedele" in page
    assert "Bronzo" in page
    assert "€ 123,45" in page
    assert "Soci per livello" in page


def test_overview_needs_loyalty_permission(client: Client) -> None:
    client.force_login(user_with_roles("portal_customer"))
    assert client.get(reverse("loyalty:programmes_overview")).status_code == 403
    client.force_login(user_with_roles("agent"))
    assert client.get(reverse("loyalty:programmes_overview")).status_code == 200
    assert client.get(reverse("loyalty:programmes_create")).status_code == 403


def _form(programme: Programme | None = None, **changes: Any) -> dict[str, Any]:
    from fedele.loyalty.web.programmes import FIELD_NAMES

    base = programme or Programme(code="new-club", name_it="Nuovo", name_en="New")
    data = {name: getattr(base, name) for name in FIELD_NAMES}
    data.update(changes)
    return {key: ("on" if value is True else value) for key, value in data.items() if value is not False}


def test_create_and_update_through_the_form(manager_client: Client) -> None:
    invalid = manager_client.post(
        reverse("loyalty:programmes_create"), _form(timezone="Mars/Base", code="x y")
    )
    assert invalid.status_code == 422
    assert Programme.objects.count() == 0
    page = invalid.content.decode()
    assert "Unknown time zone" in page or "Enter a valid" in page
    created = manager_client.post(reverse("loyalty:programmes_create"), _form())
    assert created.status_code == 302
    programme = Programme.objects.get(code="new-club")
    assert programme.status == "draft"
    assert created["Location"] == reverse("loyalty:programmes_detail", args=["new-club"])
    updated = manager_client.post(created["Location"], _form(programme, pending_days=30, is_coalition=True))
    assert updated.status_code == 302
    programme.refresh_from_db()
    assert (programme.pending_days, programme.is_coalition) == (30, True)
    bad_zone = manager_client.post(created["Location"], _form(programme, timezone="Nowhere/Land"))
    assert bad_zone.status_code == 422
    assert "Unknown time zone (use a name like Europe/Rome)." in bad_zone.content.decode()
    programme.refresh_from_db()
    assert programme.timezone == "Europe/Rome"


def test_status_buttons(manager_client: Client) -> None:
    programme = ProgrammeFactory(code="club", status="draft")
    detail = manager_client.get(reverse("loyalty:programmes_detail", args=["club"]))
    assert "Activate" in detail.content.decode()
    response = manager_client.post(reverse("loyalty:programmes_status", args=["club"]), {"status": "active"})
    assert response.status_code == 302
    programme.refresh_from_db()
    assert programme.status == "active"
    again = manager_client.post(
        reverse("loyalty:programmes_status", args=["club"]), {"status": "active"}, follow=True
    )
    assert "cannot go from" in again.content.decode()
    page = manager_client.get(reverse("loyalty:programmes_detail", args=["club"])).content.decode()
    assert 'name="code"' in page and "disabled" in page


def test_tiers_editor_with_htmx(manager_client: Client) -> None:
    programme = ProgrammeFactory(code="club")
    create = reverse("loyalty:programmes_tier_create", args=["club"])
    added = manager_client.post(
        create,
        {"code": "bronze", "name_it": "Bronzo", "name_en": "Bronze", "threshold": "0", "benefits": ""},
        **HTMX,
    )
    assert added.status_code == 200
    assert 'data-tier="bronze"' in added.content.decode()
    added = manager_client.post(
        create,
        {
            "code": "silver",
            "name_it": "Argento",
            "name_en": "Silver",
            "threshold": "1000",
            "benefits": "free_shipping, lounge",
        },
        **HTMX,
    )
    assert Tier.objects.get(code="silver").benefits == ["free_shipping", "lounge"]
    refused = manager_client.post(
        create,
        {"code": "gold", "name_it": "Oro", "name_en": "Gold", "threshold": "500", "earn_multiplier": "-1"},
        **HTMX,
    )
    assert refused.status_code == 422
    body = refused.content.decode()
    assert body.lstrip().startswith('<div id="programme-tiers">')
    assert "is-invalid" in body and 'value="Oro"' in body
    assert Tier.objects.filter(programme=programme).count() == 2

    edit = reverse("loyalty:programmes_tier_edit", args=["club", "silver"])
    row = manager_client.get(edit, **HTMX)
    assert row.status_code == 200 and 'name="threshold"' in row.content.decode()
    bad_edit = manager_client.post(
        edit, {"name_it": "Argento", "name_en": "Silver", "threshold": "0", "earn_multiplier": "1"}, **HTMX
    )
    assert bad_edit.status_code == 422
    assert "must be higher than" in bad_edit.content.decode()
    good_edit = manager_client.post(
        edit,
        {
            "name_it": "Argento",
            "name_en": "Silver",
            "threshold": "1500",
            "earn_multiplier": "1.25",
            "support_priority": "1",
        },
        **HTMX,
    )
    assert good_edit.status_code == 200
    silver = Tier.objects.get(code="silver")
    assert (silver.threshold, silver.earn_multiplier, silver.support_priority) == (
        Decimal("1500"),
        Decimal("1.25"),
        1,
    )

    MemberFactory(programme=programme, tier=silver)
    delete = reverse("loyalty:programmes_tier_delete", args=["club", "silver"])
    in_use = manager_client.post(delete, **HTMX)
    assert in_use.status_code == 409
    assert "members are in this tier" in in_use.content.decode()
    assert Tier.objects.filter(code="silver").exists()


def test_tier_create_without_htmx_redirects(manager_client: Client) -> None:
    ProgrammeFactory(code="club")
    response = manager_client.post(
        reverse("loyalty:programmes_tier_create", args=["club"]),
        {"code": "base", "name_it": "B", "name_en": "B"},
    )
    assert response.status_code == 302
    assert Tier.objects.get().code == "base"
    refused = manager_client.post(
        reverse("loyalty:programmes_tier_create", args=["club"]),
        {"code": "base", "name_it": "B", "name_en": "B"},
    )
    assert refused.status_code == 422
    assert "Another tier of this programme has this code." in refused.content.decode()
