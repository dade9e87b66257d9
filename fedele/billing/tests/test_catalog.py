"""Catalog: products (VAT rules), metrics, plans, versions (publishing freezes), charges validated
through the pricing contract, coupons, subscriber migration; service and API."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.billing.models import Coupon, PlanCharge, PlanVersion, Product
from fedele.billing.services import catalog as services
from fedele.billing.tests.factories import MetricFactory, PlanFactory, ProductFactory, flat_plan
from fedele.billing.tests.subscription_helpers import billed_subscription
from fedele.shared.errors import Conflict, ValidationFailed
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db
API = "/api/v1/billing"


def post(client: Client, path: str, body: Any, headers: dict[str, str], method: str = "post"):  # type: ignore[no-untyped-def]
    return getattr(client, method)(path, json.dumps(body), content_type="application/json", **headers)


@pytest.mark.parametrize(
    ("rate", "nature", "field"),
    [("21", "", "vat_rate"), ("0", "", "vat_nature"), ("22", "N4", "vat_nature"), ("0", "N9", "vat_nature")],
)
def test_product_vat_rules(rate: str, nature: str, field: str) -> None:
    with pytest.raises(ValidationFailed) as error:
        services.product_create(code="fibre", name="Fibre", vat_rate=rate, vat_nature=nature)
    assert field in error.value.fields
    assert Product.objects.count() == 0 and AuditLog.objects.count() == 0


def test_product_create_and_update() -> None:
    product = services.product_create(code="exempt", name="Training", vat_rate="0", vat_nature="N4")
    assert (product.vat_rate, product.vat_nature) == (Decimal(0), "N4")
    with pytest.raises(ValidationFailed):
        services.product_create(code="exempt", name="Again")
    updated = services.product_update(product=product, changes={"vat_rate": "10", "vat_nature": ""})
    assert updated.vat_rate == Decimal(10)
    with pytest.raises(ValidationFailed):
        services.product_update(product=product, changes={"code": "other"})


def test_metric_unique_count_needs_property() -> None:
    with pytest.raises(ValidationFailed) as error:
        services.metric_create(code="users", name="Users", aggregation="unique_count")
    assert "unique_property" in error.value.fields
    metric = services.metric_create(
        code="users", name="Users", aggregation="unique_count", unique_property="user"
    )
    assert metric.unique_property == "user"


def test_versions_publish_freeze_and_next_version_copies_charges() -> None:
    plan = services.plan_create(product=ProductFactory(), code="pro", name="Pro", billing_period="quarter")
    draft = services.plan_version_create(plan=plan, setup_fee="49.00")
    assert (draft.version, draft.published_at) == (1, None)
    with pytest.raises(ValidationFailed) as error:
        services.plan_version_publish(version=draft)
    assert error.value.code == "version_without_charges"
    services.plan_charge_add(
        version=draft,
        data=services.ChargeInput(
            code="base", name="Base", kind="recurring", model="flat", flat_amount="90.00"
        ),
    )
    published = services.plan_version_publish(version=draft)
    assert published.published_at is not None
    with pytest.raises(Conflict) as conflict:
        services.plan_charge_add(
            version=published,
            data=services.ChargeInput(code="x", name="X", kind="recurring", model="flat", flat_amount="1"),
        )
    assert conflict.value.code == "version_published"
    with pytest.raises(Conflict):
        services.plan_version_update(version=published, setup_fee="0")
    second = services.plan_version_create(plan=plan)
    assert second.version == 2 and second.published_at is None
    assert list(second.charges.values_list("code", "flat_amount")) == [("base", Decimal("90.000000"))]
    with pytest.raises(Conflict):
        services.plan_version_create(plan=plan)  # one draft at a time
    usd = services.plan_version_create(plan=plan, currency="usd")
    assert (usd.currency, usd.version, usd.charges.count()) == ("USD", 1, 0)


def test_tiers_are_validated_through_the_pricing_contract() -> None:
    draft = PlanVersion.objects.create(plan=PlanFactory(), version=1, created_at=datetime.now(UTC))
    metric = MetricFactory()
    bad = services.ChargeInput(
        code="calls",
        name="Calls",
        kind="usage",
        model="graduated",
        metric=metric,
        tiers=({"up_to": 100, "unit_amount": "0.10"}, {"up_to": 50, "unit_amount": "0.05"}),
    )
    with pytest.raises(ValidationFailed) as error:
        services.plan_charge_add(version=draft, data=bad)
    assert set(error.value.fields) == {"tiers[1].up_to"}
    good = services.ChargeInput(
        code="calls",
        name="Calls",
        kind="usage",
        model="graduated",
        metric=metric,
        tiers=({"up_to": "100", "unit_amount": "0.10"}, {"up_to": "", "unit_amount": "0.05"}),
    )
    charge = services.plan_charge_add(version=draft, data=good)
    assert charge.tiers == [
        {"up_to": 100, "unit_amount": "0.10", "flat_amount": "0"},
        {"up_to": None, "unit_amount": "0.05", "flat_amount": "0"},
    ]
    with pytest.raises(ValidationFailed) as missing:
        services.plan_charge_add(
            version=draft, data=services.ChargeInput(code="u", name="U", kind="usage", model="per_unit")
        )
    assert "metric" in missing.value.fields and "unit_amount" in missing.value.fields
    assert PlanCharge.objects.count() == 1


def test_coupon_rules() -> None:
    with pytest.raises(ValidationFailed) as error:
        services.coupon_create(code="X", name="X", percent_off="10", amount_off="5", currency="EUR")
    assert "percent_off" in error.value.fields
    with pytest.raises(ValidationFailed) as error:
        services.coupon_create(code="X", name="X", amount_off="5")
    assert "currency" in error.value.fields
    with pytest.raises(ValidationFailed) as error:
        services.coupon_create(code="X", name="X", percent_off="120", duration="repeating")
    assert {"percent_off", "duration_periods"} <= set(error.value.fields)
    coupon = services.coupon_create(code="summer-26", name="Summer", percent_off="15", duration="forever")
    assert coupon.code == "SUMMER-26"
    assert services.coupon_deactivate(coupon=coupon).is_active is False
    assert Coupon.objects.count() == 1


def test_catalog_api_round_trip(client: Client, time_machine) -> None:
    time_machine.move_to(datetime(2026, 1, 16, 10, tzinfo=UTC), tick=False)
    manager = auth_header(user_with_roles("billing_clerk"))
    product = post(client, f"{API}/products", {"code": "cloud", "name": "Cloud"}, manager)
    assert product.status_code == 201, product.content
    plan = post(
        client, f"{API}/plans", {"product_id": product.json()["id"], "code": "c1", "name": "C1"}, manager
    )
    assert plan.status_code == 201, plan.content
    version = post(
        client, f"{API}/plans/{plan.json()['id']}/versions", {"setup_fee": "10.00"}, manager
    ).json()
    charge = {"code": "seat", "name": "Seat", "model": "volume", "tiers": [{"up_to": 10, "unit_amount": "5"}]}
    bad = post(client, f"{API}/plan-versions/{version['id']}/charges", charge, manager)
    assert bad.status_code == 422 and "tiers[0].up_to" in bad.json()["error"]["fields"]
    charge["tiers"].append({"up_to": None, "unit_amount": "4"})
    added = post(client, f"{API}/plan-versions/{version['id']}/charges", charge, manager)
    assert added.status_code == 201, added.content
    published = post(client, f"{API}/plan-versions/{version['id']}/publish", {}, manager).json()
    assert published["published_at"] is not None and published["charges"][0]["model"] == "volume"
    frozen = post(client, f"{API}/plan-versions/{version['id']}/charges", charge, manager)
    assert frozen.status_code == 409
    listed = client.get(f"{API}/plans", **manager).json()
    assert listed[0]["versions"][0]["setup_fee"] == "10.00"
    coupon = post(client, f"{API}/coupons", {"code": "ten", "name": "Ten", "percent_off": "10"}, manager)
    assert coupon.status_code == 201 and coupon.json()["code"] == "TEN"
    viewer = auth_header(user_with_roles("analyst"))
    assert client.get(f"{API}/products", **viewer).status_code == 200
    assert post(client, f"{API}/products", {"code": "x", "name": "X"}, viewer).status_code == 403


def test_migrate_subscribers_api(client: Client, time_machine) -> None:
    time_machine.move_to(datetime(2026, 1, 16, 10, tzinfo=UTC), tick=False)
    v1 = flat_plan("30.00")
    subs = [billed_subscription(v1) for _ in range(2)]
    v2 = services.plan_version_create(plan=v1.plan)
    manager = auth_header(user_with_roles("billing_clerk"))
    body = {"from_version_id": str(v1.public_id)}
    draft = post(client, f"{API}/plan-versions/{v2.public_id}/migrate", body, manager).json()
    assert draft["migrated"] == 0 and len(draft["skipped"]) == 2  # a draft cannot be sold
    services.plan_version_publish(version=v2)
    done = post(client, f"{API}/plan-versions/{v2.public_id}/migrate", body, manager).json()
    assert done == {"migrated": 2, "skipped": []}
    for sub in subs:
        sub.refresh_from_db()
        assert sub.pending_change == {"plan_version_id": v2.pk, "quantity": "1"}
    assert date(2026, 2, 1) == subs[0].current_period_end
