"""Campaigns: validation, status transitions, the holdout lock and the deterministic holdout draw."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import time_machine
from django.utils import translation

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.loyalty.models import Campaign
from fedele.loyalty.services.campaigns import (
    campaign_create,
    campaign_group,
    campaign_set_status,
    campaign_update,
    holdout_bucket,
)
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 2, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen() -> object:
    # Messages are asserted in English, whatever language an earlier test left active.
    with time_machine.travel(NOW, tick=False) as traveller, translation.override("en"):
        yield traveller


def _data(**changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "code": "winter",
        "name_it": "Inverno",
        "name_en": "Winter",
        "starts_at": datetime(2026, 2, 1, tzinfo=UTC),
        "ends_at": datetime(2026, 3, 1, tzinfo=UTC),
        "holdout_percent": 10,
    }
    values.update(changes)
    return values


def test_create_validates_every_field_and_writes_nothing_on_error() -> None:
    programme = ProgrammeFactory()
    with pytest.raises(ValidationFailed) as caught:
        campaign_create(
            actor=None,
            programme=programme,
            data=_data(
                code="",
                name_it="",
                name_en="",
                ends_at=datetime(2026, 2, 1, tzinfo=UTC),
                holdout_percent=91,
                budget_points=0,
                colour="red",
            ),
        )
    assert caught.value.fields == {
        "code": ["Use 1-40 lower-case letters, digits, hyphens or underscores."],
        "name_en": ["Give the campaign a name."],
        "ends_at": ["The campaign must end after it starts."],
        "holdout_percent": ["Enter a whole percentage from 0 to 90."],
        "budget_points": ["Enter a whole number of points of at least 1, or leave it empty."],
        "colour": ["Unknown field."],
    }
    assert Campaign.objects.count() == 0
    campaign_create(actor=None, programme=programme, data=_data())
    with pytest.raises(ValidationFailed) as caught:
        campaign_create(actor=None, programme=programme, data=_data())
    assert caught.value.fields == {"code": ["Another campaign of this programme has this code."]}


def test_status_transitions_and_holdout_lock() -> None:
    manager = actor_for(user_with_roles("loyalty_manager"))
    campaign = campaign_create(actor=manager, programme=ProgrammeFactory(), data=_data(budget_points="5000"))
    assert (campaign.status, campaign.budget_points) == ("draft", 5000)
    campaign_update(
        actor=manager, campaign=campaign, changes={"holdout_percent": 20}
    )  # a draft may change it
    with pytest.raises(Conflict):
        campaign_set_status(actor=manager, campaign=campaign, status="paused")
    campaign_set_status(actor=manager, campaign=campaign, status="active")
    with pytest.raises(ValidationFailed) as caught:
        campaign_update(actor=manager, campaign=campaign, changes={"holdout_percent": 30})
    assert caught.value.code == "holdout_locked"
    campaign.refresh_from_db()
    assert campaign.holdout_percent == 20
    campaign_update(actor=manager, campaign=campaign, changes={"ends_at": datetime(2026, 3, 15, tzinfo=UTC)})
    campaign_set_status(actor=manager, campaign=campaign, status="archived")
    with pytest.raises(Conflict):
        campaign_update(actor=manager, campaign=campaign, changes={"name_en": "Late"})
    assert AuditLog.objects.filter(object_id=str(campaign.public_id)).count() == 5


def test_ended_campaign_cannot_be_activated_and_agents_cannot_configure() -> None:
    programme = ProgrammeFactory()
    old = campaign_create(
        actor=None,
        programme=programme,
        data=_data(starts_at=datetime(2025, 1, 1, tzinfo=UTC), ends_at=datetime(2026, 1, 1, tzinfo=UTC)),
    )
    with pytest.raises(ValidationFailed) as caught:
        campaign_set_status(actor=None, campaign=old, status="active")
    assert caught.value.code == "campaign_ended"
    with pytest.raises(PermissionDenied):
        campaign_create(actor=actor_for(user_with_roles("agent")), programme=programme, data=_data(code="x"))


def test_holdout_draw_is_deterministic_and_close_to_the_share() -> None:
    programme = ProgrammeFactory()
    campaign = campaign_create(actor=None, programme=programme, data=_data(holdout_percent=30))
    members = [MemberFactory(programme=programme) for _ in range(200)]
    groups = [campaign_group(campaign, member) for member in members]
    assert groups == [campaign_group(campaign, member) for member in members]
    holdout = groups.count("holdout")
    assert 40 <= holdout <= 80  # 30 % of 200 = 60, binomial spread
    assert all(
        (holdout_bucket(campaign, m) < 30) == (g == "holdout") for m, g in zip(members, groups, strict=True)
    )
    campaign.holdout_percent = 0
    assert {campaign_group(campaign, member) for member in members} == {"treatment"}
