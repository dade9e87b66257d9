"""Reading uploaded CSV text: line numbers people can find in their spreadsheet, and a clear error
(never a crash) for a malformed file (a NUL byte, an unterminated quote, a field over the limit)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from fedele.shared.errors import ValidationFailed


def csv_lines(text: str, *, delimiter: str = ",") -> Iterator[tuple[int, list[str]]]:
    """Yield (number of the line the row starts on, cells). Line 1 is the first line of the file; a
    quoted value spanning lines counts all of them, so later numbers still match the file."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    previous = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            line = reader.line_num
            raise ValidationFailed(
                f"Line {line} cannot be read as CSV: {error}.",
                code="invalid_csv",
                fields={f"line {line}": [str(error)]},
            ) from error
        start, previous = previous + 1, reader.line_num
        yield start, row
