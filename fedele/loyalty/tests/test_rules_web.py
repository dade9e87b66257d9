"""Pages: rules list, editor (conditions rows, preview of the unsaved rule), simulator (htmx partial,
writes nothing), campaigns, events log, permissions and the Italian rendering."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
import time_machine
from django.test import Client
from django.urls import reverse

from fedele.accounts.tests.factories import user_with_roles
from fedele.loyalty.models import Campaign, EarningRule
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory, standard_tiers
from fedele.loyalty.tests.rules_support import make_rule, row_counts, spend
from fedele.shared.navigation import SECTIONS

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 7, 1, 8, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> object:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def manager_client(client: Client) -> Client:
    client.force_login(user_with_roles("loyalty_manager"))
    return client


def _rule_form(**changes: object) -> dict[str, object]:
    form: dict[str, object] = {
        "programme": "club",
        "code": "web-double",
        "name_en": "Web purchases",
        "name_it": "Acquisti web",
        "event_type": "spend",
        "points_per_euro": "2",
        "fixed_points": "0",
        "multiplier": "1",
        "position": "3",
        "qualifying": "on",
        "cond_field": ["channel", "amount", ""],
        "cond_op": ["in", "gte", "eq"],
        "cond_value": ["web, app", "10", ""],
        "valid_from": "2026-07-01T00:00",
        "valid_until": "",
        "cap_per_member_per_day": "500",
        "cap_per_member_total": "",
        "cap_total": "",
        "campaign": "",
    }
    form.update(changes)
    return form


def test_rules_list_and_navigation(manager_client: Client) -> None:
    programme = ProgrammeFactory(code="club")
    make_rule(programme, code="base", cap_per_member_per_day=300)
    make_rule(programme, code="double", points_per_euro="0", multiplier="2", status="draft")
    page = manager_client.get(reverse("loyalty:rules_list"), {"programme": "club"}).content.decode()
    assert 'data-rule="base"' in page and 'data-rule="double"' in page
    assert "1 pt/€" in page and "× 2.00" in page and "300 per member per day" in page
    assert 'id="new-rule"' in page
    drafts = manager_client.get(
        reverse("loyalty:rules_list"), {"programme": "club", "status": "draft"}
    ).content.decode()
    assert 'data-rule="double"' in drafts and 'data-rule="base"' not in drafts
    names = {item.url_name for item in SECTIONS["loyalty"].items}
    assert {"loyalty:rules_list", "loyalty:rules_campaigns", "loyalty:rules_simulator"} <= names


def test_create_rule_with_condition_rows_in_programme_time(manager_client: Client) -> None:
    ProgrammeFactory(code="club", timezone="Europe/Rome")
    response = manager_client.post(reverse("loyalty:rules_new"), _rule_form())
    rule = EarningRule.objects.get(code="web-double")
    assert response.status_code == 302 and response["Location"] == reverse(
        "loyalty:rules_edit", args=[rule.public_id]
    )
    assert rule.conditions == [
        {"field": "channel", "op": "in", "value": ["web", "app"]},
        {"field": "amount", "op": "gte", "value": "10"},
    ]
    assert (rule.status, rule.points_per_euro, rule.pending, rule.qualifying, rule.position) == (
        "draft",
        Decimal("2"),
        False,
        True,
        3,
    )
    assert rule.valid_from == datetime(2026, 6, 30, 22, 0, tzinfo=UTC)  # midnight in Rome (CEST)
    assert rule.cap_per_member_per_day == 500 and rule.cap_total is None
    page = manager_client.get(response["Location"]).content.decode()
    assert 'value="web, app"' in page and 'value="2026-07-01T00:00"' in page


def test_bad_rule_form_shows_field_errors_and_saves_nothing(manager_client: Client) -> None:
    ProgrammeFactory(code="club")
    response = manager_client.post(
        reverse("loyalty:rules_new"),
        _rule_form(
            code="Bad Code", cond_field=["weather"], cond_op=["eq"], cond_value=["sunny"], cap_total="-3"
        ),
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert "Use 1-40 lower-case letters, digits, hyphens or underscores." in page
    assert "Unknown field &#x27;weather&#x27;." in page
    assert "Enter a whole number of points of at least 1, or leave it empty for no cap." in page
    assert 'value="sunny"' in page  # the rows come back as typed
    assert EarningRule.objects.count() == 0


def test_edit_activate_and_agent_cannot_change(manager_client: Client, client: Client) -> None:
    programme = ProgrammeFactory(code="club")
    rule = make_rule(programme, code="base", status="draft")
    url = reverse("loyalty:rules_edit", args=[rule.public_id])
    saved = manager_client.post(
        url, _rule_form(code="base", points_per_euro="3", cond_field=[], cond_op=[], cond_value=[])
    )
    assert saved.status_code == 302
    rule.refresh_from_db()
    assert (rule.points_per_euro, rule.version, rule.conditions) == (Decimal("3"), 2, [])
    activated = manager_client.post(
        reverse("loyalty:rules_status", args=[rule.public_id]), {"status": "active"}
    )
    assert activated.status_code == 302
    rule.refresh_from_db()
    assert rule.status == "active"
    refused = manager_client.post(
        reverse("loyalty:rules_status", args=[rule.public_id]), {"status": "draft"}, follow=True
    )
    assert "A active rule cannot become draft." in refused.content.decode()
    agent = Client()
    agent.force_login(user_with_roles("agent"))
    assert agent.get(url).status_code == 200  # may look
    assert agent.post(url, _rule_form(code="base", points_per_euro="9")).status_code == 403
    assert agent.get(reverse("loyalty:rules_new"), {"programme": "club"}).status_code == 403
    portal = Client()
    portal.force_login(user_with_roles("portal_customer"))
    assert portal.get(reverse("loyalty:rules_list")).status_code == 403
    rule.refresh_from_db()
    assert rule.points_per_euro == Decimal("3")


def test_preview_evaluates_the_unsaved_rule_and_writes_nothing(manager_client: Client) -> None:
    programme = ProgrammeFactory(code="club", rounding="down")
    gold = standard_tiers(programme)[2]
    member = MemberFactory(programme=programme, tier=gold)
    rule = make_rule(programme, code="base", cap_per_member_per_day=100)
    spend(member, "40.00")  # 40 × 1.5 (gold) = 60 of today's 100 used
    before = row_counts()
    response = manager_client.post(
        reverse("loyalty:rules_preview"),
        {
            **_rule_form(
                code="base",
                points_per_euro="1.5",
                cond_field=[],
                cond_op=[],
                cond_value=[],
                cap_per_member_per_day="100",
            ),
            "rule": str(rule.public_id),
            "preview_amount_eur": "50,00",
            "preview_member": member.card_number,
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    page = response.content.decode()
    # 1.5 × 50 = 75 × 1.5 (gold) = 112.5 → 112, trimmed to the 40 left today.
    assert 'data-points="40"' in page and "daily cap per member reached" in page
    assert row_counts() == before
    rule.refresh_from_db()
    assert rule.points_per_euro == Decimal("1") and rule.version == 1
    invalid = manager_client.post(
        reverse("loyalty:rules_preview"), {**_rule_form(multiplier="0"), "preview_amount_eur": "x"}
    )
    assert invalid.status_code == 422 and "Enter a multiplier from 1 to 100" in invalid.content.decode()


def test_simulator_page_and_partial(manager_client: Client) -> None:
    programme = ProgrammeFactory(code="club", rounding="up")
    make_rule(programme, code="base")
    make_rule(
        programme,
        code="shoes",
        points_per_euro="0",
        fixed_points=25,
        conditions=[{"field": "product_category", "op": "eq", "value": "shoes"}],
    )
    member = MemberFactory(programme=programme)
    page = manager_client.get(reverse("loyalty:rules_simulator"), {"programme": "club"}).content.decode()
    assert 'id="simulator-form"' in page
    before = row_counts()
    form = {
        "programme": "club",
        "member": member.card_number,
        "event_type": "spend",
        "amount_eur": "10.01",
        "product_categories": "Shoes, socks",
    }
    partial = manager_client.post(reverse("loyalty:rules_simulator"), form, HTTP_HX_REQUEST="true")
    assert partial.status_code == 200
    body = partial.content.decode()
    assert "<html" not in body and 'data-points="36"' in body  # 10.01 rounded up → 11, + 25
    full = manager_client.post(
        reverse("loyalty:rules_simulator"), {**form, "product_categories": ""}
    ).content.decode()
    assert "<html" in full and 'data-points="11"' in full and "a condition does not hold" in full
    bad = manager_client.post(
        reverse("loyalty:rules_simulator"),
        {**form, "member": "nobody", "attributes": "[1]"},
        HTTP_HX_REQUEST="true",
    )
    assert bad.status_code == 422
    assert "No member of this programme has this card number." in bad.content.decode()
    assert row_counts() == before


def test_campaign_pages(manager_client: Client) -> None:
    programme = ProgrammeFactory(code="club", timezone="Europe/Rome")
    created = manager_client.post(
        reverse("loyalty:rules_campaign_new"),
        {
            "programme": "club",
            "code": "summer",
            "name_en": "Summer",
            "name_it": "Estate",
            "starts_at": "2026-07-01T00:00",
            "ends_at": "2026-09-01T00:00",
            "holdout_percent": "15",
            "budget_points": "",
        },
    )
    campaign = Campaign.objects.get(code="summer")
    assert created.status_code == 302
    assert (campaign.starts_at, campaign.holdout_percent, campaign.budget_points, campaign.status) == (
        datetime(2026, 6, 30, 22, 0, tzinfo=UTC),
        15,
        None,
        "draft",
    )
    manager_client.post(
        reverse("loyalty:rules_campaign_status", args=[campaign.public_id]), {"status": "active"}
    )
    make_rule(programme, code="double", points_per_euro="0", multiplier="2", campaign="summer")
    spend(MemberFactory(programme=programme), "10")
    listing = manager_client.get(reverse("loyalty:rules_campaigns"), {"programme": "club"}).content.decode()
    assert 'data-campaign="summer"' in listing and "2026-07-01 00:00" in listing and "15%" in listing
    edit = manager_client.post(
        reverse("loyalty:rules_campaign_edit", args=[campaign.public_id]),
        {
            "code": "summer",
            "name_en": "Summer",
            "starts_at": "2026-07-01T00:00",
            "ends_at": "2026-06-01T00:00",
            "holdout_percent": "15",
        },
    )
    assert edit.status_code == 422 and "The campaign must end after it starts." in edit.content.decode()
    detail = manager_client.get(
        reverse("loyalty:rules_campaign_edit", args=[campaign.public_id])
    ).content.decode()
    assert 'id="campaign-rules"' in detail and "double" in detail


def test_events_log(manager_client: Client) -> None:
    programme = ProgrammeFactory(code="club")
    make_rule(programme, code="big", conditions=[{"field": "amount", "op": "gte", "value": "50"}])
    member = MemberFactory(programme=programme)
    spend(member, "80.00", "R-80")
    spend(member, "20.00", "R-20")
    page = manager_client.get(reverse("loyalty:rules_events"), {"programme": "club"}).content.decode()
    assert 'data-event="R-80"' in page and 'data-event="R-20"' in page
    assert "big: a condition does not hold" in page
    filtered = manager_client.get(
        reverse("loyalty:rules_events"), {"programme": "club", "member": "nobody"}
    ).content.decode()
    assert (
        "No member of this programme has this card number." in filtered
        and 'data-event="R-80"' not in filtered
    )


def test_rules_pages_in_italian(client: Client) -> None:
    programme = ProgrammeFactory(code="club")
    make_rule(programme, code="base", cap_per_member_per_day=300, name_it="Base negozio")
    client.force_login(user_with_roles("loyalty_manager", language="it"))
    page = client.get(
        reverse("loyalty:rules_list"), {"programme": "club"}, HTTP_ACCEPT_LANGUAGE="it"
    ).content.decode()
    assert 'lang="it"' in page
    assert "Base negozio" in page
    assert "Regole di accumulo" in page
    assert "300 per socio al giorno" in page
    assert "attivo" in page  # the rule status, translated
