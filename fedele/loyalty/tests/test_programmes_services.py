"""Programme and tier configuration services: validation, status workflow, ladder rules."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.loyalty.models import Programme, Reservation, Tier, TierChange
from fedele.loyalty.services.programmes import (
    programme_create,
    programme_set_status,
    programme_update,
    tier_create,
    tier_delete,
    tier_update,
)
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory, standard_tiers
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db

VALID = {
    "code": "club-fedele",
    "name_it": "Club Fedele",
    "name_en": "Fedele Club",
    "currency_name_it": "punti",
    "currency_name_en": "points",
    "point_value": "0.01",
    "expiry_policy": "rolling_months",
    "expiry_months": 24,
    "pending_days": 14,
}


@pytest.fixture
def manager() -> Any:
    return actor_for(user_with_roles("loyalty_manager"))


def test_create_programme_in_draft_with_exact_values(manager: Any) -> None:
    programme = programme_create(actor=manager, data=VALID)
    programme.refresh_from_db()
    assert programme.status == "draft"
    assert programme.point_value == Decimal("0.010000")
    assert (programme.expiry_months, programme.pending_days) == (24, 14)
    assert programme.timezone == "Europe/Rome"
    audit = AuditLog.objects.get(action="loyalty.programme_created")
    assert audit.object_id == str(programme.public_id)
    assert audit.actor_id == manager.user_id
    assert audit.after is not None and audit.after["code"] == "club-fedele"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"code": "Club Fedele"}, "code"),
        ({"code": "-club"}, "code"),
        ({"name_it": "   "}, "name_it"),
        ({"name_en": "x" * 121}, "name_en"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"point_value": "-0.01"}, "point_value"),
        ({"point_value": "0.0000001"}, "point_value"),
        ({"point_value": "abc"}, "point_value"),
        ({"point_value": "NaN"}, "point_value"),
        ({"rounding": "sideways"}, "rounding"),
        ({"expiry_months": 0}, "expiry_months"),
        ({"expiry_months": True}, "expiry_months"),
        ({"pending_days": -1}, "pending_days"),
        ({"max_points_per_transaction": 0}, "max_points_per_transaction"),
        ({"tier_metric": "height"}, "tier_metric"),
        ({"tier_window": "fortnight"}, "tier_window"),
        ({"is_coalition": "perhaps"}, "is_coalition"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_create_programme_bad_input_writes_nothing(manager: Any, changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as failure:
        programme_create(actor=manager, data={**VALID, **changes})
    assert field in failure.value.fields
    assert failure.value.code == "validation_error"
    assert Programme.objects.count() == 0
    assert AuditLog.objects.count() == 0


def test_create_programme_requires_code_and_names_and_unique_code(manager: Any) -> None:
    with pytest.raises(ValidationFailed) as missing:
        programme_create(actor=manager, data={})
    assert set(missing.value.fields) == {"code", "name_it", "name_en"}
    programme_create(actor=manager, data=VALID)
    with pytest.raises(ValidationFailed) as duplicate:
        programme_create(actor=manager, data=VALID)
    assert set(duplicate.value.fields) == {"code"}
    assert Programme.objects.count() == 1


def test_only_managers_configure(manager: Any) -> None:
    agent = actor_for(user_with_roles("agent"))
    with pytest.raises(PermissionDenied):
        programme_create(actor=agent, data=VALID)
    programme = programme_create(actor=None, data=VALID)  # the system may
    with pytest.raises(PermissionDenied):
        programme_update(actor=agent, programme=programme, changes={"name_en": "X"})
    with pytest.raises(PermissionDenied):
        tier_create(actor=agent, programme=programme, data={"code": "a", "name_it": "A", "name_en": "A"})


def test_update_programme_and_code_rules(manager: Any) -> None:
    programme = programme_create(actor=manager, data=VALID)
    programme = programme_update(
        actor=manager, programme=programme, changes={"code": "club", "points_per_euro": "1.5"}
    )
    assert (programme.code, programme.points_per_euro) == ("club", Decimal("1.5"))
    programme_set_status(actor=manager, programme=programme, status="active")
    programme.refresh_from_db()
    with pytest.raises(ValidationFailed) as fixed:
        programme_update(actor=manager, programme=programme, changes={"code": "other", "name_en": "Y"})
    assert set(fixed.value.fields) == {"code"}
    programme.refresh_from_db()
    assert (programme.code, programme.name_en) == ("club", "Fedele Club")
    audit = AuditLog.objects.get(action="loyalty.programme_updated")
    assert audit.before == {"code": "club-fedele", "points_per_euro": "1.0000"}
    assert audit.after == {"code": "club", "points_per_euro": "1.5000"}


def test_status_workflow(manager: Any) -> None:
    programme = programme_create(actor=manager, data=VALID)
    with pytest.raises(Conflict) as skip:
        programme_set_status(actor=manager, programme=programme, status="closed")
    assert skip.value.code == "invalid_status_transition"
    with pytest.raises(ValidationFailed):
        programme_set_status(actor=manager, programme=programme, status="paused")
    assert programme_set_status(actor=manager, programme=programme, status="active").status == "active"
    member = MemberFactory(programme=programme)
    from fedele.loyalty.services.ledger import points_earn, reservation_hold

    points_earn(actor=None, member=member, points=500, source="test", idempotency_key="e1")
    held = reservation_hold(actor=None, member=member, points=100, idempotency_key="h1", source="test")
    with pytest.raises(Conflict) as refused:
        programme_set_status(actor=manager, programme=programme, status="closed")
    assert refused.value.code == "reservations_held"
    programme.refresh_from_db()
    assert programme.status == "active"
    Reservation.objects.filter(pk=held.pk).update(state="cancelled")
    assert programme_set_status(actor=manager, programme=programme, status="closed").status == "closed"
    with pytest.raises(Conflict):
        programme_set_status(actor=manager, programme=programme, status="active")
    with pytest.raises(Conflict) as closed:
        programme_update(actor=manager, programme=programme, changes={"name_en": "Z"})
    assert closed.value.code == "programme_closed"


# -- tiers -----------------------------------------------------------------------------------------


def _tier(code: str, threshold: str, **extra: Any) -> dict[str, Any]:
    return {"code": code, "name_it": code.title(), "name_en": code.title(), "threshold": threshold, **extra}


def test_tier_ladder_is_built_in_rank_order(manager: Any) -> None:
    programme = ProgrammeFactory()
    bronze = tier_create(actor=manager, programme=programme, data=_tier("bronze", "0"))
    silver = tier_create(
        actor=manager,
        programme=programme,
        data=_tier("silver", "1000", earn_multiplier="1.25", support_priority=1, benefits=["free_shipping"]),
    )
    gold = tier_create(
        actor=manager, programme=programme, data=_tier("gold", "5000", rank=2, color="#C0A060")
    )
    assert [(t.code, t.rank, t.threshold) for t in (bronze, silver, gold)] == [
        ("bronze", 0, Decimal("0")),
        ("silver", 1, Decimal("1000")),
        ("gold", 2, Decimal("5000")),
    ]
    assert silver.earn_multiplier == Decimal("1.25") and silver.benefits == ["free_shipping"]
    assert gold.color == "#c0a060"
    assert AuditLog.objects.filter(action="loyalty.tier_created").count() == 3


@pytest.mark.parametrize(
    ("data", "field", "code"),
    [
        (_tier("gold", "1000"), "threshold", "validation_error"),  # not above silver's 1000
        (_tier("gold", "999"), "threshold", "validation_error"),
        (_tier("silver", "6000"), "code", "duplicate_code"),
        (_tier("platinum", "9000", rank=1), "rank", "duplicate_rank"),
        (_tier("platinum", "9000", rank=5), "rank", "validation_error"),
        (_tier("platinum", "9000", earn_multiplier="-1"), "earn_multiplier", "validation_error"),
        (_tier("platinum", "9000", earn_multiplier="1.234"), "earn_multiplier", "validation_error"),
        (_tier("platinum", "9000", support_priority=4), "support_priority", "validation_error"),
        (_tier("platinum", "-5"), "threshold", "validation_error"),
        (_tier("platinum", "9000", color="gold"), "color", "validation_error"),
        (_tier("platinum", "9000", benefits=["Free Shipping!"]), "benefits", "validation_error"),
        ({"code": "platinum", "name_it": "P", "name_en": "P", "colour": "x"}, "colour", "validation_error"),
    ],
)
def test_tier_bad_input_writes_nothing(manager: Any, data: dict[str, Any], field: str, code: str) -> None:
    programme = ProgrammeFactory()
    tier_create(actor=manager, programme=programme, data=_tier("bronze", "0"))
    tier_create(actor=manager, programme=programme, data=_tier("silver", "1000"))
    audits = AuditLog.objects.count()
    with pytest.raises(ValidationFailed) as failure:
        tier_create(actor=manager, programme=programme, data=data)
    assert field in failure.value.fields
    assert failure.value.code == code
    assert list(Tier.objects.filter(programme=programme).values_list("code", flat=True)) == [
        "bronze",
        "silver",
    ]
    assert AuditLog.objects.count() == audits


def test_base_tier_must_have_threshold_zero(manager: Any) -> None:
    programme = ProgrammeFactory()
    with pytest.raises(ValidationFailed) as failure:
        tier_create(actor=manager, programme=programme, data=_tier("bronze", "10"))
    assert set(failure.value.fields) == {"threshold"}
    assert Tier.objects.count() == 0


def test_tier_update_keeps_thresholds_strictly_increasing(manager: Any) -> None:
    programme = ProgrammeFactory()
    tiers = {t.code: t for t in standard_tiers(programme)}
    updated = tier_update(
        actor=manager, tier=tiers["silver"], changes={"threshold": "4999.99", "name_it": "Argento vivo"}
    )
    assert (updated.threshold, updated.name_it) == (Decimal("4999.99"), "Argento vivo")
    for bad in ("5000", "0", "6000"):
        with pytest.raises(ValidationFailed) as failure:
            tier_update(actor=manager, tier=tiers["silver"], changes={"threshold": bad})
        assert set(failure.value.fields) == {"threshold"}
    with pytest.raises(ValidationFailed) as code:
        tier_update(actor=manager, tier=tiers["silver"], changes={"code": "argento", "rank": 2})
    assert set(code.value.fields) == {"code", "rank"}
    with pytest.raises(ValidationFailed):
        tier_update(actor=manager, tier=tiers["gold"], changes={"earn_multiplier": "-0.5"})
    tiers["silver"].refresh_from_db()
    tiers["gold"].refresh_from_db()
    assert tiers["silver"].threshold == Decimal("4999.99")
    assert tiers["gold"].earn_multiplier == Decimal("1.50")


def test_tier_delete_refused_in_use_and_ranks_close_up(manager: Any) -> None:
    programme = ProgrammeFactory()
    tiers = {t.code: t for t in standard_tiers(programme)}
    member = MemberFactory(programme=programme, tier=tiers["silver"])
    with pytest.raises(Conflict) as in_use:
        tier_delete(actor=manager, tier=tiers["silver"])
    assert in_use.value.code == "tier_in_use"
    with pytest.raises(Conflict) as base:
        tier_delete(actor=manager, tier=tiers["bronze"])
    assert base.value.code == "base_tier_required"
    assert Tier.objects.filter(programme=programme).count() == 3
    member.tier = tiers["gold"]
    member.save()
    TierChange.objects.create(
        member=member,
        from_tier=tiers["silver"],
        to_tier=tiers["gold"],
        reason="manual",
        changed_at=member.enrolled_at,
    )
    with pytest.raises(Conflict) as history:
        tier_delete(actor=manager, tier=tiers["silver"])
    assert history.value.code == "tier_in_use"
    TierChange.objects.all().delete()
    member.tier = tiers["bronze"]
    member.save()
    tier_delete(actor=manager, tier=tiers["silver"])
    assert list(Tier.objects.filter(programme=programme).order_by("rank").values_list("code", "rank")) == [
        ("bronze", 0),
        ("gold", 1),
    ]
    assert AuditLog.objects.filter(
        action="loyalty.tier_deleted", object_id=f"{programme.code}:silver"
    ).exists()


def test_activation_refuses_a_broken_ladder(manager: Any) -> None:
    programme = programme_create(actor=manager, data=VALID)
    Tier.objects.create(programme=programme, code="silver", name_it="A", name_en="S", rank=1, threshold=10)
    with pytest.raises(Conflict) as failure:
        programme_set_status(actor=manager, programme=programme, status="active")
    assert failure.value.code == "invalid_tiers"
    programme.refresh_from_db()
    assert programme.status == "draft"
