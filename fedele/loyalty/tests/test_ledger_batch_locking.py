"""Batch earns under the member locks: the rows are built before the locks are taken, so what they
depend on (active member, no debt) is read again under the locks; concurrent batches over the same
members lose and duplicate nothing; a fixed number of statements per batch, whatever its size."""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
import time_machine
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from fedele.loyalty.models import Member, PointsEntry, PointsLot, PointsTransaction, TierChange
from fedele.loyalty.services import ledger_batch
from fedele.loyalty.services.ledger import ledger_check, points_earn, points_redeem, transaction_reverse
from fedele.loyalty.services.ledger_batch import EarnItem, points_earn_many
from fedele.loyalty.services.members import member_set_status
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory, standard_tiers
from fedele.shared.errors import ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent
from fedele.shared.testing import in_threads

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def _counts() -> tuple[int, int, int, int, int]:
    return (
        PointsTransaction.objects.filter(kind="earn").count(),
        PointsEntry.objects.count(),
        PointsLot.objects.count(),
        AuditLog.objects.filter(action="loyalty.points_earned").count(),
        OutboxEvent.objects.filter(event_type="loyalty.points_earned").count(),
    )


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_keys_with_quotes_commas_and_backslashes_are_found_again() -> None:
    member = MemberFactory()
    keys = ['inv "7", row 2', "a\\b", "{braces}", "NULL", "semi;colon'quote"]
    first = points_earn_many(
        actor=None, source="pos", items=[EarnItem(member=member, points=3, idempotency_key=k) for k in keys]
    )
    before = _counts()
    again = points_earn_many(
        actor=None, source="pos", items=[EarnItem(member=member, points=3, idempotency_key=k) for k in keys]
    )
    assert [row.pk for row in again] == [row.pk for row in first]
    assert [row.idempotency_key for row in again] == keys
    assert _counts() == before == (5, 10, 5, 5, 5)
    member.refresh_from_db()
    assert member.available == 15


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_batch_costs_the_same_statements_for_ten_or_two_hundred_members() -> None:
    # One COPY per table on PostgreSQL (bulk_create elsewhere splits by the number of parameters).
    assert connection.vendor == "postgresql"
    programme = ProgrammeFactory()
    members = [MemberFactory(programme=programme) for _ in range(200)]

    def statements(size: int, prefix: str) -> int:
        items = [
            EarnItem(member=m, points=5, idempotency_key=f"{prefix}{i}") for i, m in enumerate(members[:size])
        ]
        with CaptureQueriesContext(connection) as captured:
            points_earn_many(actor=None, source="pos", items=items)
        return len(captured.captured_queries)

    small, large = statements(20, "s"), statements(175, "l")
    # The facts read, the lock, the key check, 2 id draws, the balances, the tier ladder, the fraud
    # velocity figures (earns of 5 points never look unusual), and the savepoint and its release (the
    # test runs inside a transaction); Django does not count the COPYs.
    assert (small, large) == (10, 10)
    # A few earns (bulk.SMALL_INSERT rows or fewer per table) are written with one INSERT ... RETURNING
    # per table instead of an id draw and a COPY: the same 10 less the 2 id draws, plus the 5 INSERTs
    # (transactions, lots, entries, audit rows, events); no COPY.
    assert statements(5, "f") == 13
    assert PointsTransaction.objects.filter(kind="earn").count() == 200
    assert ledger_check(programme=programme) == []


@pytest.mark.django_db
def test_batch_rows_get_time_ordered_public_ids_and_one_audit_row_and_event_each() -> None:
    member = MemberFactory()
    first = points_earn_many(
        actor=None,
        source="pos",
        items=[EarnItem(member=member, points=2, idempotency_key=f"a{i}") for i in range(3)],
    )
    second = points_earn_many(
        actor=None,
        source="pos",
        items=[EarnItem(member=member, points=2, idempotency_key=f"b{i}") for i in range(3)],
    )
    ids = [row.public_id for row in [*first, *second]]
    assert {public_id.version for public_id in ids} == {7}
    # The first 48 bits are the milliseconds: a later batch's ids never sort before an earlier one's.
    assert max(row.public_id.int >> 80 for row in first) <= min(row.public_id.int >> 80 for row in second)
    audited = Counter(
        AuditLog.objects.filter(action="loyalty.points_earned").values_list("object_id", flat=True)
    )
    assert audited == Counter(str(public_id) for public_id in ids)
    payloads = OutboxEvent.objects.filter(event_type="loyalty.points_earned").order_by("id")
    assert [event.payload["transaction_id"] for event in payloads] == [str(public_id) for public_id in ids]
    assert {event.event_id.version for event in payloads} == {7}
    assert payloads[0].payload == {
        "transaction_id": str(first[0].public_id),
        "member_id": str(member.public_id),
        "customer_id": str(member.customer.public_id),
        "programme": member.programme.code,
        "points": 2,
        "pending": False,
        "source": "pos",
        "reference": "",
        "occurred_at": first[0].occurred_at.isoformat(),
    }


@pytest.mark.django_db
@time_machine.travel(NOW, tick=False)
def test_every_earn_of_a_member_in_debt_goes_one_by_one_and_upgrades_once() -> None:
    programme = ProgrammeFactory(negative_balance_policy="debt")
    bronze, silver = standard_tiers(programme)[:2]
    member = MemberFactory(programme=programme, tier=bronze)
    calm = MemberFactory(programme=programme, tier=bronze)
    earned = points_earn(actor=None, member=member, points=100, source="t", idempotency_key="e1")
    points_redeem(actor=None, member=member, points=80, idempotency_key="r1", source="t")
    transaction_reverse(actor=None, transaction=earned, reason="fraud")
    points_earn_many(
        actor=None,
        source="pos",
        items=[
            EarnItem(member=member, points=1500, idempotency_key="d1"),
            EarnItem(member=calm, points=20, idempotency_key="c1"),
            EarnItem(member=member, points=600, idempotency_key="d2"),
            EarnItem(member=member, points=600, idempotency_key="d3"),
        ],
    )
    member.refresh_from_db()
    calm.refresh_from_db()
    # 80 owed are settled out of the first 1,500, which reaches Silver; the reversed earn counts
    # neither in the lifetime figure nor for the tier. The later earns of the member go one by one
    # too, so none of them sees the member's tier from before the first one (no second upgrade).
    assert (member.available, member.debt, member.lifetime_earned, calm.available) == (2620, 0, 2700, 20)
    assert member.tier_id == silver.pk
    assert list(
        TierChange.objects.filter(member=member, reason="upgrade").values_list("to_tier", flat=True)
    ) == [silver.pk]
    assert ledger_check(programme=programme) == []


def _commit_meanwhile(monkeypatch: pytest.MonkeyPatch, change: Callable[[], object]) -> None:
    """Run ``change`` in another connection, committed, after the batch built its rows and before it
    takes the member locks: the window a concurrent posting can use."""
    real_lock = ledger_batch.lock_member_rows

    def lock_after_the_change(member_ids: object) -> dict[int, Member]:
        failure: list[BaseException] = []

        def run() -> None:
            try:
                change()
            except BaseException as error:  # reported to the test below
                failure.append(error)
            finally:
                connections.close_all()

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        assert failure == []
        return real_lock(member_ids)  # type: ignore[arg-type]

    monkeypatch.setattr(ledger_batch, "lock_member_rows", lock_after_the_change)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_debt_made_while_the_rows_were_built_is_settled_first(monkeypatch: pytest.MonkeyPatch) -> None:
    assert connection.vendor == "postgresql"
    programme = ProgrammeFactory(negative_balance_policy="debt")
    member, calm = MemberFactory(programme=programme), MemberFactory(programme=programme)
    earned = points_earn(actor=None, member=member, points=100, source="t", idempotency_key="e1")
    points_redeem(actor=None, member=member, points=80, idempotency_key="r1", source="t")

    def reverse() -> None:
        transaction_reverse(
            actor=None, transaction=PointsTransaction.objects.get(pk=earned.pk), reason="fraud"
        )

    _commit_meanwhile(monkeypatch, reverse)
    posted = points_earn_many(
        actor=None,
        source="pos",
        items=[
            EarnItem(member=member, points=50, idempotency_key="b1"),
            EarnItem(member=calm, points=40, idempotency_key="b2"),
        ],
    )
    member.refresh_from_db()
    calm.refresh_from_db()
    # The reversal left 80 owed; the batch's 50 went to the debt first (the one-by-one path).
    assert (member.available, member.debt, calm.available) == (0, 30, 40)
    assert [row.points for row in posted] == [50, 40]
    assert ledger_check(programme=programme) == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_member_suspended_while_the_rows_were_built_refuses_the_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert connection.vendor == "postgresql"
    programme = ProgrammeFactory()
    member, other = MemberFactory(programme=programme), MemberFactory(programme=programme)

    def suspend() -> None:
        member_set_status(
            actor=None, member=Member.objects.get(pk=member.pk), status="suspended", reason="card lost"
        )

    _commit_meanwhile(monkeypatch, suspend)
    with pytest.raises(ValidationFailed) as raised:
        points_earn_many(
            actor=None,
            source="pos",
            items=[
                EarnItem(member=other, points=10, idempotency_key="x1"),
                EarnItem(member=member, points=10, idempotency_key="x2"),
            ],
        )
    assert raised.value.code == "member_not_active"
    assert _counts() == (0, 0, 0, 0, 0)
    assert Member.objects.get(pk=other.pk).available == 0


def _in_threads(work: Callable[[int], object], count: int) -> tuple[list[object], list[BaseException]]:
    """``shared.testing.in_threads`` that also keeps what each thread's work returned."""
    results: list[object] = []
    guard = threading.Lock()

    def keep(index: int) -> None:
        outcome = work(index)
        with guard:
            results.append(outcome)

    return results, in_threads(keep, count)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_batches_over_the_same_members_lose_and_duplicate_nothing() -> None:
    assert connection.vendor == "postgresql"
    programme = ProgrammeFactory()
    members = [MemberFactory(programme=programme) for _ in range(12)]
    plans = []
    for worker in range(4):
        rng = random.Random(worker)
        plans.append(
            [
                [
                    (rng.choice(members).pk, rng.randint(1, 9), f"w{worker}b{batch}i{item}")
                    for item in range(40)
                ]
                for batch in range(3)
            ]
        )

    def post(worker: int) -> int:
        fresh = {m.pk: m for m in Member.objects.select_related("programme").filter(programme=programme)}
        for batch in plans[worker]:
            points_earn_many(
                actor=None,
                source="pos",
                items=[
                    EarnItem(member=fresh[pk], points=points, idempotency_key=key)
                    for pk, points, key in batch
                ],
            )
        return worker

    results, errors = _in_threads(post, 4)
    assert errors == []
    assert sorted(results) == [0, 1, 2, 3]
    expected: Counter[int] = Counter()
    for plan in plans:
        for batch in plan:
            for pk, points, _key in batch:
                expected[pk] += points
    balances = dict(Member.objects.filter(programme=programme).values_list("pk", "available"))
    assert balances == {m.pk: expected[m.pk] for m in members}
    assert _counts() == (480, 960, 480, 480, 480)
    assert ledger_check(programme=programme) == []


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_the_same_upload_posted_twice_at_once_posts_once() -> None:
    assert connection.vendor == "postgresql"
    programme = ProgrammeFactory()
    members = [MemberFactory(programme=programme) for _ in range(5)]
    lines = [(members[i % 5].pk, 10 + i, f"file-7:{i}") for i in range(30)]

    def upload(_index: int) -> list[int]:
        fresh = {m.pk: m for m in Member.objects.select_related("programme").filter(programme=programme)}
        posted = points_earn_many(
            actor=None,
            source="partner-file",
            items=[
                EarnItem(member=fresh[pk], points=points, idempotency_key=key) for pk, points, key in lines
            ],
        )
        return [row.pk for row in posted]

    results, errors = _in_threads(upload, 2)
    assert errors == []
    assert results[0] == results[1]
    assert _counts() == (30, 60, 30, 30, 30)
    total = sum(points for _pk, points, _key in lines)
    assert sum(Member.objects.filter(programme=programme).values_list("available", flat=True)) == total
    assert ledger_check(programme=programme) == []
