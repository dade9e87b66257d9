"""In-module extension points of the ledger, so tiers and fraud guards react to postings without the
ledger importing them. Hooks run inside the posting's database transaction (after the entries are
written, with the member row locked): a hook that raises rolls the whole posting back.

Registered once at start-up by ``fedele.loyalty.setup``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fedele.loyalty.models import Member, PointsTransaction

PostingHook = Callable[["Member", "PointsTransaction"], None]
# A batch of earns (ledger_batch.points_earn_many): each member once, with its new transactions.
BatchHook = Callable[[Sequence[tuple["Member", Sequence["PointsTransaction"]]]], None]

_after_earn: list[PostingHook] = []
_after_reverse: list[PostingHook] = []
_batch_variant: dict[PostingHook, BatchHook] = {}


def on_earn(hook: PostingHook) -> None:
    if hook not in _after_earn:
        _after_earn.append(hook)


def on_earn_many(hook: PostingHook, batch: BatchHook) -> None:
    """Give an earn hook a set-based variant for batches (one query for all members, not one each)."""
    on_earn(hook)
    _batch_variant[hook] = batch


def on_reverse(hook: PostingHook) -> None:
    if hook not in _after_reverse:
        _after_reverse.append(hook)


def run_after_earn(member: Member, transaction: PointsTransaction) -> None:
    for hook in _after_earn:
        hook(member, transaction)


def run_after_earn_many(groups: Sequence[tuple[Member, Sequence[PointsTransaction]]]) -> None:
    """The earn hooks for a batch: a hook's batch variant if it has one, else the hook per earn."""
    for hook in _after_earn:
        batch = _batch_variant.get(hook)
        if batch is not None:
            batch(groups)
            continue
        for member, postings in groups:
            for posting in postings:
                hook(member, posting)


def run_after_reverse(member: Member, transaction: PointsTransaction) -> None:
    for hook in _after_reverse:
        hook(member, transaction)
