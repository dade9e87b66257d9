from __future__ import annotations

import pytest

from fedele.shared.csvfiles import csv_lines
from fedele.shared.errors import ValidationFailed


def test_line_numbers_follow_the_file_across_quoted_newlines_and_bare_carriage_returns():
    text = 'a,b\r\n1,"two\nlines"\r\n3,x\r4,y\n'
    assert list(csv_lines(text)) == [
        (1, ["a", "b"]),
        (2, ["1", "two\nlines"]),
        (4, ["3", "x"]),
        (5, ["4", "y"]),
    ]


def test_semicolons_and_an_empty_file():
    assert list(csv_lines("data;importo\n", delimiter=";")) == [(1, ["data", "importo"])]
    assert list(csv_lines("")) == []


def test_a_field_over_the_size_limit_is_a_clear_error_naming_the_line():
    with pytest.raises(ValidationFailed) as error:
        list(csv_lines("a,b\n1,2\n3," + "x" * 200_000 + "\n"))
    assert error.value.code == "invalid_csv"
    assert list(error.value.fields) == ["line 3"]
