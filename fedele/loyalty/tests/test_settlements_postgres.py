"""PostgreSQL with real threads: partner operations and statements under concurrency."""

from __future__ import annotations

import threading
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import time_machine
from django.db import connection, connections

from fedele.loyalty.models import PartnerSettlement, PointsTransaction
from fedele.loyalty.services.ledger import ledger_check
from fedele.loyalty.services.partners import partner_burn, partner_earn, partner_reverse
from fedele.loyalty.services.settlements import settlement_generate, settlement_issue
from fedele.loyalty.tests.partners_fixtures import (
    at,
    coalition,
    member_with,
    partner_actor,
    partner_with_user,
)
from fedele.shared.errors import ApplicationError

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]
D = Decimal


@pytest.fixture(autouse=True)
def _seeded() -> None:
    """Transactional tests flush the tables the seed migration filled: seed them again."""
    from importlib import import_module

    from django.apps import apps

    import_module("fedele.support.migrations.0002_defaults").seed(apps, None)


def _in_threads(work: Callable[[int], Any], count: int) -> tuple[list[Any], list[BaseException]]:
    """Run ``work`` in ``count`` threads released together. time-machine moves the clock of the whole
    process, so the caller travels once around this call."""
    results: list[Any] = []
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


@pytest.fixture
def shop() -> dict[str, Any]:
    assert connection.vendor == "postgresql"
    with time_machine.travel(at(2026, 3, 1), tick=False):
        programme = coalition()
        partner, user = partner_with_user(
            programme, code="shop", earn_price_per_point=D("0.012345"), burn_price_per_point=D("0.009500")
        )
        member = member_with(programme, 1_000, card="9000000000000001")
    return {"partner": partner, "actor": partner_actor(user), "member": member, "programme": programme}


def test_twenty_parallel_burns_never_overspend(shop: dict[str, Any]) -> None:
    partner, actor, member = shop["partner"], shop["actor"], shop["member"]

    def burn(index: int) -> Any:
        return partner_burn(
            actor=actor, partner=partner, card_number=member.card_number, points=100, external_id=f"B{index}"
        )

    with time_machine.travel(at(2026, 3, 10), tick=False):
        results, errors = _in_threads(burn, 20)
    assert len(results) == 10 and len(errors) == 10
    assert all(
        isinstance(error, ApplicationError) and error.code == "insufficient_balance" for error in errors
    )
    member.refresh_from_db()
    assert (member.available, member.reserved) == (0, 0)
    amounts = list(
        PointsTransaction.objects.filter(partner=partner, kind="redeem").values_list(
            "partner_amount", flat=True
        )
    )
    assert amounts == [D("0.95")] * 10  # 100 × 0.0095
    assert ledger_check(programme=shop["programme"]) == []


def test_the_same_external_id_in_parallel_posts_once(shop: dict[str, Any]) -> None:
    partner, actor, member = shop["partner"], shop["actor"], shop["member"]

    def earn(_index: int) -> Any:
        return partner_earn(
            actor=actor, partner=partner, card_number=member.card_number, points=81, external_id="SAME"
        )

    with time_machine.travel(at(2026, 3, 10), tick=False):
        results, errors = _in_threads(earn, 12)
    assert errors == []
    assert len({result.transaction.pk for result in results}) == 1
    assert PointsTransaction.objects.filter(partner=partner, kind="earn").count() == 1
    member.refresh_from_db()
    assert member.available == 1_081


def test_parallel_reversals_reverse_once(shop: dict[str, Any]) -> None:
    partner, actor, member = shop["partner"], shop["actor"], shop["member"]
    with time_machine.travel(at(2026, 3, 5), tick=False):
        earned = partner_earn(
            actor=actor, partner=partner, card_number=member.card_number, points=81, external_id="E"
        )
    assert earned.transaction is not None

    def reverse(_index: int) -> Any:
        return partner_reverse(
            actor=actor, partner=partner, transaction_to_reverse=earned.transaction, reason="void"
        )

    with time_machine.travel(at(2026, 3, 10), tick=False):
        results, errors = _in_threads(reverse, 8)
    assert errors == []
    assert len({reversal.pk for reversal in results}) == 1
    assert PointsTransaction.objects.filter(kind="reverse").count() == 1


def test_parallel_generation_makes_one_statement_and_issue_sees_every_purchase(shop: dict[str, Any]) -> None:
    partner, actor, member = shop["partner"], shop["actor"], shop["member"]
    with time_machine.travel(at(2026, 3, 5), tick=False):
        partner_earn(actor=actor, partner=partner, card_number=member.card_number, points=81, external_id="E")

    def generate(_index: int) -> Any:
        return settlement_generate(actor=None, partner=partner, year=2026, month=3)

    with time_machine.travel(at(2026, 4, 2), tick=False):
        results, errors = _in_threads(generate, 8)
    assert errors == []
    assert PartnerSettlement.objects.filter(partner=partner).count() == 1
    assert {s.pk for s in results} == {PartnerSettlement.objects.get().pk}

    # A late purchase for March races the issue: either it is in the issued statement, or refused.
    def late_or_issue(index: int) -> Any:
        if index == 0:
            return settlement_issue(actor=None, settlement=PartnerSettlement.objects.get())
        return partner_earn(
            actor=actor,
            partner=partner,
            card_number=member.card_number,
            points=10,
            external_id=f"L{index}",
            occurred_at=at(2026, 3, 31),
        )

    with time_machine.travel(at(2026, 4, 2), tick=False):
        _results, race_errors = _in_threads(late_or_issue, 6)
    assert all(isinstance(error, ApplicationError) and error.code == "period_closed" for error in race_errors)
    issued = PartnerSettlement.objects.get()
    accepted = PointsTransaction.objects.filter(partner=partner, kind="earn").count() - 1
    assert issued.state == "issued"
    assert (issued.points_issued, issued.transaction_count) == (81 + 10 * accepted, 1 + accepted)
