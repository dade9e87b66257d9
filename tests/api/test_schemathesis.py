"""Property-based API testing: every operation of the OpenAPI schema, with an admin token, never 5xx.

The schema comes from the app itself (ninja's get_openapi_schema); requests go through Django's
WSGI handler, the full middleware stack included (body limit, rate limit, idempotency).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from config.api import api
from fedele.accounts.services import api_token_create
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.tests.factories import ContactFactory, CustomerFactory

schema = schemathesis.openapi.from_dict(api.get_openapi_schema())
wsgi_app = get_wsgi_application()


@dataclass(frozen=True)
class Seed:
    token: str
    ids: dict[str, str]  # path parameter -> an id that exists


@pytest.fixture
def seed(db: None) -> Iterator[Seed]:
    # As Django's test client does: a request must not close the test's connection (and with it
    # the test transaction) at its end.
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    admin = user_with_roles("admin")
    customer = CustomerFactory()
    contact = ContactFactory(customer=customer)
    other = user_with_roles("agent")
    token, plain = api_token_create(user=admin, name="schemathesis")
    try:
        yield Seed(
            token=plain,
            ids={
                "customer_id": str(customer.public_id),
                "contact_id": str(contact.public_id),
                "user_id": str(other.public_id),
                "token_id": str(token.public_id),
            },
        )
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


_calls = itertools.count()

# The dialer simulator runs real simulations (up to about 1.7 s of CPU for the largest request allowed).
# Its boundary cases (schemathesis' coverage phase: every field at its limits, on top of the cheap
# defaults of 2 runs of a 1-hour day) all run; the random phase gets fewer examples than the other
# operations, so the case takes well under a minute instead of 3-10.
SIMULATE = "POST /api/v1/contact-center/dialer/simulate"
SIMULATE_EXAMPLES = 8


def _call(case: schemathesis.Case, seed: Seed) -> None:
    # Every other example targets rows that exist, so bodies reach the services, not only 404s.
    if case.path_parameters and next(_calls) % 2 == 0:
        for name in case.path_parameters:
            if name in seed.ids:
                case.path_parameters[name] = seed.ids[name]
    case.call_and_validate(
        app=wsgi_app,
        headers={"Authorization": f"Bearer {seed.token}"},
        checks=[not_a_server_error],
    )


@schema.exclude(name=SIMULATE).parametrize()
@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=True,
)
@pytest.mark.slow
def test_no_server_errors(case: schemathesis.Case, seed: Seed) -> None:
    _call(case, seed)


@schema.include(name=SIMULATE).parametrize()
@settings(
    max_examples=SIMULATE_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
    derandomize=True,
)
@pytest.mark.slow
def test_no_server_errors_in_the_dialer_simulator(case: schemathesis.Case, seed: Seed) -> None:
    _call(case, seed)
