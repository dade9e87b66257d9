"""Text preparation shared by the database full-text index, the BM25 index and the suggestions."""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import Stemmer
from bm25s.stopwords import STOPWORDS_EN, STOPWORDS_ITALIAN

from fedele.support.html import html_to_text

LANGUAGES = ("it", "en")
STEMMER_NAMES = {"it": "italian", "en": "english"}
POSTGRES_CONFIGS = {"it": "italian", "en": "english"}
WORD = re.compile(r"\w\w+", re.UNICODE)
MAX_QUERY_WORDS = 32


def normalise_language(language: str | None) -> str:
    code = (language or "").strip().lower()[:2]
    return code if code in LANGUAGES else "it"


def fallback_languages(language: str) -> list[str]:
    """The requested language first, then the others (English before Italian)."""
    first = normalise_language(language)
    return [first] + [code for code in ("en", "it") if code != first]


def fold(text: str) -> str:
    """Lower case without accents: "Perché" and "perche" are the same word for search."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@cache
def _stopwords(language: str) -> frozenset[str]:
    words = STOPWORDS_ITALIAN if language == "it" else STOPWORDS_EN
    return frozenset(fold(word) for word in words)


@cache
def _stemmer(language: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(STEMMER_NAMES[normalise_language(language)])


def words(text: str, language: str) -> list[str]:
    """Folded words without stop words, in order (duplicates kept)."""
    stop = _stopwords(normalise_language(language))
    return [word for word in WORD.findall(fold(text)) if word not in stop]


def stems(text: str, language: str) -> list[str]:
    stemmer = _stemmer(language)
    return [str(stem) for stem in stemmer.stemWords(words(text, language))]


def query_words(query: str, language: str) -> list[str]:
    """Distinct query words (at most 32), for the database's full-text query."""
    seen: dict[str, None] = {}
    for word in words(query, language):
        seen.setdefault(word, None)
    return list(seen)[:MAX_QUERY_WORDS]


def search_text_for(*, title: str, summary: str, body_html: str, keywords: str) -> str:
    """The plain text an article is indexed by; the title and keywords count twice (more weight)."""
    body = html_to_text(body_html)
    parts = [title, title, summary, keywords, keywords, body]
    return "\n".join(part.strip() for part in parts if part and part.strip())


def snippet(text: str, query: str, language: str, *, width: int = 180) -> str:
    """A window of the text around the first query word it contains (plain text, escaped later)."""
    plain = " ".join(text.split())
    if len(plain) <= width:
        return plain
    folded = fold(plain)
    position = -1
    for word in query_words(query, language):
        stem = word[: max(4, len(word) - 2)]
        position = folded.find(stem)
        if position >= 0:
            break
    if position < 0:
        return plain[:width].rsplit(" ", 1)[0] + " …"
    start = max(0, position - width // 3)
    if start > 0:
        space = plain.find(" ", start)
        start = space + 1 if 0 <= space < position else start
    end = min(len(plain), start + width)
    piece = plain[start:end]
    if end < len(plain):
        piece = piece.rsplit(" ", 1)[0] + " …"
    return ("… " if start > 0 else "") + piece
