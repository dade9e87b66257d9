"""Knowledge-base search: ranking, language fallback, internal visibility, database full-text index."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.cache import cache
from django.db import connection

from fedele.accounts.tests.factories import user_with_roles
from fedele.support.kb import search_index
from fedele.support.selectors.kb_search import kb_search, suggest_for_ticket
from fedele.support.tests.factories import TicketFactory, TicketMessageFactory
from fedele.support.tests.kb_helpers import published


@pytest.fixture(autouse=True)
def _fresh(settings: object) -> Iterator[None]:
    settings.FEDELE_KB_SEMANTIC = False  # type: ignore[attr-defined]
    search_index.clear()
    cache.clear()
    yield
    search_index.clear()


@pytest.fixture
def library(db: None) -> dict[str, object]:
    boss = user_with_roles("supervisor")
    modem_it = published(
        boss,
        title="Riavviare il modem",
        body="<p>Se internet non funziona, staccate il modem dalla corrente per 30 secondi.</p>",
        keywords="modem router",
    )
    modem_en = published(
        boss,
        language="en",
        source=modem_it,
        title="Restart the modem",
        body="<p>Unplug the modem for 30 seconds.</p>",
    )
    wifi_it = published(boss, title="Wi-Fi lento", body="<p>Avvicinate il modem e cambiate canale Wi-Fi.</p>")
    sepa_en = published(
        boss,
        language="en",
        title="Pay by SEPA direct debit",
        body="<p>Set up a SEPA mandate to pay invoices.</p>",
    )
    internal_it = published(
        boss,
        title="Procedura interna: sostituzione modem",
        body="<p>Aprire un ordine di sostituzione del modem in magazzino.</p>",
        visibility="internal",
    )
    return {
        "modem_it": modem_it,
        "modem_en": modem_en,
        "wifi_it": wifi_it,
        "sepa_en": sepa_en,
        "internal": internal_it,
    }


def _titles(hits: list) -> list[tuple[str, bool]]:  # type: ignore[type-arg]
    return [(hit.article.title, hit.fallback) for hit in hits]


def test_italian_query_finds_italian_article_first(library: dict[str, object]) -> None:
    hits = kb_search("modem", language="it", include_internal=False)
    assert _titles(hits) == [("Riavviare il modem", False), ("Wi-Fi lento", False)]
    assert hits[0].score == 1.0
    assert 0 < hits[1].score < 1.0


def test_english_fallback_when_no_italian_article_matches(library: dict[str, object]) -> None:
    hits = kb_search("pagare con SEPA", language="it", include_internal=False)
    assert _titles(hits) == [("Pay by SEPA direct debit", True)]


def test_english_query_on_english_gets_english_then_italian_only_articles(library: dict[str, object]) -> None:
    hits = kb_search("modem", language="en", include_internal=False)
    assert _titles(hits) == [("Restart the modem", False), ("Wi-Fi lento", True)]


def test_internal_articles_only_for_agents(library: dict[str, object]) -> None:
    public = kb_search("sostituzione modem", language="it", include_internal=False)
    assert "Procedura interna: sostituzione modem" not in [hit.article.title for hit in public]
    agents = kb_search("sostituzione modem", language="it", include_internal=True)
    assert agents[0].article.title == "Procedura interna: sostituzione modem"


def test_stemmed_and_accented_words_match(library: dict[str, object]) -> None:
    assert _titles(kb_search("riavvio modem", language="it", include_internal=False))[0] == (
        "Riavviare il modem",
        False,
    )
    assert (
        kb_search("SECONDI", language="it", include_internal=False)[0].article.title == "Riavviare il modem"
    )


def test_empty_stopword_and_unknown_queries_find_nothing(library: dict[str, object]) -> None:
    assert kb_search("", language="it", include_internal=True) == []
    assert kb_search("il la di", language="it", include_internal=True) == []
    assert kb_search("zzzqqq", language="it", include_internal=True) == []
    assert kb_search("modem", language="it", include_internal=True, limit=0) == []
    assert len(kb_search("modem", language="it", include_internal=True, limit=1)) == 1


def test_archived_article_disappears_from_search(library: dict[str, object]) -> None:
    from fedele.accounts.facade import actor_for
    from fedele.support.services import kb

    kb.article_archive(actor=actor_for(user_with_roles("supervisor")), article=library["wifi_it"])  # type: ignore[arg-type]
    assert _titles(kb_search("modem", language="it", include_internal=False)) == [
        ("Riavviare il modem", False)
    ]


def test_category_filter(library: dict[str, object]) -> None:
    from fedele.accounts.facade import actor_for
    from fedele.support.services import kb

    actor = actor_for(user_with_roles("supervisor"))
    kb.category_create(actor=actor, slug="connessione", name_it="Connessione", name_en="Connection")
    kb.article_update(actor=actor, article=library["wifi_it"], changes={"category": "connessione"})  # type: ignore[arg-type]
    hits = kb_search("modem", language="it", include_internal=False, category="connessione")
    assert _titles(hits) == [("Wi-Fi lento", False)]


def test_internal_category_hides_its_public_articles(library: dict[str, object]) -> None:
    from fedele.accounts.facade import actor_for
    from fedele.support.services import kb

    actor = actor_for(user_with_roles("supervisor"))
    kb.category_create(
        actor=actor, slug="riservato", name_it="Riservato", name_en="Restricted", visibility="internal"
    )
    kb.article_update(actor=actor, article=library["wifi_it"], changes={"category": "riservato"})  # type: ignore[arg-type]
    assert _titles(kb_search("modem", language="it", include_internal=False)) == [
        ("Riavviare il modem", False)
    ]


def test_suggest_for_ticket_uses_subject_and_first_message_and_includes_internal(
    library: dict[str, object],
) -> None:
    ticket = TicketFactory(subject="Problema", language="it")
    TicketMessageFactory(ticket=ticket, body_text="Devo fare la sostituzione del modem")
    hits = suggest_for_ticket(ticket)
    assert hits[0].article.title == "Procedura interna: sostituzione modem"
    assert hits[0].public_url.endswith(f"/help/kb/it/{hits[0].article.slug}/")


def test_semantic_reranking_is_used_when_enabled(library: dict[str, object], settings: object) -> None:
    settings.FEDELE_KB_SEMANTIC = True  # type: ignore[attr-defined]
    from fedele.accounts.facade import actor_for
    from fedele.support.services import kb

    boss = actor_for(user_with_roles("supervisor"))
    article = kb.article_create(
        actor=boss, language="it", title="Modem spento", body_html="<p>Il modem non si accende.</p>"
    )
    version = article.versions.get(number=1)
    kb.version_submit(actor=boss, version=version)
    kb.version_publish(actor=boss, version=version)
    article.refresh_from_db()
    assert article.embedding is not None and len(bytes(article.embedding)) == 384 * 4
    hits = kb_search("il modem non si accende", language="it", include_internal=False)
    assert hits[0].article.title == "Modem spento"


@pytest.mark.django_db
def test_sqlite_fts_table_follows_article_changes(library: dict[str, object]) -> None:
    if connection.vendor != "sqlite":
        pytest.skip("SQLite FTS5 only")
    assert search_index.candidate_ids("modem", "it") == {
        library["modem_it"].pk,  # type: ignore[attr-defined]
        library["wifi_it"].pk,  # type: ignore[attr-defined]
        library["internal"].pk,  # type: ignore[attr-defined]
    }
    assert search_index.candidate_ids("fatture", "it") == set()


@pytest.mark.postgres
def test_postgres_full_text_candidates(library: dict[str, object]) -> None:
    if connection.vendor != "postgresql":
        pytest.skip("needs DATABASE_URL=postgres://...")
    assert search_index.candidate_ids("il modem", "it") == {
        library["modem_it"].pk,  # type: ignore[attr-defined]
        library["wifi_it"].pk,  # type: ignore[attr-defined]
        library["internal"].pk,  # type: ignore[attr-defined]
    }
    hits = kb_search("pagare con SEPA", language="it", include_internal=False)
    assert [(hit.article.title, hit.fallback) for hit in hits] == [("Pay by SEPA direct debit", True)]
