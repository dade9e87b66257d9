"""Rewards catalogue: create/update with validation, voucher code pools (generate, import)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from fedele.loyalty.models import Reward, VoucherCode
from fedele.loyalty.services import rewards as services
from fedele.loyalty.tests.factories import PartnerFactory
from fedele.loyalty.tests.rewards_support import (
    ADDRESS,
    footprint,
    member_with,
    reward,
    staff,
    voucher,
    world,
)
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db


def _data(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "code": "mug",
        "kind": "physical",
        "name_it": "Tazza",
        "name_en": "Mug",
        "points_cost": 500,
        "stock": 10,
    }
    data.update(overrides)
    return data


def test_create_physical_reward_with_audit() -> None:
    w = world()
    manager = staff()
    created = services.reward_create(
        actor=manager,
        programme=w.programme,
        data=_data(cash_price="4.90", eligible_tiers=["gold", "silver"], per_member_limit=2),
    )
    created.refresh_from_db()
    assert (created.code, created.kind, created.points_cost, created.stock) == ("mug", "physical", 500, 10)
    assert created.cash_price == Decimal("4.90")
    assert created.credit_amount == Decimal("0.00")
    assert created.eligible_tiers == ["gold", "silver"]
    assert created.per_member_limit == 2
    row = AuditLog.objects.get(action="loyalty.reward_created")
    assert row.object_id == str(created.public_id)
    assert row.actor_id == manager.user_id
    assert row.after is not None and row.after["points_cost"] == 500


def test_create_refuses_every_bad_field_at_once_and_writes_nothing() -> None:
    w = world()
    reward(w.programme, code="taken")
    before = footprint()
    with pytest.raises(ValidationFailed) as caught:
        services.reward_create(
            actor=staff(),
            programme=w.programme,
            data=_data(
                code="taken",
                points_cost=0,
                cash_price="1.999",
                stock=-1,
                per_member_limit=0,
                eligible_tiers=["platinum"],
                eligible_segments=["martians"],
                charity_name="Croce Rossa",
                valid_from="2026-05-01T00:00",
                valid_until="2026-04-01T00:00",
                image_url="javascript:alert(1)",
            ),
        )
    assert caught.value.code == "invalid_reward"
    assert set(caught.value.fields) == {
        "code",
        "points_cost",
        "cash_price",
        "stock",
        "per_member_limit",
        "eligible_tiers",
        "eligible_segments",
        "charity_name",
        "valid_until",
        "image_url",
    }
    assert footprint() == before


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"points_cost": -5}, "points_cost"),
        ({"points_cost": 2.5}, "points_cost"),
        ({"points_cost": True}, "points_cost"),
        ({"points_cost": 10_000_001}, "points_cost"),
        ({"kind": "billing_credit", "credit_amount": "0"}, "credit_amount"),
        ({"kind": "physical", "credit_amount": "5.00"}, "credit_amount"),
        ({"kind": "partner"}, "partner"),
        ({"kind": "donation"}, "charity_name"),
        ({"kind": "gift"}, "kind"),
        ({"name_en": ""}, "name_en"),
        ({"cash_price": 1.5}, "cash_price"),
        ({"valid_from": "yesterday"}, "valid_from"),
    ],
)
def test_create_field_rules(overrides: dict[str, object], field: str) -> None:
    w = world()
    with pytest.raises(ValidationFailed) as caught:
        services.reward_create(actor=staff(), programme=w.programme, data=_data(**overrides))
    assert field in caught.value.fields
    assert Reward.objects.count() == 0


def test_create_refuses_unknown_fields() -> None:
    w = world()
    with pytest.raises(ValidationFailed) as caught:
        services.reward_create(actor=staff(), programme=w.programme, data=_data(colour="red"))
    assert caught.value.code == "unknown_fields"
    assert caught.value.fields == {"colour": ["Unknown field."]}


def test_create_partner_billing_and_donation_kinds() -> None:
    w = world(is_coalition=True)
    partner = PartnerFactory(programme=w.programme, code="fuel")
    fuel = services.reward_create(
        actor=staff(),
        programme=w.programme,
        data=_data(code="fuel", kind="partner", partner="fuel", stock=None),
    )
    credit = services.reward_create(
        actor=staff(),
        programme=w.programme,
        data=_data(code="credit", kind="billing_credit", credit_amount="10.00", stock=None),
    )
    gift = services.reward_create(
        actor=staff(),
        programme=w.programme,
        data=_data(code="gift", kind="donation", charity_name="Banco Alimentare", stock=None),
    )
    assert fuel.partner_id == partner.pk
    assert credit.credit_amount == Decimal("10.00")
    assert gift.charity_name == "Banco Alimentare"


def test_naive_validity_is_read_in_the_programme_time_zone() -> None:
    w = world(timezone="Europe/Rome")
    created = services.reward_create(
        actor=staff(),
        programme=w.programme,
        data=_data(valid_from="2026-07-01T00:00", valid_until="2026-12-31T23:59"),
    )
    assert created.valid_from == dt.datetime(2026, 6, 30, 22, 0, tzinfo=dt.UTC)  # CEST, +2
    assert created.valid_until == dt.datetime(2026, 12, 31, 22, 59, tzinfo=dt.UTC)  # CET, +1


def test_only_managers_edit_the_catalogue() -> None:
    w = world()
    with pytest.raises(PermissionDenied):
        services.reward_create(actor=staff("agent"), programme=w.programme, data=_data())
    assert Reward.objects.count() == 0


def test_update_changes_fields_and_audits_before_after() -> None:
    w = world()
    item = services.reward_create(actor=staff(), programme=w.programme, data=_data())
    updated = services.reward_update(actor=staff(), reward=item, changes={"stock": 25, "active": False})
    assert (updated.stock, updated.active, updated.points_cost) == (25, False, 500)
    assert (item.stock, item.active) == (25, False)
    row = AuditLog.objects.get(action="loyalty.reward_updated")
    assert row.before == {"active": True, "stock": 10}
    assert row.after == {"active": False, "stock": 25}


def test_points_cost_is_fixed_once_redeemed() -> None:
    w = world()
    item = reward(w.programme, points_cost=100, stock=5)
    services.reward_update(actor=staff(), reward=item, changes={"points_cost": 120})
    member = member_with(w.programme, 500)
    services.reward_redeem(
        actor=None, member=member, reward=item, idempotency_key="k1", shipping_address=ADDRESS
    )
    with pytest.raises(Conflict) as caught:
        services.reward_update(actor=staff(), reward=item, changes={"points_cost": 150})
    assert caught.value.code == "reward_already_redeemed"
    item.refresh_from_db()
    assert item.points_cost == 120
    # Other fields stay editable.
    services.reward_update(actor=staff(), reward=item, changes={"name_en": "Big mug"})
    item.refresh_from_db()
    assert item.name_en == "Big mug"


# ----------------------------------------------------------------------------------------------
# Code pools


def test_generate_unique_codes_from_the_unambiguous_alphabet() -> None:
    w = world()
    item = reward(w.programme, kind="voucher")
    added = services.voucher_codes_generate(
        actor=staff(), reward=item, count=2_000, prefix="spring-", length=8
    )
    # 1,000 more codes of 6 characters would still be hard to guess (32^6 > 1,000 × 1e6)... not 3,000.
    with pytest.raises(ValidationFailed):
        services.voucher_codes_generate(actor=staff(), reward=item, count=1_000, length=6)
    assert added == 2_000
    codes = list(VoucherCode.objects.filter(reward=item).values_list("code", flat=True))
    assert len(codes) == len(set(codes)) == 2_000
    for code in codes:
        assert code.startswith("SPRING-") and len(code) == 15
        assert not set(code[7:]) & set("01OI")
    assert VoucherCode.objects.filter(reward=item, state="available", imported=False).count() == 2_000
    row = AuditLog.objects.get(action="loyalty.voucher_codes_generated")
    assert row.after == {"count": 2_000, "prefix": "SPRING-", "length": 8}


def test_generate_the_maximum_of_100000_codes() -> None:
    w = world()
    item = reward(w.programme, kind="voucher")
    assert services.voucher_codes_generate(actor=staff(), reward=item, count=100_000) == 100_000
    assert VoucherCode.objects.filter(reward=item).values("code").distinct().count() == 100_000


@pytest.mark.parametrize(
    ("count", "prefix", "length", "field"),
    [
        (0, "", 10, "count"),
        (100_001, "", 10, "count"),
        (-3, "", 10, "count"),
        (10, "bad prefix!", 10, "prefix"),
        (10, "", 5, "length"),
        (10, "", 33, "length"),
        (100_000, "", 6, "length"),  # 32^6 ≈ 1e9 < 100,000 × 1,000: too guessable
    ],
)
def test_generate_refuses_bad_requests(count: int, prefix: str, length: int, field: str) -> None:
    w = world()
    item = reward(w.programme, kind="voucher")
    with pytest.raises(ValidationFailed) as caught:
        services.voucher_codes_generate(actor=staff(), reward=item, count=count, prefix=prefix, length=length)
    assert field in caught.value.fields
    assert VoucherCode.objects.count() == 0


def test_generate_only_for_voucher_rewards() -> None:
    w = world()
    item = reward(w.programme, kind="physical")
    with pytest.raises(ValidationFailed) as caught:
        services.voucher_codes_generate(actor=staff(), reward=item, count=5)
    assert caught.value.code == "not_a_voucher_reward"


def test_import_codes_with_header_and_blank_lines() -> None:
    w = world()
    item = reward(w.programme, kind="voucher")
    result = services.voucher_codes_import(
        actor=staff(), reward=item, csv_text="code\nAMZ-0001\n\nAMZ-0002,extra column\namz-0001\n"
    )
    assert (result.imported, result.lines, result.skipped_blank) == (3, 5, 1)
    assert sorted(VoucherCode.objects.filter(reward=item, imported=True).values_list("code", flat=True)) == [
        "AMZ-0001",
        "AMZ-0002",
        "amz-0001",
    ]


def test_import_is_all_or_nothing_and_reports_each_line() -> None:
    w = world()
    item = voucher(w.programme, ["OLD-1"])
    before = footprint()
    with pytest.raises(ValidationFailed) as caught:
        services.voucher_codes_import(
            actor=staff(),
            reward=item,
            lines=["NEW-1", "NEW-2", "NEW-1", "bad code", "OLD-1", "NEW-3"],
        )
    assert caught.value.code == "invalid_import"
    assert caught.value.fields == {
        "line 3": ["Duplicate of line 1."],
        "line 4": ["'bad code' is not a valid code (1-64 letters, digits, - or _)."],
        "line 5": ["'OLD-1' is already in the pool."],
    }
    assert footprint() == before


def test_import_refuses_an_empty_file_and_a_broken_line() -> None:
    w = world()
    item = reward(w.programme, kind="voucher")
    with pytest.raises(ValidationFailed) as empty:
        services.voucher_codes_import(actor=staff(), reward=item, csv_text="code\n\n")
    assert empty.value.code == "empty_import"
    with pytest.raises(ValidationFailed) as broken:
        services.voucher_codes_import(actor=staff(), reward=item, csv_text='A1\n"unterminated\x00')
    assert broken.value.code == "invalid_import"
    assert list(broken.value.fields) == ["line 2"]
    assert VoucherCode.objects.count() == 0
