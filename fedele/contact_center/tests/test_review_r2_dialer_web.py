"""Review R2: the dialer page's simulator has the simulate API's size bound (the form allowed 100 runs
of 500 agents for 12 hours in one request: hundreds of millions of simulated dials on a web worker)."""

from __future__ import annotations

import pytest
from django.test import Client

from fedele.accounts.tests.factories import user_with_roles
from fedele.contact_center.tests.factories import QueueFactory

pytestmark = pytest.mark.django_db

FORM = {
    "agents": "20",
    "live_answer_percent": "30",
    "machine_percent": "15",
    "mean_handle_seconds": "180",
    "hours": "8",
}


@pytest.fixture
def supervisor_client(client: Client) -> Client:
    QueueFactory(code="outbound")
    client.force_login(user_with_roles("supervisor"))
    response = client.post(
        "/contact-center/dialer/",
        {
            "code": "spring",
            "name": "Spring offers",
            "queue": "outbound",
            "mode": "predictive",
            "target_abandon_percent": "1.5",
            "abandon_rule": "rolling_30_days",
            "max_attempts": "4",
        },
    )
    assert response.status_code == 302
    return client


def test_a_simulation_over_the_bound_is_refused_with_the_reason(supervisor_client: Client) -> None:
    # 15 runs × 20 agents × 8 h ÷ (180 s + 12 s ring) ÷ 30 % live = 150,000 expected dials > 120,000.
    response = supervisor_client.post(
        "/contact-center/dialer/spring/simulate/", {**FORM, "seeds": "15"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    html = response.content.decode()
    assert "This simulation is too large for one request: use fewer runs, agents or hours." in html
    assert "<svg" not in html


def test_the_largest_form_request_is_refused_at_once(supervisor_client: Client) -> None:
    response = supervisor_client.post(
        "/contact-center/dialer/spring/simulate/",
        {**FORM, "agents": "500", "hours": "12", "live_answer_percent": "1", "seeds": "100"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 422
    assert "<svg" not in response.content.decode()


def test_a_request_at_the_default_size_still_runs(supervisor_client: Client) -> None:
    # 2 runs × 20 agents × 1 h = 2,500 expected dials: well inside the bound.
    response = supervisor_client.post(
        "/contact-center/dialer/spring/simulate/",
        {**FORM, "hours": "1", "seeds": "2"},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert "2 runs; 0 over the cap." in response.content.decode()
