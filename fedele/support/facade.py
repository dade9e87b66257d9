"""The only surface other modules may import from support. Returns contracts, not ORM objects.

Filled in by the tickets area (tickets) and the knowledge-base area (article suggestions)."""

from __future__ import annotations

from fedele.support.contracts import ArticleSummary, TicketSummary

__all__ = ["ArticleSummary", "TicketSummary"]
