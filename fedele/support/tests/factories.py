"""Factories for support rows. Tests of behaviour should create tickets through the services
(fedele.support.services.tickets.ticket_create); these build plain rows for selectors, pages and setup."""

from __future__ import annotations

from typing import Any

import factory
from django.utils import timezone

from fedele.shared import sequences
from fedele.support.models import (
    Article,
    BusinessCalendar,
    Category,
    KbCategory,
    Mailbox,
    Ticket,
    TicketMessage,
    TicketStatus,
    TicketType,
)


def status(code: str) -> TicketStatus:
    """One of the seeded statuses: new, open, pending_customer, pending_third_party, solved, closed."""
    return TicketStatus.objects.get(code=code)


def ticket_type(code: str = "question") -> TicketType:
    return TicketType.objects.get(code=code)


def default_calendar() -> BusinessCalendar:
    return BusinessCalendar.objects.get(is_default=True)


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    code = factory.Sequence(lambda n: f"category-{n}")
    name_it = factory.Sequence(lambda n: f"Categoria {n}")
    name_en = factory.Sequence(lambda n: f"Category {n}")


class TicketFactory(factory.django.DjangoModelFactory):
    """A bare ticket row (no SLA clocks, no events): for list/selector/page tests only."""

    class Meta:
        model = Ticket

    number = factory.LazyFunction(lambda: f"T-{sequences.next_value('support.ticket'):06d}")
    subject = factory.Sequence(lambda n: f"Problema numero {n}")
    requester_email = factory.Sequence(lambda n: f"requester{n}@example.it")
    requester_name = "Mario Rossi"
    channel = "portal"
    priority = "normal"
    status = factory.LazyFunction(lambda: status("new"))
    status_kind = factory.LazyAttribute(lambda o: o.status.kind)
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)
    search_text = factory.LazyAttribute(lambda o: o.subject.lower())


class TicketMessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TicketMessage

    ticket = factory.SubFactory(TicketFactory)
    kind = "customer"
    body_text = "Il modem non si connette."
    created_at = factory.LazyFunction(timezone.now)


class MailboxFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Mailbox

    name = "Assistenza"
    address = factory.Sequence(lambda n: f"support{n}@fedele.example")
    created_at = factory.LazyFunction(timezone.now)


class KbCategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = KbCategory

    slug = factory.Sequence(lambda n: f"kb-category-{n}")
    name_it = factory.Sequence(lambda n: f"Argomento {n}")
    name_en = factory.Sequence(lambda n: f"Topic {n}")


class ArticleFactory(factory.django.DjangoModelFactory):
    """A published article row (no versions): for search and page tests."""

    class Meta:
        model = Article

    language = "it"
    slug = factory.Sequence(lambda n: f"articolo-{n}")
    title = factory.Sequence(lambda n: f"Articolo {n}")
    body_html = "<p>Testo</p>"
    search_text = factory.LazyAttribute(lambda o: f"{o.title} testo".lower())
    status = "published"
    published_version = 1
    published_at = factory.LazyFunction(timezone.now)
    created_at = factory.LazyFunction(timezone.now)
    updated_at = factory.LazyFunction(timezone.now)


def ticket_kwargs(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments for services.tickets.ticket_create with sensible defaults."""
    values: dict[str, Any] = {
        "subject": "Il modem non si connette",
        "body": "Da ieri sera la luce DSL lampeggia.",
        "channel": "portal",
        "requester_email": "mario.rossi@example.it",
        "requester_name": "Mario Rossi",
    }
    values.update(overrides)
    return values
