"""Knowledge-base workflow: versions, review, publish, archive, translations, feedback, views, deflection."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import time_machine
from django.core.cache import cache

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog
from fedele.support.attachments import IncomingFile
from fedele.support.kb import search_index
from fedele.support.models import Article, ArticleAttachment, ArticleFeedback, ArticleVersion, Deflection
from fedele.support.selectors.kb import version_diff
from fedele.support.services import kb
from fedele.support.tests.factories import TicketFactory
from fedele.support.tests.kb_helpers import published

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture(autouse=True)
def _fresh(settings: object) -> Iterator[None]:
    settings.FEDELE_KB_SEMANTIC = False  # type: ignore[attr-defined]
    search_index.clear()
    cache.clear()
    yield
    search_index.clear()


def _draft(author_roles: str = "agent") -> tuple[Article, object]:
    author = actor_for(user_with_roles(author_roles))
    article = kb.article_create(
        actor=author,
        language="it",
        title="Riavviare il modem",
        summary="Quando la connessione cade",
        body_html="<p>Staccate la spina.</p><script>alert(1)</script>",
        keywords="modem router",
    )
    return article, author


def test_article_create_makes_a_draft_with_version_one_and_sanitised_html() -> None:
    article, _author = _draft()
    assert article.status == "draft"
    assert article.slug == "riavviare-il-modem"
    assert article.published_version == 0
    versions = list(article.versions.values_list("number", "status", "body_html"))
    assert versions == [(1, "draft", "<p>Staccate la spina.</p>")]
    assert AuditLog.objects.filter(action="support.kb.article_created").count() == 1


def test_duplicate_titles_get_numbered_slugs_per_language() -> None:
    first, author = _draft()
    second = kb.article_create(actor=author, language="it", title="Riavviare il modem", body_html="<p>b</p>")  # type: ignore[arg-type]
    english = kb.article_create(actor=author, language="en", title="Riavviare il modem", body_html="<p>c</p>")  # type: ignore[arg-type]
    assert (first.slug, second.slug, english.slug) == (
        "riavviare-il-modem",
        "riavviare-il-modem-2",
        "riavviare-il-modem",
    )


def test_invalid_article_changes_nothing() -> None:
    author = actor_for(user_with_roles("agent"))
    with pytest.raises(ValidationFailed) as caught:
        kb.article_create(actor=author, language="de", title="", body_html="<script>x</script>")
    assert set(caught.value.fields) == {"language", "title", "body_html"}
    assert Article.objects.count() == 0
    assert ArticleVersion.objects.count() == 0


def test_customer_and_viewer_cannot_edit() -> None:
    for role in ("portal_customer", "analyst"):
        with pytest.raises(PermissionDenied):
            kb.article_create(
                actor=actor_for(user_with_roles(role)), language="it", title="x", body_html="<p>x</p>"
            )
    assert Article.objects.count() == 0


def test_full_workflow_submit_publish_edit_republish() -> None:
    article, author = _draft()
    reviewer = actor_for(user_with_roles("supervisor"))
    v1 = article.versions.get(number=1)
    kb.version_submit(actor=author, version=v1)  # type: ignore[arg-type]
    article.refresh_from_db()
    assert article.status == "in_review"
    with time_machine.travel("2026-03-02 10:00:00+00:00", tick=False):
        kb.version_publish(actor=reviewer, version=v1)
    article.refresh_from_db()
    assert (article.status, article.published_version) == ("published", 1)
    assert (
        article.published_at is not None and article.published_at.isoformat() == "2026-03-02T10:00:00+00:00"
    )
    assert "riavviare il modem" in article.search_text.lower()
    assert "modem router" in article.search_text
    v2 = kb.version_create(
        actor=author,
        article=article,
        title="Riavviare il modem (nuovo)",
        body_html="<p>Staccate la spina per 30 secondi.</p>",  # type: ignore[arg-type]
    )
    article.refresh_from_db()
    assert article.title == "Riavviare il modem"  # the published text is untouched by a draft
    kb.version_submit(actor=author, version=v2)  # type: ignore[arg-type]
    kb.version_publish(actor=reviewer, version=v2)
    article.refresh_from_db()
    assert (article.title, article.published_version) == ("Riavviare il modem (nuovo)", 2)
    statuses = list(article.versions.order_by("number").values_list("number", "status"))
    assert statuses == [(1, "superseded"), (2, "published")]
    rows = version_diff(ArticleVersion.objects.get(pk=v1.pk), ArticleVersion.objects.get(pk=v2.pk))
    changed = [(row.kind, row.text) for row in rows if row.kind in ("added", "removed")]
    assert changed == [
        ("removed", "# Riavviare il modem"),
        ("removed", "Quando la connessione cade"),
        ("added", "# Riavviare il modem (nuovo)"),
        ("removed", "Staccate la spina."),
        ("added", "Staccate la spina per 30 secondi."),
    ]


def test_agent_cannot_publish_and_nothing_changes() -> None:
    article, author = _draft()
    v1 = article.versions.get(number=1)
    kb.version_submit(actor=author, version=v1)  # type: ignore[arg-type]
    audits = AuditLog.objects.count()
    with pytest.raises(PermissionDenied):
        kb.version_publish(actor=author, version=v1)  # type: ignore[arg-type]
    with pytest.raises(PermissionDenied):
        kb.version_reject(actor=author, version=v1, note="no")  # type: ignore[arg-type]
    v1.refresh_from_db()
    article.refresh_from_db()
    assert (v1.status, article.status, article.published_version) == ("in_review", "in_review", 0)
    assert AuditLog.objects.count() == audits


def test_publish_requires_review_and_reject_needs_a_note() -> None:
    article, author = _draft()
    reviewer = actor_for(user_with_roles("supervisor"))
    v1 = article.versions.get(number=1)
    with pytest.raises(Conflict) as caught:
        kb.version_publish(actor=reviewer, version=v1)
    assert caught.value.code == "version_not_in_review"
    kb.version_submit(actor=author, version=v1)  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed):
        kb.version_reject(actor=reviewer, version=v1, note="   ")
    with pytest.raises(Conflict):
        kb.version_create(actor=author, article=article, title="x", body_html="<p>y</p>")  # type: ignore[arg-type]
    kb.version_reject(actor=reviewer, version=v1, note="Aggiungere la foto del modem")
    v1.refresh_from_db()
    article.refresh_from_db()
    assert (v1.status, v1.note, article.status) == ("rejected", "Aggiungere la foto del modem", "draft")
    with pytest.raises(Conflict):
        kb.version_submit(actor=author, version=v1)  # type: ignore[arg-type]
    v2 = kb.version_create(actor=author, article=article, title="Riavviare", body_html="<p>con foto</p>")  # type: ignore[arg-type]
    v1.refresh_from_db()
    assert (v1.status, v2.number, v2.status) == ("superseded", 2, "draft")


def test_archive_hides_and_unarchive_restores() -> None:
    boss = user_with_roles("supervisor")
    article = published(boss, title="Leggere la fattura", body="<p>La fattura</p>")
    actor = actor_for(boss)
    kb.article_archive(actor=actor, article=article)
    article.refresh_from_db()
    assert article.status == "archived"
    with pytest.raises(Conflict):
        kb.article_archive(actor=actor, article=article)
    kb.article_unarchive(actor=actor, article=article)
    article.refresh_from_db()
    assert article.status == "published"


def test_translation_shares_group_and_is_unique_per_language() -> None:
    boss = user_with_roles("supervisor")
    source = published(boss, title="Pagare con SEPA", body="<p>Mandato SEPA</p>")
    actor = actor_for(boss)
    english = kb.translation_create(
        actor=actor, source=source, language="en", title="Pay by SEPA", body_html="<p>SEPA</p>"
    )
    assert english.translation_group == source.translation_group
    assert (english.language, english.status) == ("en", "draft")
    count = Article.objects.count()
    with pytest.raises(Conflict) as caught:
        kb.translation_create(actor=actor, source=source, language="en", title="Again", body_html="<p>x</p>")
    assert caught.value.code == "translation_exists"
    with pytest.raises(ValidationFailed):
        kb.translation_create(actor=actor, source=source, language="it", title="Stessa", body_html="<p>x</p>")
    assert Article.objects.count() == count


def test_feedback_once_per_user_and_per_session() -> None:
    boss = user_with_roles("supervisor")
    article = published(boss, title="Cambiare piano", body="<p>Piano</p>")
    customer = user_with_roles("portal_customer")
    kb.feedback_record(article=article, helpful=True, comment="ignored when helpful", user_id=customer.pk)
    with pytest.raises(Conflict) as caught:
        kb.feedback_record(article=article, helpful=False, user_id=customer.pk)
    assert caught.value.code == "already_voted"
    kb.feedback_record(article=article, helpful=False, comment="Manca il prezzo", session_key="s" * 32)
    with pytest.raises(Conflict):
        kb.feedback_record(article=article, helpful=True, session_key="s" * 32)
    article.refresh_from_db()
    assert (article.helpful_count, article.not_helpful_count) == (1, 1)
    assert list(ArticleFeedback.objects.order_by("id").values_list("helpful", "comment")) == [
        (True, ""),
        (False, "Manca il prezzo"),
    ]
    with pytest.raises(ValidationFailed):
        kb.feedback_record(article=article, helpful=True)
    with pytest.raises(ValidationFailed):
        kb.feedback_record(article=article, helpful=False, comment="x" * 1001, session_key="other")
    assert ArticleFeedback.objects.count() == 2


def test_views_count_once_per_viewer_in_thirty_minutes() -> None:
    boss = user_with_roles("supervisor")
    article = published(boss, title="Trasloco", body="<p>Trasloco</p>")
    updated_at = article.updated_at
    assert kb.view_record(article=article, viewer="session:a") is True
    assert kb.view_record(article=article, viewer="session:a") is False
    assert kb.view_record(article=article, viewer="session:b") is True
    assert kb.view_record(article=article, viewer="") is False
    cache.delete(f"support.kb.view.{article.pk}.session:a")  # the 30-minute window expired
    assert kb.view_record(article=article, viewer="session:a") is True
    article.refresh_from_db()
    assert article.view_count == 3
    assert article.updated_at == updated_at


def test_deflection_suggested_opened_submitted_and_settled() -> None:
    boss = user_with_roles("supervisor")
    modem = published(boss, title="Modem", body="<p>modem</p>")
    bill = published(boss, title="Fattura", body="<p>fattura</p>")
    token = "t" * 24
    assert kb.deflection_suggested(token=token, query="modem", articles=[modem, bill]) == 2
    assert kb.deflection_suggested(token=token, query="modem fattura", articles=[modem, bill]) == 0
    assert kb.deflection_suggested(token="bad token!", query="modem", articles=[modem]) == 0
    assert kb.deflection_opened(token=token, article=modem) is True
    assert kb.deflection_opened(token=token, article=modem) is False
    other = "o" * 24
    kb.deflection_suggested(token=other, query="fattura", articles=[bill])
    kb.deflection_opened(token=other, article=bill)
    ticket = TicketFactory()
    assert kb.deflection_record_submitted(token, ticket) == 2
    assert kb.deflection_record_submitted(token, ticket) == 0
    assert kb.deflection_record_submitted("nope", ticket) == 0
    assert set(Deflection.objects.filter(token=token).values_list("outcome", "ticket_id")) == {
        ("submitted", ticket.pk)
    }
    from datetime import timedelta

    from fedele.shared import clock

    assert kb.deflections_settle(now=clock.now() + timedelta(minutes=30)) == 0
    assert kb.deflections_settle(now=clock.now() + timedelta(minutes=61)) == 1
    assert Deflection.objects.get(token=other).outcome == "deflected"


def test_attachment_accepts_images_and_refuses_other_types() -> None:
    article, author = _draft()
    attachment = kb.attachment_add(actor=author, article=article, file=IncomingFile("foto.png", PNG))  # type: ignore[arg-type]
    assert (attachment.filename, attachment.content_type, attachment.size) == (
        "foto.png",
        "image/png",
        len(PNG),
    )
    with pytest.raises(ValidationFailed):
        kb.attachment_add(actor=author, article=article, file=IncomingFile("note.txt", b"hello"))  # type: ignore[arg-type]
    assert ArticleAttachment.objects.count() == 1


def test_demo_articles_load_once() -> None:
    from fedele.support.kb.demo import load_articles

    actor = actor_for(user_with_roles("supervisor"))
    assert load_articles(actor) == 21
    assert load_articles(actor) == 0
    assert Article.objects.filter(status="published", visibility="internal").count() == 2
    assert Article.objects.filter(language="en").count() == 9
