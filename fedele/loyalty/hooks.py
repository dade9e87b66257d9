"""In-module extension points of the ledger, so tiers and fraud guards react to postings without the
ledger importing them. Hooks run inside the posting's database transaction (after the entries are
written, with the member row locked): a hook that raises rolls the whole posting back.

Registered once at start-up by ``fedele.loyalty.setup``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fedele.loyalty.models import Member, PointsTransaction

PostingHook = Callable[["Member", "PointsTransaction"], None]

_after_earn: list[PostingHook] = []
_after_reverse: list[PostingHook] = []


def on_earn(hook: PostingHook) -> None:
    if hook not in _after_earn:
        _after_earn.append(hook)


def on_reverse(hook: PostingHook) -> None:
    if hook not in _after_reverse:
        _after_reverse.append(hook)


def run_after_earn(member: Member, transaction: PointsTransaction) -> None:
    for hook in _after_earn:
        hook(member, transaction)


def run_after_reverse(member: Member, transaction: PointsTransaction) -> None:
    for hook in _after_reverse:
        hook(member, transaction)
