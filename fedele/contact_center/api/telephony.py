"""The telephony area's API under /api/v1/contact-center/: softphone call control for the agent
desktop (answer, hold, mute, transfer, conference, DTMF, hang up, leave, PCI recording pause),
click-to-dial, and a call's recordings. Agents act on their own calls only
(``contact_center.handle_interactions``); POSTs take an ``Idempotency-Key``."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from django.http import HttpRequest
from django.urls import reverse
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status

from fedele.contact_center.models import Agent, Interaction, Recording, RecordingPause
from fedele.contact_center.services import calls
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import NotFound, PermissionDenied

router = Router(tags=["contact center"])

HANDLE_PERMISSION = "contact_center.handle_interactions"


class CallOut(Schema):
    id: UUID
    number: str
    state: str
    outcome: str
    direction: str
    provider: str
    call_ref: str
    held: bool
    muted: bool
    answered_at: datetime | None
    ended_at: datetime | None
    talk_seconds: int
    hold_seconds: int

    @staticmethod
    def resolve_id(obj: Interaction) -> UUID:
        return obj.public_id

    @staticmethod
    def resolve_call_ref(obj: Interaction) -> str:
        return obj.provider_ref

    @staticmethod
    def resolve_held(obj: Interaction) -> bool:
        return bool((obj.attributes or {}).get("hold_started_at"))

    @staticmethod
    def resolve_muted(obj: Interaction) -> bool:
        return bool((obj.attributes or {}).get("muted"))


class OnIn(StrictSchema):
    on: bool


class PauseIn(StrictSchema):
    paused: bool


class TargetIn(StrictSchema):
    target: str = Field(..., min_length=2, max_length=200)


class TransferIn(TargetIn):
    warm: bool = False


class DigitsIn(StrictSchema):
    digits: str = Field(..., min_length=1, max_length=32)


class DialIn(StrictSchema):
    to_number: str = Field(..., min_length=3, max_length=40)
    provider: str = Field("", max_length=20)


class PauseOut(Schema):
    paused_at: datetime
    resumed_at: datetime | None
    seconds: int | None


class RecordingOut(Schema):
    id: UUID
    state: str
    duration_seconds: int
    size_bytes: int
    content_type: str
    created_at: datetime
    retain_until: datetime | None
    audio_url: str | None

    @staticmethod
    def resolve_id(obj: Recording) -> UUID:
        return obj.public_id

    @staticmethod
    def resolve_audio_url(obj: Recording) -> str | None:
        if obj.state != Recording.State.STORED:
            return None
        return reverse("contact_center:recording-audio", args=[obj.public_id])


class RecordingsOut(Schema):
    recordings: list[RecordingOut]
    pauses: list[PauseOut]


def _agent(request: HttpRequest, scope: str = "write") -> Agent:
    require_scope(request, scope)
    user: Any = request.user
    if not user.has_perm(HANDLE_PERMISSION):
        raise PermissionDenied(_("You do not take calls."))
    agent = Agent.objects.filter(user_id=user.pk, active=True).first()
    if agent is None:
        raise PermissionDenied(_("You are not an agent."), code="not_an_agent")
    return agent


def _call(interaction_id: UUID, agent: Agent) -> Interaction:
    # Someone else's call is "not found", not "forbidden": its existence is not the caller's business.
    interaction = Interaction.objects.filter(public_id=interaction_id, agent=agent).first()
    if interaction is None:
        raise NotFound(_("No such call of yours."), code="call_not_found")
    return interaction


CALL_RESPONSES: dict[int, Any] = {200: CallOut, **ERROR_RESPONSES, 502: ERROR_RESPONSES[400]}


@router.post(
    "/calls/{interaction_id}/answer", response=CALL_RESPONSES, summary="Bridge the caller to my phone"
)
def answer(request: HttpRequest, interaction_id: UUID) -> Interaction:
    agent = _agent(request)
    return calls.call_answer(interaction=_call(interaction_id, agent), agent=agent)


@router.post("/calls/{interaction_id}/dial", response=CALL_RESPONSES, summary="Dial a callback I took")
def dial_taken(request: HttpRequest, interaction_id: UUID) -> Interaction:
    agent = _agent(request)
    return calls.call_dial(interaction=_call(interaction_id, agent), agent=agent)


@router.post("/calls/{interaction_id}/hold", response=CALL_RESPONSES, summary="Hold or resume a call")
def hold(request: HttpRequest, interaction_id: UUID, payload: OnIn) -> Interaction:
    agent = _agent(request)
    return calls.call_hold(interaction=_call(interaction_id, agent), agent=agent, on=payload.on)


@router.post("/calls/{interaction_id}/mute", response=CALL_RESPONSES, summary="Mute or unmute my line")
def mute(request: HttpRequest, interaction_id: UUID, payload: OnIn) -> Interaction:
    agent = _agent(request)
    return calls.call_mute(interaction=_call(interaction_id, agent), agent=agent, on=payload.on)


@router.post(
    "/calls/{interaction_id}/transfer", response=CALL_RESPONSES, summary="Transfer a call (warm or cold)"
)
def transfer(request: HttpRequest, interaction_id: UUID, payload: TransferIn) -> Interaction:
    agent = _agent(request)
    return calls.call_transfer(
        interaction=_call(interaction_id, agent), agent=agent, target=payload.target, warm=payload.warm
    )


@router.post("/calls/{interaction_id}/conference", response=CALL_RESPONSES, summary="Add a party to a call")
def conference(request: HttpRequest, interaction_id: UUID, payload: TargetIn) -> Interaction:
    agent = _agent(request)
    return calls.call_conference(interaction=_call(interaction_id, agent), agent=agent, target=payload.target)


@router.post("/calls/{interaction_id}/dtmf", response=CALL_RESPONSES, summary="Send keypad tones")
def dtmf(request: HttpRequest, interaction_id: UUID, payload: DigitsIn) -> Interaction:
    agent = _agent(request)
    return calls.call_send_dtmf(interaction=_call(interaction_id, agent), agent=agent, digits=payload.digits)


@router.post("/calls/{interaction_id}/hangup", response=CALL_RESPONSES, summary="Hang up")
def hangup(request: HttpRequest, interaction_id: UUID) -> Interaction:
    agent = _agent(request)
    return calls.call_hangup(interaction=_call(interaction_id, agent), agent=agent)


@router.post("/calls/{interaction_id}/leave", response=CALL_RESPONSES, summary="Leave after a warm transfer")
def leave(request: HttpRequest, interaction_id: UUID) -> Interaction:
    agent = _agent(request)
    return calls.call_leave(interaction=_call(interaction_id, agent), agent=agent)


@router.post(
    "/calls/{interaction_id}/recording-pause",
    response={200: PauseOut, **ERROR_RESPONSES, 502: ERROR_RESPONSES[400]},
    summary="Pause or resume the recording (PCI)",
)
def recording_pause(request: HttpRequest, interaction_id: UUID, payload: PauseIn) -> RecordingPause:
    agent = _agent(request)
    return calls.call_recording_pause(
        interaction=_call(interaction_id, agent), agent=agent, paused=payload.paused
    )


@router.post(
    "/calls", response={201: CallOut, **ERROR_RESPONSES, 502: ERROR_RESPONSES[400]}, summary="Click-to-dial"
)
def dial(request: HttpRequest, payload: DialIn) -> Status:
    agent = _agent(request)
    return Status(
        201, calls.call_originate(agent=agent, to_number=payload.to_number, provider=payload.provider)
    )


@router.get("/calls/{interaction_id}/recordings", response={200: RecordingsOut, **ERROR_RESPONSES})
def recordings(request: HttpRequest, interaction_id: UUID) -> dict[str, Any]:
    """A call's recordings and PCI pauses: the call's agent, or anyone who sees every contact."""
    require_scope(request, "read")
    user: Any = request.user
    interaction = Interaction.objects.filter(public_id=interaction_id).first()
    own = (
        interaction is not None
        and interaction.agent_id is not None
        and Agent.objects.filter(user_id=user.pk, pk=interaction.agent_id).exists()
    )
    if interaction is None or not (own or user.has_perm("contact_center.view_all_interactions")):
        raise NotFound(_("No such call."), code="call_not_found")
    return {
        "recordings": list(Recording.objects.filter(interaction=interaction).order_by("created_at", "id")),
        "pauses": list(RecordingPause.objects.filter(interaction=interaction).order_by("paused_at", "id")),
    }
