"""Gapless per-series counters: numbers never skip, never repeat, and a rollback gives its number back."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction
from django.db.models import QuerySet

from fedele.shared import sequences
from fedele.shared.errors import ValidationFailed
from fedele.shared.models import SequenceCounter
from fedele.shared.versioned_cache import SERIES_PREFIX


@pytest.mark.django_db
def test_numbers_are_consecutive_per_series() -> None:
    assert [sequences.next_value("INV-2026") for _ in range(3)] == [1, 2, 3]
    assert sequences.next_value("INV-2027") == 1
    assert sequences.next_value("INV-2026") == 4
    assert sequences.current_value("INV-2026") == 4
    assert sequences.current_value("INV-2027") == 1
    assert sequences.current_value("never-used") == 0
    assert dict(_numbering().values_list("series", "last_value")) == {"INV-2026": 4, "INV-2027": 1}


@pytest.mark.django_db
def test_human_numbers() -> None:
    assert sequences.next_number("INV", year=2026) == "INV-2026-000001"
    assert sequences.next_number("INV", year=2026) == "INV-2026-000002"
    assert sequences.next_number("INV", year=2025) == "INV-2025-000001"
    assert sequences.next_number("T") == "T-000001"
    assert sequences.next_number("WO", width=4) == "WO-0001"


@pytest.mark.django_db
def test_rollback_does_not_burn_a_number() -> None:
    assert sequences.next_value("T") == 1
    with pytest.raises(RuntimeError), transaction.atomic():
        assert sequences.next_value("T") == 2
        assert sequences.next_value("T") == 3
        raise RuntimeError("the invoice could not be saved")
    assert sequences.current_value("T") == 1
    assert sequences.next_value("T") == 2


@pytest.mark.django_db
def test_rollback_of_a_new_series_leaves_no_counter() -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        sequences.next_value("NEW")
        raise RuntimeError
    assert not SequenceCounter.objects.filter(series="NEW").exists()
    assert sequences.next_value("NEW") == 1


@pytest.mark.django_db
@pytest.mark.parametrize("series", ["", "x" * 65])
def test_series_name_is_validated(series: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        sequences.next_value(series)
    assert caught.value.code == "invalid_series"
    assert _numbering().count() == 0


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_threads_draw_every_number_exactly_once() -> None:
    threads_count = 8
    per_thread = 125  # 1,000 numbers in total
    drawn: list[list[int]] = [[] for _ in range(threads_count)]
    errors: list[BaseException] = []
    start = threading.Barrier(threads_count)

    def worker(index: int) -> None:
        try:
            start.wait(timeout=30)
            for _ in range(per_thread):
                with transaction.atomic():
                    drawn[index].append(sequences.next_value("CONC"))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)
        finally:
            connection.close()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads_count)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)
    assert not errors, errors
    numbers = sorted(n for chunk in drawn for n in chunk)
    assert numbers == list(range(1, 1001))
    assert all(chunk == sorted(chunk) for chunk in drawn)  # each thread sees its own numbers rise
    assert sequences.current_value("CONC") == 1000


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_rollbacks_leave_no_gap() -> None:
    """Half the transactions roll back after drawing: the committed numbers are still 1..N."""
    threads_count = 4
    committed: list[int] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def worker(index: int) -> None:
        try:
            for attempt in range(40):
                try:
                    with transaction.atomic():
                        value = sequences.next_value("ROLL")
                        if (index + attempt) % 2:
                            raise RuntimeError("rolled back")
                    with lock:
                        committed.append(value)
                except RuntimeError:
                    pass
        except BaseException as error:  # pragma: no cover
            errors.append(error)
        finally:
            connection.close()

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads_count)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=120)
    assert not errors, errors
    assert sorted(committed) == list(range(1, 81))
    assert sequences.current_value("ROLL") == 80


def _numbering() -> QuerySet[SequenceCounter]:
    """The numbering series (the table also holds the shared cache versions, ``cache-version:...``)."""
    return SequenceCounter.objects.exclude(series__startswith=SERIES_PREFIX)
