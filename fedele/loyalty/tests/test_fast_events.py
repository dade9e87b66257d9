"""The earn endpoint's fast path (ADR 0002) through the real ASGI application on PostgreSQL.

Every answer must be the one Django's ninja view gives (same status, same bytes, same headers but the
request id), errors included; requests it does not serve go to Django; concurrent requests are
recorded in groups with no point lost or duplicated.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from django.core.asgi import get_asgi_application
from django.test import override_settings

from fedele.accounts.tests.factories import token_for, user_with_roles
from fedele.loyalty.api import fast_events
from fedele.loyalty.models import LoyaltyEvent, Member, PointsTransaction, Programme
from fedele.loyalty.services.ledger_jobs import ledger_check
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory
from fedele.loyalty.tests.rules_support import make_rule
from fedele.shared import fastpath

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PATH = "/api/v1/loyalty/events"
# As config/asgi.py builds it for HTTP (importing config here would import every module).
application = fastpath.router(get_asgi_application())


@pytest.fixture
def setup() -> Iterator[dict[str, Any]]:
    programme = ProgrammeFactory(code="fast", pending_days=0)
    make_rule(programme, code="base")
    members = [MemberFactory(programme=programme) for _ in range(5)]
    operator = token_for(user_with_roles("agent"))
    viewer = token_for(user_with_roles("analyst"))
    yield {"programme": programme, "members": members, "operator": operator, "viewer": viewer}
    fast_events._GROUPS.stop()  # the workers close their connections (the test database is dropped)


def _send(
    requests: list[tuple[dict[str, Any], dict[str, str]]], *, fast: bool = True
) -> list[httpx.Response]:
    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return list(
                await asyncio.gather(
                    *(client.post(PATH, json=body, headers=headers) for body, headers in requests)
                )
            )

    with override_settings(FEDELE_FAST_PATHS=fast):
        return asyncio.run(go())


def _one(body: dict[str, Any], headers: dict[str, str], *, fast: bool = True) -> httpx.Response:
    return _send([(body, headers)], fast=fast)[0]


def _headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in {"x-request-id", "date", "server"}}


def _body(member: Member, external_id: str, amount: str = "12.50", **extra: Any) -> dict[str, Any]:
    return {
        "programme": "fast",
        "member": member.card_number,
        "event_type": "spend",
        "external_id": external_id,
        "amount_eur": amount,
        **extra,
    }


def test_answers_are_djangos_byte_for_byte(setup: dict[str, Any]) -> None:
    member = setup["members"][0]
    auth = {"Authorization": f"Bearer {setup['operator']}", "Accept-Language": "it"}
    groups_before = fast_events._GROUPS.groups
    created = _one(_body(member, "r-1"), auth)
    assert created.status_code == 201
    assert fast_events._GROUPS.groups == groups_before + 1  # served by the fast path
    assert created.json()["points"] == 12
    fast_replay = _one(_body(member, "r-1"), auth)
    django_replay = _one(_body(member, "r-1"), auth, fast=False)
    assert fast_replay.status_code == django_replay.status_code == 200
    assert fast_replay.json() == django_replay.json()
    assert fast_replay.content == django_replay.content
    assert created.json() == fast_replay.json()  # (jsonb keeps its own key order on the replay)
    assert _headers(fast_replay) == _headers(django_replay)
    assert fast_events._GROUPS.groups == groups_before + 2  # Django served the third
    # Errors: the same status, envelope and headers from both paths.
    cases = [
        (_body(member, "r-2", programme="nope"), auth),  # unknown programme: 404
        ({**_body(member, "r-3"), "member": "0000000000"}, auth),  # unknown member: 404
        ({**_body(member, "r-4"), "event_type": "custom"}, auth),  # the service refuses: 422
        (_body(member, "r-5", amount="-1"), auth),  # the schema refuses: ninja's 422
        (_body(member, "r-6"), {"Authorization": "Bearer fdl_nope"}),  # bad token: refused by Django
        (_body(member, "r-7"), {"Authorization": f"Bearer {setup['viewer']}"}),  # no permission: 403
        (_body(setup["members"][1], "r-1"), auth),  # the id of another member's event: 409
    ]
    for body, headers in cases:
        fast, slow = _one(body, headers), _one(body, headers, fast=False)
        assert (fast.status_code, fast.content) == (slow.status_code, slow.content), body
        assert _headers(fast) == _headers(slow), body
    assert [_one(body, headers).status_code for body, headers in cases] == [404, 404, 422, 422, 403, 403, 409]
    assert LoyaltyEvent.objects.count() == 1
    assert PointsTransaction.objects.count() == 1


def test_concurrent_requests_are_grouped_and_nothing_is_lost_or_doubled(setup: dict[str, Any]) -> None:
    members: list[Member] = setup["members"]
    auth = {"Authorization": f"Bearer {setup['operator']}"}
    requests = []
    for number in range(60):
        member = members[number % len(members)]
        requests.append((_body(member, f"c-{number % 50}", amount=f"{10 + number % 50}.00"), auth))
    items_before, groups_before = fast_events._GROUPS.items, fast_events._GROUPS.groups
    answers = _send(requests)
    assert sorted({a.status_code for a in answers}) in ([200, 201], [201])
    assert sum(1 for a in answers if a.status_code == 201) == 50
    # The ten repeated ids were answered with their first event: same id, same points.
    by_external: dict[str, set[tuple[str, int]]] = {}
    for answer in answers:
        data = answer.json()
        by_external.setdefault(data["external_id"], set()).add((data["id"], data["points"]))
    assert all(len(values) == 1 for values in by_external.values())
    assert fast_events._GROUPS.items - items_before == 60
    assert fast_events._GROUPS.groups - groups_before < 60  # at least one group held several requests
    programme = Programme.objects.get(code="fast")
    assert LoyaltyEvent.objects.filter(programme=programme).count() == 50
    expected = sum(10 + number for number in range(50))
    assert sum(Member.objects.filter(programme=programme).values_list("available", flat=True)) == expected
    assert ledger_check(programme=programme) == []


def test_requests_it_does_not_serve_go_to_django(setup: dict[str, Any]) -> None:
    member = setup["members"][2]
    auth = {"Authorization": f"Bearer {setup['operator']}"}
    groups = fast_events._GROUPS.groups
    keyed = _one(_body(member, "k-1"), {**auth, "Idempotency-Key": "key-1"})
    again = _one(_body(member, "k-1"), {**auth, "Idempotency-Key": "key-1"})
    assert keyed.status_code == 201 and again.status_code == 201  # the stored answer, replayed by Django
    assert keyed.content == again.content
    assert fast_events._GROUPS.groups == groups
    assert LoyaltyEvent.objects.filter(external_id="k-1").count() == 1


def test_a_rule_change_is_seen_by_the_next_request(setup: dict[str, Any]) -> None:
    from fedele.loyalty.models import EarningRule
    from fedele.loyalty.services.rules import rule_update

    member = setup["members"][3]
    auth = {"Authorization": f"Bearer {setup['operator']}"}
    assert _one(_body(member, "v-1", amount="10.00"), auth).json()["points"] == 10  # cached from here on
    rule = EarningRule.objects.get(programme__code="fast", code="base")
    rule_update(actor=None, rule=rule, changes={"points_per_euro": "3"})
    assert _one(_body(member, "v-2", amount="10.00"), auth).json()["points"] == 30
    closed = Programme.objects.get(code="fast")
    closed.status = "closed"
    closed.save()
    refused = _one(_body(member, "v-3", amount="10.00"), auth)
    assert refused.status_code == 422
    assert refused.json()["error"]["code"] == "programme_not_active"
    assert LoyaltyEvent.objects.filter(external_id="v-3").count() == 0
