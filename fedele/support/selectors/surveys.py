"""Reads of the surveys area: survey lists, the CSAT report (overall, by agent/team/category, over
time), NPS per campaign, and who an NPS campaign goes to.

CSAT % = answers scoring 4 or 5 over all answers; average = mean score; response rate = answers over
surveys sent. NPS = % promoters (9–10) − % detractors (0–6), rounded to the nearest whole number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.shared.errors import PermissionDenied, ValidationFailed
from fedele.support.models import NpsCampaign, Survey

REPORT_TIMEZONE = "Europe/Rome"
DIMENSIONS = {
    "agent": ("agent_id", "agent__first_name", "agent__last_name", "agent__email"),
    "team": ("team_id", "team__name"),
    "category": ("category_id", "category__name_it", "category__name_en"),
}
MAX_REPORT_DAYS = 366 * 3
SATISFIED_MINIMUM = 4
PROMOTER_MINIMUM = 9
DETRACTOR_MAXIMUM = 6


def require_reports(actor: Actor) -> None:
    if not actor.can("support.view_support_reports"):
        raise PermissionDenied("You do not have permission to see support reports.")


def percent(part: int, whole: int, places: str = "0.1") -> Decimal | None:
    if whole <= 0:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(Decimal(places), rounding=ROUND_HALF_UP)


def nps_score(promoters: int, detractors: int, responses: int) -> int | None:
    if responses <= 0:
        return None
    value = (Decimal(promoters - detractors) * 100 / Decimal(responses)).quantize(
        Decimal("1"), rounding=ROUND_HALF_UP
    )
    return int(value)


@dataclass(frozen=True, slots=True)
class CsatFigures:
    key: str
    label: str
    sent: int
    responses: int
    satisfied: int
    score_total: int

    @property
    def csat_percent(self) -> Decimal | None:
        return percent(self.satisfied, self.responses)

    @property
    def average(self) -> Decimal | None:
        if self.responses <= 0:
            return None
        return (Decimal(self.score_total) / Decimal(self.responses)).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )

    @property
    def response_rate(self) -> Decimal | None:
        return percent(self.responses, self.sent)


@dataclass(frozen=True, slots=True)
class NpsFigures:
    campaign_public_id: str
    name: str
    segment: str
    sent_at: datetime | None
    sent: int
    responses: int
    promoters: int
    passives: int
    detractors: int

    @property
    def nps(self) -> int | None:
        return nps_score(self.promoters, self.detractors, self.responses)

    @property
    def response_rate(self) -> Decimal | None:
        return percent(self.responses, self.sent)


@dataclass(frozen=True, slots=True)
class CsatReport:
    start: date
    end: date
    overall: CsatFigures
    by_agent: list[CsatFigures]
    by_team: list[CsatFigures]
    by_category: list[CsatFigures]
    over_time: list[CsatFigures]


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    if end < start:
        raise ValidationFailed(
            "The end date is before the start date.", code="invalid_period", fields={"end": "Before start."}
        )
    if (end - start).days > MAX_REPORT_DAYS:
        raise ValidationFailed(
            "Choose a period of at most three years.", code="invalid_period", fields={"start": "Too long."}
        )
    zone = ZoneInfo(REPORT_TIMEZONE)
    return (
        datetime.combine(start, time.min, tzinfo=zone),
        datetime.combine(end + timedelta(days=1), time.min, tzinfo=zone),
    )


def csat_surveys(start: date, end: date) -> QuerySet[Survey]:
    """CSAT surveys sent in the period (local calendar days, both ends included)."""
    since, until = _bounds(start, end)
    return Survey.objects.filter(kind=Survey.Kind.CSAT, sent_at__gte=since, sent_at__lt=until)


def _aggregates() -> dict[str, Any]:
    answered = Q(responded_at__isnull=False)
    return {
        "sent": Count("id"),
        "responses": Count("id", filter=answered),
        "satisfied": Count("id", filter=answered & Q(score__gte=SATISFIED_MINIMUM)),
        "score_total": Sum("score", filter=answered),
    }


def _figures(key: str, label: str, row: dict[str, Any]) -> CsatFigures:
    return CsatFigures(
        key=key,
        label=label,
        sent=int(row.get("sent") or 0),
        responses=int(row.get("responses") or 0),
        satisfied=int(row.get("satisfied") or 0),
        score_total=int(row.get("score_total") or 0),
    )


def _label(dimension: str, row: dict[str, Any], language: str) -> str:
    if dimension == "agent":
        name = f"{row.get('agent__first_name') or ''} {row.get('agent__last_name') or ''}".strip()
        return name or str(row.get("agent__email") or "")
    if dimension == "team":
        return str(row.get("team__name") or "")
    return str(row.get("category__name_en" if language == "en" else "category__name_it") or "")


def csat_by(surveys: QuerySet[Survey], dimension: str, *, language: str = "it") -> list[CsatFigures]:
    """One row per agent/team/category (one query); surveys without one are grouped under key ""."""
    if dimension not in DIMENSIONS:
        raise ValidationFailed(f"Unknown dimension '{dimension}'.", code="invalid_dimension")
    columns = DIMENSIONS[dimension]
    rows = surveys.order_by().values(*columns).annotate(**_aggregates())
    result = [_figures(str(row[columns[0]] or ""), _label(dimension, row, language), row) for row in rows]
    return sorted(result, key=lambda figures: (figures.key == "", figures.label.lower(), figures.key))


def csat_over_time(surveys: QuerySet[Survey], start: date, end: date) -> list[CsatFigures]:
    """Per local day of sending, every day of the period present (zero rows included)."""
    rows = (
        surveys.order_by()
        .annotate(day=TruncDate("sent_at", tzinfo=ZoneInfo(REPORT_TIMEZONE)))
        .values("day")
        .annotate(**_aggregates())
    )
    by_day: dict[date, dict[str, Any]] = {row["day"]: dict(row) for row in rows}
    days = [start + timedelta(days=offset) for offset in range((end - start).days + 1)]
    return [_figures(day.isoformat(), day.isoformat(), by_day.get(day, {})) for day in days]


def csat_report(*, actor: Actor, start: date, end: date, language: str = "it") -> CsatReport:
    require_reports(actor)
    if end < start or (end - start).days > 731 or start.year < 2000:
        raise ValidationFailed(
            _("Choose a period of at most two years, ending after it starts."),
            code="bad_period",
            fields={"end": _("Invalid period.")},
        )
    surveys = csat_surveys(start, end)
    overall = _figures("", "", surveys.order_by().aggregate(**_aggregates()))
    return CsatReport(
        start=start,
        end=end,
        overall=overall,
        by_agent=csat_by(surveys, "agent", language=language),
        by_team=csat_by(surveys, "team", language=language),
        by_category=csat_by(surveys, "category", language=language),
        over_time=csat_over_time(surveys, start, end),
    )


def nps_report(*, actor: Actor) -> list[NpsFigures]:
    require_reports(actor)
    answered = Q(surveys__responded_at__isnull=False)
    campaigns = NpsCampaign.objects.annotate(
        sent_total=Count("surveys"),
        responses=Count("surveys", filter=answered),
        promoters=Count("surveys", filter=answered & Q(surveys__score__gte=PROMOTER_MINIMUM)),
        detractors=Count("surveys", filter=answered & Q(surveys__score__lte=DETRACTOR_MAXIMUM)),
    ).order_by("-id")
    return [
        NpsFigures(
            campaign_public_id=str(campaign.public_id),
            name=campaign.name,
            segment=campaign.segment,
            sent_at=campaign.sent_at,
            sent=int(campaign.sent_total),
            responses=int(campaign.responses),
            promoters=int(campaign.promoters),
            passives=int(campaign.responses) - int(campaign.promoters) - int(campaign.detractors),
            detractors=int(campaign.detractors),
        )
        for campaign in campaigns
    ]


def survey_list(*, actor: Actor, filters: dict[str, str]) -> QuerySet[Survey]:
    """Surveys for reports and the API: kind, answered=yes|no, campaign, ticket (public ids)."""
    require_reports(actor)
    queryset = Survey.objects.select_related("ticket", "campaign", "customer", "agent", "team", "category")
    kind = filters.get("kind", "")
    if kind:
        if kind not in Survey.Kind.values:
            raise ValidationFailed(
                "Unknown survey kind.", code="invalid_filter", fields={"kind": "csat or nps."}
            )
        queryset = queryset.filter(kind=kind)
    answered = filters.get("answered", "")
    if answered in ("yes", "no"):
        queryset = queryset.filter(responded_at__isnull=answered == "no")
    if filters.get("campaign"):
        queryset = queryset.filter(campaign__public_id=filters["campaign"])
    if filters.get("ticket"):
        queryset = queryset.filter(ticket__public_id=filters["ticket"])
    return queryset


def csat_for_ticket(ticket_pk: int) -> Survey | None:
    return Survey.objects.filter(ticket_id=ticket_pk, kind=Survey.Kind.CSAT).first()


# NPS recipients ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NpsRecipient:
    customer_id: int
    email: str
    language: str


def nps_recipients(*, segment: str) -> list[NpsRecipient]:
    """Active customers with an e-mail whose latest e-mail consent for the configured purpose
    (FEDELE_NPS_CONSENT_PURPOSE, default "marketing": the Garante treats satisfaction surveys as
    promotional contact) is granted.

    The customers module decides (customers.facade.customers_for_survey).
    """
    from django.conf import settings

    from fedele.customers.facade import customers_for_survey

    purpose = str(getattr(settings, "FEDELE_NPS_CONSENT_PURPOSE", "marketing"))
    summaries = customers_for_survey(segment=segment, channel="email", purpose=purpose)
    return [NpsRecipient(s.customer_id, s.email, s.language) for s in summaries if s.email]
