"""PostgreSQL: no double spend under concurrent redemptions, one earn per idempotency key under a
race, and the set-based expiry job (same result as the ORM path, and fast)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.db import connection, connections

from fedele.customers.tests.factories import CustomerFactory
from fedele.loyalty.models import Member, PointsEntry, PointsLot, PointsTransaction, Reservation
from fedele.loyalty.services.ledger import (
    ledger_check,
    lots_expire_due,
    points_earn,
    points_redeem,
    points_transfer,
    reservation_hold,
)
from fedele.loyalty.services.members import household_add, household_create, member_enrol
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory
from fedele.shared.errors import ApplicationError, ValidationFailed
from fedele.shared.models import OutboxEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _in_threads(work: Callable[[int], object], count: int) -> tuple[list[object], list[BaseException]]:
    results: list[object] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)
    lock = threading.Lock()

    def run(index: int) -> None:
        try:
            barrier.wait()
            outcome = work(index)
            with lock:
                results.append(outcome)
        except BaseException as error:
            with lock:
                errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results, errors


def test_twenty_threads_redeeming_100_from_1000_exactly_ten_succeed() -> None:
    assert connection.vendor == "postgresql"
    member = MemberFactory(programme=ProgrammeFactory())
    points_earn(actor=None, member=member, points=600, source="t", idempotency_key="a")
    points_earn(actor=None, member=member, points=400, source="t", idempotency_key="b")

    def redeem(index: int) -> int:
        fresh = Member.objects.select_related("programme").get(pk=member.pk)
        txn = points_redeem(actor=None, member=fresh, points=100, idempotency_key=f"r-{index}", source="t")
        return txn.pk

    results, errors = _in_threads(redeem, 20)
    assert len(results) == 10
    assert len(errors) == 10
    assert all(
        isinstance(error, ValidationFailed) and error.code == "insufficient_balance" for error in errors
    )
    member.refresh_from_db()
    assert (member.available, member.reserved, member.lifetime_redeemed) == (0, 0, 1000)
    assert PointsTransaction.objects.filter(kind="redeem").count() == 10
    assert Reservation.objects.filter(state="confirmed").count() == 10
    assert ledger_check() == []


def test_fifty_parallel_earns_with_one_key_earn_once() -> None:
    member = MemberFactory(programme=ProgrammeFactory())

    def earn(index: int) -> int:
        fresh = Member.objects.select_related("programme").get(pk=member.pk)
        return points_earn(
            actor=None, member=fresh, points=250, source="t", idempotency_key="same-invoice"
        ).pk

    results, errors = _in_threads(earn, 50)
    assert errors == []
    assert len(set(results)) == 1
    assert PointsTransaction.objects.filter(kind="earn").count() == 1
    assert PointsEntry.objects.count() == 2
    member.refresh_from_db()
    assert (member.available, member.lifetime_earned) == (250, 250)
    assert OutboxEvent.objects.filter(event_type="loyalty.points_earned").count() == 1
    assert ledger_check() == []


def test_parallel_holds_and_transfers_never_overdraw() -> None:
    programme = ProgrammeFactory(transfer_max_points=10_000, transfer_max_points_per_month=100_000)
    parent, child = MemberFactory(programme=programme), MemberFactory(programme=programme)
    household = household_create(actor=None, owner=parent, name="Family")
    household_add(actor=None, household=household, member=child)
    points_earn(actor=None, member=parent, points=1000, source="t", idempotency_key="p")
    points_earn(actor=None, member=child, points=1000, source="t", idempotency_key="c")

    def work(index: int) -> str:
        sender, receiver = (parent, child) if index % 2 else (child, parent)
        sender = Member.objects.select_related("programme").get(pk=sender.pk)
        receiver = Member.objects.get(pk=receiver.pk)
        if index % 3 == 0:
            reservation_hold(actor=None, member=sender, points=150, idempotency_key=f"h-{index}", source="t")
            return "hold"
        points_transfer(
            actor=None, from_member=sender, to_member=receiver, points=200, idempotency_key=f"t-{index}"
        )
        return "transfer"

    _results, errors = _in_threads(work, 24)
    assert all(isinstance(error, ApplicationError) for error in errors)
    parent.refresh_from_db()
    child.refresh_from_db()
    assert parent.available >= 0 and child.available >= 0
    assert parent.available + parent.reserved + child.available + child.reserved == 2000
    assert ledger_check() == []


def test_concurrent_enrolments_of_one_customer_make_one_member() -> None:
    programme = ProgrammeFactory()
    customer = CustomerFactory()

    def enrol(index: int) -> int:
        return member_enrol(actor=None, programme=programme, customer_public_id=str(customer.public_id)).pk

    results, errors = _in_threads(enrol, 10)
    assert errors == []
    assert len(set(results)) == 1
    assert Member.objects.filter(programme=programme).count() == 1


def test_set_based_expiry_matches_the_ledger_and_publishes_one_event_per_member() -> None:
    programme = ProgrammeFactory(expiry_policy="rolling_months", expiry_months=1)
    members = [MemberFactory(programme=programme) for _ in range(5)]
    with time_machine.travel(datetime(2026, 1, 10, tzinfo=UTC), tick=False):
        for index, member in enumerate(members):
            points_earn(actor=None, member=member, points=10 + index, source="t", idempotency_key=f"a{index}")
            points_earn(actor=None, member=member, points=5, source="t", idempotency_key=f"b{index}")
    with time_machine.travel(datetime(2026, 2, 1, tzinfo=UTC), tick=False):
        points_earn(actor=None, member=members[0], points=99, source="t", idempotency_key="late")
        points_redeem(actor=None, member=members[1], points=12, idempotency_key="r", source="t")
    assert lots_expire_due(today=date(2026, 2, 11), programme=programme) == 9
    assert lots_expire_due(today=date(2026, 2, 11), programme=programme) == 0
    balances = list(
        Member.objects.filter(programme=programme).order_by("id").values_list("available", "lifetime_expired")
    )
    assert balances == [(99, 15), (0, 4), (0, 17), (0, 18), (0, 19)]
    events = OutboxEvent.objects.filter(event_type="loyalty.points_expired")
    assert events.count() == 5
    payload = events.get(aggregate_id=str(members[2].public_id)).payload
    assert payload == {
        "member_id": str(members[2].public_id),
        "customer_id": str(members[2].customer.public_id),
        "programme": programme.code,
        "points": 17,
        "expired_on": "2026-02-11",
    }
    assert PointsTransaction.objects.filter(kind="expire").count() == 5
    assert ledger_check() == []


def _clone_sql(model, overrides: dict[str, str], source: str) -> str:
    """INSERT … SELECT copying every column of ``model`` from ``source`` rows, with SQL overrides."""
    columns = [f.column for f in model._meta.concrete_fields if not f.primary_key]
    select = ", ".join(overrides.get(column, f"src.{column}") for column in columns)
    return f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) SELECT {select} FROM {source}"


def bulk_members_with_lots(programme, members: int, lots_per_member: int, points_per_lot: int) -> None:
    """Members with one EARN each, split in lots that all expired on 31 January 2026, written in bulk
    SQL with balanced entries (so ledger_check holds before and after)."""
    from fedele.customers.models import Customer

    seed_customer = CustomerFactory()
    seed_member = MemberFactory(programme=programme, customer=seed_customer)
    points = lots_per_member * points_per_lot
    with connection.cursor() as cursor:
        cursor.execute(
            _clone_sql(
                Customer,
                {"public_id": "gen_random_uuid()", "number": "'BULK-' || g", "email": "''", "phone": "''"},
                f"{Customer._meta.db_table} src, generate_series(1, %s) g WHERE src.id = %s",
            ),
            [members, seed_customer.pk],
        )
        cursor.execute(
            _clone_sql(
                Member,
                {
                    "public_id": "gen_random_uuid()",
                    "customer_id": "c.id",
                    "card_number": "'7' || lpad(c.id::text, 15, '0')",
                    "referral_code": "'B' || c.id",
                    "available": str(points),
                    "lifetime_earned": str(points),
                },
                f"{Member._meta.db_table} src, {Customer._meta.db_table} c "
                "WHERE src.id = %s AND c.number LIKE 'BULK-%%'",
            ),
            [seed_member.pk],
        )
        cursor.execute(
            f"""
            INSERT INTO {PointsTransaction._meta.db_table} (public_id, programme_id, member_id, kind,
                points, source, reference, qualifying_points, qualifying_count, details, memo, occurred_at,
                created_at)
            SELECT gen_random_uuid(), %s, m.id, 'earn', %s, 'bulk', '', %s, 0, '{{}}', '',
                '2025-12-31T12:00:00Z', '2025-12-31T12:00:00Z'
            FROM {Member._meta.db_table} m WHERE m.programme_id = %s AND m.id <> %s
            """,
            [programme.pk, points, points, programme.pk, seed_member.pk],
        )
        cursor.execute(
            f"""
            INSERT INTO {PointsLot._meta.db_table} (programme_id, member_id, earn_transaction_id, points,
                remaining, state, earned_at, expires_on)
            SELECT %s, t.member_id, t.id, %s, %s, 'available', t.occurred_at, DATE '2026-01-31'
            FROM {PointsTransaction._meta.db_table} t, generate_series(1, %s) g
            WHERE t.programme_id = %s AND t.source = 'bulk'
            """,
            [programme.pk, points_per_lot, points_per_lot, lots_per_member, programme.pk],
        )
        cursor.execute(
            f"""
            INSERT INTO {PointsEntry._meta.db_table} (transaction_id, programme_id, account, member_id,
                lot_id, points, created_at)
            SELECT l.earn_transaction_id, %s, 'member_available', l.member_id, l.id, l.points, l.earned_at
            FROM {PointsLot._meta.db_table} l WHERE l.programme_id = %s
            UNION ALL
            SELECT t.id, %s, 'issuance', NULL, NULL, -t.points, t.occurred_at
            FROM {PointsTransaction._meta.db_table} t WHERE t.programme_id = %s AND t.source = 'bulk'
            """,
            [programme.pk, programme.pk, programme.pk, programme.pk],
        )
        cursor.execute("ANALYZE")


@pytest.mark.slow
def test_expiry_job_is_set_based_and_fast() -> None:
    """200,000 lots of 50,000 members expire in one run well within budget (the budget is 60 s for a
    million lots; ``LOYALTY_EXPIRY_LOTS=1000000`` runs the full size)."""
    import os

    lots_total = int(os.environ.get("LOYALTY_EXPIRY_LOTS", "200000"))
    programme = ProgrammeFactory(expiry_policy="rolling_months", expiry_months=1)
    bulk_members_with_lots(programme, members=lots_total // 4, lots_per_member=4, points_per_lot=25)
    assert PointsLot.objects.filter(programme=programme).count() == lots_total
    started = time.perf_counter()
    expired = lots_expire_due(today=date(2026, 2, 1), programme=programme)
    elapsed = time.perf_counter() - started
    print(f"expired {expired} lots in {elapsed:.1f} s")  # noqa: T201
    assert expired == lots_total
    # The 60 s per million lots target is measured by bench/loyalty_ledger.py (--modes expiry), not
    # here: a shared CI machine's wall clock says nothing. LOYALTY_EXPIRY_STRICT=1 checks it on an
    # idle machine.
    if os.environ.get("LOYALTY_EXPIRY_STRICT"):
        assert elapsed < 60 * lots_total / 1_000_000 + 5
    assert Member.objects.filter(programme=programme, available__gt=0).count() == 0
    assert PointsTransaction.objects.filter(kind="expire").count() == lots_total // 4
    assert OutboxEvent.objects.filter(event_type="loyalty.points_expired").count() == lots_total // 4
    assert ledger_check(programme=programme) == []
