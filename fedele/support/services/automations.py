"""Triggers, time rules and macros (owned by the SLA/automation area). Ticket services call
run_triggers inside their transaction after the change is saved.

Actions change tickets through the ticket services (so history, audit, SLA hooks and realtime pushes
stay in one place) while a re-entrancy guard keeps those changes from firing triggers again.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils.translation import gettext as _

from fedele.shared import audit, clock, customer_attributes
from fedele.shared.errors import ApplicationError, NotFound, PermissionDenied, ValidationFailed
from fedele.support.models import (
    Macro,
    StatusKind,
    Ticket,
    TicketEvent,
    TicketMessage,
    TimeRule,
    TimeRuleFiring,
    Trigger,
)
from fedele.support.services import config_cache

if TYPE_CHECKING:
    from fedele.accounts.contracts import Actor

logger = logging.getLogger(__name__)

TRIGGER_EVENTS = (
    "created",
    "updated",
    "customer_replied",
    "agent_replied",
    "status_changed",
    "sla_warning",
    "sla_breached",
)
CONDITION_FIELDS = (
    "priority",
    "status_kind",
    "status",
    "channel",
    "ticket_type",
    "category",
    "team",
    "assignee",
    "tag",
    "subject",
    "body",
    "customer_segment",
    "loyalty_tier",
    "requester_email",
)
OPERATORS = ("is", "is_not", "in", "not_in", "contains", "not_contains", "is_set", "is_not_set")
ACTION_TYPES = (
    "set_priority",
    "set_status",
    "assign_team",
    "assign_user",
    "auto_assign",
    "add_tag",
    "remove_tag",
    "set_field",
    "send_template",
    "webhook",
    "add_note",
)
TIME_RULE_SINCE_FIELDS = (
    "updated_at",
    "created_at",
    "solved_at",
    "last_agent_message_at",
    "last_customer_message_at",
)
TEMPLATE_VARIABLE = re.compile(r"\{\{\s*([a-z_]+\.[a-z_]+)\s*\}\}")

_running: ContextVar[bool] = ContextVar("support_automations_running", default=False)


@contextmanager
def _guard() -> Iterator[None]:
    token = _running.set(True)
    try:
        yield
    finally:
        _running.reset(token)


def automations_running() -> bool:
    return _running.get()


# -- conditions ------------------------------------------------------------------------------------


def _latest_body(ticket: Ticket) -> str:
    body = (
        TicketMessage.objects.filter(ticket=ticket)
        .exclude(kind=TicketMessage.Kind.SYSTEM)
        .order_by("-id")
        .values_list("body_text", flat=True)
        .first()
    )
    return body or ""


def _customer_public_id(ticket: Ticket) -> str | None:
    return str(ticket.customer.public_id) if ticket.customer is not None else None


def field_value(ticket: Ticket, field: str) -> Any:
    """The ticket's value for a condition field (a list for ``tag``; public ids for team/assignee)."""
    if field == "priority":
        return ticket.priority
    if field == "status_kind":
        return ticket.status_kind
    if field == "status":
        return ticket.status.code
    if field == "channel":
        return ticket.channel
    if field == "ticket_type":
        return ticket.ticket_type.code if ticket.ticket_type is not None else None
    if field == "category":
        return ticket.category.code if ticket.category is not None else None
    if field == "team":
        return str(ticket.team.public_id) if ticket.team is not None else None
    if field == "assignee":
        return str(ticket.assignee.public_id) if ticket.assignee is not None else None
    if field == "tag":
        return sorted(ticket.tags.values_list("name", flat=True))
    if field == "subject":
        return ticket.subject
    if field == "body":
        return _latest_body(ticket)
    if field == "requester_email":
        return ticket.requester_email
    customer = _customer_public_id(ticket)
    if field == "customer_segment":
        if customer is None:
            return None
        from fedele.customers.facade import customer_summary

        summary = customer_summary(customer)
        return summary.segment if summary is not None else None
    if field == "loyalty_tier":
        return customer_attributes.get(customer, "loyalty_tier") if customer else None
    raise ValidationFailed(_("Unknown condition field '%(field)s'.") % {"field": field}, code="bad_condition")


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set)):
        return [str(item) for item in value]
    return [item.strip() for item in str(value).split(",") if item.strip()]


def condition_holds(ticket: Ticket, condition: Mapping[str, Any]) -> bool:
    field = str(condition.get("field", ""))
    operator = str(condition.get("operator", "is"))
    expected = condition.get("value")
    actual = field_value(ticket, field)
    if isinstance(actual, list):  # tags: "is"/"contains" = has the tag
        has = {item.lower() for item in actual}
        wanted = {item.lower() for item in _as_list(expected)}
        results = {
            "is": bool(wanted) and wanted <= has,
            "contains": bool(wanted) and wanted <= has,
            "is_not": not (wanted & has),
            "not_contains": not (wanted & has),
            "in": bool(wanted & has),
            "not_in": not (wanted & has),
            "is_set": bool(has),
            "is_not_set": not has,
        }
        return results.get(operator, False)
    text = "" if actual is None else str(actual)
    if operator == "is_set":
        return bool(text)
    if operator == "is_not_set":
        return not text
    if operator == "is":
        return text.lower() == str(expected or "").lower()
    if operator == "is_not":
        return text.lower() != str(expected or "").lower()
    if operator == "in":
        return text.lower() in {item.lower() for item in _as_list(expected)}
    if operator == "not_in":
        return text.lower() not in {item.lower() for item in _as_list(expected)}
    if operator == "contains":
        return str(expected or "").lower() in text.lower()
    if operator == "not_contains":
        return str(expected or "").lower() not in text.lower()
    return False


def conditions_hold(ticket: Ticket, conditions: Sequence[Mapping[str, Any]]) -> bool:
    return all(condition_holds(ticket, condition) for condition in conditions or [])


# -- templates -------------------------------------------------------------------------------------


def _agent_name(agent: Any) -> str:
    if agent is None:
        return ""
    for attribute in ("get_full_name",):
        method = getattr(agent, attribute, None)
        if callable(method):
            name = str(method()).strip()
            if name:
                return name
    full_name = str(getattr(agent, "full_name", "") or "").strip()
    return full_name or str(getattr(agent, "email", "") or "")


def _ticket_absolute_url(ticket: Ticket) -> str:
    from django.urls import NoReverseMatch, reverse

    base = str(getattr(settings, "FEDELE_PUBLIC_URL", "") or "").rstrip("/")
    try:
        path = reverse("help:request_detail", args=[ticket.public_id])
    except NoReverseMatch:
        path = f"/help/requests/{ticket.public_id}/"
    return f"{base}{path}"


def render_template(text: str, *, ticket: Ticket, agent: Any) -> str:
    """Replace the documented {{ variables }} with plain values; anything else is left visible.

    ``agent`` is a user, an Actor-like object with ``full_name``/``email``, or None. No template
    engine runs on user text (no tags, filters or attribute access beyond this list)."""
    customer_name = ticket.requester_name
    first_name = ""
    customer = _customer_public_id(ticket)
    if customer is not None:
        from fedele.customers.facade import customer_summary

        summary = customer_summary(customer)
        if summary is not None:
            customer_name = summary.display_name or customer_name
            first_name = summary.first_name
    if not first_name and customer_name:
        first_name = customer_name.split()[0]
    values: dict[str, Callable[[], str]] = {
        "ticket.number": lambda: ticket.number,
        "ticket.subject": lambda: ticket.subject,
        "ticket.url": lambda: _ticket_absolute_url(ticket),
        "customer.name": lambda: customer_name,
        "customer.first_name": lambda: first_name,
        "agent.name": lambda: _agent_name(agent),
    }

    def replace(match: re.Match[str]) -> str:
        getter = values.get(match.group(1))
        return getter() if getter is not None else match.group(0)

    return TEMPLATE_VARIABLE.sub(replace, text or "")


# -- actions ---------------------------------------------------------------------------------------


def validate_actions(actions: Sequence[Mapping[str, Any]]) -> None:
    """Configuration-time check of an action list (types, required values, webhook targets)."""
    from fedele.shared.webhooks import target_refusal

    for position, action in enumerate(actions):
        kind = str(action.get("type", ""))
        if kind not in ACTION_TYPES:
            raise ValidationFailed(
                _("Unknown action '%(type)s'.") % {"type": kind},
                code="bad_action",
                fields={f"actions.{position}": _("Unknown action.")},
            )
        if (
            kind
            in (
                "set_priority",
                "set_status",
                "assign_team",
                "assign_user",
                "add_tag",
                "remove_tag",
                "add_note",
            )
            and not str(action.get("value", "") or "").strip()
        ):
            raise ValidationFailed(
                _("The action '%(type)s' needs a value.") % {"type": kind},
                code="bad_action",
                fields={f"actions.{position}": _("A value is required.")},
            )
        if kind == "set_priority" and action.get("value") not in ("low", "normal", "high", "urgent"):
            raise ValidationFailed(
                _("Unknown priority."),
                code="bad_action",
                fields={f"actions.{position}": _("Unknown priority.")},
            )
        if kind == "set_field" and not str(action.get("field", "") or "").strip():
            raise ValidationFailed(
                _("The action 'set_field' needs a field."),
                code="bad_action",
                fields={f"actions.{position}": _("A field is required.")},
            )
        if kind == "send_template" and action.get("to") not in ("requester", "assignee", "team"):
            raise ValidationFailed(
                _("Send the template to the requester, the assignee or the team."),
                code="bad_action",
                fields={f"actions.{position}": _("Choose a recipient.")},
            )
        if kind == "webhook":
            refusal = target_refusal(str(action.get("url", "")))
            if refusal:
                raise ValidationFailed(
                    _("This webhook address is refused: %(reason)s") % {"reason": refusal},
                    code="bad_action",
                    fields={f"actions.{position}": refusal},
                )


def validate_conditions(conditions: Sequence[Mapping[str, Any]]) -> None:
    for position, condition in enumerate(conditions):
        if condition.get("field") not in CONDITION_FIELDS or condition.get("operator", "is") not in OPERATORS:
            raise ValidationFailed(
                _("Unknown condition field or operator."),
                code="bad_condition",
                fields={f"conditions.{position}": _("Unknown field or operator.")},
            )


def apply_actions(
    ticket: Ticket,
    actions: Sequence[Mapping[str, Any]],
    *,
    actor: Actor | None,
    source: str,
) -> list[str]:
    """Apply automation actions to a ticket (inside the caller's transaction, guarded against
    re-firing triggers). Returns the action types applied."""
    from fedele.support.services.tickets import message_add, ticket_update

    changes: dict[str, Any] = {}
    add_tags: list[str] = []
    remove_tags: list[str] = []
    custom_fields: dict[str, Any] = {}
    applied: list[str] = []
    after_update: list[Mapping[str, Any]] = []
    for action in actions:
        kind = str(action.get("type", ""))
        value = action.get("value")
        if kind == "set_priority":
            changes["priority"] = value
        elif kind == "set_status":
            changes["status"] = value
        elif kind == "assign_team":
            changes["team"] = value
        elif kind == "assign_user":
            changes["assignee"] = value
        elif kind == "add_tag":
            add_tags.append(str(value))
        elif kind == "remove_tag":
            remove_tags.append(str(value))
        elif kind == "set_field":
            custom_fields[str(action.get("field", ""))] = value
        elif kind in ("auto_assign", "add_note", "send_template", "webhook"):
            after_update.append(action)
            continue
        else:
            logger.warning("Unknown automation action %r (%s)", kind, source)
            continue
        applied.append(kind)
    if add_tags:
        changes["add_tags"] = add_tags
    if remove_tags:
        changes["remove_tags"] = remove_tags
    if custom_fields:
        changes["custom_fields"] = custom_fields
    with _guard():
        if changes:
            ticket_update(actor=actor, ticket=ticket, changes=changes)
            ticket.refresh_from_db()
        for action in after_update:
            kind = str(action.get("type"))
            if kind == "auto_assign":
                _auto_assign(ticket)
            elif kind == "add_note":
                message_add(
                    actor=actor,
                    ticket=ticket,
                    kind="note",
                    body=render_template(str(action.get("value", "")), ticket=ticket, agent=None),
                    channel="internal",
                )
            elif kind == "send_template":
                _send_template(ticket, action)
            elif kind == "webhook":
                _webhook(ticket, str(action.get("url", "")), source)
            applied.append(kind)
    ticket.refresh_from_db()
    return applied


def _auto_assign(ticket: Ticket) -> None:
    from fedele.support.services.assignment import assign_automatically

    if ticket.assignee_id is not None:
        return
    chosen = assign_automatically(ticket)
    if chosen is not None:
        TicketEvent.objects.create(
            ticket=ticket,
            kind="assigned",
            field="assignee",
            new_value=str(chosen),
            data={"automatic": True},
            created_at=clock.now(),
        )


def _template_recipients(ticket: Ticket, to: str) -> list[str]:
    if to == "requester":
        return [ticket.requester_email] if ticket.requester_email else []
    users = get_user_model().objects.filter(is_active=True)
    if to == "assignee":
        if ticket.assignee_id is None:
            return []
        return [str(email) for email in users.filter(pk=ticket.assignee_id).values_list("email", flat=True)]
    if to == "team" and ticket.team_id is not None:
        return sorted(
            str(email) for email in users.filter(teams=ticket.team_id).values_list("email", flat=True)
        )
    return []


def _send_template(ticket: Ticket, action: Mapping[str, Any]) -> None:
    language = "en" if ticket.language == "en" else "it"
    subject = render_template(str(action.get(f"subject_{language}", "") or ""), ticket=ticket, agent=None)
    body = render_template(str(action.get(f"body_{language}", "") or ""), ticket=ticket, agent=None)
    recipients = _template_recipients(ticket, str(action.get("to", "requester")))
    if not recipients or not (subject or body):
        return
    ticket_pk = ticket.pk

    def send() -> None:
        from fedele.support.services.email_outbound import send_ticket_email

        fresh = Ticket.objects.get(pk=ticket_pk)
        send_ticket_email(ticket=fresh, to=recipients, subject=subject or fresh.subject, body_text=body)

    transaction.on_commit(send)


def ticket_payload(ticket: Ticket) -> dict[str, Any]:
    return {
        "id": str(ticket.public_id),
        "number": ticket.number,
        "subject": ticket.subject,
        "status": ticket.status.code,
        "status_kind": ticket.status_kind,
        "priority": ticket.priority,
        "channel": ticket.channel,
        "ticket_type": ticket.ticket_type.code if ticket.ticket_type is not None else None,
        "category": ticket.category.code if ticket.category is not None else None,
        "customer_id": _customer_public_id(ticket),
        "requester_email": ticket.requester_email,
        "team_id": str(ticket.team.public_id) if ticket.team is not None else None,
        "assignee_id": str(ticket.assignee.public_id) if ticket.assignee is not None else None,
        "tags": sorted(ticket.tags.values_list("name", flat=True)),
        "sla_breached": ticket.sla_breached,
        "created_at": ticket.created_at.isoformat(),
        "updated_at": ticket.updated_at.isoformat(),
    }


def _webhook(ticket: Ticket, url: str, source: str) -> None:
    body = {"event": "support.automation", "source": source, "ticket": ticket_payload(ticket)}

    def enqueue() -> None:
        from fedele.support.tasks import post_automation_webhook

        post_automation_webhook.delay(url, body)

    transaction.on_commit(enqueue)


def post_webhook(url: str, payload: Mapping[str, Any]) -> int | None:
    """One signed POST (HMAC with FEDELE_SUPPORT_WEBHOOK_SECRET, the kernel's signature format),
    refused for private targets like every kernel webhook. Returns the HTTP status or None."""
    import time

    import httpx

    from fedele.shared.webhooks import EVENT_HEADER, SIGNATURE_HEADER, sign, target_refusal

    refusal = target_refusal(url)
    if refusal:
        logger.warning("Automation webhook to %s refused: %s", url, refusal)
        return None
    content = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    secret = str(getattr(settings, "FEDELE_SUPPORT_WEBHOOK_SECRET", "") or settings.SECRET_KEY)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "fedele-webhooks/1",
        SIGNATURE_HEADER: sign(secret, content, int(time.time())),
        EVENT_HEADER: "support.automation",
    }
    try:
        response = httpx.post(
            url,
            content=content,
            headers=headers,
            timeout=float(getattr(settings, "FEDELE_WEBHOOK_TIMEOUT_SECONDS", 10)),
            follow_redirects=False,
        )
    except httpx.HTTPError as error:
        logger.warning("Automation webhook to %s failed: %s", url, error)
        return None
    return response.status_code


# -- triggers --------------------------------------------------------------------------------------


def run_triggers(
    ticket: Ticket, *, event: str, actor: Actor | None, changes: dict[str, tuple[Any, Any]] | None = None
) -> int:
    """Run every active trigger for ``event`` whose conditions hold. ``changes`` maps field → (old, new).
    Returns how many triggers ran (0: the ticket is exactly as the caller left it).

    Changes made by triggers do not fire triggers again (re-entrancy guard). Triggers run in position
    order and each sees the changes of the ones before it. Each run leaves a TicketEvent "automation"."""
    if _running.get():
        return 0
    triggers = config_cache.active_triggers(event)
    ran = 0
    if not triggers:
        return ran
    with _guard():
        for trigger in triggers:
            try:
                if not conditions_hold(ticket, trigger.conditions or []):
                    continue
            except ValidationFailed:
                logger.warning("Trigger %s has a bad condition; skipped", trigger.pk)
                continue
            ran += 1
            try:
                with transaction.atomic():
                    applied = apply_actions(ticket, trigger.actions or [], actor=None, source=trigger.name)
                    Trigger.objects.filter(pk=trigger.pk).update(run_count=F("run_count") + 1)
                    TicketEvent.objects.create(
                        ticket=ticket,
                        kind="automation",
                        new_value=trigger.name[:250],
                        data={"trigger": str(trigger.public_id), "event": event, "actions": applied},
                        created_at=clock.now(),
                    )
            except ApplicationError as error:
                # A trigger whose action no longer fits (a deleted team, a closed ticket) must not
                # block the agent's change: its own savepoint is rolled back and the run is logged.
                logger.warning("Trigger %s failed on %s: %s", trigger.pk, ticket.number, error.message)
                TicketEvent.objects.create(
                    ticket=ticket,
                    kind="automation",
                    new_value=trigger.name[:250],
                    data={"trigger": str(trigger.public_id), "event": event, "error": error.message},
                    created_at=clock.now(),
                )
    return ran


# -- time rules ------------------------------------------------------------------------------------


def _reference_of(ticket: Ticket, rule: TimeRule) -> datetime | None:
    value = getattr(ticket, rule.since_field, None)
    return value if isinstance(value, datetime) else None


def _rule_due(rule: TimeRule, reference: datetime, now: datetime) -> bool:
    if rule.business_hours:
        from fedele.support.selectors.sla import default_clock

        business = default_clock()
        if business is None:
            return False
        return business.business_seconds_between(reference, now) >= rule.hours * 3600
    return now - reference >= timedelta(hours=rule.hours)


def time_rules_run(now: datetime | None = None) -> int:
    """Fire every active time rule on the tickets that qualify; once per ticket per reference time
    (a unique row guards it, so two schedulers fire it once). Returns how many firings happened."""
    now = now or clock.now()
    fired = 0
    for rule in TimeRule.objects.filter(active=True).order_by("id"):
        if rule.since_field not in TIME_RULE_SINCE_FIELDS:
            continue
        candidates = Ticket.objects.filter(status_kind=rule.status_kind).exclude(
            **{f"{rule.since_field}__isnull": True}
        )
        if not rule.business_hours:
            candidates = candidates.filter(**{f"{rule.since_field}__lte": now - timedelta(hours=rule.hours)})
        for ticket_pk in candidates.order_by("id").values_list("pk", flat=True):
            if _fire_rule(rule, ticket_pk, now):
                fired += 1
    return fired


def _fire_rule(rule: TimeRule, ticket_pk: int, now: datetime) -> bool:
    try:
        with transaction.atomic():
            ticket = Ticket.objects.select_for_update(of=("self",)).select_related("status").get(pk=ticket_pk)
            reference = _reference_of(ticket, rule)
            if (
                ticket.status_kind != rule.status_kind
                or reference is None
                or not _rule_due(rule, reference, now)
            ):
                return False
            if TimeRuleFiring.objects.filter(rule=rule, ticket=ticket, reference_at=reference).exists():
                return False
            if not conditions_hold(ticket, rule.conditions or []):
                return False
            TimeRuleFiring.objects.create(rule=rule, ticket=ticket, reference_at=reference, fired_at=now)
            applied = apply_actions(ticket, rule.actions or [], actor=None, source=rule.name)
            TicketEvent.objects.create(
                ticket=ticket,
                kind="automation",
                new_value=rule.name[:250],
                data={
                    "time_rule": str(rule.public_id),
                    "actions": applied,
                    "reference_at": reference.isoformat(),
                },
                created_at=now,
            )
            return True
    except IntegrityError:
        return False  # another scheduler fired it first
    except ApplicationError as error:
        logger.warning("Time rule %s failed on ticket %s: %s", rule.pk, ticket_pk, error.message)
        return False


SUGGESTED_TIME_RULES: tuple[dict[str, Any], ...] = (
    {
        "name_en": "Close solved tickets after 72 hours",
        "status_kind": StatusKind.SOLVED,
        "since_field": "solved_at",
        "hours": 72,
        "actions": [{"type": "set_status", "value": "closed"}],
    },
    {
        "name_en": "Remind a pending customer after 48 hours",
        "status_kind": StatusKind.PENDING,
        "since_field": "last_agent_message_at",
        "hours": 48,
        "actions": [
            {
                "type": "send_template",
                "to": "requester",
                "subject_it": "Promemoria: {{ ticket.number }}",
                "subject_en": "Reminder: {{ ticket.number }}",
                "body_it": "Gentile {{ customer.first_name }}, attendiamo una sua risposta su "
                "«{{ ticket.subject }}»: {{ ticket.url }}",
                "body_en": "Dear {{ customer.first_name }}, we are waiting for your answer on "
                "“{{ ticket.subject }}”: {{ ticket.url }}",
            }
        ],
    },
)


# -- macros ----------------------------------------------------------------------------------------


def macro_apply(*, actor: Actor, ticket: Ticket | str, macro_public_id: str) -> TicketMessage | None:
    """Apply a macro: its reply (in the ticket's language, variables filled) as a public reply or an
    internal note, then its actions. usage_count + 1. Returns the message added, if any."""
    from fedele.support.selectors.tickets import ticket_get
    from fedele.support.services.tickets import message_add

    if actor.is_portal_customer or not actor.can("support.work_tickets"):
        raise PermissionDenied(_("You may not work on tickets."), code="permission_denied")
    if not isinstance(ticket, Ticket):
        ticket = ticket_get(actor=actor, public_id=str(ticket))
    try:
        macro = Macro.objects.get(public_id=macro_public_id, active=True)
    except (Macro.DoesNotExist, ValueError, DjangoValidationError) as error:
        raise NotFound(_("Macro not found."), code="macro_not_found") from error
    if macro.team_id is not None and ticket.team_id != macro.team_id and not _member_of(actor, macro.team_id):
        raise NotFound(_("Macro not found."), code="macro_not_found")
    user = get_user_model().objects.filter(pk=actor.user_id).first()
    template = (
        macro.reply_en if ticket.language == "en" and macro.reply_en else macro.reply_it or macro.reply_en
    )
    message: TicketMessage | None = None
    with transaction.atomic():
        Macro.objects.select_for_update().filter(pk=macro.pk).update(usage_count=F("usage_count") + 1)
        if template.strip():
            message = message_add(
                actor=actor,
                ticket=ticket,
                kind="note" if macro.reply_is_internal else "reply",
                body=render_template(template, ticket=ticket, agent=user),
            )
            ticket.refresh_from_db()
        if macro.actions:
            apply_actions(ticket, macro.actions, actor=actor, source=macro.name)
        TicketEvent.objects.create(
            ticket=ticket,
            kind="macro",
            new_value=macro.name[:250],
            data={"macro": str(macro.public_id)},
            actor_id=actor.user_id,
            actor_name=_agent_name(user),
            created_at=clock.now(),
        )
        audit.record(
            action="support.macro_applied",
            object_type="support.ticket",
            object_id=str(ticket.public_id),
            after={"macro": str(macro.public_id)},
            actor_id=actor.user_id,
        )
    return message


def _member_of(actor: Actor, team_id: int) -> bool:
    return get_user_model().objects.filter(pk=actor.user_id, teams=team_id).exists()


def macros_for(actor: Actor, ticket: Ticket | None = None) -> list[Macro]:
    """Active macros an agent may use: global ones, their teams' and the ticket's team's."""
    from django.db.models import Q

    team_ids = set(get_user_model().objects.filter(pk=actor.user_id).values_list("teams", flat=True)) - {None}
    if ticket is not None and ticket.team_id is not None:
        team_ids.add(ticket.team_id)
    return list(
        Macro.objects.filter(Q(team__isnull=True) | Q(team_id__in=team_ids), active=True).order_by("name")
    )
