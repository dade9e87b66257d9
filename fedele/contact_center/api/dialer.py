"""The dialer's API under /api/v1/contact-center/dialer/: campaigns (create, read with figures and
the regulatory meter, start/pause/finish, import contacts), the simulator, the internal do-not-call
list, RPO result imports, agent callbacks and preview dialling.

Campaign work needs ``contact_center.run_campaigns``; callbacks and preview dialling
``contact_center.handle_interactions``. POSTs take an Idempotency-Key (the shared middleware replays
the first response). Imports carry the file as text (CSV) or base64 (XLSX) in JSON.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import replace
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja import Field, Query, Router, Schema, Status

from fedele.accounts.contracts import Actor
from fedele.accounts.facade import actor_for
from fedele.contact_center.dialer.pacing import MIN_HANDLE_CV
from fedele.contact_center.dialer.simulator import (
    DEFAULT_API_HOURS,
    DEFAULT_API_RUNS,
    SimulationSettings,
    simulate_many,
    too_large_for_one_request,
)
from fedele.contact_center.models import Agent, Campaign, CampaignContact
from fedele.contact_center.selectors import dialer as selectors
from fedele.contact_center.services import dialer as services
from fedele.contact_center.services import dialer_lists
from fedele.shared import clock
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed
from fedele.shared.pagination import paginate

router = Router(tags=["contact center: dialer"])

RUN = "contact_center.run_campaigns"
HANDLE = "contact_center.handle_interactions"
MAX_IMPORT_CHARACTERS = 28_000_000  # 20 MB as base64


def _actor(request: HttpRequest, *, scope: str, permission: str) -> Actor:
    require_scope(request, scope)
    actor = actor_for(request.user)
    if not actor.can(permission):
        raise PermissionDenied(_("You may not do this."), code="permission_denied")
    return actor


# -- schemas ---------------------------------------------------------------------------------------


class WindowIn(StrictSchema):
    weekday: int = Field(..., ge=0, le=6, description="0 = Monday")
    start: time
    end: time


class CampaignIn(StrictSchema):
    code: str = Field(..., min_length=1, max_length=40)
    name: str = Field(..., min_length=1, max_length=120)
    queue: str = Field(..., max_length=40)
    mode: Literal["preview", "progressive", "predictive"] = "progressive"
    provider: str = Field("simulator", max_length=20)
    caller_id: str = Field("", max_length=30)
    default_region: str = Field("IT", min_length=2, max_length=2)
    consent_purpose: Literal["marketing", "service", "profiling", "third_party"] = "marketing"
    check_rpo: bool = True
    target_abandon_rate: Decimal = Field(Decimal("0.015"), gt=0, le=Decimal("0.03"))
    abandon_rule: Literal["rolling_30_days", "rolling_24_hours"] = "rolling_30_days"
    max_attempts: int = Field(5, ge=1, le=50)
    max_lines_per_agent: int = Field(4, ge=1, le=20)
    prior_live_rate: Decimal = Field(Decimal("0.25"), gt=0, lt=1)
    windows: list[WindowIn] | None = Field(None, max_length=50)


class MeterOut(Schema):
    rule: str
    window_start: datetime
    window_end: datetime
    live_answers: int
    abandoned: int
    rate: float
    cap_rate: float
    near_cap: bool
    over_cap: bool


class CampaignOut(Schema):
    id: UUID
    code: str
    name: str
    mode: str
    state: str
    queue: str
    provider: str
    caller_id: str
    target_abandon_rate: Decimal
    abandon_rule: str
    max_attempts: int
    windows: list[dict[str, Any]]
    contacts: dict[str, int]
    attempts_by_outcome: dict[str, int] | None = None
    lines_out: int | None = None
    meter: MeterOut | None = None


class CampaignPage(Schema):
    items: list[CampaignOut]


class StateIn(StrictSchema):
    state: Literal["running", "paused", "finished"]


class ContactsImportIn(StrictSchema):
    name: str = Field("contacts.csv", max_length=200)
    format: Literal["csv", "xlsx"] = "csv"
    content: str = Field(
        ..., min_length=1, max_length=MAX_IMPORT_CHARACTERS, description="CSV text or XLSX base64"
    )
    mode: Literal["all_or_none", "good_rows"] = "all_or_none"


class ImportOut(Schema):
    list_id: str
    rows: int
    imported: int
    duplicates: int
    blocked: int
    errors: list[dict[str, Any]]


class ContactOut(Schema):
    id: UUID
    phone: str
    name: str
    region: str
    time_zone: str
    state: str
    attempts: int
    last_outcome: str
    next_attempt_at: datetime | None
    abandoned_at: datetime | None
    blocked_reason: str


class ContactPage(Schema):
    items: list[ContactOut]
    next_cursor: str | None


class ContactQuery(Schema):
    state: str = Field("", max_length=12)
    phone: str = Field("", max_length=30)
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


class SimulationIn(StrictSchema):
    agents: int = Field(20, ge=1, le=500)
    live_answer_rate: float = Field(0.30, gt=0, le=1)
    machine_rate: float = Field(0.15, ge=0, le=1)
    busy_rate: float = Field(0.10, ge=0, le=1)
    mean_handle_seconds: float = Field(180, ge=1, le=7200)
    handle_cv: float = Field(0.5, ge=MIN_HANDLE_CV, le=3)
    handle_distribution: Literal["lognormal", "gamma"] = "lognormal"
    mean_ring_seconds: float = Field(12, ge=1, le=120)
    hours: float = Field(
        DEFAULT_API_HOURS,
        gt=0,
        le=24,
        description=(
            f"Length of the simulated day in hours (default {DEFAULT_API_HOURS:g}: a cheap first look; "
            "a full 8-hour day is allowed)."
        ),
    )
    mode: Literal["preview", "progressive", "predictive"] = "predictive"
    target_abandon_rate: float = Field(0.015, gt=0, le=0.03)
    seeds: int = Field(
        DEFAULT_API_RUNS,
        ge=1,
        le=100,
        description=(
            f"Seeded runs (seeds 0..n-1), default {DEFAULT_API_RUNS}. The defaults answer in well under a "
            "second; more runs and hours give a steadier spread and are allowed up to the request bound "
            "(10 runs of 20 agents for 8 h, predictive); a larger request is refused with "
            "simulation_too_large."
        ),
    )


class SimulationOut(Schema):
    runs: int
    abandon_rate: dict[str, float]
    occupancy: dict[str, float]
    calls_per_hour: dict[str, float]
    runs_over_cap: int
    first_run: dict[str, Any]


class PhoneIn(StrictSchema):
    phone: str = Field(..., min_length=1, max_length=40)
    reason: str = Field("", max_length=200)


class DncOut(Schema):
    phone: str
    reason: str
    created_at: datetime


class RpoImportIn(StrictSchema):
    name: str = Field("rpo.csv", max_length=200)
    checked_on: date
    content: str = Field(..., min_length=1, max_length=MAX_IMPORT_CHARACTERS)
    mode: Literal["all_or_none", "good_rows"] = "all_or_none"


class RpoBatchOut(Schema):
    id: UUID
    name: str
    checked_on: date
    rows: int
    registered: int
    not_registered: int
    errors: list[dict[str, Any]]


class CallbackIn(StrictSchema):
    when: datetime
    agent_id: UUID | None = None


class AttemptOut(Schema):
    id: UUID
    phone: str
    mode: str
    state: str
    call_ref: str
    dialed_at: datetime


# -- helpers ---------------------------------------------------------------------------------------


def _campaign_out(campaign: Campaign, *, figures: bool = False) -> dict[str, Any]:
    contacts = {"total": int(getattr(campaign, "contacts_total", 0))}
    for key in ("pending", "preview", "dialing", "callback", "completed", "exhausted", "blocked"):
        contacts[key] = int(getattr(campaign, f"contacts_{key}", 0))
    out: dict[str, Any] = {
        "id": campaign.public_id,
        "code": campaign.code,
        "name": campaign.name,
        "mode": campaign.mode,
        "state": campaign.state,
        "queue": campaign.queue.code,
        "provider": campaign.provider,
        "caller_id": campaign.caller_id,
        "target_abandon_rate": campaign.target_abandon_rate,
        "abandon_rule": campaign.abandon_rule,
        "max_attempts": campaign.max_attempts,
        "windows": [
            {
                "weekday": w.weekday,
                "start": w.start_time.isoformat("minutes"),
                "end": w.end_time.isoformat("minutes"),
            }
            for w in campaign.windows.all()
        ],
        "contacts": contacts,
    }
    if figures:
        numbers = selectors.campaign_figures(campaign, at=clock.now())
        meter = numbers.meter
        out.update(
            attempts_by_outcome=numbers.attempts_by_outcome,
            lines_out=numbers.lines_out,
            meter={
                "rule": meter.rule,
                "window_start": meter.window_start,
                "window_end": meter.window_end,
                "live_answers": meter.live_answers,
                "abandoned": meter.abandoned,
                "rate": meter.rate,
                "cap_rate": meter.cap_rate,
                "near_cap": meter.near_cap,
                "over_cap": meter.over_cap,
            },
        )
    return out


def _contact_out(contact: CampaignContact) -> dict[str, Any]:
    return {
        "id": contact.public_id,
        "phone": contact.phone,
        "name": contact.name,
        "region": contact.region,
        "time_zone": contact.time_zone,
        "state": contact.state,
        "attempts": contact.attempts,
        "last_outcome": contact.last_outcome,
        "next_attempt_at": contact.next_attempt_at,
        "abandoned_at": contact.abandoned_at,
        "blocked_reason": contact.blocked_reason,
    }


def _file_bytes(content: str, file_format: str) -> bytes:
    if file_format == "csv":
        return content.encode()
    try:
        return base64.b64decode(content, validate=True)
    except (binascii.Error, ValueError) as error:
        raise ValidationFailed(
            _("The XLSX content must be base64."), code="invalid_base64", fields={"content": _("Not base64.")}
        ) from error


def _errors_out(errors: list[Any]) -> list[dict[str, Any]]:
    return [{"line": int(line), "message": str(message)} for line, message in errors]


# -- campaigns -------------------------------------------------------------------------------------


@router.get(
    "/dialer/campaigns", response={200: CampaignPage, **ERROR_RESPONSES}, summary="Outbound campaigns"
)
def campaigns(request: HttpRequest) -> dict[str, Any]:
    _actor(request, scope="read", permission=RUN)
    rows = selectors.campaign_list().order_by("code")[:500]
    return {"items": [_campaign_out(campaign) for campaign in rows]}


@router.post("/dialer/campaigns", response={201: CampaignOut, **ERROR_RESPONSES}, summary="Create a campaign")
def campaign_create(request: HttpRequest, payload: CampaignIn) -> Status[Any]:
    actor = _actor(request, scope="write", permission=RUN)
    created = services.campaign_create(
        actor=actor,
        code=payload.code,
        name=payload.name,
        queue_code=payload.queue,
        mode=payload.mode,
        provider=payload.provider,
        caller_id=payload.caller_id,
        default_region=payload.default_region,
        consent_purpose=payload.consent_purpose,
        check_rpo=payload.check_rpo,
        target_abandon_rate=payload.target_abandon_rate,
        abandon_rule=payload.abandon_rule,
        max_attempts=payload.max_attempts,
        max_lines_per_agent=payload.max_lines_per_agent,
        prior_live_rate=payload.prior_live_rate,
        windows=None if payload.windows is None else [(w.weekday, w.start, w.end) for w in payload.windows],
    )
    return Status(201, _campaign_out(selectors.campaign_get(created.code), figures=True))


@router.get(
    "/dialer/campaigns/{code}",
    response={200: CampaignOut, **ERROR_RESPONSES},
    summary="A campaign with its figures and regulatory meter",
)
def campaign_detail(request: HttpRequest, code: str) -> dict[str, Any]:
    _actor(request, scope="read", permission=RUN)
    return _campaign_out(selectors.campaign_get(code), figures=True)


@router.post(
    "/dialer/campaigns/{code}/state",
    response={200: CampaignOut, **ERROR_RESPONSES},
    summary="Start, pause or finish a campaign",
)
def campaign_state(request: HttpRequest, code: str, payload: StateIn) -> dict[str, Any]:
    actor = _actor(request, scope="write", permission=RUN)
    services.campaign_state_set(actor=actor, campaign=selectors.campaign_get(code), state=payload.state)
    return _campaign_out(selectors.campaign_get(code), figures=True)


@router.post(
    "/dialer/campaigns/{code}/contacts/import",
    response={201: ImportOut, **ERROR_RESPONSES},
    summary="Import a contact list (CSV text or XLSX base64)",
)
def contacts_import(request: HttpRequest, code: str, payload: ContactsImportIn) -> Status[Any]:
    actor = _actor(request, scope="write", permission=RUN)
    report = dialer_lists.contact_list_import(
        actor=actor,
        campaign=selectors.campaign_get(code),
        name=payload.name,
        content=_file_bytes(payload.content, payload.format),
        file_format=payload.format,
        mode=payload.mode,
    )
    return Status(
        201,
        {
            "list_id": report.contact_list_id,
            "rows": report.rows_total,
            "imported": report.imported,
            "duplicates": report.duplicates,
            "blocked": report.blocked,
            "errors": _errors_out(report.errors),
        },
    )


@router.get(
    "/dialer/campaigns/{code}/contacts",
    response={200: ContactPage, **ERROR_RESPONSES},
    summary="A campaign's contacts",
)
def contacts(request: HttpRequest, code: str, query: Query[ContactQuery]) -> dict[str, Any]:
    _actor(request, scope="read", permission=RUN)
    rows = selectors.contact_list(selectors.campaign_get(code), {"state": query.state, "phone": query.phone})
    page = paginate(rows, ordering="id", allowed={"id": "id"}, cursor=query.cursor, limit=query.limit)
    return {"items": [_contact_out(contact) for contact in page.items], "next_cursor": page.next_cursor}


# -- simulator -------------------------------------------------------------------------------------


@router.post(
    "/dialer/simulate",
    response={200: SimulationOut, **ERROR_RESPONSES},
    summary="Run the campaign simulator (seeded; 1–100 runs)",
)
def simulate(request: HttpRequest, payload: SimulationIn) -> dict[str, Any]:
    _actor(request, scope="read", permission=RUN)
    settings = replace(
        SimulationSettings(),
        agents=payload.agents,
        live_answer_rate=payload.live_answer_rate,
        machine_rate=payload.machine_rate,
        busy_rate=payload.busy_rate,
        mean_handle_seconds=payload.mean_handle_seconds,
        handle_cv=payload.handle_cv,
        handle_distribution=payload.handle_distribution,
        mean_ring_seconds=payload.mean_ring_seconds,
        day_seconds=payload.hours * 3600,
        mode=payload.mode,
        target_abandon_rate=payload.target_abandon_rate,
    )
    problems = settings.validate()
    if problems:
        raise ValidationFailed(
            _("These settings cannot be simulated."), code="invalid_simulation", fields=problems
        )
    # One request must stay short: bound the dials the runs would make and, in predictive mode, the
    # pacing work that grows with the square of the agents (dialer/simulator.py). The acceptance-sized
    # study, 100 seeds of 20 agents for 8 h, is about 1,000,000 dials and belongs in bench/.
    if too_large_for_one_request(settings, runs=payload.seeds):
        raise ValidationFailed(
            _("This simulation is too large for one request: use fewer runs, agents or hours."),
            code="simulation_too_large",
            fields={"seeds": str(payload.seeds), "agents": str(payload.agents), "hours": str(payload.hours)},
        )
    summary = simulate_many(settings, seeds=range(payload.seeds))
    first = summary["results"][0].as_dict()
    return {
        "runs": summary["runs"],
        "abandon_rate": summary["abandon_rate"],
        "occupancy": summary["occupancy"],
        "calls_per_hour": summary["calls_per_hour"],
        "runs_over_cap": summary["runs_over_cap"],
        "first_run": first,
    }


# -- do-not-call and RPO ---------------------------------------------------------------------------


@router.get(
    "/dialer/do-not-call", response={200: list[DncOut], **ERROR_RESPONSES}, summary="The internal list"
)
def dnc(request: HttpRequest, q: str = "") -> list[dict[str, Any]]:
    _actor(request, scope="read", permission=RUN)
    return [
        {"phone": e.phone, "reason": e.reason, "created_at": e.created_at}
        for e in selectors.dnc_list(q[:30])[:500]
    ]


@router.post(
    "/dialer/do-not-call",
    response={201: DncOut, **ERROR_RESPONSES},
    summary="Add a number to the internal list",
)
def dnc_add(request: HttpRequest, payload: PhoneIn) -> Status[Any]:
    actor = _actor(request, scope="write", permission=RUN)
    entry = dialer_lists.dnc_add(actor=actor, phone=payload.phone, reason=payload.reason)
    return Status(201, {"phone": entry.phone, "reason": entry.reason, "created_at": entry.created_at})


@router.delete(
    "/dialer/do-not-call/{phone}",
    response={204: None, **ERROR_RESPONSES},
    summary="Take a number off the list",
)
def dnc_remove(request: HttpRequest, phone: str) -> Status[Any]:
    actor = _actor(request, scope="write", permission=RUN)
    dialer_lists.dnc_remove(actor=actor, phone=phone)
    return Status(204, None)


@router.post(
    "/dialer/rpo-imports",
    response={201: RpoBatchOut, **ERROR_RESPONSES},
    summary="Import a Registro Pubblico delle Opposizioni result file",
)
def rpo_import(request: HttpRequest, payload: RpoImportIn) -> Status[Any]:
    actor = _actor(request, scope="write", permission=RUN)
    batch = dialer_lists.rpo_import(
        actor=actor,
        name=payload.name,
        content=payload.content.encode(),
        checked_on=payload.checked_on,
        mode=payload.mode,
    )
    return Status(
        201,
        {
            "id": batch.public_id,
            "name": batch.name,
            "checked_on": batch.checked_on,
            "rows": batch.rows_total,
            "registered": batch.registered,
            "not_registered": batch.not_registered,
            "errors": _errors_out(batch.errors),
        },
    )


# -- agents: callbacks and preview -----------------------------------------------------------------


@router.post(
    "/dialer/contacts/{contact_id}/callback",
    response={200: ContactOut, **ERROR_RESPONSES},
    summary="Schedule a callback (optionally to a given agent)",
)
def callback(request: HttpRequest, contact_id: UUID, payload: CallbackIn) -> dict[str, Any]:
    actor = _actor(request, scope="write", permission=HANDLE)
    contact = selectors.contact_get(str(contact_id))
    agent = None
    if payload.agent_id is not None:
        agent = Agent.objects.filter(public_id=payload.agent_id, active=True).first()
        if agent is None:
            raise NotFound(_("Agent not found."), code="agent_not_found")
    return _contact_out(
        services.callback_schedule(actor=actor, contact=contact, when=payload.when, agent=agent)
    )


@router.post(
    "/dialer/contacts/{contact_id}/dial",
    response={201: AttemptOut, **ERROR_RESPONSES},
    summary="Dial the contact in my preview",
)
def preview_dial(request: HttpRequest, contact_id: UUID) -> Status[Any]:
    actor = _actor(request, scope="write", permission=HANDLE)
    attempt = services.preview_dial(actor=actor, contact=selectors.contact_get(str(contact_id)))
    return Status(
        201,
        {
            "id": attempt.public_id,
            "phone": attempt.phone,
            "mode": attempt.mode,
            "state": attempt.state,
            "call_ref": attempt.call_ref,
            "dialed_at": attempt.dialed_at,
        },
    )
