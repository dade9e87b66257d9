"""Knowledge-base search: database full-text candidates, BM25 ranking, optional semantic re-ranking.

Language rules: articles in the requested language come first; articles in another language follow
with ``fallback=True`` only when no article of the same translation group matched in the requested
language. Internal articles (or articles in an internal category) appear only with
``include_internal`` — portal customers and anonymous visitors never get them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from django.conf import settings
from django.urls import reverse

from fedele.support.kb import search_index, semantic, text
from fedele.support.models import Article, Ticket, TicketMessage

LEXICAL_WEIGHT = 0.7
SEMANTIC_WEIGHT = 0.3
MAX_LIMIT = 50
MAX_QUERY_LENGTH = 500


@dataclass(frozen=True, slots=True)
class ArticleHit:
    article: Article
    score: float
    snippet: str
    fallback: bool

    @property
    def public_url(self) -> str:
        """The article's absolute help-centre address (for links in replies)."""
        base = str(getattr(settings, "FEDELE_PUBLIC_URL", "")).rstrip("/")
        return f"{base}{reverse('help:kb_article', args=[self.article.language, self.article.slug])}"


def _semantic_weight() -> float:
    return float(getattr(settings, "FEDELE_KB_SEMANTIC_WEIGHT", SEMANTIC_WEIGHT))


def _rank_language(
    query: str,
    language: str,
    *,
    include_internal: bool,
    category: str | None,
    query_vector: Any,
) -> list[tuple[int, float, str]]:
    """(article id, combined score, indexed text) best first, for one language."""
    index = search_index.index_for(language)
    if not index.ids:
        return []
    candidates = search_index.candidate_ids(query, language)
    lexical = index.scores(text.stems(query, language))
    kept: list[int] = []
    for position, article_id in enumerate(index.ids):
        if lexical[position] <= 0:
            continue
        if candidates is not None and article_id not in candidates:
            continue
        if index.internal[position] and not include_internal:
            continue
        if category and category not in index.categories[position]:
            continue
        kept.append(position)
    if not kept:
        return []
    top = max(float(lexical[position]) for position in kept)
    weight = _semantic_weight() if query_vector is not None and index.vectors is not None else 0.0
    ranked: list[tuple[int, float, str]] = []
    for position in kept:
        score = (1.0 - weight) * float(lexical[position]) / top
        if weight and index.has_vector[position] and index.vectors is not None:
            cosine = float(np.dot(index.vectors[position], query_vector))
            score += weight * semantic.similarity_score(cosine)
        ranked.append((index.ids[position], round(score, 6), index.texts[position]))
    # Ties go to the older article (lower id): stable, and the exact order tests rely on it.
    ranked.sort(key=lambda row: (-row[1], row[0]))
    return ranked


def kb_search(
    query: str,
    *,
    language: str,
    include_internal: bool,
    limit: int = 10,
    category: str | None = None,
) -> list[ArticleHit]:
    """Published articles matching the query, requested language first, then fallbacks."""
    query = " ".join((query or "").split())[:MAX_QUERY_LENGTH]
    limit = max(0, min(limit, MAX_LIMIT))
    requested = text.normalise_language(language)
    if not limit or not any(text.words(query, code) for code in text.LANGUAGES):
        return []
    query_vector = semantic.query_vector(query)
    picked: list[tuple[int, float, str, bool]] = []
    for code in text.fallback_languages(requested):
        for article_id, score, indexed in _rank_language(
            query, code, include_internal=include_internal, category=category, query_vector=query_vector
        ):
            picked.append((article_id, score, indexed, code != requested))
    articles = Article.objects.select_related("category").in_bulk([row[0] for row in picked])
    hits: list[ArticleHit] = []
    groups: set[Any] = set()
    for article_id, score, indexed, fallback in picked:
        article = articles.get(article_id)
        if article is None or article.translation_group in groups:
            continue
        groups.add(article.translation_group)
        hits.append(
            ArticleHit(
                article=article,
                score=score,
                snippet=text.snippet(_body_text(indexed, article), query, article.language),
                fallback=fallback,
            )
        )
        if len(hits) >= limit:
            break
    return hits


def _body_text(indexed: str, article: Article) -> str:
    """The indexed text without the repeated title and keywords at its head (for the snippet)."""
    lines = indexed.split("\n")
    skip = {article.title.strip(), article.keywords.strip()}
    body = [line for line in lines if line.strip() and line.strip() not in skip]
    return " ".join(body)


def ticket_query(ticket: Ticket) -> str:
    """Subject plus the first customer message (its first 500 characters)."""
    first = (
        TicketMessage.objects.filter(ticket=ticket, kind="customer")
        .order_by("created_at", "id")
        .values_list("body_text", flat=True)
        .first()
    )
    return f"{ticket.subject} {(first or '')[:500]}".strip()


def suggest_for_ticket(ticket: Ticket, *, limit: int = 5) -> list[ArticleHit]:
    """Articles for the agent's side panel: internal ones included, in the ticket's language first."""
    return kb_search(
        ticket_query(ticket), language=ticket.language or "it", include_internal=True, limit=limit
    )
