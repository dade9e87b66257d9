"""The IVR engine: walks a call through the published flow version pinned to its session.

``ivr_start`` opens the session on the flow's published version (a call in progress keeps that version
when a newer one is published) and ``ivr_continue`` feeds it what the caller did (keys, or a timeout).
Each returns the ``IvrStep``s to perform, in order, up to the first that waits for the caller
(``collect``) or hands the call on (``queue``, ``voicemail``, ``transfer``, ``hangup``). Twilio renders
them to TwiML (ivr/twiml.py); the SIP adapter performs them over RTP.

Every node the call passes and every input it gets is written to the session's history and to the
interaction's timeline (``ivr.node`` / ``ivr.input`` events) in the same transaction.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import translation
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from fedele.contact_center.ivr import flow as flow_format
from fedele.contact_center.ivr.checks import CHECKS
from fedele.contact_center.ivr.lookups import LOOKUPS, LookupContext, estimated_wait_seconds, queue_position
from fedele.contact_center.ivr.prompts import prompt_steps
from fedele.contact_center.ivr.steps import IvrStep, StepKind
from fedele.contact_center.models import (
    Interaction,
    InteractionEvent,
    InteractionState,
    IvrFlow,
    IvrFlowVersion,
    IvrNumber,
    IvrSession,
    IvrSessionState,
)
from fedele.shared import clock
from fedele.shared.errors import Conflict, NotFound, ValidationFailed

__all__ = ["flow_version_for", "ivr_continue", "ivr_start", "ivr_start_version", "session_steps_again"]

# A walk that passes this many nodes without waiting is a loop the validator should have caught: the
# engine ends the call rather than spin.
MAX_NODES_PER_TURN = 100
MAX_DIGITS = 40
_KEYS = re.compile(r"^[0-9*#]*$")


def flow_version_for(*, flow_code: str | None = None, number: str | None = None) -> IvrFlowVersion:
    """The published version of the flow named by code, or of the flow answering ``number``."""
    if flow_code:
        flow = IvrFlow.objects.filter(code=flow_code).select_related("published_version").first()
    elif number:
        mapping = (
            IvrNumber.objects.filter(number=number.strip()).select_related("flow__published_version").first()
        )
        flow = mapping.flow if mapping else None
    else:
        raise ValidationFailed(_("Name a flow or a dialled number."), code="ivr_flow_required")
    if flow is None:
        raise NotFound(_("No IVR flow for this call."), code="ivr_flow_not_found")
    if flow.published_version is None:
        raise Conflict(
            _("The flow “%(code)s” has no published version.") % {"code": flow.code}, code="ivr_not_published"
        )
    return flow.published_version


def ivr_start(
    *, interaction: Interaction, flow_code: str | None = None, number: str | None = None
) -> list[IvrStep]:
    """Start the call on the flow (by code, or by the dialled number's mapping). A repeated start for
    the same interaction (a provider retry) changes nothing and returns what the caller is waiting on."""
    version = flow_version_for(flow_code=flow_code, number=number)
    return ivr_start_version(interaction=interaction, version=version)


def ivr_start_version(
    *, interaction: Interaction, version: IvrFlowVersion, at: datetime | None = None
) -> list[IvrStep]:
    """Start on a given version: the published one for calls, a draft for the editor's test call."""
    now = at or clock.now()
    with transaction.atomic():
        locked = Interaction.objects.select_for_update().get(pk=interaction.pk)
        existing = IvrSession.objects.filter(interaction=locked).select_related("flow_version").first()
        if existing is not None:
            return session_steps_again(existing)
        definition = version.definition
        language = locked.language if locked.language in flow_format.declared_languages(definition) else ""
        session = IvrSession(
            interaction=locked,
            flow_version=version,
            language=language or flow_format.default_language(definition),
            variables={},
            started_at=now,
            updated_at=now,
        )
        if locked.customer_public_id:
            session.variables["customer_public_id"] = locked.customer_public_id
        if locked.state not in ("", InteractionState.IVR):
            # Queued, with an agent or ended: the IVR is behind this call (or was never its way in).
            raise Conflict(_("This call is past the IVR."), code="ivr_call_not_new")
        locked.state = InteractionState.IVR
        attributes = dict(locked.attributes or {})
        attributes["ivr"] = {"flow": version.flow.code, "version": version.number}
        locked.attributes = attributes
        locked.save(update_fields=["state", "attributes"])
        session.save()
        walker = _Walker(session, locked, now)
        steps = walker.walk(str(definition["start"]))
        walker.finish()
    _copy_back(interaction, locked)
    return steps


def ivr_continue(
    *, interaction: Interaction, digits: str | None, timed_out: bool, input_ref: str = ""
) -> list[IvrStep]:
    """What the caller did at the node the session waits on: ``digits`` they typed (the finish key
    may be included), or ``timed_out``. Raises Conflict when the call is not waiting in the IVR.

    ``input_ref`` (optional) is the provider's id for this input (e.g. the webhook's event id): the
    same ref again — a provider retrying a slow webhook — returns the same steps and changes nothing,
    even after the call has left the IVR."""
    now = clock.now()
    keys = (digits or "").strip()
    if len(keys) > MAX_DIGITS or not _KEYS.match(keys):
        raise ValidationFailed(
            _("Digits must be 0-9, * or # (at most 40)."), code="ivr_bad_digits", fields={"digits": "0-9*#"}
        )
    with transaction.atomic():
        locked = Interaction.objects.select_for_update().get(pk=interaction.pk)
        session = IvrSession.objects.filter(interaction=locked).select_related("flow_version__flow").first()
        last_input = session.digits_history[-1] if session is not None and session.digits_history else {}
        if input_ref and last_input.get("ref") == input_ref:
            return [_step_from_json(step) for step in last_input.get("steps", [])]
        if session is None or session.state != IvrSessionState.ACTIVE or not session.awaiting:
            raise Conflict(_("This call is not waiting for input in the IVR."), code="ivr_not_waiting")
        walker = _Walker(session, locked, now)
        steps = walker.input(keys, timed_out=timed_out or not keys)
        if input_ref:
            # The input keeps what it produced, so a retry of it is answered the same way.
            answered = {"ref": input_ref, "steps": [_step_to_json(step) for step in steps]}
            session.digits_history = [
                *session.digits_history[:-1],
                {**session.digits_history[-1], **answered},
            ]
        walker.finish()
    _copy_back(interaction, locked)
    return steps


def _step_to_json(step: IvrStep) -> dict[str, Any]:
    return {
        "kind": str(step.kind),
        "text": step.text,
        "language": step.language,
        "audio": step.audio,
        "params": step.params,
    }


def _step_from_json(data: dict[str, Any]) -> IvrStep:
    return IvrStep(
        kind=StepKind(data["kind"]),
        text=str(data.get("text", "")),
        language=str(data.get("language", "it")),
        audio=str(data.get("audio", "")),
        params=dict(data.get("params") or {}),
    )


def session_steps_again(session: IvrSession) -> list[IvrStep]:
    """The prompt and collect of the node the session waits on (nothing when it waits on none)."""
    if session.state != IvrSessionState.ACTIVE or not session.awaiting:
        return []
    walker = _Walker(session, session.interaction, clock.now())
    return walker.ask(session.awaiting)


def _copy_back(interaction: Interaction, locked: Interaction) -> None:
    """The caller's object sees what the engine (and the router it called) wrote."""
    locked.refresh_from_db()
    for field in (
        "state",
        "language",
        "customer_public_id",
        "attributes",
        "queue_id",
        "queued_at",
        "priority",
    ):
        setattr(interaction, field, getattr(locked, field))


class _Walker:
    """One turn of the engine over one session; ``finish`` writes the session and the timeline."""

    def __init__(self, session: IvrSession, interaction: Interaction, now: datetime) -> None:
        self.session = session
        self.interaction = interaction
        self.now = now
        self.definition: dict[str, Any] = session.flow_version.definition
        self.nodes: dict[str, dict[str, Any]] = self.definition.get("nodes", {})
        self.fallback_language = flow_format.default_language(self.definition)
        self.steps: list[IvrStep] = []
        self.events: list[InteractionEvent] = []
        self.interaction_fields: set[str] = set()

    # recording -------------------------------------------------------------------------------------

    def record(self, kind: str, data: dict[str, Any]) -> None:
        entry = {"at": self.now.isoformat(), "kind": kind, **data}
        self.session.history = [*self.session.history, entry]
        self.events.append(
            InteractionEvent(interaction=self.interaction, kind=kind, data=data, created_at=self.now)
        )

    def finish(self) -> None:
        self.session.updated_at = self.now
        self.session.save()
        InteractionEvent.objects.bulk_create(self.events)
        self.events = []
        self.save_interaction()

    def save_interaction(self) -> None:
        if self.interaction_fields:
            self.interaction.save(update_fields=sorted(self.interaction_fields))
            self.interaction_fields.clear()

    def set_interaction(self, **values: Any) -> None:
        for field, value in values.items():
            setattr(self.interaction, field, value)
            self.interaction_fields.add(field)

    def set_result(self, result: str) -> None:
        attributes = dict(self.interaction.attributes or {})
        attributes["ivr"] = {**attributes.get("ivr", {}), "result": result, "node": self.session.current_node}
        self.set_interaction(attributes=attributes)

    # prompts ---------------------------------------------------------------------------------------

    def say(self, prompt: Any, node: str, *, barge_in: bool = False) -> None:
        self.steps.extend(
            prompt_steps(
                prompt,
                language=self.session.language,
                fallback_language=self.fallback_language,
                variables=self.session.variables,
                node=node,
                barge_in=barge_in,
            )
        )

    def say_default(self, text: str, node: str) -> None:
        self.steps.append(
            IvrStep(kind=StepKind.SAY, text=text, language=self.session.language, params={"node": node})
        )

    def translated(self, message: str) -> str:
        with translation.override(self.session.language):
            return _(message)

    # walking ---------------------------------------------------------------------------------------

    def walk(self, name: str) -> list[IvrStep]:
        self.session.awaiting = ""
        self.session.attempts = 0
        current: str | None = name
        for _visit in range(MAX_NODES_PER_TURN):
            if current is None:
                return self.steps
            node = self.nodes.get(current)
            if node is None:
                self.record("ivr.error", {"node": current, "error": "missing node"})
                return self.goodbye(current)
            self.session.current_node = current
            self.record("ivr.node", {"node": current, "type": node.get("type", "")})
            current = self.visit(current, node)
        self.record("ivr.error", {"node": self.session.current_node, "error": "loop guard"})
        return self.goodbye(self.session.current_node)

    def visit(self, name: str, node: dict[str, Any]) -> str | None:
        """Perform one node; the next node's name, or None when the turn ends here."""
        node_type = node.get("type")
        if node_type in ("say", "play"):
            self.say(node.get("prompt"), name)
            return str(node["next"])
        if node_type == "lookup":
            return self.lookup(node)
        if node_type == "hours":
            return self.hours(node)
        if node_type == "document":
            return self.document(name, node)
        if node_type in flow_format.INPUT_TYPES:
            self.session.awaiting = name
            self.session.attempts = 0
            self.ask(name)
            return None
        if node_type == "queue":
            return self.queue(name, node)
        if node_type == "voicemail":
            self.say(node.get("prompt"), name)
            self.steps.append(
                IvrStep(
                    kind=StepKind.VOICEMAIL,
                    language=self.session.language,
                    params={
                        "node": name,
                        "box": str(node["box"]),
                        "max_seconds": int(node.get("max_seconds", 120)),
                    },
                )
            )
            self.end("voicemail")
            return None
        if node_type == "transfer":
            self.say(node.get("prompt"), name)
            self.steps.append(
                IvrStep(
                    kind=StepKind.TRANSFER,
                    language=self.session.language,
                    params={"node": name, "target": str(node["target"])},
                )
            )
            self.end("transfer")
            return None
        if node_type == "hangup":
            self.say(node.get("prompt"), name)
            self.steps.append(
                IvrStep(kind=StepKind.HANGUP, language=self.session.language, params={"node": name})
            )
            self.end("self_service")
            return None
        self.record("ivr.error", {"node": name, "error": f"unknown type {node_type}"})
        self.goodbye(name)
        return None

    def end(self, result: str, *, state: str = IvrSessionState.FINISHED) -> None:
        self.session.state = state
        self.session.awaiting = ""
        self.set_result(result)

    def goodbye(self, node: str) -> list[IvrStep]:
        """The way out of a node that has none left (retries used up, nothing configured)."""
        self.say_default(self.translated(gettext_noop("Thank you for calling. Goodbye.")), node)
        self.steps.append(
            IvrStep(kind=StepKind.HANGUP, language=self.session.language, params={"node": node})
        )
        self.end("gave_up")
        return self.steps

    # input nodes -----------------------------------------------------------------------------------

    def ask(self, name: str) -> list[IvrStep]:
        node = self.nodes[name]
        self.say(node.get("prompt"), name, barge_in=True)
        node_type = node.get("type")
        if node_type == "collect":
            params = {
                "max_digits": int(node.get("max_length", 20)),
                "min_digits": int(node.get("min_length", 1)),
                "finish_on": str(node.get("finish_on", "#")),
            }
        else:
            params = {"max_digits": 1, "min_digits": 1, "finish_on": ""}
        params["timeout_seconds"] = int(node.get("timeout_seconds", flow_format.DEFAULT_TIMEOUT_SECONDS))
        params["node"] = name
        self.steps.append(IvrStep(kind=StepKind.COLLECT, language=self.session.language, params=params))
        return self.steps

    def input(self, keys: str, *, timed_out: bool) -> list[IvrStep]:
        name = self.session.awaiting
        node = self.nodes[name]
        self.session.digits_history = [
            *self.session.digits_history,
            {"node": name, "digits": keys, "timed_out": timed_out},
        ]
        self.record("ivr.input", {"node": name, "digits": keys, "timed_out": timed_out})
        if timed_out:
            return self.retry_or_fail(name, node, timed_out=True)
        node_type = node.get("type")
        if node_type == "menu":
            target = (node.get("options") or {}).get(keys[:1])
            return self.walk(str(target)) if target else self.retry_or_fail(name, node, timed_out=False)
        if node_type == "language":
            language = (node.get("options") or {}).get(keys[:1])
            if not language:
                return self.retry_or_fail(name, node, timed_out=False)
            self.session.language = str(language)
            self.set_interaction(language=str(language))
            return self.walk(str(node["next"]))
        if node_type == "callback":
            if keys[:1] == str(node.get("accept_digit", "1")):
                return self.callback(name, node)
            return self.walk(str(node["declined"]))
        return self.collected(name, node, keys)

    def collected(self, name: str, node: dict[str, Any], keys: str) -> list[IvrStep]:
        finish = str(node.get("finish_on", "#"))
        value = keys[:-1] if finish and keys.endswith(finish) else keys
        valid = node.get("min_length", 1) <= len(value) <= node.get("max_length", 20)
        if valid and node.get("pattern"):
            valid = re.fullmatch(str(node["pattern"]), value) is not None
        if valid and node.get("check"):
            result = CHECKS[str(node["check"])](value)
            valid = result is not None
            if result is not None:
                value = result.value
                if result.customer_public_id:
                    self.session.variables = {
                        **self.session.variables,
                        "customer_public_id": result.customer_public_id,
                    }
                    self.set_interaction(customer_public_id=result.customer_public_id)
        if not valid:
            return self.retry_or_fail(name, node, timed_out=False)
        self.session.variables = {**self.session.variables, str(node["variable"]): value}
        self.session.awaiting = ""
        self.session.attempts = 0
        return self.walk(str(node["next"]))

    def retry_or_fail(self, name: str, node: dict[str, Any], *, timed_out: bool) -> list[IvrStep]:
        self.session.attempts += 1
        if self.session.attempts > int(node.get("retries", flow_format.DEFAULT_RETRIES)):
            self.session.awaiting = ""
            self.session.attempts = 0
            self.record("ivr.retries_exhausted", {"node": name})
            fallback = node.get("declined") if node.get("type") == "callback" else node.get("on_fail")
            if fallback is None and node.get("type") == "language":
                fallback = node.get("next")
            return self.walk(str(fallback)) if fallback else self.goodbye(name)
        if "invalid_prompt" in node and not timed_out:
            self.say(node["invalid_prompt"], name)
        elif timed_out:
            self.say_default(self.translated(gettext_noop("Sorry, we did not receive your choice.")), name)
        else:
            self.say_default(self.translated(gettext_noop("Sorry, that is not a valid choice.")), name)
        return self.ask(name)

    # pass-through nodes ----------------------------------------------------------------------------

    def lookup(self, node: dict[str, Any]) -> str:
        context = LookupContext(
            customer_public_id=str(
                self.session.variables.get("customer_public_id") or self.interaction.customer_public_id or ""
            ),
            ticket_public_id=self.interaction.ticket_public_id,
            variables=dict(self.session.variables),
            language=self.session.language,
        )
        found = LOOKUPS[str(node["lookup"])](context)
        self.record("ivr.lookup", {"lookup": node["lookup"], "found": found is not None})
        if found is None:
            return str(node.get("on_missing") or node["next"])
        self.session.variables = {**self.session.variables, **found}
        return str(node["next"])

    def hours(self, node: dict[str, Any]) -> str:
        from fedele.support import facade as support_facade

        is_open = support_facade.calendar_is_open(str(node["calendar"]), self.now)
        return str(node["open"] if is_open else node["closed"])

    def document(self, name: str, node: dict[str, Any]) -> str:
        from fedele.contact_center.services.documents import document_request_from_ivr

        self.save_interaction()
        request = document_request_from_ivr(
            interaction=self.interaction,
            session=self.session,
            node_name=name,
            document_code=str(node["document"]),
            channel=str(node["channel"]),
            fax_number=str(self.session.variables.get(str(node.get("fax_variable") or ""), "")),
        )
        self.record("ivr.document", {"node": name, "document": node["document"], "sent": request is not None})
        if request is None:
            return str(node.get("on_fail") or node["next"])
        return str(node["next"])

    # hand-offs -------------------------------------------------------------------------------------

    def enqueue(self, queue_code: str, node: dict[str, Any]) -> bool:
        """Hand the interaction to the router (the routing area's one entry point). False when the
        queue is closed and the router left the call with us (``closed_action``)."""
        from fedele.contact_center.services.interactions import interaction_enqueue

        self.save_interaction()
        interaction_enqueue(
            interaction=self.interaction,
            queue_code=queue_code,
            required_skills=dict(node.get("skills") or {}) or None,
            priority=int(node["priority"]) if "priority" in node else None,
            at=self.now,
        )
        self.interaction.refresh_from_db()
        return self.interaction.state == InteractionState.QUEUED

    def queue(self, name: str, node: dict[str, Any]) -> str | None:
        self.end("queued", state=IvrSessionState.QUEUED)
        if not self.enqueue(str(node["queue"]), node):
            # Closed (business hours): the flow's closed branch, else goodbye.
            self.session.state = IvrSessionState.ACTIVE
            self.record("ivr.queue_closed", {"node": name, "queue": node["queue"]})
            if node.get("closed"):
                return str(node["closed"])
            self.say_default(
                self.translated(gettext_noop("We are closed now. Please call again during opening hours.")),
                name,
            )
            self.goodbye(name)
            return None
        position = queue_position(
            queue_id=int(self.interaction.queue_id or 0),
            interaction_id=self.interaction.pk,
            priority=self.interaction.priority,
            queued_at=self.interaction.queued_at or self.now,
        )
        wait_seconds = estimated_wait_seconds(
            queue_id=int(self.interaction.queue_id or 0), position=position, now=self.now
        )
        wait_minutes = max(1, -(-wait_seconds // 60))
        self.session.variables = {
            **self.session.variables,
            "position": position,
            "wait_minutes": wait_minutes,
        }
        if node.get("announce", True):
            if "position_prompt" in node:
                self.say(node["position_prompt"], name)
            else:
                with translation.override(self.session.language):
                    text = _(
                        "You are number %(position)s in the queue. The estimated wait is %(minutes)s minutes."
                    ) % {"position": position, "minutes": wait_minutes}
                self.say_default(text, name)
        self.steps.append(
            IvrStep(
                kind=StepKind.QUEUE,
                language=self.session.language,
                params={
                    "node": name,
                    "queue_code": str(node["queue"]),
                    "required_skills": dict(node.get("skills") or {}),
                    "priority": self.interaction.priority,
                    "position": position,
                    "estimated_wait_seconds": wait_seconds,
                },
            )
        )
        self.record(
            "ivr.queued",
            {
                "node": name,
                "queue": node["queue"],
                "position": position,
                "estimated_wait_seconds": wait_seconds,
            },
        )
        return None

    def callback(self, name: str, node: dict[str, Any]) -> list[IvrStep]:
        """The caller asked to be called back: they keep their place in the queue and hang up."""
        self.session.awaiting = ""
        attributes = dict(self.interaction.attributes or {})
        attributes["callback_requested"] = True
        attributes["callback_number"] = self.interaction.from_address
        self.set_interaction(attributes=attributes)
        self.end("callback")
        if not self.enqueue(str(node["queue"]), node):
            self.session.state = IvrSessionState.ACTIVE
            if node.get("closed"):
                return self.walk(str(node["closed"]))
            self.say_default(
                self.translated(gettext_noop("We are closed now. Please call again during opening hours.")),
                name,
            )
            return self.goodbye(name)
        from fedele.contact_center.services.routing import interaction_callback_request

        interaction_callback_request(
            interaction=self.interaction, phone=self.interaction.from_address, at=self.now
        )
        self.interaction.refresh_from_db()
        self.record(
            "ivr.callback", {"node": name, "queue": node["queue"], "phone": self.interaction.from_address}
        )
        if "accepted_prompt" in node:
            self.say(node["accepted_prompt"], name)
        else:
            self.say_default(
                self.translated(
                    gettext_noop("Thank you, we will call you back as soon as an agent is free.")
                ),
                name,
            )
        self.steps.append(
            IvrStep(kind=StepKind.HANGUP, language=self.session.language, params={"node": name})
        )
        return self.steps
