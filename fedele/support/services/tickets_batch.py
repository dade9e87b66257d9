"""Many ticket creates at once: ``tickets_create_many``, the group commit behind the create endpoint's
fast path (ADR 0002).

Each request gets exactly the outcome ``ticket_create`` would give it, one by one in arrival order
(the same checks and errors, the same ticket, first message, SLA clocks, history, audit row and outbox
events, numbers in arrival order), but a round of requests shares one database transaction and a
handful of multi-row statements:

- the customers are found by e-mail with one lookup for the round (``find_customers_by_emails``);
- the replay check on (external source, external id) is one query for the round;
- the gapless numbers are drawn together: the series' counter row is locked once and moved on by the
  round's size (``sequences.next_values``), numbers given in arrival order;
- tickets, messages, history rows and SLA clocks are inserted with one statement each, the audit rows
  with one ``audit.record_many`` and the outbox events with one ``events.publish_many``;
- the realtime pushes go out after commit from one callback and one event-loop hop, in the order
  one-by-one creates send them.

A round holds at most one request per (external source, external id): a repeat must see the first
one's ticket, so it starts the next round. A request whose create depends on what the others of its
round wrote is created on its own, at its place in arrival order, with ``ticket_create`` itself: when
triggers run on "created" (they may read or change anything), when the ticket lands on a team with
nobody named (automatic assignment counts the agents' open tickets), when the caller is not a plain
agent. A round whose transaction fails as a whole (a racing request with the same external id, a new
tag created meanwhile, a deadlock) is created again one request at a time through ``ticket_create``,
which handles each case exactly.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from asgiref.sync import async_to_sync
from channels import layers as channel_layers
from django.db import transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.customers.contracts import CustomerSummary, TimelineAppend
from fedele.customers.facade import customer_summary, find_customers_by_emails
from fedele.shared import audit, clock, events, sequences
from fedele.shared.errors import ApplicationError, ValidationFailed
from fedele.support.events import TicketCreated
from fedele.support.models import Channel, StatusKind, Tag, Ticket, TicketEvent, TicketMessage, TicketType
from fedele.support.models.sla import SlaClock
from fedele.support.services import config_cache, sla
from fedele.support.services import tickets as single
from fedele.support.services.tickets import (
    _NEW_PARTS_ATTRIBUTE,
    FORMLESS_CHANNELS,
    LANGUAGES,
    WORK_PERMISSION,
    NewTicketParts,
    _assignee_for,
    _category_for,
    _customer_for,
    _label,
    _language,
    _message_bodies,
    _priority,
    _subject,
    _tag_names,
    _team_for,
    _ticket_type_for,
    actor_name,
    build_search_text,
    check_subject,
    default_status,
    ticket_url,
    validate_custom_fields,
)

logger = logging.getLogger(__name__)
SERIES = "support.ticket"
MAX_TICKETS = 500


@dataclass(frozen=True, slots=True)
class TicketRequest:
    """One create, as ``ticket_create`` takes it from the API (no files, no parent, no mailbox)."""

    subject: str
    body: str = ""
    body_html: str = ""
    channel: str = "api"
    requester_email: str = ""
    requester_name: str = ""
    customer_public_id: str | None = None
    ticket_type: str | None = None
    category: str | None = None
    priority: str | None = None
    team_public_id: str | None = None
    assignee_public_id: str | None = None
    tags: Sequence[str] = ()
    custom_fields: Mapping[str, Any] | None = None
    language: str | None = None
    subject_kind: str = ""
    subject_reference: str = ""
    external_source: str = ""
    external_id: str = ""

    def arguments(self) -> dict[str, Any]:
        return {item.name: getattr(self, item.name) for item in fields(self)}

    def identity(self) -> tuple[str, str] | None:
        """The (source, id) ``ticket_create`` is idempotent on, as it cleans them; None = none."""
        external_id = (self.external_id or "").strip()[:64]
        if not external_id:
            return None
        return (self.external_source or "").strip()[:24], external_id


@dataclass(slots=True)
class TicketOutcome:
    """A request's outcome: its ticket (new, with ``new_ticket_parts`` when nothing else wrote it; or
    the one its external id already named), or the error ``ticket_create`` raised. Neither: the create
    failed unexpectedly and was not made (the caller lets the full path answer it)."""

    ticket: Ticket | None = None
    error: ApplicationError | None = None


@dataclass(slots=True)
class _Prepared:
    index: int
    ticket: Ticket
    plan: sla.SlaPlan
    text: str
    clean_html: str
    tag_names: list[str]
    type_code: str
    customer_public: str | None
    assignee: Any
    at: dt.datetime
    first_message: TicketMessage | None = None


@dataclass(slots=True)
class _Round:
    items: list[_Prepared] = field(default_factory=list)
    identities: set[tuple[str, str]] = field(default_factory=set)


def tickets_create_many(*, actor: Actor | None, requests: Sequence[TicketRequest]) -> list[TicketOutcome]:
    """``ticket_create`` for each request, in order, with shared statements; one outcome per request."""
    if len(requests) > MAX_TICKETS:
        raise ValidationFailed(f"At most {MAX_TICKETS} tickets at once.", code="too_many_tickets")
    outcomes: list[TicketOutcome] = [TicketOutcome() for _request in requests]
    if not requests:
        return outcomes
    plain_agent = actor is not None and not actor.is_portal_customer and actor.can(WORK_PERMISSION)
    if not plain_agent or config_cache.active_triggers("created"):
        for index, request in enumerate(requests):
            outcomes[index] = _create_one(actor, request)
        return outcomes
    assert actor is not None
    name = actor_name(actor)
    start = 0
    while start < len(requests):
        start = _run_round(actor, name, requests, start, outcomes)
    return outcomes


def _run_round(
    actor: Actor, name: str, requests: Sequence[TicketRequest], start: int, outcomes: list[TicketOutcome]
) -> int:
    """Prepare requests from ``start`` until one repeats an external id of the round; write the
    prepared ones together, the ones that need it alone at their place. Returns where the next round
    starts."""
    end = start
    seen: set[tuple[str, str]] = set()
    while end < len(requests):
        identity = requests[end].identity()
        if identity is not None:
            if identity in seen:
                break
            seen.add(identity)
        end += 1
    window = list(range(start, end))
    try:
        existing = _existing(requests[index].identity() for index in window)
        customers = find_customers_by_emails(
            _lookup_email(requests[index]) for index in window if not requests[index].customer_public_id
        )
    except Exception:
        # Earlier rounds may have committed already: this one must not fail the whole group (its
        # callers would be answered by the full path, which would create those tickets again).
        logger.exception("The lookups of a round of ticket creates failed; created one by one")
        for index in window:
            outcomes[index] = _create_one(actor, requests[index])
        return end
    batch = _Round()
    for index in window:
        request = requests[index]
        try:
            prepared = _prepare(actor, index, request, existing, customers)
        except ApplicationError as error:
            outcomes[index] = TicketOutcome(error=error)
            continue
        except Exception:
            logger.exception("Preparing a ticket create of a group failed; created alone")
            prepared = None
        if isinstance(prepared, Ticket):
            outcomes[index] = TicketOutcome(ticket=prepared)
        elif prepared is None:
            # Its create depends on what the requests before it wrote: those first, then it alone.
            _write(actor, name, batch, requests, outcomes)
            batch = _Round()
            outcomes[index] = _create_one(actor, request)
        else:
            batch.items.append(prepared)
    _write(actor, name, batch, requests, outcomes)
    return end


def _lookup_email(request: TicketRequest) -> str:
    return (request.requester_email or "").strip().lower()[:254]


def _existing(identities: Any) -> dict[tuple[str, str], Ticket]:
    """The tickets already created under the round's external ids, by (source, id): one query."""
    wanted = {identity for identity in identities if identity is not None}
    if not wanted:
        return {}
    condition = Q()
    for source, external_id in wanted:
        condition |= Q(external_source=source, external_id=external_id)
    found: dict[tuple[str, str], Ticket] = {}
    for ticket in Ticket.objects.filter(condition).order_by("pk"):
        found.setdefault((ticket.external_source, ticket.external_id), ticket)
    return found


def _prepare(
    actor: Actor,
    index: int,
    request: TicketRequest,
    existing: Mapping[tuple[str, str], Ticket],
    customers: Mapping[str, CustomerSummary],
) -> _Prepared | Ticket | None:
    """``ticket_create`` up to its transaction, step for step (the same checks in the same order, so
    the same first error); the customer from the round's lookup. A Ticket: the one the external id
    already names. None: this request is created alone."""
    channel = request.channel
    if channel not in Channel.values:
        raise ValidationFailed(
            _("Unknown channel '%(value)s'.") % {"value": channel},
            code="unknown_channel",
            fields={"channel": _("Unknown channel.")},
        )
    subject = _subject(request.subject)
    identity = request.identity()
    if identity is not None and identity in existing:
        return existing[identity]
    external_source, external_id = identity if identity is not None else ("", "")
    requester_email = _lookup_email(request)
    requester_name = " ".join((request.requester_name or "").split())[:200]
    customer: CustomerSummary | None = None
    if request.customer_public_id:
        customer = _customer_for(request.customer_public_id)
    if customer is None and requester_email:
        customer = customers.get(requester_email)
    customer_pk = customer.customer_id if customer is not None else None
    customer_public = str(customer.public_id) if customer is not None else None
    customer_language = customer.language if customer is not None else ""
    if requester_email and "@" not in requester_email:
        raise ValidationFailed(
            _("The requester e-mail is not valid."),
            code="invalid_email",
            fields={"requester_email": _("Not an e-mail address.")},
        )
    type_row: TicketType = _ticket_type_for(request.ticket_type or "question")
    category_row = _category_for(request.category) if request.category else None
    priority_value = _priority(request.priority) if request.priority else type_row.default_priority
    team = _team_for(request.team_public_id) if request.team_public_id else None
    assignee = _assignee_for(request.assignee_public_id) if request.assignee_public_id else None
    if assignee is None and (team is not None or type_row.default_team_id):
        # A team and nobody named: automatic assignment counts the agents' open tickets, which the
        # requests before this one may have changed. Created alone (it checks everything again).
        return None
    if team is None and type_row.default_team_id:
        return None  # the type's default team is read by ticket_create itself (not cached)
    tag_names = _tag_names(request.tags)
    about = check_subject(request.subject_kind, request.subject_reference, customer_public)
    if about is not None and customer is None and about.customer_public_id:
        customer = customer_summary(about.customer_public_id)
        customer_pk = customer.customer_id if customer is not None else None
        customer_public = str(customer.public_id) if customer is not None else None
        customer_language = customer.language if customer is not None else ""
    custom = validate_custom_fields(
        type_row, request.custom_fields or {}, enforce_required=channel not in FORMLESS_CHANNELS
    )
    language = request.language
    chosen_language = language or customer_language or actor.language or "it"
    chosen_language = _language(chosen_language if chosen_language in LANGUAGES else "it")
    if language:
        _language(language)
    text, clean_html = _message_bodies(request.body, request.body_html)
    at = clock.now()
    status = default_status(StatusKind.NEW)
    ticket = Ticket(
        subject=subject,
        customer_id=customer_pk,
        requester_email=requester_email,
        requester_name=requester_name,
        requester_user_id=None,
        language=chosen_language,
        channel=channel,
        ticket_type=type_row,
        category=category_row,
        priority=priority_value,
        status=status,
        status_kind=status.kind,
        assignee=assignee,
        team=team,
        custom_fields=custom,
        subject_kind=request.subject_kind,
        subject_reference=about.reference if about is not None else "",
        parent=None,
        external_source=external_source,
        external_id=external_id,
        mailbox=None,
        created_by_id=actor.user_id,
        created_at=at,
        updated_at=at,
        message_count=1 if text else 0,
        last_customer_message_at=at if text else None,
    )
    plan = sla.sla_plan(ticket, at=at, customer_public_id=customer_public, customer=customer)
    sla.sla_apply_plan(ticket, plan)
    return _Prepared(
        index=index,
        ticket=ticket,
        plan=plan,
        text=text,
        clean_html=clean_html,
        tag_names=tag_names,
        type_code=type_row.code,
        customer_public=customer_public,
        assignee=assignee,
        at=at,
    )


def _create_one(actor: Actor | None, request: TicketRequest) -> TicketOutcome:
    try:
        return TicketOutcome(ticket=single.ticket_create(actor=actor, **request.arguments()))
    except ApplicationError as error:
        return TicketOutcome(error=error)
    except Exception:
        logger.exception("A ticket create of a group failed; it is left to the full path")
        return TicketOutcome()


def _write(
    actor: Actor, name: str, batch: _Round, requests: Sequence[TicketRequest], outcomes: list[TicketOutcome]
) -> None:
    if not batch.items:
        return
    try:
        with transaction.atomic():
            _insert(actor, name, batch.items)
    except Exception:
        # The round failed as a whole (a racing create with the same external id, a deadlock): none
        # of it was written. Each request again, alone, exactly as ticket_create handles it.
        logger.warning(
            "A round of %s ticket creates failed; created one by one", len(batch.items), exc_info=True
        )
        for prepared in batch.items:
            outcomes[prepared.index] = _create_one(actor, requests[prepared.index])
        return
    for prepared in batch.items:
        outcomes[prepared.index] = TicketOutcome(ticket=prepared.ticket)


def _insert(actor: Actor, name: str, items: list[_Prepared]) -> None:
    """The round's rows, in arrival order, as ``ticket_create`` writes each (see the module docstring)."""
    numbers = sequences.next_values(SERIES, len(items))
    for prepared, value in zip(items, numbers, strict=True):
        ticket = prepared.ticket
        ticket.number = f"T-{value:06d}"
        ticket.search_text = build_search_text(ticket, [prepared.text] if prepared.text else [])
    Ticket.objects.bulk_create([prepared.ticket for prepared in items])
    _set_tags(items)
    messages: list[TicketMessage] = []
    for prepared in items:
        if prepared.text:
            ticket = prepared.ticket
            prepared.first_message = TicketMessage(
                ticket=ticket,
                kind=TicketMessage.Kind.CUSTOMER,
                channel=ticket.channel,
                author_user_id=None,
                author_email=ticket.requester_email[:254],
                author_name=ticket.requester_name[:200],
                body_text=prepared.text,
                body_html=prepared.clean_html,
                email_message_id="",
                email_in_reply_to="",
                email_references="",
                email_to="",
                email_cc="",
                created_at=prepared.at,
            )
            messages.append(prepared.first_message)
    if messages:
        TicketMessage.objects.bulk_create(messages)
    history: list[TicketEvent] = []
    for prepared in items:
        ticket = prepared.ticket
        history.append(
            _history(
                ticket,
                "created",
                actor=actor,
                name=name,
                at=prepared.at,
                data={
                    "channel": ticket.channel,
                    "priority": ticket.priority,
                    "ticket_type": prepared.type_code,
                    "parent": "",
                },
            )
        )
        if prepared.assignee is not None:
            history.append(
                _history(
                    ticket,
                    "assigned",
                    actor=actor,
                    name=name,
                    at=prepared.at,
                    field="assignee",
                    new=_label(prepared.assignee),
                )
            )
    TicketEvent.objects.bulk_create(history)
    audit.record_many(
        action="support.ticket_created",
        object_type="support.ticket",
        rows=[
            (
                str(prepared.ticket.public_id),
                {
                    "number": prepared.ticket.number,
                    "subject": prepared.ticket.subject,
                    "channel": prepared.ticket.channel,
                    "priority": prepared.ticket.priority,
                    "ticket_type": prepared.type_code,
                    "customer": prepared.customer_public,
                    "attachments": 0,
                },
            )
            for prepared in items
        ],
        actor_id=actor.user_id,
    )
    published: list[tuple[object, str, str]] = []
    for prepared in items:
        published.extend(_events_of(prepared))
    events.publish_many(published)
    clocks: list[SlaClock] = []
    for prepared in items:
        for sla_clock in prepared.plan.clocks:
            sla_clock.ticket = prepared.ticket
            clocks.append(sla_clock)
    if clocks:
        SlaClock.objects.bulk_create(clocks)
    pushes: list[tuple[str, str, dict[str, Any]]] = []
    for prepared in items:
        ticket = prepared.ticket
        parts = NewTicketParts(
            tags=sorted(prepared.tag_names),
            messages=[prepared.first_message] if prepared.first_message is not None else [],
            customer_public_id=prepared.customer_public,
        )
        setattr(ticket, _NEW_PARTS_ATTRIBUTE, parts)
        public_id = str(ticket.public_id)
        pushes.append(
            (
                f"support.ticket.{public_id}",
                "ticket.changed",
                {"ticket": public_id, "what": "created", "by": name},
            )
        )
        pushes.append(("support.queue", "queue.changed", {"ticket": public_id}))
    transaction.on_commit(lambda: _push_all(pushes))


def _set_tags(items: list[_Prepared]) -> None:
    """The tags of the round: the existing ones read once, the new ones created in order of first use
    (as one-by-one ``get_or_create`` would create them), the links in one statement."""
    wanted: list[str] = []
    for prepared in items:
        for tag_name in prepared.tag_names:
            if tag_name not in wanted:
                wanted.append(tag_name)
    if not wanted:
        return
    found = {tag.name: tag for tag in Tag.objects.filter(name__in=wanted)}
    missing = [Tag(name=tag_name) for tag_name in wanted if tag_name not in found]
    if missing:
        for tag in Tag.objects.bulk_create(missing):
            found[tag.name] = tag
    links = Ticket.tags.through
    Ticket.tags.through.objects.bulk_create(
        [
            links(ticket_id=prepared.ticket.pk, tag_id=found[tag_name].pk)
            for prepared in items
            for tag_name in prepared.tag_names
        ]
    )


def _history(
    ticket: Ticket,
    kind: str,
    *,
    actor: Actor,
    name: str,
    at: dt.datetime,
    field: str = "",
    new: object = None,
    data: Mapping[str, Any] | None = None,
) -> TicketEvent:
    """The history row ``tickets._event`` writes, unsaved."""
    return TicketEvent(
        ticket=ticket,
        kind=kind,
        field=field,
        old_value="",
        new_value="" if new is None else str(new)[:250],
        data=audit.jsonable(dict(data or {})),
        actor_id=actor.user_id,
        actor_name=name[:200],
        created_at=at,
    )


def _events_of(prepared: _Prepared) -> list[tuple[object, str, str]]:
    """The outbox events ``ticket_create`` publishes for this ticket, in its order."""
    ticket = prepared.ticket
    public_id = str(ticket.public_id)
    created = TicketCreated(
        ticket_id=public_id,
        number=ticket.number,
        customer_id=prepared.customer_public,
        channel=ticket.channel,
        priority=ticket.priority,
        ticket_type=prepared.type_code,
        subject=ticket.subject,
        created_at=prepared.at.isoformat(),
    )
    published: list[tuple[object, str, str]] = [(created, "support.ticket", public_id)]
    if prepared.customer_public is not None:
        timeline = TimelineAppend(
            customer_public_id=prepared.customer_public,
            module="support",
            kind="ticket_created",
            title=_("Ticket %(number)s opened") % {"number": ticket.number},
            occurred_at=prepared.at,
            summary=ticket.subject,
            link=ticket_url(ticket),
            data={"ticket": ticket.number, "status": ticket.status.code, "channel": ticket.channel},
        )
        published.append((timeline, "support.ticket", public_id))
    return published


def _push_all(pushes: list[tuple[str, str, dict[str, Any]]]) -> None:
    """The round's pushes, in order, as ``realtime.send_now`` sends each, but from one event-loop
    hop: ``async_to_sync`` starts a thread per call, which cost more than the round's inserts."""
    layer = channel_layers.get_channel_layer()
    if layer is None:
        return

    async def send_all() -> None:
        for group, message_type, data in pushes:
            try:
                await layer.group_send(group, {"type": message_type, "data": data})
            except Exception:
                # A push is a courtesy; the page shows the same data on its next load.
                logger.exception("Realtime push to %s failed", group)

    try:
        async_to_sync(send_all)()
    except Exception:
        logger.exception("Realtime pushes of %s tickets failed", len(pushes) // 2)
