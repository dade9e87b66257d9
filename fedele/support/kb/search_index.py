"""The two halves of knowledge-base search below the selector.

1. Candidates from the database's full-text index (PostgreSQL: ``to_tsvector`` with the article
   language's configuration, GIN indexes from migration 0004; SQLite: the FTS5 table
   ``support_article_fts`` kept in step by triggers). Other databases fall back to every article.
2. Ranking with BM25 (``bm25s`` over Snowball stems) from a per-language index kept in this process and
   rebuilt when the published articles change: its key is the count, latest update and largest id of
   the language's published articles plus a generation number in the cache that services bump when a
   category changes (so every process sees it with a shared cache).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import bm25s
import numpy as np
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, Max

from fedele.support.kb import semantic, text
from fedele.support.models import Article, Visibility

GENERATION_KEY = "support.kb.search_generation"
_lock = threading.Lock()


@dataclass(slots=True)
class LanguageIndex:
    key: tuple[Any, ...]
    ids: list[int] = field(default_factory=list)
    position: dict[int, int] = field(default_factory=dict)
    internal: list[bool] = field(default_factory=list)
    categories: list[frozenset[str]] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    retriever: bm25s.BM25 | None = None
    vectors: np.ndarray[Any, np.dtype[np.float32]] | None = None
    has_vector: list[bool] = field(default_factory=list)

    def scores(self, query_stems: list[str]) -> np.ndarray[Any, np.dtype[np.float64]]:
        if self.retriever is None or not query_stems:
            return np.zeros(len(self.ids))
        return np.asarray(self.retriever.get_scores(query_stems), dtype=np.float64)


_indexes: dict[str, LanguageIndex] = {}


def bump_generation() -> None:
    """Called by services after a change the article rows do not show (a category's visibility)."""
    try:
        cache.incr(GENERATION_KEY)
    except ValueError:
        cache.set(GENERATION_KEY, 1, None)


def _key(language: str) -> tuple[Any, ...]:
    figures = Article.objects.filter(language=language, status=Article.Status.PUBLISHED).aggregate(
        count=Count("id"), latest=Max("updated_at"), largest=Max("id")
    )
    return (cache.get(GENERATION_KEY, 0), figures["count"], figures["latest"], figures["largest"])


def _build(language: str, key: tuple[Any, ...]) -> LanguageIndex:
    index = LanguageIndex(key=key)
    rows = (
        Article.objects.filter(language=language, status=Article.Status.PUBLISHED)
        .select_related("category__parent")
        .order_by("id")
        .only(
            "id",
            "visibility",
            "search_text",
            "embedding",
            "category__slug",
            "category__visibility",
            "category__parent__slug",
            "category__parent__visibility",
        )
    )
    corpus: list[list[str]] = []
    vectors: list[np.ndarray[Any, np.dtype[np.float32]]] = []
    for article in rows:
        category = article.category
        slugs: set[str] = set()
        internal = article.visibility == Visibility.INTERNAL
        while category is not None:
            slugs.add(category.slug)
            internal = internal or category.visibility == Visibility.INTERNAL
            category = category.parent
        index.position[article.pk] = len(index.ids)
        index.ids.append(article.pk)
        index.internal.append(internal)
        index.categories.append(frozenset(slugs))
        index.texts.append(article.search_text)
        corpus.append(text.stems(article.search_text, language) or ["\x00empty"])
        vector = semantic.from_bytes(article.embedding)
        index.has_vector.append(vector is not None)
        vectors.append(vector if vector is not None else np.zeros(semantic.DIMENSIONS, dtype=np.float32))
    if corpus:
        retriever = bm25s.BM25()
        retriever.index(corpus, show_progress=False)
        index.retriever = retriever
        index.vectors = np.vstack(vectors)
    return index


def index_for(language: str) -> LanguageIndex:
    language = text.normalise_language(language)
    key = _key(language)
    current = _indexes.get(language)
    if current is not None and current.key == key:
        return current
    with _lock:
        current = _indexes.get(language)
        if current is None or current.key != key:
            current = _build(language, key)
            _indexes[language] = current
    return current


def clear() -> None:
    """Forget every index (tests switch databases under the same process)."""
    _indexes.clear()


# database full-text candidates ---------------------------------------------------------------------


def _shared_prefix(first: str, second: str) -> str:
    length = 0
    for left, right in zip(first, second, strict=False):
        if left != right:
            break
        length += 1
    return first[:length]


def _sqlite_expression(query: str, language: str) -> str:
    """FTS5 prefix terms joined with OR: the part a word shares with its stem, so "fatture" also finds
    "fattura" (the index folds case and accents like text.fold does)."""
    terms: list[str] = []
    for word in text.query_words(query, language):
        stem = text.stems(word, language)
        prefix = _shared_prefix(word, stem[0]) if stem else word
        term = prefix if len(prefix) >= 3 else word
        if term and term not in terms:
            terms.append(term)
    return " OR ".join(f'"{term}"*' for term in terms)


def _postgres_expression(query: str) -> str:
    words = list(dict.fromkeys(text.WORD.findall(query.lower())))[: text.MAX_QUERY_WORDS]
    return " or ".join(words)


def candidate_ids(query: str, language: str) -> set[int] | None:
    """Ids of published articles in this language the database index matches; None when the database
    has no full-text index (every article is then a candidate)."""
    language = text.normalise_language(language)
    vendor = connection.vendor
    if vendor == "sqlite":
        expression = _sqlite_expression(query, language)
        if not expression:
            return set()
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM support_article WHERE id IN (SELECT rowid FROM support_article_fts "
                "WHERE support_article_fts MATCH %s) AND language = %s AND status = %s",
                [expression, language, Article.Status.PUBLISHED],
            )
            return {row[0] for row in cursor.fetchall()}
    if vendor == "postgresql":
        expression = _postgres_expression(query)
        if not expression:
            return set()
        config = text.POSTGRES_CONFIGS[language]  # a fixed word from our table, never user input
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM support_article WHERE language = %s AND status = %s AND "  # noqa: S608
                f"to_tsvector('{config}', search_text) @@ websearch_to_tsquery('{config}', %s)",
                [language, Article.Status.PUBLISHED, expression],
            )
            return {row[0] for row in cursor.fetchall()}
    return None
