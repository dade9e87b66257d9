"""Reads for the dialer: campaigns with their contact counts, a campaign's contacts and attempts,
the do-not-call list and the RPO batches. Constant query counts (annotations, no N+1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils.translation import gettext as _

from fedele.contact_center.dialer import meter as dialer_meter
from fedele.contact_center.dialer.meter import MeterReading
from fedele.contact_center.models import (
    AmdResult,
    Campaign,
    CampaignContact,
    ContactList,
    ContactState,
    DialAttempt,
    DoNotCallEntry,
    DoNotCallSource,
    RpoImportBatch,
)
from fedele.shared.errors import NotFound

__all__ = [
    "CampaignFigures",
    "campaign_figures",
    "campaign_get",
    "campaign_list",
    "campaign_meter",
    "contact_get",
    "contact_list",
    "contact_lists_of",
    "dnc_list",
    "rpo_batches",
]


def campaign_list() -> QuerySet[Campaign]:
    counts = {
        f"contacts_{state}": Count("contacts", filter=Q(contacts__state=state), distinct=True)
        for state in ContactState.values
    }
    return (
        Campaign.objects.select_related("queue")
        .prefetch_related("windows")
        .annotate(contacts_total=Count("contacts", distinct=True), **counts)
    )


def campaign_get(code: str) -> Campaign:
    campaign = campaign_list().filter(code=code).first()
    if campaign is None:
        raise NotFound(_("Campaign not found."), code="campaign_not_found")
    return campaign


@dataclass(frozen=True, slots=True)
class CampaignFigures:
    contacts_by_state: dict[str, int]
    attempts_by_outcome: dict[str, int]
    lines_out: int
    meter: MeterReading


def campaign_meter(campaign: Campaign, *, at: datetime) -> dialer_meter.MeterReading:
    """The regulatory meter from the campaign's attempts (one aggregate query)."""
    start = at - dialer_meter.rule_window(campaign.abandon_rule)
    counts = (
        DialAttempt.objects.filter(campaign=campaign, answered_at__gt=start, answered_at__lte=at)
        .exclude(amd_result=AmdResult.MACHINE)
        .aggregate(live=Count("id"), abandoned=Count("id", filter=Q(abandoned=True)))
    )
    return dialer_meter.MeterReading(
        rule=campaign.abandon_rule,
        window_start=start,
        window_end=at,
        live_answers=counts["live"],
        abandoned=counts["abandoned"],
        cap_rate=float(campaign.abandon_cap_rate),
        near_cap_ratio=float(campaign.near_cap_ratio),
    )


def campaign_figures(campaign: Campaign, *, at: datetime) -> CampaignFigures:
    by_state = dict.fromkeys(ContactState.values, 0)
    for state, count in (
        CampaignContact.objects.filter(campaign=campaign)
        .values_list("state")
        .annotate(n=Count("id"))
        .order_by()
    ):
        by_state[state] = count
    by_outcome: dict[str, int] = {}
    lines_out = 0
    for outcome, state, count in (
        DialAttempt.objects.filter(campaign=campaign)
        .values_list("outcome", "state")
        .annotate(n=Count("id"))
        .order_by()
    ):
        if outcome:
            by_outcome[outcome] = by_outcome.get(outcome, 0) + count
        elif state in ("dialing", "answered"):
            lines_out += count
    return CampaignFigures(by_state, by_outcome, lines_out, campaign_meter(campaign, at=at))


def contact_list(campaign: Campaign, filters: Mapping[str, Any] | None = None) -> QuerySet[CampaignContact]:
    rows = CampaignContact.objects.filter(campaign=campaign).select_related("agent")
    filters = filters or {}
    if filters.get("state"):
        rows = rows.filter(state=filters["state"])
    if filters.get("phone"):
        rows = rows.filter(phone__contains=str(filters["phone"]).replace(" ", ""))
    return rows.order_by("id")


def contact_get(public_id: str) -> CampaignContact:
    contact = (
        CampaignContact.objects.select_related("campaign", "campaign__queue", "agent")
        .filter(public_id=public_id)
        .first()
    )
    if contact is None:
        raise NotFound(_("Contact not found."), code="contact_not_found")
    return contact


def contact_lists_of(campaign: Campaign) -> QuerySet[ContactList]:
    return ContactList.objects.filter(campaign=campaign).order_by("-imported_at", "-id")


def dnc_list(query: str = "") -> QuerySet[DoNotCallEntry]:
    rows = DoNotCallEntry.objects.filter(source=DoNotCallSource.INTERNAL)
    if query:
        rows = rows.filter(phone__contains=query.replace(" ", ""))
    return rows.order_by("-created_at", "-id")


def rpo_batches() -> QuerySet[RpoImportBatch]:
    return RpoImportBatch.objects.order_by("-checked_on", "-id")
