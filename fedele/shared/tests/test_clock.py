"""The kernel clock and its travel_to block."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine

from fedele.shared import clock


@time_machine.travel("2026-11-23 10:00:00+00:00", tick=False)
def test_travel_to_moves_the_clock_inside_the_block_only():
    with clock.travel_to(datetime(2025, 3, 30, 0, 30, tzinfo=UTC)):
        assert clock.now() == datetime(2025, 3, 30, 0, 30, tzinfo=UTC)
        # 00:30 UTC on the DST night is 01:30 in Rome (CET, +1), still 30 March.
        assert clock.today() == date(2025, 3, 30)
        with clock.travel_to(datetime(2024, 2, 29, 23, 30, tzinfo=UTC)):
            assert clock.today() == date(2024, 3, 1)  # 00:30 in Rome
        assert clock.now() == datetime(2025, 3, 30, 0, 30, tzinfo=UTC)
    assert clock.now() == datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def test_travel_to_refuses_naive_datetimes():
    with pytest.raises(ValueError, match="aware"), clock.travel_to(datetime(2025, 1, 1)):
        pass
