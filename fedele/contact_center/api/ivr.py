"""The IVR area's API under /api/v1/contact-center/: flows (drafts, validation, publish — refused with
the validator's problems as 422 —, rollback, test calls), number mapping, and the document-on-demand
send log. Parse, authorise (``contact_center.manage_contact_center``, token scopes read/write), call a
service or selector; nothing else. POSTs accept an ``Idempotency-Key`` (shared middleware)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Router, Schema, Status

from fedele.accounts.facade import Actor, actor_for
from fedele.contact_center.ivr import flow as flow_format
from fedele.contact_center.ivr.validator import validate_flow
from fedele.contact_center.models import IvrFlow, IvrFlowVersion
from fedele.contact_center.selectors import ivr as selectors
from fedele.contact_center.services import ivr as services
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import NotFound, PermissionDenied

router = Router(tags=["contact center: IVR"])

FormatLiteral = Literal["json", "yaml"]


class VersionOut(Schema):
    number: int
    status: str
    note: str
    source_format: str
    definition: dict[str, Any]
    created_at: datetime
    published_at: datetime | None


class FlowOut(Schema):
    id: UUID
    code: str
    name: str
    description: str
    published_version: int | None
    numbers: list[str]


class FlowDetailOut(FlowOut):
    versions: list[VersionOut]


class FlowIn(StrictSchema):
    code: str = Field(..., min_length=1, max_length=40)
    name: str = Field(..., min_length=1, max_length=120)
    description: str = Field("", max_length=2000)
    source: str = Field(..., min_length=1, max_length=flow_format.MAX_SOURCE_CHARACTERS)
    source_format: FormatLiteral = "json"


class DraftIn(StrictSchema):
    source: str = Field(..., min_length=1, max_length=flow_format.MAX_SOURCE_CHARACTERS)
    source_format: FormatLiteral = "json"
    note: str = Field("", max_length=200)


class ValidationOut(Schema):
    valid: bool
    problems: list[str]


class SimulateIn(StrictSchema):
    version: int | None = Field(
        None, description="A version number; the draft (else the live one) by default"
    )
    inputs: list[str | None] = Field(default_factory=list, max_length=services.MAX_SIMULATED_INPUTS)
    from_number: str = Field("+390000000000", max_length=20)


class StepOut(Schema):
    kind: str
    text: str
    language: str
    audio: str
    params: dict[str, Any]


class TurnOut(Schema):
    input: str | None
    steps: list[StepOut]
    waiting_at: str
    variables: dict[str, Any]
    error: str


class NumberIn(StrictSchema):
    number: str = Field(..., min_length=3, max_length=30)
    flow: str = Field(..., min_length=1, max_length=40)


class NumberOut(Schema):
    number: str
    flow: str


class DocumentRequestOut(Schema):
    id: UUID
    document: str
    source: str
    channel: str
    destination: str
    status: str
    attempts: int
    last_error: str
    created_at: datetime
    sent_at: datetime | None


def _manager(request: HttpRequest, *, write: bool = False) -> Actor:
    require_scope(request, "write" if write else "read")
    actor = actor_for(request.user)
    if not (actor.is_internal and actor.can(services.MANAGE)):
        raise PermissionDenied(_("You may not configure IVR flows."), code="permission_denied")
    return actor


def _flow_out(flow: IvrFlow) -> dict[str, Any]:
    return {
        "id": flow.public_id,
        "code": flow.code,
        "name": flow.name,
        "description": flow.description,
        "published_version": flow.published_version.number if flow.published_version else None,
        # Sorted here, not with order_by: the list prefetches the numbers (one query for every flow).
        "numbers": sorted(number.number for number in flow.numbers.all()),
    }


def _version_out(version: IvrFlowVersion) -> dict[str, Any]:
    return {
        "number": version.number,
        "status": version.status,
        "note": version.note,
        "source_format": version.source_format,
        "definition": version.definition,
        "created_at": version.created_at,
        "published_at": version.published_at,
    }


@router.get("/ivr/flows", response={200: list[FlowOut], **ERROR_RESPONSES}, summary="List IVR flows")
def list_flows(request: HttpRequest) -> list[dict[str, Any]]:
    _manager(request)
    return [_flow_out(flow) for flow in selectors.flow_list().prefetch_related("numbers")[:500]]


@router.post(
    "/ivr/flows", response={201: FlowDetailOut, **ERROR_RESPONSES}, summary="Create a flow (draft v1)"
)
def create_flow(request: HttpRequest, payload: FlowIn) -> Status[dict[str, Any]]:
    actor = _manager(request, write=True)
    flow = services.ivr_flow_create(actor=actor, **payload.model_dump())
    return Status(
        201, {**_flow_out(flow), "versions": [_version_out(v) for v in selectors.flow_versions(flow)]}
    )


@router.get("/ivr/flows/{code}", response={200: FlowDetailOut, **ERROR_RESPONSES}, summary="Get a flow")
def get_flow(request: HttpRequest, code: str) -> dict[str, Any]:
    _manager(request)
    flow = selectors.flow_get(code)
    return {**_flow_out(flow), "versions": [_version_out(v) for v in selectors.flow_versions(flow)]}


@router.put(
    "/ivr/flows/{code}/draft", response={200: VersionOut, **ERROR_RESPONSES}, summary="Save the draft"
)
def save_draft(request: HttpRequest, code: str, payload: DraftIn) -> dict[str, Any]:
    actor = _manager(request, write=True)
    version = services.ivr_draft_save(actor=actor, flow=selectors.flow_get(code), **payload.model_dump())
    return _version_out(version)


@router.post(
    "/ivr/flows/{code}/validate",
    response={200: ValidationOut, **ERROR_RESPONSES},
    summary="Validate a source",
)
def validate(request: HttpRequest, code: str, payload: DraftIn) -> dict[str, Any]:
    _manager(request)
    selectors.flow_get(code)
    definition = flow_format.parse_source(payload.source, payload.source_format)
    problems = [str(problem) for problem in validate_flow(definition)]
    return {"valid": not problems, "problems": problems}


@router.post(
    "/ivr/flows/{code}/publish",
    response={200: VersionOut, **ERROR_RESPONSES},
    summary="Publish the draft (422 with every problem when the flow is invalid)",
)
def publish(request: HttpRequest, code: str) -> dict[str, Any]:
    actor = _manager(request, write=True)
    return _version_out(services.ivr_publish(actor=actor, flow=selectors.flow_get(code)))


@router.post(
    "/ivr/flows/{code}/rollback/{number}",
    response={200: VersionOut, **ERROR_RESPONSES},
    summary="Publish a copy of an old version as the newest",
)
def rollback(request: HttpRequest, code: str, number: int) -> dict[str, Any]:
    actor = _manager(request, write=True)
    return _version_out(
        services.ivr_rollback(actor=actor, flow=selectors.flow_get(code), version_number=number)
    )


@router.post(
    "/ivr/flows/{code}/simulate",
    response={200: list[TurnOut], **ERROR_RESPONSES},
    summary="A test call on the real engine; nothing is kept",
)
def simulate(request: HttpRequest, code: str, payload: SimulateIn) -> list[dict[str, Any]]:
    _manager(request)
    flow = selectors.flow_get(code)
    if payload.version is not None:
        version = flow.versions.filter(number=payload.version).first()
    else:
        version = selectors.flow_working_version(flow)
    if version is None:
        raise NotFound(_("No such version."), code="ivr_version_not_found")
    turns = services.ivr_simulate(version=version, inputs=payload.inputs, from_number=payload.from_number)
    return [
        {
            "input": turn.input,
            "steps": [
                {
                    "kind": str(s.kind),
                    "text": s.text,
                    "language": s.language,
                    "audio": s.audio,
                    "params": s.params,
                }
                for s in turn.steps
            ],
            "waiting_at": turn.waiting_at,
            "variables": turn.variables,
            "error": turn.error,
        }
        for turn in turns
    ]


@router.post(
    "/ivr/numbers", response={200: NumberOut, **ERROR_RESPONSES}, summary="Answer a number with a flow"
)
def assign_number(request: HttpRequest, payload: NumberIn) -> dict[str, Any]:
    actor = _manager(request, write=True)
    mapping = services.ivr_number_assign(
        actor=actor, number=payload.number, flow=selectors.flow_get(payload.flow)
    )
    return {"number": mapping.number, "flow": payload.flow}


@router.get(
    "/ivr/document-requests",
    response={200: list[DocumentRequestOut], **ERROR_RESPONSES},
    summary="Document-on-demand send log",
)
def document_requests(request: HttpRequest, limit: int = 50) -> list[dict[str, Any]]:
    _manager(request)
    return [
        {
            "id": item.public_id,
            "document": item.document.code,
            "source": item.source,
            "channel": item.channel,
            "destination": item.destination,
            "status": item.status,
            "attempts": item.attempts,
            "last_error": item.last_error,
            "created_at": item.created_at,
            "sent_at": item.sent_at,
        }
        for item in selectors.document_request_list(limit=max(1, min(limit, 200)))
    ]
