"""Reads of the agent desktop: the agent's offers and contacts, the CTI screen pop (the customer 360 from
the other modules' facades), the transcript, canned replies and knowledge-base suggestions.

The screen pop shows a section only when the module behind it answers: billing, support, loyalty and
field service (equipment, open work orders) are read through their facades; other modules may add a
block of their own with ``register_screen_pop_section``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from django.db.models import Q, QuerySet
from django.urls import reverse
from django.utils.dateformat import format as date_format
from django.utils.translation import get_language, override
from django.utils.translation import gettext as _

from fedele.accounts.facade import Actor
from fedele.contact_center.models import (
    Agent,
    CannedReply,
    Interaction,
    InteractionMessage,
    InteractionState,
    WrapUpCode,
)
from fedele.shared import clock
from fedele.shared.errors import NotFound

if TYPE_CHECKING:
    from fedele.field_service.contracts import EquipmentSummary, WorkOrderSummary

MY_STATES = (InteractionState.OFFERED, InteractionState.CONNECTED, InteractionState.WRAP_UP)
RECENT_INTERACTIONS = 8
# The screen pop lists this many pieces of equipment and open work orders, then says "n more".
POP_FIELD_ROWS = 5
# How many the pop asks field service for (to count the ones it does not list).
FIELD_SERVICE_FETCH = 100
# Appointment windows and arrival times are spoken and shown in the business's local time.
LOCAL_TIME_ZONE = "Europe/Rome"
# A technician's ETA is worth showing once someone is on the way.
ETA_STATUSES = frozenset({"dispatched", "en_route"})
TRANSCRIPT_LIMIT = 200
PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+)\.([a-z_]+)\s*\}\}")


def is_italian(language: str | None = None) -> bool:
    return (language or get_language() or "en").startswith("it")


def agent_for_user(user_id: int) -> Agent | None:
    return Agent.objects.filter(user_id=user_id, active=True).first()


def pending_offers(agent: Agent, *, at: datetime | None = None) -> list[Any]:
    """The agent's open offers, oldest first, with their contact (expired ones are left to the router's
    expiry job and not shown)."""
    from fedele.contact_center.models import Offer, OfferState

    moment = at or clock.now()
    return list(
        Offer.objects.filter(agent=agent, state=OfferState.PENDING, expires_at__gt=moment)
        .select_related("interaction", "interaction__queue", "task")
        .order_by("offered_at", "id")
    )


def my_contacts(agent: Agent) -> list[Interaction]:
    """Contacts the agent holds now (connected, in wrap-up), oldest first: the desktop's tabs."""
    return list(
        Interaction.objects.filter(
            agent=agent, state__in=(InteractionState.CONNECTED, InteractionState.WRAP_UP)
        )
        .select_related("queue")
        .order_by("answered_at", "id")
    )


def visible_interactions(actor: Actor, agent: Agent | None) -> QuerySet[Interaction]:
    """Agents see their own contacts; supervisors (view_all_interactions) everyone's."""
    queryset = Interaction.objects.select_related("queue", "agent", "wrap_up_code")
    if actor.can("contact_center.view_all_interactions"):
        return queryset
    if agent is None:
        return queryset.none()
    return queryset.filter(agent=agent)


def interaction_for(actor: Actor, agent: Agent | None, public_id: str) -> Interaction:
    try:
        found = visible_interactions(actor, agent).filter(public_id=str(public_id)).first()
    except Exception:  # a malformed UUID is "not found", not a 500
        found = None
    if found is None:
        raise NotFound(_("This contact does not exist."), code="interaction_not_found")
    return found


def transcript(interaction: Interaction) -> list[InteractionMessage]:
    messages = list(
        InteractionMessage.objects.filter(interaction=interaction).order_by("-created_at", "-id")[
            :TRANSCRIPT_LIMIT
        ]
    )
    messages.reverse()
    return messages


def wrap_up_codes() -> QuerySet[WrapUpCode]:
    return WrapUpCode.objects.filter(active=True).order_by("code")


# -- screen pop ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ScreenPopSection:
    """A block another module adds to the screen pop (e.g. field service: equipment, open work
    orders). ``load(customer_public_id)`` returns rows of (label, value, url) or None to hide it."""

    key: str
    title: Any
    load: Callable[[str], list[tuple[str, str, str]] | None]
    order: int = 100


_sections: dict[str, ScreenPopSection] = {}


def register_screen_pop_section(section: ScreenPopSection) -> None:
    _sections[section.key] = section


def unregister_screen_pop_section(key: str) -> None:
    _sections.pop(key, None)


@dataclass(frozen=True, slots=True)
class ExtraSection:
    key: str
    title: Any
    rows: list[tuple[str, str, str]]


@dataclass(slots=True)
class ScreenPop:
    """Everything the desktop shows about the customer on the line. ``customer`` None = unknown caller."""

    customer: Any = None
    open_tickets: list[Any] = field(default_factory=list)
    balance: Any = None
    invoices: list[Any] = field(default_factory=list)
    subscriptions: list[Any] = field(default_factory=list)
    memberships: list[Any] = field(default_factory=list)
    tier: str | None = None
    tier_name: str = ""
    recent_interactions: list[Interaction] = field(default_factory=list)
    extra_sections: list[ExtraSection] = field(default_factory=list)
    # Field service: None = the module does not answer (the pop shows no equipment/work-order blocks).
    field_service: FieldServicePop | None = None

    @property
    def known(self) -> bool:
        return self.customer is not None


def screen_pop(interaction: Interaction, *, language: str | None = None) -> ScreenPop:
    from fedele.billing.facade import active_subscriptions, customer_balance, recent_invoices
    from fedele.customers.facade import customer_summary
    from fedele.loyalty.facade import loyalty_tier, memberships
    from fedele.support.facade import open_tickets_for_customer

    pop = ScreenPop()
    history = Interaction.objects.exclude(pk=interaction.pk).select_related("queue", "agent", "wrap_up_code")
    customer_id = interaction.customer_public_id
    customer = customer_summary(customer_id) if customer_id else None
    if customer is None:
        address = interaction.from_address if interaction.direction == "inbound" else interaction.to_address
        if address:
            pop.recent_interactions = list(
                history.filter(Q(from_address=address) | Q(to_address=address)).order_by(
                    "-created_at", "-id"
                )[:RECENT_INTERACTIONS]
            )
        return pop
    public_id = str(customer.public_id)
    pop.customer = customer
    # The facades word statuses in the active language: the agent's, when the caller names it.
    with override("it" if is_italian(language) else "en"):
        pop.open_tickets = open_tickets_for_customer(public_id, limit=10)
        pop.subscriptions = active_subscriptions(public_id)
    pop.balance = customer_balance(public_id)
    pop.invoices = recent_invoices(public_id, limit=5)
    pop.memberships = memberships(public_id, language="it" if is_italian(language) else "en")
    pop.tier = loyalty_tier(public_id)
    pop.tier_name = next(
        (member.tier_name for member in pop.memberships if member.tier_code == pop.tier), pop.tier or ""
    )
    pop.recent_interactions = list(
        history.filter(customer_public_id=public_id).order_by("-created_at", "-id")[:RECENT_INTERACTIONS]
    )
    pop.field_service = field_service_pop(public_id, language=language)
    for section in sorted(_sections.values(), key=lambda item: (item.order, item.key)):
        rows = section.load(public_id)
        if rows is not None:
            pop.extra_sections.append(ExtraSection(section.key, section.title, rows))
    return pop


# -- field service in the screen pop ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EquipmentLine:
    """A piece of the customer's equipment as the pop shows it."""

    equipment: EquipmentSummary
    warranty: str
    url: str


@dataclass(frozen=True, slots=True)
class WorkOrderLine:
    """An open work order as the pop shows it: ``window`` like "mar 8 dic, 10:00–12:00", ``eta`` like
    "10:40" once a technician is dispatched or on the way."""

    work_order: WorkOrderSummary
    window: str
    eta: str
    url: str


@dataclass(frozen=True, slots=True)
class FieldServicePop:
    equipment: list[EquipmentLine]
    equipment_more: int
    work_orders: list[WorkOrderLine]
    work_orders_more: int


def _language_code(language: str | None) -> str:
    return "it" if is_italian(language) else "en"


def local_moment(moment: datetime) -> datetime:
    return clock.local(moment, LOCAL_TIME_ZONE)


def clock_time(moment: datetime | None) -> str:
    """ "10:00": the local time of day (Europe/Rome), or "" when there is none."""
    return "" if moment is None else local_moment(moment).strftime("%H:%M")


def short_day(day: date, language: str) -> str:
    """ "mar 8 dic" / "Tue 8 Dec" (Italian day and month names are lower case)."""
    with override(language):
        text = date_format(day, "D j M")
    return text.lower() if language == "it" else text


def long_day(day: date, language: str) -> str:
    """ "martedì 8 dicembre" / "Tuesday 8 December": the visit day as the IVR says it."""
    with override(language):
        text = date_format(day, "l j F")
    return text.lower() if language == "it" else text


def window_text(start: datetime | None, end: datetime | None, language: str) -> str:
    """The appointment window in local time: "mar 8 dic, 10:00–12:00"; a window that ends on another
    day names both days; "" when the work order has no appointment yet."""
    if start is None:
        return ""
    first = local_moment(start)
    text = f"{short_day(first.date(), language)}, {first:%H:%M}"
    if end is None:
        return text
    last = local_moment(end)
    if last.date() == first.date():
        return f"{text}–{last:%H:%M}"
    return f"{text} – {short_day(last.date(), language)}, {last:%H:%M}"


def warranty_text(equipment: EquipmentSummary) -> str:
    if equipment.under_warranty and equipment.warranty_ends_on is not None:
        return _("under warranty until %(date)s") % {"date": equipment.warranty_ends_on.strftime("%d/%m/%Y")}
    if equipment.under_warranty:
        return _("under warranty")
    return _("out of warranty")


def field_service_pop(customer_public_id: str, *, language: str | None = None) -> FieldServicePop:
    """The customer's equipment and open work orders, at most POP_FIELD_ROWS of each (and how many
    more), worded in ``language``. The same few queries (two per facade call: the customer, then its
    rows) whatever the number of rows."""
    from fedele.field_service import facade as field_service

    code = _language_code(language)
    # The facade words statuses in the active language, like the other facades in the pop.
    with override(code):
        equipment = field_service.customer_equipment(customer_public_id, limit=FIELD_SERVICE_FETCH)
        work_orders = field_service.open_work_orders(customer_public_id, limit=FIELD_SERVICE_FETCH)
        equipment_lines = [
            EquipmentLine(
                item, warranty_text(item), reverse("field_service:equipment_detail", args=[item.public_id])
            )
            for item in equipment[:POP_FIELD_ROWS]
        ]
        work_order_lines = [
            WorkOrderLine(
                order,
                window_text(order.window_start, order.window_end, code),
                clock_time(order.eta) if order.status in ETA_STATUSES else "",
                reverse("field_service:work_order_detail", args=[order.public_id]),
            )
            for order in work_orders[:POP_FIELD_ROWS]
        ]
    return FieldServicePop(
        equipment=equipment_lines,
        equipment_more=max(0, len(equipment) - POP_FIELD_ROWS),
        work_orders=work_order_lines,
        work_orders_more=max(0, len(work_orders) - POP_FIELD_ROWS),
    )


def offer_caller(interaction: Interaction) -> dict[str, Any]:
    """The small pop on the ringing offer card: who it is and how important."""
    from fedele.customers.facade import customer_summary
    from fedele.loyalty.facade import memberships

    if not interaction.customer_public_id:
        return {"name": "", "tier": None}
    customer = customer_summary(interaction.customer_public_id)
    if customer is None:
        return {"name": "", "tier": None}
    best = memberships(str(customer.public_id), language="it" if is_italian() else "en")
    return {"name": customer.display_name, "tier": best[0].tier_name if best and best[0].tier_code else None}


def customer_search(query: str, *, limit: int = 8) -> list[Any]:
    """Unknown caller → the agent searches customers to link (number, name, phone, codes, e-mail)."""
    from fedele.customers.facade import customer_summaries, search_customer_ids

    text = (query or "").strip()
    if len(text) < 2:
        return []
    ids = search_customer_ids(text[:100], limit)
    found = customer_summaries(ids)
    return [found[customer_id] for customer_id in ids if customer_id in found]


# -- canned replies and suggestions ----------------------------------------------------------------


def placeholder_values(interaction: Interaction | None, agent: Agent | None, customer: Any) -> dict[str, str]:
    values = {
        "customer.name": "",
        "customer.first_name": "",
        "customer.number": "",
        "agent.name": agent.display_name if agent else "",
        "interaction.number": interaction.number if interaction else "",
    }
    if customer is not None:
        values["customer.name"] = customer.display_name
        values["customer.first_name"] = customer.first_name or customer.display_name
        values["customer.number"] = customer.number
    return values


def expand_placeholders(text: str, values: dict[str, str]) -> str:
    """``{{customer.name}}`` → the value; an unknown placeholder stays as typed (the agent sees it)."""

    def replace(match: re.Match[str]) -> str:
        key = f"{match.group(1)}.{match.group(2)}"
        return values[key] if key in values else match.group(0)

    return PLACEHOLDER.sub(replace, text)


@dataclass(frozen=True, slots=True)
class CannedReplyView:
    shortcut: str
    title: str
    text: str


def canned_replies_for(
    interaction: Interaction | None, agent: Agent | None, *, customer: Any = None, language: str | None = None
) -> list[CannedReplyView]:
    """Active replies for the conversation's queue (and the ones for every queue), in the customer's
    language when known (else the agent's), placeholders filled."""
    queryset = CannedReply.objects.filter(active=True)
    if interaction is not None and interaction.queue_id is not None:
        queryset = queryset.filter(Q(queue__isnull=True) | Q(queue_id=interaction.queue_id))
    else:
        queryset = queryset.filter(queue__isnull=True)
    customer_language = (customer.language if customer is not None else "") or (
        interaction.language if interaction is not None else ""
    )
    italian = is_italian(customer_language or language)
    values = placeholder_values(interaction, agent, customer)
    return [
        CannedReplyView(
            shortcut=reply.shortcut,
            title=reply.title,
            text=expand_placeholders(reply.body_it if italian else reply.body_en, values),
        )
        for reply in queryset.order_by("shortcut")
    ]


def kb_query_for(interaction: Interaction) -> str:
    """What the conversation is about: the subject and the customer's latest messages."""
    latest = list(
        InteractionMessage.objects.filter(interaction=interaction, sender=InteractionMessage.Sender.CUSTOMER)
        .order_by("-created_at", "-id")
        .values_list("body", flat=True)[:3]
    )
    return " ".join([interaction.subject, *reversed(latest)]).strip()[:500]


def kb_suggestions(interaction: Interaction, *, language: str | None = None, limit: int = 5) -> list[Any]:
    from fedele.support.facade import suggest_articles

    query = kb_query_for(interaction)
    if not query:
        return []
    return suggest_articles(
        query, language="it" if is_italian(language) else "en", for_agents=True, limit=limit
    )
