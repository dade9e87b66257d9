"""Reads of the self-service portal: a customer's requests, the public thread of one, the help
centre's home content and the honest "we usually answer by ..." promise."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q, QuerySet
from django.utils import formats, timezone, translation

from fedele.accounts.contracts import Actor
from fedele.shared import clock
from fedele.shared.errors import PermissionDenied
from fedele.support.models import Article, KbCategory, Survey, Ticket, TicketMessage, Visibility

HOME_CATEGORIES = 6
HOME_ARTICLES = 6
STATUS_BADGES = {
    "new": "text-bg-info",
    "open": "text-bg-primary",
    "pending": "text-bg-warning",
    "solved": "text-bg-success",
    "closed": "text-bg-secondary",
}


def require_portal(actor: Actor) -> None:
    if not actor.is_portal_customer:
        raise PermissionDenied("These pages are for customers with a portal login.")


def my_requests(*, actor: Actor, state: str = "") -> QuerySet[Ticket]:
    """The customer's requests (asked by them or for their customer), newest activity first.
    state: "" (all), "open" (not solved/closed) or "solved" (solved or closed)."""
    from fedele.customers.facade import customer_for_user

    require_portal(actor)
    mine = Q(requester_user_id=actor.user_id)
    customer = customer_for_user(actor.user_id)
    if customer is not None:
        mine |= Q(customer_id=customer.customer_id)
    queryset = Ticket.objects.filter(mine, merged_into__isnull=True).select_related("status")
    if state == "open":
        queryset = queryset.exclude(status_kind__in=["solved", "closed"])
    elif state == "solved":
        queryset = queryset.filter(status_kind__in=["solved", "closed"])
    return queryset.order_by("-updated_at", "-id")


def public_thread(ticket: Ticket) -> QuerySet[TicketMessage]:
    """What the customer sees: their messages and public replies, never notes or system entries."""
    return (
        TicketMessage.objects.filter(ticket=ticket, kind__in=["customer", "reply"])
        .select_related("author_user")
        .prefetch_related("attachments")
        .order_by("id")
    )


def status_label(ticket: Ticket, language: str) -> str:
    status = ticket.status
    return status.name_en if language == "en" else status.name_it


def badge_class(status_kind: str) -> str:
    return STATUS_BADGES.get(status_kind, "text-bg-secondary")


def csat_of(ticket: Ticket) -> Survey | None:
    return Survey.objects.filter(ticket=ticket, kind=Survey.Kind.CSAT).first()


@dataclass(frozen=True, slots=True)
class HomeContent:
    categories: Sequence[KbCategory]
    articles: Sequence[Article]


def home_content(language: str) -> HomeContent:
    """Top categories (most published public articles in the language) and most read articles."""
    published = Q(
        articles__status=Article.Status.PUBLISHED,
        articles__visibility=Visibility.PUBLIC,
        articles__language=language,
    )
    categories = list(
        KbCategory.objects.filter(visibility=Visibility.PUBLIC)
        .annotate(article_total=Count("articles", filter=published))
        .filter(article_total__gt=0)
        .order_by("-article_total", "position", "id")[:HOME_CATEGORIES]
    )
    articles = list(
        Article.objects.filter(
            status=Article.Status.PUBLISHED, visibility=Visibility.PUBLIC, language=language
        ).order_by("-view_count", "-published_at", "-id")[:HOME_ARTICLES]
    )
    return HomeContent(categories, articles)


def promise_text(due: datetime | None, at: datetime | None = None) -> str:
    """ "We usually answer by Monday 23 November, 12:30" in the active language, or "" with no SLA."""
    if due is None:
        return ""
    local = timezone.localtime(due)
    now = timezone.localtime(at or clock.now())
    pattern = "l j F, H:i" if local.year == now.year else "l j F Y, H:i"
    when = formats.date_format(local, pattern)
    return translation.gettext("We usually answer by %(when)s") % {"when": when}


def expected_answer(
    *, priority: str, customer_public_id: str | None, ticket_type: str | None, at: datetime | None = None
) -> str:
    """The SLA-honest promise for a request sent now through the portal."""
    from fedele.support.selectors import sla

    moment = at or clock.now()
    try:
        due = sla.expected_first_response(
            priority=priority,
            customer_public_id=customer_public_id,
            ticket_type=ticket_type,
            channel="portal",
            at=moment,
        )
    except Exception:  # a misconfigured calendar must not break the form
        return ""
    return promise_text(due, moment)
