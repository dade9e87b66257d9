"""Stripe-style CSV import: dry run predicts and writes nothing; bad rows reported by line number;
all-or-nothing versus good rows only; customers matched by e-mail or created; API endpoint."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from django.test import Client

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.billing.models import Subscription
from fedele.billing.services.importing import subscriptions_import
from fedele.billing.tests.factories import flat_plan
from fedele.billing.tests.subscription_helpers import side_effects
from fedele.customers.facade import find_customer_by_email
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared.errors import PermissionDenied, ValidationFailed

pytestmark = pytest.mark.django_db
HEADER = "id,customer,customer_email,customer_name,plan,quantity,status,current_period_start,current_period_end,created,trial_end,cancel_at_period_end\n"  # noqa: E501
GOOD = [
    "sub_1,cus_1,anna@example.it,Anna Neri,price_basic,1,active,2026-01-10,2026-02-10,2025-11-10,,false",
    "sub_2,cus_2,bruno@example.it,Bruno Gialli,price_pro,3,trialing,2026-01-05,2026-01-19,2026-01-05,2026-01-19,",  # noqa: E501
    "sub_3,cus_3,carla@example.it,Carla,price_basic,1,canceled,1767225600,1769904000,,,",
]
BAD = [
    "sub_4,cus_4,dario@example.it,Dario,price_unknown,1,active,2026-01-10,2026-02-10,,,",
    "sub_5,cus_5,elena@example.it,Elena,price_basic,-2,active,2026-01-10,2026-01-01,,,",
    "sub_1,cus_1,anna@example.it,Anna Neri,price_basic,1,active,2026-01-10,2026-02-10,,,",
    "sub_6,cus_6,not-an-email,Fabio,price_basic,1,incomplete,2026-01-10,2026-02-10,,,",
]
PRICE_MAP = {"price_basic": "basic", "price_pro": "pro"}


@pytest.fixture
def clerk_actor(time_machine):  # type: ignore[no-untyped-def]
    time_machine.move_to(datetime(2026, 1, 16, 10, tzinfo=UTC), tick=False)
    flat_plan("30.00", code="basic")
    flat_plan("10.00", code="pro")
    return actor_for(user_with_roles("billing_clerk"))


def csv_of(*rows: str) -> bytes:
    return (HEADER + "\n".join(rows) + "\n").encode()


def test_dry_run_reports_and_writes_nothing(clerk_actor) -> None:
    CustomerFactory(email="anna@example.it")
    before = side_effects()
    customers = CustomerFactory._meta.model.objects.count()
    report = subscriptions_import(actor=clerk_actor, content=csv_of(*GOOD, *BAD), price_map=PRICE_MAP)
    assert (report.total_rows, report.valid_rows, report.invalid_rows, report.committed) == (7, 3, 4, False)
    assert (report.customers_matched, report.customers_created, report.subscriptions_created) == (1, 2, 3)
    errors = {(e.line, e.field) for e in report.errors}
    assert errors == {
        (5, "plan"),
        (6, "quantity"),
        (7, "id"),
        (8, "status"),
    }
    assert side_effects() == before and CustomerFactory._meta.model.objects.count() == customers


def test_all_or_nothing_with_bad_rows_commits_nothing(clerk_actor) -> None:
    before = side_effects()
    report = subscriptions_import(
        actor=clerk_actor, content=csv_of(*GOOD, BAD[0]), price_map=PRICE_MAP, dry_run=False
    )
    assert (report.committed, report.subscriptions_created, [e.line for e in report.errors]) == (
        False,
        0,
        [5],
    )
    assert side_effects() == before


def test_valid_rows_mode_commits_the_good_rows(clerk_actor) -> None:
    report = subscriptions_import(
        actor=clerk_actor, content=csv_of(*GOOD, *BAD), price_map=PRICE_MAP, dry_run=False, mode="valid_rows"
    )
    assert (report.committed, report.subscriptions_created, report.invalid_rows) == (True, 3, 4)
    active = Subscription.objects.get(external_reference="sub_1")
    assert (active.status, active.current_period_end, active.next_billing_on) == (
        "active",
        date(2026, 2, 10),
        date(2026, 2, 10),
    )
    assert active.started_on == date(2025, 11, 10) and active.plan.code == "basic"
    trial = Subscription.objects.get(external_reference="sub_2")
    assert (trial.status, trial.trial_end, trial.quantity) == ("trialing", date(2026, 1, 19), 3)
    cancelled = Subscription.objects.get(external_reference="sub_3")
    assert (cancelled.status, cancelled.current_period_start, cancelled.next_billing_on) == (
        "cancelled",
        date(2026, 1, 1),
        None,
    )
    assert find_customer_by_email("anna@example.it").last_name == "Neri"
    again = subscriptions_import(
        actor=clerk_actor, content=csv_of(GOOD[0]), price_map=PRICE_MAP, dry_run=False
    )
    assert again.errors[0].field == "id" and again.errors[0].message == "already imported."


def test_refuses_bad_files_and_callers(clerk_actor) -> None:
    with pytest.raises(ValidationFailed):
        subscriptions_import(actor=clerk_actor, content=b"id,plan\nx,y\n", price_map=PRICE_MAP)
    with pytest.raises(ValidationFailed):
        subscriptions_import(actor=clerk_actor, content=b"\xff\xfe", price_map=PRICE_MAP)
    with pytest.raises(PermissionDenied):
        subscriptions_import(actor=actor_for(user_with_roles("analyst")), content=csv_of(*GOOD), price_map={})


def test_import_api(client: Client, clerk_actor) -> None:
    headers = auth_header(user_with_roles("billing_clerk"))
    upload = {
        "file": ("subs.csv", csv_of(*GOOD)),
        "price_map": '{"price_basic": "basic", "price_pro": "pro"}',
    }
    from django.core.files.uploadedfile import SimpleUploadedFile

    def send(**form: str):  # type: ignore[no-untyped-def]
        data = {"file": SimpleUploadedFile("subs.csv", csv_of(*GOOD), content_type="text/csv"), **form}
        return client.post("/api/v1/billing/subscriptions/import", data, **headers)

    dry = send(price_map=upload["price_map"])
    assert dry.status_code == 200, dry.content
    assert (dry.json()["valid_rows"], dry.json()["committed"]) == (3, False)
    assert Subscription.objects.count() == 0
    done = send(price_map=upload["price_map"], dry_run="false", mode="valid_rows")
    assert done.json()["committed"] is True and Subscription.objects.count() == 3
    bad_map = send(price_map="not json")
    assert bad_map.status_code == 422 and "price_map" in bad_map.json()["error"]["fields"]
