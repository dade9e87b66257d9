"""Cursor (keyset) pagination: stable under inserts, O(1) per page at any depth."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Model, Q, QuerySet

from fedele.shared.audit import jsonable
from fedele.shared.errors import ValidationFailed

ModelT = TypeVar("ModelT", bound=Model)
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True, slots=True)
class CursorPage(Generic[ModelT]):
    items: list[ModelT]
    next_cursor: str | None


def _encode(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _decode(cursor: str) -> dict[str, Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (binascii.Error, ValueError, UnicodeDecodeError) as error:
        raise ValidationFailed(
            "The cursor is not valid.", code="invalid_cursor", fields={"cursor": "Invalid."}
        ) from error
    if not isinstance(data, dict) or not {"o", "v", "id"} <= set(data):
        raise ValidationFailed(
            "The cursor is not valid.", code="invalid_cursor", fields={"cursor": "Invalid."}
        )
    return data


def paginate(
    queryset: QuerySet[ModelT],
    *,
    ordering: str,
    allowed: Mapping[str, str],
    cursor: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> CursorPage[ModelT]:
    """allowed maps public ordering names to non-null model fields; the pk breaks ties."""
    descending = ordering.startswith("-")
    name = ordering.lstrip("-")
    if name not in allowed:
        raise ValidationFailed(
            f"Unknown ordering '{ordering}'.",
            code="invalid_ordering",
            fields={"ordering": f"Use one of: {', '.join(sorted(allowed))} (prefix - for descending)."},
        )
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed("limit must be between 1 and 200.", fields={"limit": "Between 1 and 200."})
    field = allowed[name]
    prefix = "-" if descending else ""
    queryset = queryset.order_by(f"{prefix}{field}", f"{prefix}pk")
    if cursor:
        data = _decode(cursor)
        if data["o"] != ordering:
            raise ValidationFailed(
                "The cursor belongs to another ordering.",
                code="invalid_cursor",
                fields={"cursor": "Invalid."},
            )
        comparison = "lt" if descending else "gt"
        try:
            after = Q(**{f"{field}__{comparison}": data["v"]}) | Q(
                **{field: data["v"], f"pk__{comparison}": data["id"]}
            )
            queryset = queryset.filter(after)
        except (ValueError, TypeError, DjangoValidationError) as error:
            # A forged value, e.g. a non-date for created_at: Django's field conversion refuses it.
            raise ValidationFailed(
                "The cursor is not valid.", code="invalid_cursor", fields={"cursor": "Invalid."}
            ) from error
    rows = list(queryset[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = None
    if has_more and rows:
        last = rows[-1]
        value = last
        for part in field.split("__"):
            value = getattr(value, part)
        next_cursor = _encode({"o": ordering, "v": jsonable(value), "id": last.pk})
    return CursorPage(items=rows, next_cursor=next_cursor)
