"""Review R2: the IVR API's flow list reads every flow's numbers in one query (it prefetched them,
then ordered each flow's numbers in SQL again: one query per flow, up to 500), with the numbers still
sorted; an agent cannot read the flows."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.contact_center.services.ivr import ivr_number_assign
from fedele.contact_center.tests.ivr_support import make_queues, published_flow

pytestmark = pytest.mark.django_db
URL = "/api/v1/contact-center/ivr/flows"


def _flows(indexes: range) -> None:
    for index in indexes:
        flow = published_flow(code=f"line-{index}")
        # Assigned out of order: the response lists them sorted.
        for number in (f"+39021234{index}9", f"+39021234{index}1"):
            ivr_number_assign(actor=None, number=number, flow=flow)


def _list(headers: dict[str, str]) -> tuple[Any, int]:
    with CaptureQueriesContext(connection) as queries:
        response = Client().get(URL, **headers)
    return response, len(queries)


def test_the_flow_list_costs_the_same_queries_for_one_flow_or_five() -> None:
    make_queues()
    headers = auth_header(user_with_roles("admin"))
    _flows(range(1))
    _list(headers)  # the token's first use writes to it; measure the requests after it
    one, one_queries = _list(headers)
    assert one.status_code == 200
    assert one.json()[0]["numbers"] == ["+3902123401", "+3902123409"]
    _flows(range(1, 5))
    five, five_queries = _list(headers)
    assert [flow["code"] for flow in five.json()] == ["line-0", "line-1", "line-2", "line-3", "line-4"]
    assert five.json()[3]["numbers"] == ["+3902123431", "+3902123439"]
    assert five_queries == one_queries


def test_an_agent_cannot_list_flows() -> None:
    response = Client().get(URL, **auth_header(user_with_roles("agent")))
    assert response.status_code == 403
