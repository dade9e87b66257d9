"""NUL characters are refused anywhere in API input; a literal backslash-u0000 is ordinary text."""

from __future__ import annotations

import pytest

from fedele.shared.api import contains_nul


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", False),
        ("a\x00b", True),
        ({"events": [{"id": "1", "properties": {"region": "it"}}] * 1000}, False),
        ({"events": [{"id": "1"}, {"id": "2", "properties": {"note": "x\x00"}}]}, True),
        ({"key\x00": 1}, True),
        (["\\u0000 is six characters, not a NUL"], False),
        ([{1, "set member\x00"}], True),
        ([object(), "fine"], False),
        (42, False),
    ],
)
def test_contains_nul(value, expected):
    assert contains_nul(value) is expected
