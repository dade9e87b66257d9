"""GDPR hooks: every module that keeps personal data about a customer registers how to export and erase it.

The customers module calls every registered exporter when it builds a personal-data export (art. 15/20)
and every registered eraser when it erases a customer (art. 17). Functions receive the customer's
public id as text; they run inside the caller's transaction, so an eraser that fails rolls the whole
erasure back. The kernel knows no business module: modules register from their AppConfig.ready().
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fedele.shared.models import AuditLog

Exporter = Callable[[str], dict[str, Any]]
Eraser = Callable[[str], None]

ERASED_VALUE = "[erased]"


@dataclass(frozen=True, slots=True)
class _Registration:
    exporter: Exporter | None
    eraser: Eraser | None


_registry: dict[str, _Registration] = {}


def register(name: str, *, exporter: Exporter | None = None, eraser: Eraser | None = None) -> None:
    """Register (or replace) a module's exporter and/or eraser under a stable name, e.g. 'billing'."""
    if not name or not name.replace("_", "").isalnum():
        raise ValueError("A GDPR registration needs a name of letters, digits and underscores.")
    if exporter is None and eraser is None:
        raise ValueError("Register an exporter, an eraser or both.")
    _registry[name] = _Registration(exporter=exporter, eraser=eraser)


def unregister(name: str) -> None:
    _registry.pop(name, None)


def registered_names() -> list[str]:
    return sorted(_registry)


def export_all(customer_public_id: str) -> dict[str, dict[str, Any]]:
    """Every registered module's export, by module name, in name order."""
    result: dict[str, dict[str, Any]] = {}
    for name in sorted(_registry):
        exporter = _registry[name].exporter
        if exporter is not None:
            result[name] = exporter(customer_public_id)
    return result


def erase_all(customer_public_id: str) -> list[str]:
    """Call every registered eraser; returns the names that ran. Errors propagate: the caller rolls back."""
    ran: list[str] = []
    for name in sorted(_registry):
        eraser = _registry[name].eraser
        if eraser is not None:
            eraser(customer_public_id)
            ran.append(name)
    return ran


def _redacted(values: Any, keys: frozenset[str]) -> tuple[Any, bool]:
    if not isinstance(values, Mapping):
        return values, False
    changed = False
    result = dict(values)
    for key in keys & set(result):
        if result[key] not in (None, "", ERASED_VALUE):
            result[key] = ERASED_VALUE
            changed = True
    return result, changed


def redact_audit_values(*, object_type: str, object_ids: Iterable[str], keys: Iterable[str]) -> int:
    """Replace personal values kept in the before/after of audit rows; who did what and when stays.

    Returns how many audit rows were changed.
    """
    wanted = frozenset(keys)
    changed_rows = 0
    rows = AuditLog.objects.filter(object_type=object_type, object_id__in=[str(i) for i in object_ids])
    for row in rows.only("pk", "before", "after").iterator():
        before, before_changed = _redacted(row.before, wanted)
        after, after_changed = _redacted(row.after, wanted)
        if before_changed or after_changed:
            AuditLog.objects.filter(pk=row.pk).update(before=before, after=after)
            changed_rows += 1
    return changed_rows
