"""Knowledge-base attachments are streamed through fedele (so a private S3 bucket works), to agents for
any article and to everyone only for published public articles."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.cache import cache
from django.urls import reverse

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.support.attachments import IncomingFile
from fedele.support.kb import search_index
from fedele.support.models import ArticleAttachment
from fedele.support.services import kb
from fedele.support.tests.kb_helpers import published

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))


@pytest.fixture(autouse=True)
def _fresh(settings: object, tmp_path: Path) -> Iterator[None]:
    settings.FEDELE_KB_SEMANTIC = False  # type: ignore[attr-defined]
    settings.MEDIA_ROOT = tmp_path  # type: ignore[attr-defined]
    search_index.clear()
    cache.clear()
    yield
    search_index.clear()


def _with_attachment(visibility: str = "public", *, publish: bool = True) -> ArticleAttachment:
    supervisor = user_with_roles("supervisor")
    if publish:
        article = published(
            supervisor, title="Riavviare il modem", body="<p>Staccate la spina.</p>", visibility=visibility
        )
    else:
        article = kb.article_create(
            actor=actor_for(supervisor),
            language="it",
            title="Bozza",
            summary="",
            body_html="<p>x</p>",
            keywords="",
        )
    return kb.attachment_add(
        actor=actor_for(supervisor), article=article, file=IncomingFile("schema.png", PNG)
    )  # type: ignore[arg-type]


def _body(response) -> bytes:  # type: ignore[no-untyped-def]
    return b"".join(response.streaming_content)


def test_everyone_downloads_a_published_public_articles_attachment(client) -> None:
    attachment = _with_attachment()
    response = client.get(reverse("help:kb_attachment", args=[attachment.public_id]))
    assert response.status_code == 200
    assert _body(response) == PNG
    assert response["Content-Type"] == "image/png"
    assert response["Content-Disposition"] == 'attachment; filename="schema.png"'
    assert response["X-Content-Type-Options"] == "nosniff"
    # The article page links there, not to the storage URL.
    page = client.get(reverse("help:kb_article", args=["it", attachment.article.slug]))
    assert reverse("help:kb_attachment", args=[attachment.public_id]) in page.content.decode()
    assert "/media/" not in page.content.decode()


@pytest.mark.parametrize(("visibility", "publish"), [("internal", True), ("public", False)])
def test_an_internal_or_unpublished_articles_attachment_is_not_public(client, visibility, publish) -> None:
    attachment = _with_attachment(visibility, publish=publish)
    assert client.get(reverse("help:kb_attachment", args=[attachment.public_id])).status_code == 404
    customer = user_with_roles("portal_customer")
    client.force_login(customer)
    assert client.get(reverse("help:kb_attachment", args=[attachment.public_id])).status_code == 404
    assert client.get(reverse("support:kb_attachment", args=[attachment.public_id])).status_code == 403


def test_an_agent_downloads_any_articles_attachment(client) -> None:
    attachment = _with_attachment("internal", publish=False)
    client.force_login(user_with_roles("agent"))
    response = client.get(reverse("support:kb_attachment", args=[attachment.public_id]))
    assert response.status_code == 200
    assert _body(response) == PNG
    page = client.get(reverse("support:kb_article", args=[attachment.article.public_id]))
    assert (
        reverse("support:kb_attachment", args=[attachment.article.attachments.get().public_id])
        in page.content.decode()
    )


def test_an_unknown_attachment_is_404(client) -> None:
    unknown = "00000000-0000-0000-0000-000000000000"
    assert client.get(reverse("help:kb_attachment", args=[unknown])).status_code == 404
    client.force_login(user_with_roles("agent"))
    assert client.get(reverse("support:kb_attachment", args=[unknown])).status_code == 404
