"""Redemption: eligibility, reserve → confirm/cancel for every kind of reward, all-or-nothing,
idempotency, points-plus-cash, timeouts."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from fedele.billing.facade import charge_customer
from fedele.billing.tests.factories import BillingAccountFactory
from fedele.loyalty.models import (
    Account,
    PointsEntry,
    PointsTransaction,
    Redemption,
    Reservation,
    VoucherCode,
)
from fedele.loyalty.selectors import rewards as selectors
from fedele.loyalty.services import ledger
from fedele.loyalty.services import rewards as services
from fedele.loyalty.tests.factories import PartnerFactory
from fedele.loyalty.tests.rewards_support import (
    ADDRESS,
    assert_ledger_matches,
    footprint,
    member_with,
    portal_actor,
    reward,
    staff,
    voucher,
    world,
)
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)


# ----------------------------------------------------------------------------------------------
# Eligibility


def test_eligibility_lists_every_reason() -> None:
    with time_machine.travel(T0, tick=False):
        w = world()
        member = member_with(w.programme, 100, tier=w.bronze)
        item = voucher(
            w.programme,
            [],
            points_cost=500,
            active=False,
            valid_until=T0 - dt.timedelta(days=1),
            eligible_tiers=["gold"],
            eligible_segments=["enterprise"],
            stock=0,
        )
        assert services.reward_eligibility(member=member, reward=item) == [
            "reward_inactive",
            "reward_expired",
            "tier_not_eligible",
            "segment_not_eligible",
            "out_of_stock",
            "no_codes_left",
            "insufficient_balance",
        ]


def test_eligibility_ok_and_validity_edges_on_leap_day_in_rome() -> None:
    w = world(timezone="Europe/Rome")
    member = member_with(w.programme, 1_000, tier=w.gold)
    # Valid until the end of 29 Feb 2028, Rome time (CET, UTC+1).
    item = reward(
        w.programme,
        points_cost=300,
        eligible_tiers=["gold"],
        eligible_segments=["consumer"],
        valid_from=dt.datetime(2028, 2, 28, 23, 0, tzinfo=dt.UTC),
        valid_until=dt.datetime(2028, 2, 29, 23, 0, tzinfo=dt.UTC),
    )
    at = dt.datetime(2028, 2, 29, 22, 59, 59, tzinfo=dt.UTC)
    assert services.reward_eligibility(member=member, reward=item, at=at) == []
    assert services.reward_eligibility(
        member=member, reward=item, at=dt.datetime(2028, 2, 29, 23, 0, tzinfo=dt.UTC)
    ) == ["reward_expired"]
    assert services.reward_eligibility(
        member=member, reward=item, at=dt.datetime(2028, 2, 28, 22, 59, tzinfo=dt.UTC)
    ) == ["reward_not_yet_valid"]


def test_eligibility_member_programme_partner_and_billing_account() -> None:
    w = world(is_coalition=True)
    member = member_with(w.programme, 1_000, status="suspended")
    partner = PartnerFactory(programme=w.programme, status="suspended")
    assert services.reward_eligibility(
        member=member, reward=reward(w.programme, kind="partner", partner=partner)
    ) == ["member_not_active", "partner_unavailable"]
    credit = reward(w.programme, kind="billing_credit", credit_amount=Decimal("5.00"))
    assert services.reward_eligibility(member=member, reward=credit) == [
        "member_not_active",
        "no_billing_account",
    ]
    w.programme.status = "closed"
    w.programme.save()
    member.refresh_from_db()
    assert services.reward_eligibility(member=member, reward=reward(w.programme))[:2] == [
        "programme_not_active",
        "member_not_active",
    ]


# ----------------------------------------------------------------------------------------------
# Vouchers


def test_redeem_voucher_issues_the_code_once_and_replays_by_key() -> None:
    with time_machine.travel(T0, tick=False):
        w = world()
        member = member_with(w.programme, 1_000)
        item = voucher(w.programme, ["AAA111", "BBB222"], points_cost=400)
        agent = staff("agent")
        first = services.reward_redeem(actor=agent, member=member, reward=item, idempotency_key="order-1")
        again = services.reward_redeem(actor=agent, member=member, reward=item, idempotency_key="order-1")
    assert again.pk == first.pk
    assert first.state == "fulfilled"
    assert first.fulfilled_at == T0
    assert first.points == 400
    assert first.voucher is not None and first.voucher.code == "AAA111"
    code = VoucherCode.objects.get(code="AAA111")
    assert (code.state, code.member_id, code.issued_at) == ("issued", member.pk, T0)
    assert VoucherCode.objects.get(code="BBB222").state == "available"
    member.refresh_from_db()
    assert (member.available, member.reserved, member.lifetime_redeemed) == (600, 0, 400)
    assert Redemption.objects.count() == 1
    assert PointsTransaction.objects.filter(kind="redeem").count() == 1
    assert OutboxEvent.objects.filter(event_type="loyalty.points_redeemed").count() == 1
    reservation = Reservation.objects.get()
    assert (reservation.state, reservation.idempotency_key) == ("confirmed", "reward:order-1")
    assert_ledger_matches(member)


def test_voucher_pool_runs_out() -> None:
    w = world()
    member = member_with(w.programme, 1_000)
    item = voucher(w.programme, ["ONLY1"], points_cost=100)
    services.reward_redeem(actor=None, member=member, reward=item, idempotency_key="a")
    before = footprint()
    with pytest.raises(ValidationFailed) as caught:
        services.reward_redeem(actor=None, member=member, reward=item, idempotency_key="b")
    assert caught.value.code == "no_codes_left"
    assert footprint() == before


def test_voucher_is_redeemed_one_code_at_a_time() -> None:
    w = world()
    member = member_with(w.programme, 1_000)
    item = voucher(w.programme, ["C1", "C2"], points_cost=100)
    with pytest.raises(ValidationFailed) as caught:
        services.reward_redeem(actor=None, member=member, reward=item, idempotency_key="a", quantity=2)
    assert caught.value.code == "invalid_quantity"
    assert Redemption.objects.count() == 0


# ----------------------------------------------------------------------------------------------
# Refusals write nothing


@pytest.mark.parametrize(
    ("setup", "code"),
    [
        ({"valid_until": T0 - dt.timedelta(seconds=1)}, "reward_expired"),
        ({"stock": 0}, "out_of_stock"),
        ({"points_cost": 1_001}, "insufficient_balance"),
        ({"eligible_tiers": ["gold"]}, "tier_not_eligible"),
        ({"active": False}, "reward_inactive"),
    ],
)
def test_refusals_write_nothing(setup: dict[str, object], code: str) -> None:
    with time_machine.travel(T0, tick=False):
        w = world()
        member = member_with(w.programme, 1_000, tier=w.silver)
        fields: dict[str, object] = {"points_cost": 100, "stock": 3, **setup}
        item = voucher(w.programme, ["V1", "V2"], **fields)
        before = footprint()
        with pytest.raises(ValidationFailed) as caught:
            services.reward_redeem(actor=staff("agent"), member=member, reward=item, idempotency_key="x")
        assert caught.value.code == code
        assert caught.value.fields["reward"][0] == caught.value.message
        assert footprint() == before
        assert not Reservation.objects.exists()
        assert VoucherCode.objects.filter(state="available").count() == 2


def test_refusal_under_the_lock_writes_nothing() -> None:
    """The caller's copy of the member is stale (its points were spent meanwhile): the check under the
    locks refuses, and nothing is written."""
    w = world()
    member = member_with(w.programme, 500)
    item = reward(w.programme, points_cost=400, stock=2)
    stale = type(member).objects.get(pk=member.pk)
    services.reward_redeem(
        actor=None, member=member, reward=item, idempotency_key="first", shipping_address=ADDRESS
    )
    before = footprint()
    with pytest.raises(ValidationFailed) as caught:
        services.reward_redeem(
            actor=None, member=stale, reward=item, idempotency_key="second", shipping_address=ADDRESS
        )
    assert caught.value.code == "insufficient_balance"
    assert footprint() == before


def test_wrong_programme_and_bad_quantity() -> None:
    w = world()
    other = world()
    member = member_with(w.programme, 1_000)
    for item, quantity, code in (
        (reward(other.programme), 1, "wrong_programme"),
        (reward(w.programme), 0, "invalid_quantity"),
        (reward(w.programme), 1_001, "invalid_quantity"),
    ):
        with pytest.raises(ValidationFailed) as caught:
            services.reward_redeem(
                actor=None,
                member=member,
                reward=item,
                idempotency_key="q",
                quantity=quantity,
                shipping_address=ADDRESS,
            )
        assert caught.value.code == code
    assert Redemption.objects.count() == 0


def test_idempotency_key_required_and_not_reusable_for_another_reward() -> None:
    w = world()
    member = member_with(w.programme, 1_000)
    first = reward(w.programme, points_cost=100)
    second = reward(w.programme, points_cost=100)
    with pytest.raises(ValidationFailed) as missing:
        services.reward_redeem(
            actor=None, member=member, reward=first, idempotency_key=" ", shipping_address=ADDRESS
        )
    assert missing.value.code == "idempotency_key_required"
    services.reward_redeem(
        actor=None, member=member, reward=first, idempotency_key="k", shipping_address=ADDRESS
    )
    before = footprint()
    with pytest.raises(Conflict) as reused:
        services.reward_redeem(
            actor=None, member=member, reward=second, idempotency_key="k", shipping_address=ADDRESS
        )
    assert reused.value.code == "idempotency_key_reused"
    assert footprint() == before


# ----------------------------------------------------------------------------------------------
# Per-member limit and quantities


def test_per_member_limit_counts_units_and_ignores_cancelled() -> None:
    w = world()
    member = member_with(w.programme, 10_000)
    item = reward(w.programme, points_cost=100, per_member_limit=3, stock=None)
    services.reward_redeem(
        actor=None, member=member, reward=item, idempotency_key="a", quantity=2, shipping_address=ADDRESS
    )
    with pytest.raises(ValidationFailed) as caught:
        services.reward_redeem(
            actor=None, member=member, reward=item, idempotency_key="b", quantity=2, shipping_address=ADDRESS
        )
    assert caught.value.code == "member_limit_reached"
    last = services.reward_redeem(
        actor=None, member=member, reward=item, idempotency_key="c", shipping_address=ADDRESS
    )
    with pytest.raises(ValidationFailed):
        services.reward_redeem(
            actor=None, member=member, reward=item, idempotency_key="d", shipping_address=ADDRESS
        )
    services.redemption_cancel(actor=staff("agent"), redemption=last, reason="Changed their mind")
    again = services.reward_redeem(
        actor=None, member=member, reward=item, idempotency_key="e", shipping_address=ADDRESS
    )
    assert again.state == "awaiting_shipment"
    # Another member has a limit of its own.
    other = member_with(w.programme, 1_000)
    assert services.reward_eligibility(member=other, reward=item, quantity=3) == []


def test_quantity_takes_stock_and_points_and_cancel_gives_them_back() -> None:
    w = world()
    member = member_with(w.programme, 1_000)
    item = reward(w.programme, points_cost=150, stock=5)
    redemption = services.reward_redeem(
        actor=None, member=member, reward=item, idempotency_key="q3", quantity=3, shipping_address=ADDRESS
    )
    item.refresh_from_db()
    member.refresh_from_db()
    assert (redemption.points, item.stock, member.available) == (450, 2, 550)
    services.redemption_cancel(actor=staff("agent"), redemption=redemption, reason="Out of colour")
    item.refresh_from_db()
    member.refresh_from_db()
    assert (redemption.state, item.stock, member.available, member.lifetime_redeemed) == (
        "cancelled",
        5,
        1_000,
        0,
    )
    assert_ledger_matches(member)


# ----------------------------------------------------------------------------------------------
# Physical items


def test_physical_needs_a_valid_address() -> None:
    w = world()
    member = member_with(w.programme, 1_000)
    item = reward(w.programme, points_cost=100, stock=1)
    before = footprint()
    with pytest.raises(ValidationFailed) as missing:
        services.reward_redeem(actor=None, member=member, reward=item, idempotency_key="a")
    assert missing.value.code == "shipping_address_required"
    with pytest.raises(ValidationFailed) as bad:
        services.reward_redeem(
            actor=None,
            member=member,
            reward=item,
            idempotency_key="a",
            shipping_address={**ADDRESS, "postcode": "0018", "city": " ", "floor": "3"},
        )
    assert bad.value.code == "invalid_shipping_address"
    assert bad.value.fields == {
        "shipping_address.postcode": ["An Italian postcode has 5 digits."],
        "shipping_address.city": ["Required."],
        "shipping_address.floor": ["Unknown field."],
    }
    assert footprint() == before


def test_physical_ship_then_cannot_cancel() -> None:
    w = world()
    member = member_with(w.programme, 1_000)
    item = reward(w.programme, points_cost=300, stock=4)
    redemption = services.reward_redeem(
        actor=None,
        member=member,
        reward=item,
        idempotency_key="ship",
        shipping_address={**ADDRESS, "country": "it", "province": "RM"},
    )
    assert redemption.state == "awaiting_shipment"
    assert redemption.fulfilled_at is None
    assert redemption.shipping_address == {**ADDRESS, "province": "RM"}
    assert [r.pk for r in selectors.fulfilment_queue()] == [redemption.pk]
    with pytest.raises(ValidationFailed):
        services.redemption_ship(actor=staff("agent"), redemption=redemption, tracking="  ")
    with time_machine.travel(T0, tick=False):
        shipped = services.redemption_ship(actor=staff("agent"), redemption=redemption, tracking="BRT-123")
    assert (shipped.state, shipped.tracking, shipped.fulfilled_at) == ("shipped", "BRT-123", T0)
    assert list(selectors.fulfilment_queue()) == []
    with pytest.raises(Conflict) as caught:
        services.redemption_cancel(actor=staff("agent"), redemption=redemption, reason="lost")
    assert caught.value.code == "already_shipped"


def test_cancel_after_confirm_reverses_the_redeem_posting() -> None:
    w = world()
    member = member_with(w.programme, 1_000)
    item = reward(w.programme, points_cost=300, stock=4)
    redemption = services.reward_redeem(
        actor=None, member=member, reward=item, idempotency_key="never", shipping_address=ADDRESS
    )
    member.refresh_from_db()
    assert (member.available, member.lifetime_redeemed) == (700, 300)
    cancelled = services.redemption_cancel(
        actor=staff("agent"), redemption=redemption, reason="Never shipped"
    )
    assert cancelled.state == "cancelled"
    item.refresh_from_db()
    member.refresh_from_db()
    assert (item.stock, member.available, member.lifetime_redeemed) == (4, 1_000, 0)
    reversal = PointsTransaction.objects.get(kind="reverse")
    assert reversal.reversal_of_id == redemption.reservation.final_transaction_id
    assert reversal.points == 300
    # Idempotent: cancelling again changes nothing.
    before = footprint()
    services.redemption_cancel(actor=staff("agent"), redemption=redemption, reason="again")
    assert footprint() == before
    assert_ledger_matches(member)


def test_ship_refuses_a_voucher() -> None:
    w = world()
    member = member_with(w.programme, 1_000)
    redemption = services.reward_redeem(
        actor=None, member=member, reward=voucher(w.programme, ["X1"], points_cost=10), idempotency_key="v"
    )
    with pytest.raises(Conflict) as caught:
        services.redemption_ship(actor=staff("agent"), redemption=redemption, tracking="T")
    assert caught.value.code == "not_awaiting_shipment"


# ----------------------------------------------------------------------------------------------
# Points plus cash: reserve, then confirm or cancel


def test_points_plus_cash_reserved_then_confirmed() -> None:
    with time_machine.travel(T0, tick=False):
        w = world()
        member = member_with(w.programme, 1_000)
        item = voucher(w.programme, ["PC1"], points_cost=250, cash_price=Decimal("9.90"))
        held = services.reward_redeem(
            actor=staff("agent"), member=member, reward=item, idempotency_key="pc", confirm=False
        )
        assert held.state == "reserved"
        assert (held.points, held.cash_amount) == (250, Decimal("9.90"))
        member.refresh_from_db()
        assert (member.available, member.reserved) == (750, 250)
        assert VoucherCode.objects.get(code="PC1").state == "reserved"
        reservation = Reservation.objects.get()
        assert (reservation.cash_amount, reservation.expires_at) == (
            Decimal("9.90"),
            T0 + dt.timedelta(minutes=15),
        )
        confirmed = services.redemption_confirm(actor=staff("agent"), redemption=held)
        services.redemption_confirm(actor=staff("agent"), redemption=held)  # idempotent
    assert confirmed.state == "fulfilled"
    member.refresh_from_db()
    assert (member.available, member.reserved, member.lifetime_redeemed) == (750, 0, 250)
    redeem = PointsTransaction.objects.get(kind="redeem")
    assert (redeem.points, redeem.cash_amount) == (250, Decimal("9.90"))
    assert VoucherCode.objects.get(code="PC1").state == "issued"
    assert_ledger_matches(member)


def test_points_plus_cash_reserved_then_cancelled() -> None:
    w = world()
    member = member_with(w.programme, 1_000)
    item = voucher(w.programme, ["PC1"], points_cost=250, cash_price=Decimal("9.90"), stock=1)
    held = services.reward_redeem(actor=None, member=member, reward=item, idempotency_key="pc", confirm=False)
    item.refresh_from_db()
    assert item.stock == 0
    services.redemption_cancel(actor=staff("agent"), redemption=held, reason="Card declined")
    item.refresh_from_db()
    member.refresh_from_db()
    assert (held.state, held.voucher_id, item.stock) == ("cancelled", None, 1)
    assert (member.available, member.reserved, member.lifetime_redeemed) == (1_000, 0, 0)
    code = VoucherCode.objects.get(code="PC1")
    assert (code.state, code.reservation_id, code.member_id) == ("available", None, None)
    assert Reservation.objects.get().state == "cancelled"
    assert not PointsTransaction.objects.filter(kind="redeem").exists()
    with pytest.raises(Conflict) as caught:
        services.redemption_confirm(actor=staff("agent"), redemption=held)
    assert caught.value.code == "redemption_cancelled"
    # The freed code can be redeemed by someone else.
    other = member_with(w.programme, 300)
    again = services.reward_redeem(actor=None, member=other, reward=item, idempotency_key="pc2")
    assert again.voucher is not None and again.voucher.code == "PC1"
    assert_ledger_matches(member)


def test_reservation_timeout_cancels_the_redemption_and_gives_everything_back() -> None:
    with time_machine.travel(T0, tick=False):
        w = world()
        member = member_with(w.programme, 1_000)
        item = voucher(w.programme, ["T1"], points_cost=200, cash_price=Decimal("5.00"), stock=1)
        held = services.reward_redeem(
            actor=None, member=member, reward=item, idempotency_key="t", confirm=False
        )
    with time_machine.travel(T0 + dt.timedelta(minutes=14), tick=False):
        assert services.reservations_expired_cleanup() == 0
    with time_machine.travel(T0 + dt.timedelta(minutes=16), tick=False):
        with pytest.raises(Conflict) as late:
            services.redemption_confirm(actor=staff("agent"), redemption=held)
        assert late.value.code == "reservation_expired"
        assert services.reservations_expired_cleanup() == 1
        assert services.reservations_expired_cleanup() == 0
    held.refresh_from_db()
    item.refresh_from_db()
    member.refresh_from_db()
    assert (held.state, held.voucher_id, item.stock) == ("cancelled", None, 1)
    assert (member.available, member.reserved) == (1_000, 0)
    assert Reservation.objects.get().state == "expired"
    assert VoucherCode.objects.get(code="T1").state == "available"
    assert AuditLog.objects.filter(action="loyalty.redemption_expired").count() == 1
    assert_ledger_matches(member)


def test_cleanup_after_the_ledger_expired_the_reservation() -> None:
    with time_machine.travel(T0, tick=False):
        w = world()
        member = member_with(w.programme, 1_000)
        item = reward(w.programme, points_cost=200, stock=3)
        held = services.reward_redeem(
            actor=None,
            member=member,
            reward=item,
            idempotency_key="t",
            confirm=False,
            shipping_address=ADDRESS,
        )
    with time_machine.travel(T0 + dt.timedelta(hours=1), tick=False):
        assert ledger.reservations_expire_due() == 1
        assert services.reservations_expired_cleanup() == 1
    held.refresh_from_db()
    item.refresh_from_db()
    member.refresh_from_db()
    assert (held.state, item.stock, member.available) == ("cancelled", 3, 1_000)


# ----------------------------------------------------------------------------------------------
# Billing credit, partner rewards, donations


def test_billing_credit_puts_a_negative_charge_on_the_next_invoice() -> None:
    w = world()
    member = member_with(w.programme, 2_000)
    BillingAccountFactory(customer=member.customer)
    item = reward(
        w.programme, kind="billing_credit", points_cost=500, credit_amount=Decimal("7.50"), stock=None
    )
    redemption = services.reward_redeem(
        actor=None, member=member, reward=item, idempotency_key="cr", quantity=2
    )
    assert redemption.state == "fulfilled"
    assert redemption.billing_charge_id
    # Billing's public API: the same key returns the charge already made, and creates nothing.
    receipt = charge_customer(
        customer_public_id=str(member.customer.public_id),
        description="probe",
        amount=Decimal("-15.00"),
        idempotency_key=f"loyalty:{redemption.public_id}",
        source="loyalty",
    )
    assert receipt.created is False
    assert receipt.charge_id == redemption.billing_charge_id
    assert receipt.amount == Decimal("-15.00")
    assert item.name_it in receipt.description  # the member's language (Italian)
    member.refresh_from_db()
    assert member.available == 1_000
    with pytest.raises(Conflict) as caught:
        services.redemption_cancel(actor=staff("agent"), redemption=redemption, reason="oops")
    assert caught.value.code == "credit_already_applied"
    redemption.refresh_from_db()
    assert redemption.state == "fulfilled"


def test_billing_credit_without_billing_account_writes_nothing() -> None:
    w = world()
    member = member_with(w.programme, 2_000)
    item = reward(w.programme, kind="billing_credit", points_cost=500, credit_amount=Decimal("7.50"))
    before = footprint()
    with pytest.raises(ValidationFailed) as caught:
        services.reward_redeem(actor=None, member=member, reward=item, idempotency_key="cr")
    assert caught.value.code == "no_billing_account"
    assert footprint() == before


def test_partner_reward_books_the_partner_redemption() -> None:
    w = world(is_coalition=True)
    partner = PartnerFactory(programme=w.programme, burn_price_per_point=Decimal("0.008000"))
    member = member_with(w.programme, 2_000)
    item = reward(w.programme, kind="partner", partner=partner, points_cost=1_250, stock=None)
    redemption = services.reward_redeem(actor=None, member=member, reward=item, idempotency_key="p")
    assert redemption.state == "fulfilled"
    assert redemption.reservation.partner_id == partner.pk
    redeem = PointsTransaction.objects.get(kind="redeem")
    assert (redeem.partner_id, redeem.partner_amount) == (partner.pk, Decimal("10.00"))
    assert PointsEntry.objects.get(transaction=redeem, account=Account.PARTNER_REDEMPTION).points == 1_250


def test_donation_is_fulfilled_at_once_and_records_the_charity() -> None:
    w = world()
    member = member_with(w.programme, 2_000)
    item = reward(w.programme, kind="donation", charity_name="Banco Alimentare", points_cost=100, stock=None)
    redemption = services.reward_redeem(
        actor=None, member=member, reward=item, idempotency_key="d", quantity=5
    )
    assert (redemption.state, redemption.points) == ("fulfilled", 500)
    row = AuditLog.objects.get(action="loyalty.redemption_confirmed")
    assert row.after is not None and row.after["charity"] == "Banco Alimentare"


# ----------------------------------------------------------------------------------------------
# Who may redeem


def test_portal_member_redeems_only_its_own_membership() -> None:
    w = world()
    member = member_with(w.programme, 1_000)
    other = member_with(w.programme, 1_000)
    item = voucher(w.programme, ["P1", "P2"], points_cost=100)
    actor = portal_actor(member)
    mine = services.reward_redeem(actor=actor, member=member, reward=item, idempotency_key="mine")
    assert mine.state == "fulfilled"
    before = footprint()
    with pytest.raises(PermissionDenied):
        services.reward_redeem(actor=actor, member=other, reward=item, idempotency_key="theirs")
    assert footprint() == before


def test_portal_member_cannot_confirm_points_plus_cash_but_can_cancel_it() -> None:
    w = world()
    member = member_with(w.programme, 1_000)
    item = voucher(w.programme, ["P1"], points_cost=100, cash_price=Decimal("3.00"))
    actor = portal_actor(member)
    held = services.reward_redeem(actor=actor, member=member, reward=item, idempotency_key="c", confirm=False)
    with pytest.raises(PermissionDenied):
        services.redemption_confirm(actor=actor, redemption=held)
    services.redemption_cancel(actor=actor, redemption=held, reason="No longer needed")
    assert held.state == "cancelled"


def test_view_only_staff_cannot_redeem() -> None:
    w = world()
    member = member_with(w.programme, 1_000)
    with pytest.raises(PermissionDenied):
        services.reward_redeem(
            actor=staff("billing_clerk"),
            member=member,
            reward=reward(w.programme),
            idempotency_key="n",
            shipping_address=ADDRESS,
        )
    assert Redemption.objects.count() == 0


# ----------------------------------------------------------------------------------------------
# Catalogue for a member


def test_rewards_for_member_explains_each_item(django_assert_max_num_queries: object) -> None:
    w = world()
    member = member_with(w.programme, 300, tier=w.silver)
    cheap = voucher(w.programme, ["A1"], points_cost=100, position=1)
    dear = reward(w.programme, points_cost=500, position=2)
    gold = reward(w.programme, points_cost=50, eligible_tiers=["gold"], position=3)
    reward(w.programme, points_cost=50, active=False, position=4)
    limited = reward(w.programme, points_cost=100, per_member_limit=1, position=5)
    services.reward_redeem(
        actor=None, member=member, reward=limited, idempotency_key="l", shipping_address=ADDRESS
    )
    member.refresh_from_db()
    with django_assert_max_num_queries(8):  # type: ignore[operator]
        offers = selectors.rewards_for_member(member)
    assert [(o.reward.pk, o.reasons) for o in offers] == [
        (cheap.pk, []),
        (dear.pk, ["insufficient_balance"]),
        (gold.pk, ["tier_not_eligible"]),
        (limited.pk, ["member_limit_reached"]),
    ]
    assert offers[1].messages == ["Not enough points available."]
