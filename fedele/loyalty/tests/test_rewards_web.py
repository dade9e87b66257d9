"""Pages of the rewards area: catalogue list/editor, code pool, fulfilment queue (htmx rows)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.test import Client
from django.urls import reverse
from django.utils import translation

from fedele.accounts.tests.factories import user_with_roles
from fedele.loyalty.models import Redemption, Reward, VoucherCode
from fedele.loyalty.services import rewards as services
from fedele.loyalty.tests.rewards_support import ADDRESS, member_with, reward, voucher, world
from fedele.shared.navigation import SECTIONS
from fedele.shared.scheduler import PERIODIC_JOBS

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def _form(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "code": "umbrella",
        "kind": "physical",
        "name_it": "Ombrello",
        "name_en": "Umbrella",
        "points_cost": "1500",
        "cash_price": "",
        "stock": "20",
        "active": "on",
        "position": "1",
    }
    data.update(overrides)
    return data


def test_catalogue_list_shows_stock_and_codes_left(client: Client) -> None:
    w = world()
    voucher(w.programme, ["A1", "A2", "A3"], code="cinema", points_cost=800)
    reward(w.programme, code="mug", stock=0)
    client.force_login(user_with_roles("agent"))
    page = client.get(reverse("loyalty:rewards_list")).content.decode()
    assert 'data-reward="cinema"' in page and 'data-reward="mug"' in page
    assert '<span class="badge text-bg-danger">0</span>' in page  # the mug is out of stock
    assert "New reward" not in page  # agents see, managers edit
    partial = client.get(reverse("loyalty:rewards_list"), {"kind": "voucher"}, **HTMX)
    body = partial.content.decode()
    assert body.lstrip().startswith('<div class="table-responsive card" id="rewards-table">')
    assert 'data-reward="cinema"' in body and 'data-reward="mug"' not in body


def test_catalogue_in_italian(client: Client) -> None:
    w = world()
    reward(w.programme, code="bag", name_it="Borsa termica", name_en="Cooler bag", points_cost=12_500)
    client.force_login(user_with_roles("loyalty_manager", language="it"))
    page = client.get(reverse("loyalty:rewards_list"), HTTP_ACCEPT_LANGUAGE="it").content.decode()
    assert "Borsa termica" in page and "Cooler bag" not in page
    assert "12.500" in page  # Italian thousands separator
    with translation.override("it"):
        assert translation.gettext("Code or name") in page


def test_only_loyalty_staff_see_the_pages(client: Client) -> None:
    client.force_login(user_with_roles("portal_customer"))
    assert client.get(reverse("loyalty:rewards_list")).status_code == 403
    assert client.get(reverse("loyalty:rewards_redemptions")).status_code == 403
    client.force_login(user_with_roles("agent"))
    assert client.get(reverse("loyalty:rewards_create")).status_code == 403


def test_create_reward_from_the_editor(client: Client) -> None:
    w = world()
    other = world()
    client.force_login(user_with_roles("loyalty_manager"))
    url = reverse("loyalty:rewards_create")
    choose = client.get(url).content.decode()  # two programmes: which one?
    assert f"?programme={w.programme.code}" in choose and f"?programme={other.programme.code}" in choose
    # The kind-specific fields are there, shown by Alpine according to the kind.
    page = client.get(url, {"programme": w.programme.code}).content.decode()
    assert 'data-kind="billing_credit"' in page and 'x-model="kind"' in page
    response = client.post(
        url,
        {
            **_form(valid_from="2026-07-01T00:00", eligible_tiers=["gold"], charity_name="ignored"),
            "programme": w.programme.code,
        },
    )
    assert response.status_code == 302
    created = Reward.objects.get(code="umbrella")
    assert response["Location"] == reverse("loyalty:rewards_detail", args=[created.public_id])
    assert (created.points_cost, created.stock, created.eligible_tiers) == (1_500, 20, ["gold"])
    assert created.charity_name == ""  # a field of another kind is not sent
    assert created.valid_from == dt.datetime(2026, 6, 30, 22, 0, tzinfo=dt.UTC)


def test_editor_shows_service_errors_under_the_fields(client: Client) -> None:
    w = world()
    reward(w.programme, code="umbrella")
    client.force_login(user_with_roles("loyalty_manager"))
    response = client.post(
        reverse("loyalty:rewards_create"),
        {**_form(kind="billing_credit", credit_amount=""), "programme": w.programme.code},
    )
    assert response.status_code == 422
    page = response.content.decode()
    assert "Another reward of this programme has this code." in page
    assert "A discount on the next invoice needs an amount greater than zero." in page
    assert Reward.objects.count() == 1


def test_edit_reward_and_read_only_for_agents(client: Client) -> None:
    w = world()
    item = reward(w.programme, code="umbrella", stock=5)
    url = reverse("loyalty:rewards_detail", args=[item.public_id])
    client.force_login(user_with_roles("loyalty_manager"))
    response = client.post(url, {**_form(stock="7", name_en="Big umbrella"), "programme": w.programme.code})
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.stock, item.name_en) == (7, "Big umbrella")
    client.force_login(user_with_roles("agent"))
    page = client.get(url).content.decode()
    assert 'id="reward-save"' not in page and "disabled" in page
    assert client.post(url, _form(stock="1")).status_code == 403
    item.refresh_from_db()
    assert item.stock == 7


def test_code_pool_generate_and_import_with_htmx(client: Client) -> None:
    w = world()
    item = voucher(w.programme, ["OLD-1"])
    client.force_login(user_with_roles("loyalty_manager"))
    generated = client.post(
        reverse("loyalty:rewards_codes_generate", args=[item.public_id]),
        {"count": "40", "code_prefix": "GIFT", "length": "8"},
        **HTMX,
    )
    assert generated.status_code == 200
    assert "40 codes generated." in generated.content.decode()
    assert VoucherCode.objects.filter(reward=item, code__startswith="GIFT").count() == 40
    refused = client.post(
        reverse("loyalty:rewards_codes_import", args=[item.public_id]),
        {"codes": "NEW-1\nOLD-1\nNEW-1"},
        **HTMX,
    )
    assert refused.status_code == 422
    body = refused.content.decode()
    assert "line 2" in body and "already in the pool" in body and "line 3" in body
    assert VoucherCode.objects.filter(reward=item).count() == 41
    from django.core.files.uploadedfile import SimpleUploadedFile

    upload = SimpleUploadedFile("codes.csv", b"code\nNEW-1\nNEW-2\n", content_type="text/csv")
    imported = client.post(
        reverse("loyalty:rewards_codes_import", args=[item.public_id]), {"file": upload}, **HTMX
    )
    assert imported.status_code == 200
    assert "2 codes imported." in imported.content.decode()
    assert VoucherCode.objects.filter(reward=item).count() == 43


def test_fulfilment_queue_ship_with_tracking(client: Client) -> None:
    w = world()
    member = member_with(w.programme, 5_000)
    item = reward(w.programme, points_cost=1_000, stock=3)
    with time_machine.travel(dt.datetime(2026, 3, 1, 10, 0, tzinfo=dt.UTC), tick=False):
        first = services.reward_redeem(
            actor=None, member=member, reward=item, idempotency_key="a", shipping_address=ADDRESS
        )
    with time_machine.travel(dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC), tick=False):
        second = services.reward_redeem(
            actor=None, member=member, reward=item, idempotency_key="b", shipping_address=ADDRESS
        )
    client.force_login(user_with_roles("agent"))
    page = client.get(reverse("loyalty:rewards_redemptions")).content.decode()
    assert page.index(f"redemption-{first.public_id}") < page.index(f"redemption-{second.public_id}")
    assert "2 items are waiting to be shipped." in page
    assert "00184 Roma" in page
    empty = client.post(
        reverse("loyalty:rewards_redemption_ship", args=[first.public_id]), {"tracking": ""}, **HTMX
    )
    assert empty.status_code == 422
    assert "Enter the tracking number" in empty.content.decode()
    shipped = client.post(
        reverse("loyalty:rewards_redemption_ship", args=[first.public_id]), {"tracking": "SDA 4455"}, **HTMX
    )
    assert shipped.status_code == 200
    row = shipped.content.decode()
    assert 'data-state="shipped"' in row and "SDA 4455" in row
    first.refresh_from_db()
    assert (first.state, first.tracking) == ("shipped", "SDA 4455")
    cancelled = client.post(
        reverse("loyalty:rewards_redemption_cancel", args=[second.public_id]),
        {"reason": "Cancelled by staff"},
        HTTP_HX_PROMPT="Address does not exist",
        **HTMX,
    )
    assert cancelled.status_code == 200 and 'data-state="cancelled"' in cancelled.content.decode()
    second.refresh_from_db()
    assert second.state == "cancelled"
    member.refresh_from_db()
    assert member.available == 4_000
    assert (
        client.get(reverse("loyalty:rewards_redemptions")).content.decode().count('<tr id="redemption-') == 0
    )
    every = client.get(reverse("loyalty:rewards_redemptions"), {"state": "all"}).content.decode()
    assert every.count('<tr id="redemption-') == 2


def test_confirm_a_reservation_from_the_queue_without_htmx(client: Client) -> None:
    w = world()
    member = member_with(w.programme, 1_000)
    item = voucher(w.programme, ["Q1"], points_cost=100, cash_price=Decimal("1.00"))
    held = services.reward_redeem(actor=None, member=member, reward=item, idempotency_key="q", confirm=False)
    client.force_login(user_with_roles("agent"))
    page = client.get(reverse("loyalty:rewards_redemptions"), {"state": "reserved"}).content.decode()
    assert reverse("loyalty:rewards_redemption_confirm", args=[held.public_id]) in page
    response = client.post(reverse("loyalty:rewards_redemption_confirm", args=[held.public_id]))
    assert response.status_code == 302
    assert Redemption.objects.get(pk=held.pk).state == "fulfilled"


def test_openapi_documents_the_rewards_routes(client: Client) -> None:
    schema = client.get("/api/v1/openapi.json").json()
    paths = schema["paths"]
    assert "/api/v1/loyalty/members/{member_id}/redemptions" in paths
    assert "/api/v1/loyalty/redemptions/{redemption_id}/ship" in paths
    assert "/api/v1/loyalty/rewards/{reward_id}/codes/import" in paths


def test_start_up_registrations() -> None:
    names = [item.url_name for item in SECTIONS["loyalty"].items]
    assert "loyalty:rewards_list" in names and "loyalty:rewards_redemptions" in names
    job = PERIODIC_JOBS["loyalty-rewards-timeouts"]
    assert (job.task_name, job.every_seconds) == ("loyalty.rewards_reservations_cleanup", 60)


def test_dashboard_card_for_staff_when_items_wait(client: Client) -> None:
    w = world()
    member = member_with(w.programme, 1_000)
    client.force_login(user_with_roles("agent"))
    assert 'id="rewards-fulfilment-card"' not in client.get("/").content.decode()
    services.reward_redeem(
        actor=None, member=member, reward=reward(w.programme), idempotency_key="x", shipping_address=ADDRESS
    )
    assert 'id="rewards-fulfilment-card"' in client.get("/").content.decode()


def test_cleanup_task_runs_the_service() -> None:
    from fedele.loyalty.jobs.rewards import rewards_reservations_cleanup

    t0 = dt.datetime(2026, 5, 1, 8, 0, tzinfo=dt.UTC)
    with time_machine.travel(t0, tick=False):
        w = world()
        member = member_with(w.programme, 1_000)
        services.reward_redeem(
            actor=None, member=member, reward=voucher(w.programme, ["Z"]), idempotency_key="z", confirm=False
        )
    with time_machine.travel(t0 + dt.timedelta(minutes=20), tick=False):
        assert rewards_reservations_cleanup.delay().get() == 1
    assert Redemption.objects.get().state == "cancelled"
