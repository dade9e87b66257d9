"""Support API: surveys. CSAT/NPS survey list and report (support reports permission), NPS campaigns
(manage support), and the public answer endpoint (no authentication: the e-mailed token is the
proof, rate-limited per IP)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Field, Query, Router, Schema, Status

from fedele.accounts.facade import actor_for
from fedele.shared import clock, context, ratelimit
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.pagination import paginate
from fedele.support.models import NpsCampaign, Survey
from fedele.support.selectors import surveys as selectors
from fedele.support.services import surveys as services

router = Router(tags=["support-surveys"])

PUBLIC_ANSWERS_PER_MINUTE = 30


class SurveyOut(Schema):
    id: UUID
    kind: str
    ticket_id: UUID | None
    ticket_number: str | None
    campaign_id: UUID | None
    customer_id: UUID | None
    email: str
    language: str
    sent_at: datetime
    expires_at: datetime
    responded_at: datetime | None
    score: int | None
    comment: str
    follow_up_ticket_id: UUID | None

    @staticmethod
    def resolve_id(obj: Survey) -> UUID:
        return obj.public_id

    @staticmethod
    def resolve_ticket_id(obj: Survey) -> UUID | None:
        return obj.ticket.public_id if obj.ticket else None

    @staticmethod
    def resolve_ticket_number(obj: Survey) -> str | None:
        return obj.ticket.number if obj.ticket else None

    @staticmethod
    def resolve_campaign_id(obj: Survey) -> UUID | None:
        return obj.campaign.public_id if obj.campaign else None

    @staticmethod
    def resolve_customer_id(obj: Survey) -> UUID | None:
        return obj.customer.public_id if obj.customer else None

    @staticmethod
    def resolve_follow_up_ticket_id(obj: Survey) -> UUID | None:
        return obj.follow_up_ticket.public_id if obj.follow_up_ticket else None


class SurveyPage(Schema):
    items: list[SurveyOut]
    next_cursor: str | None


class SurveyListQuery(Schema):
    kind: Literal["csat", "nps", ""] = ""
    answered: Literal["yes", "no", ""] = ""
    campaign: UUID | None = None
    ticket: UUID | None = None
    ordering: Literal["sent_at", "-sent_at"] = "-sent_at"
    cursor: str | None = Field(None, max_length=500)
    limit: int = Field(50, ge=1, le=200)


class FiguresOut(Schema):
    key: str
    label: str
    sent: int
    responses: int
    satisfied: int
    csat_percent: Decimal | None
    average: Decimal | None
    response_rate: Decimal | None


class NpsOut(Schema):
    campaign_id: str
    name: str
    segment: str
    sent_at: datetime | None
    sent: int
    responses: int
    promoters: int
    passives: int
    detractors: int
    nps: int | None
    response_rate: Decimal | None


class ReportOut(Schema):
    start: date
    end: date
    overall: FiguresOut
    by_agent: list[FiguresOut]
    by_team: list[FiguresOut]
    by_category: list[FiguresOut]
    over_time: list[FiguresOut]
    nps: list[NpsOut]


class ReportQuery(Schema):
    start: date | None = None
    end: date | None = None


class CampaignIn(StrictSchema):
    name: str = Field(..., min_length=1, max_length=120)
    segment: Literal["", "consumer", "small_business", "enterprise", "public_administration"] = ""
    question_it: str = Field("", max_length=300)
    question_en: str = Field("", max_length=300)


class CampaignOut(Schema):
    id: UUID
    name: str
    segment: str
    question_it: str
    question_en: str
    sent_count: int
    created_at: datetime
    sent_at: datetime | None

    @staticmethod
    def resolve_id(obj: NpsCampaign) -> UUID:
        return obj.public_id


class RespondIn(StrictSchema):
    token: str = Field(..., min_length=10, max_length=200)
    score: int = Field(..., ge=0, le=10)
    comment: str = Field("", max_length=4000)


class RespondOut(Schema):
    id: UUID
    kind: str
    score: int
    responded_at: datetime

    @staticmethod
    def resolve_id(obj: Survey) -> UUID:
        return obj.public_id


def _reader(request: HttpRequest) -> Any:
    require_scope(request, "read")
    actor = actor_for(request.user)
    selectors.require_reports(actor)
    return actor


def _writer(request: HttpRequest) -> Any:
    require_scope(request, "write")
    return actor_for(request.user)


def _figures(row: selectors.CsatFigures) -> dict[str, Any]:
    return {
        "key": row.key,
        "label": row.label,
        "sent": row.sent,
        "responses": row.responses,
        "satisfied": row.satisfied,
        "csat_percent": row.csat_percent,
        "average": row.average,
        "response_rate": row.response_rate,
    }


def _nps(row: selectors.NpsFigures) -> dict[str, Any]:
    return {
        "campaign_id": row.campaign_public_id,
        "name": row.name,
        "segment": row.segment,
        "sent_at": row.sent_at,
        "sent": row.sent,
        "responses": row.responses,
        "promoters": row.promoters,
        "passives": row.passives,
        "detractors": row.detractors,
        "nps": row.nps,
        "response_rate": row.response_rate,
    }


@router.get("/surveys", response={200: SurveyPage, **ERROR_RESPONSES}, summary="List CSAT and NPS surveys")
def list_surveys(request: HttpRequest, params: Query[SurveyListQuery]) -> dict[str, Any]:
    actor = _reader(request)
    filters = {
        "kind": params.kind,
        "answered": params.answered,
        "campaign": str(params.campaign) if params.campaign else "",
        "ticket": str(params.ticket) if params.ticket else "",
    }
    queryset = selectors.survey_list(actor=actor, filters=filters).select_related("follow_up_ticket")
    page = paginate(
        queryset,
        ordering=params.ordering,
        allowed={"sent_at": "sent_at"},
        cursor=params.cursor,
        limit=params.limit,
    )
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get(
    "/surveys/report",
    response={200: ReportOut, **ERROR_RESPONSES},
    summary="CSAT overall, by agent/team/category and per day; NPS per campaign",
)
def survey_report(request: HttpRequest, params: Query[ReportQuery]) -> dict[str, Any]:
    actor = _reader(request)
    end = params.end or clock.today()
    start = params.start or end - timedelta(days=29)
    report = selectors.csat_report(actor=actor, start=start, end=end, language=actor.language)
    return {
        "start": report.start,
        "end": report.end,
        "overall": _figures(report.overall),
        "by_agent": [_figures(row) for row in report.by_agent],
        "by_team": [_figures(row) for row in report.by_team],
        "by_category": [_figures(row) for row in report.by_category],
        "over_time": [_figures(row) for row in report.over_time],
        "nps": [_nps(row) for row in selectors.nps_report(actor=actor)],
    }


@router.post(
    "/surveys/nps-campaigns",
    response={201: CampaignOut, **ERROR_RESPONSES},
    summary="Create an NPS campaign (not sent yet)",
)
def create_campaign(request: HttpRequest, payload: CampaignIn) -> Status[NpsCampaign]:
    actor = _writer(request)
    campaign = services.nps_campaign_create(
        actor=actor,
        name=payload.name,
        segment=payload.segment,
        question_it=payload.question_it,
        question_en=payload.question_en,
    )
    return Status(201, campaign)


@router.post(
    "/surveys/nps-campaigns/{campaign_id}/send",
    response={200: CampaignOut, **ERROR_RESPONSES},
    summary="Send an NPS campaign (once) to customers with e-mail consent",
)
def send_campaign(request: HttpRequest, campaign_id: UUID) -> NpsCampaign:
    actor = _writer(request)
    return services.nps_campaign_send(actor=actor, campaign_public_id=str(campaign_id))


@router.post(
    "/surveys/respond",
    auth=None,
    response={200: RespondOut, **ERROR_RESPONSES},
    summary="Answer a survey with the token from its e-mail (no authentication)",
)
def respond(request: HttpRequest, payload: RespondIn) -> Survey:
    ratelimit.hit(
        f"support.survey.respond:{context.current().ip_address or 'unknown'}",
        limit=PUBLIC_ANSWERS_PER_MINUTE,
        window_seconds=60,
    )
    return services.survey_respond(token=payload.token, score=payload.score, comment=payload.comment)
