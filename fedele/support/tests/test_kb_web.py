"""Knowledge-base pages and API: portal visibility (no internal article anywhere), language fallback
note, feedback, suggestion fragment with deflection tracking, agent pages and list query counts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.support.kb import search_index
from fedele.support.models import Article, ArticleFeedback, Deflection
from fedele.support.tests.kb_helpers import published

pytestmark = pytest.mark.django_db
TOKEN = "a" * 32


@pytest.fixture(autouse=True)
def _fresh(settings: Any) -> Iterator[None]:
    settings.FEDELE_KB_SEMANTIC = False
    settings.LANGUAGE_CODE = "it"
    search_index.clear()
    cache.clear()
    yield
    search_index.clear()


@pytest.fixture
def library(db: None) -> dict[str, Article]:
    from fedele.accounts.facade import actor_for
    from fedele.support.services import kb

    boss = user_with_roles("supervisor")
    kb.category_create(actor=actor_for(boss), slug="internet", name_it="Internet", name_en="Internet")
    modem = published(
        boss, title="Riavviare il modem", body="<p>Staccate il modem per 30 secondi.</p>", category="internet"
    )
    sepa = published(
        boss, language="en", title="Pay by SEPA", body="<p>Set up a SEPA mandate.</p>", category="internet"
    )
    internal = published(
        boss,
        title="Procedura interna modem",
        body="<p>Sostituzione del modem.</p>",
        visibility="internal",
        category="internet",
    )
    return {"modem": modem, "sepa": sepa, "internal": internal}


def _it(client: Client) -> Client:
    client.cookies["django_language"] = "it"
    return client


def test_portal_never_shows_internal_articles(client: Client, library: dict[str, Article]) -> None:
    _it(client)
    internal = library["internal"]
    assert client.get(reverse("help:kb_article", args=["it", internal.slug])).status_code == 404
    search = client.get(reverse("help:kb_search"), {"q": "modem"})
    assert search.status_code == 200
    assert b"Riavviare il modem" in search.content and b"Procedura interna" not in search.content
    category = client.get(reverse("help:kb_category", args=["internet"]))
    assert b"Riavviare il modem" in category.content and b"Procedura interna" not in category.content
    home = client.get(reverse("help:kb_home"))
    assert home.status_code == 200 and b"Procedura interna" not in home.content
    suggest = client.get(reverse("help:kb_suggest"), {"q": "modem sostituzione", "token": TOKEN})
    assert b"Procedura interna" not in suggest.content
    customer = user_with_roles("portal_customer")
    client.force_login(customer)
    assert client.get(reverse("help:kb_article", args=["it", internal.slug])).status_code == 404


def test_api_hides_internal_articles_from_portal_customers(
    client: Client, library: dict[str, Article]
) -> None:
    customer = user_with_roles("portal_customer")
    response = client.get("/api/v1/support/kb/search", {"q": "modem", "lang": "it"}, **auth_header(customer))
    assert response.status_code == 200
    assert [hit["article"]["title"] for hit in response.json()] == ["Riavviare il modem"]
    internal_id = library["internal"].public_id
    assert (
        client.get(f"/api/v1/support/kb/articles/{internal_id}", **auth_header(customer)).status_code == 404
    )
    assert client.get("/api/v1/support/kb/articles", **auth_header(customer)).status_code == 403
    agent = user_with_roles("agent")
    agent_hits = client.get(
        "/api/v1/support/kb/search", {"q": "modem", "lang": "it"}, **auth_header(agent)
    ).json()
    assert [hit["article"]["title"] for hit in agent_hits] == [
        "Riavviare il modem",
        "Procedura interna modem",
    ]
    fallback = client.get(
        "/api/v1/support/kb/search", {"q": "SEPA", "lang": "it"}, **auth_header(customer)
    ).json()
    assert [(hit["article"]["title"], hit["fallback"]) for hit in fallback] == [("Pay by SEPA", True)]


def test_fallback_note_on_english_only_article(client: Client, library: dict[str, Article]) -> None:
    _it(client)
    response = client.get(reverse("help:kb_article", args=["en", library["sepa"].slug]))
    assert response.status_code == 200
    assert b'id="kb-fallback-note"' in response.content
    article = Article.objects.get(pk=library["sepa"].pk)
    assert article.view_count == 1
    client.get(reverse("help:kb_article", args=["en", library["sepa"].slug]))
    article.refresh_from_db()
    assert article.view_count == 1


def test_feedback_once_through_the_page(client: Client, library: dict[str, Article]) -> None:
    _it(client)
    url = reverse("help:kb_feedback", args=["it", library["modem"].slug])
    first = client.post(url, {"helpful": "no", "comment": "Non funziona"}, HTTP_HX_REQUEST="true")
    assert first.status_code == 200
    second = client.post(url, {"helpful": "yes"}, HTTP_HX_REQUEST="true")
    assert second.status_code == 409
    modem = Article.objects.get(pk=library["modem"].pk)
    assert (modem.helpful_count, modem.not_helpful_count) == (0, 1)
    assert list(ArticleFeedback.objects.values_list("comment", flat=True)) == ["Non funziona"]


def test_suggest_fragment_records_and_tracks_deflection(client: Client, library: dict[str, Article]) -> None:
    _it(client)
    response = client.get(reverse("help:kb_suggest"), {"q": "il modem non va", "token": TOKEN})
    assert response.status_code == 200
    opened_url = reverse("help:kb_open", args=[TOKEN, library["modem"].public_id])
    assert opened_url.encode() in response.content
    assert b'target="_blank"' in response.content
    assert list(Deflection.objects.values_list("article_id", "outcome")) == [
        (library["modem"].pk, "suggested")
    ]
    redirect = client.get(opened_url)
    assert redirect.status_code == 302
    assert Deflection.objects.get().outcome == "opened"
    short = client.get(reverse("help:kb_suggest"), {"q": "mo", "token": TOKEN})
    assert b"<li" not in short.content
    assert Deflection.objects.count() == 1


def test_agent_pages_and_list_query_count(
    client: Client, library: dict[str, Article], django_assert_max_num_queries: Any
) -> None:
    agent = user_with_roles("agent")
    client.force_login(agent)
    with django_assert_max_num_queries(20):
        response = client.get(reverse("support:kb_list"))
    assert response.status_code == 200
    assert b"Procedura interna modem" in response.content
    filtered = client.get(reverse("support:kb_list"), {"visibility": "internal"})
    assert b"Procedura interna modem" in filtered.content and b"Riavviare il modem" not in filtered.content
    page = client.get(reverse("support:kb_article", args=[library["modem"].public_id]))
    assert page.status_code == 200 and b'id="kb-versions"' in page.content
    saved = client.post(
        reverse("support:kb_article", args=[library["modem"].public_id]),
        {
            "title": "Riavviare il modem",
            "summary": "",
            "body_html": "<p>Staccate il modem per 60 secondi.</p>",
        },
    )
    assert saved.status_code == 302
    assert library["modem"].versions.count() == 2
    submit = client.post(reverse("support:kb_version_action", args=[library["modem"].public_id, 2, "submit"]))
    assert submit.status_code == 302
    client.post(reverse("support:kb_version_action", args=[library["modem"].public_id, 2, "publish"]))
    assert library["modem"].versions.get(number=2).status == "in_review"  # agents may not publish
    diff = client.get(reverse("support:kb_diff", args=[library["modem"].public_id]), {"from": 1, "to": 2})
    assert diff.status_code == 200 and b"60 secondi" in diff.content
    customer = user_with_roles("portal_customer")
    client.force_login(customer)
    assert client.get(reverse("support:kb_list")).status_code == 403


def test_api_list_query_count(
    client: Client, library: dict[str, Article], django_assert_max_num_queries: Any
) -> None:
    agent = user_with_roles("agent")
    headers = auth_header(agent)
    with django_assert_max_num_queries(12):
        response = client.get("/api/v1/support/kb/articles", **headers)
    assert response.status_code == 200
    assert len(response.json()["items"]) == 3


def test_api_workflow_publish_needs_supervisor(client: Client, db: None) -> None:
    agent = user_with_roles("agent")
    created = client.post(
        "/api/v1/support/kb/articles",
        {"language": "it", "title": "Fattura elettronica", "body_html": "<p>Codice SDI</p>"},
        content_type="application/json",
        **auth_header(agent),
    )
    assert created.status_code == 201
    article_id = created.json()["id"]
    assert (
        client.post(
            f"/api/v1/support/kb/articles/{article_id}/versions/1/submit", **auth_header(agent)
        ).status_code
        == 200
    )
    refused = client.post(
        f"/api/v1/support/kb/articles/{article_id}/versions/1/publish", **auth_header(agent)
    )
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "kb_publish_denied"
    boss = user_with_roles("supervisor")
    published_response = client.post(
        f"/api/v1/support/kb/articles/{article_id}/versions/1/publish", **auth_header(boss)
    )
    assert published_response.status_code == 200
    assert published_response.json()["status"] == "published"
