"""Italian writes month and day names in lower case ("31 agosto 2026"): the loyalty pages' dates go
through ``written_date``; and a programme's members are "Soci" (not "Membri", a team's members) in the
staff navigation and the members pages' headings."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import time_machine
from django.template import Context, Template
from django.test import Client
from django.utils import translation
from django.utils.translation import trans_real

from fedele.accounts.tests.factories import user_with_roles
from fedele.loyalty.templatetags.loyalty_dates import written_date_text
from fedele.loyalty.tests.club_fixtures import enrol, portal_customer, programme_with_tiers
from fedele.loyalty.tests.factories import MemberFactory, ProgrammeFactory

pytestmark = pytest.mark.django_db
MONDAY_31_AUGUST = date(2026, 8, 31)


@pytest.mark.parametrize(
    ("language", "format_string", "expected"),
    [
        ("it", "j F Y", "31 agosto 2026"),
        ("it", "F Y", "agosto 2026"),
        ("it", "j M Y", "31 ago 2026"),
        ("it", "l j F Y", "lunedì 31 agosto 2026"),
        ("it", "D j N", "lun 31 ago."),
        ("it", "d/m/Y", "31/08/2026"),
        ("en", "j F Y", "31 August 2026"),
        ("en", "j M Y", "31 Aug 2026"),
        ("en", "l j F Y", "Monday 31 August 2026"),
    ],
)
def test_written_date(language: str, format_string: str, expected: str) -> None:
    with translation.override(language):
        assert written_date_text(MONDAY_31_AUGUST, format_string) == expected


def test_every_italian_month_in_lower_case() -> None:
    with translation.override("it"):
        months = [written_date_text(date(2026, month, 1), "F") for month in range(1, 13)]
        assert months == [
            "gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno",
            "luglio", "agosto", "settembre", "ottobre", "novembre", "dicembre",
        ]  # fmt: skip
        # Django's own filter capitalises them: the reason for written_date.
        assert Template('{{ day|date:"F" }}').render(Context({"day": date(2026, 8, 1)})) == "Agosto"


def test_the_filter_in_a_template_follows_the_local_time_zone() -> None:
    # 23:30 UTC on 31 August is already 1 September in Rome.
    moment = datetime(2026, 8, 31, 23, 30, tzinfo=UTC)
    template = Template('{% load loyalty_dates %}{{ moment|written_date:"j F Y, H:i" }}')
    with translation.override("it"), time_machine.travel(moment, tick=False):
        assert template.render(Context({"moment": moment})) == "1 settembre 2026, 01:30"


@time_machine.travel("2026-03-10 10:00 +01:00", tick=False)
def test_the_member_portal_writes_months_in_lower_case_in_italian() -> None:
    programme = programme_with_tiers()
    portal = portal_customer(language="it")
    member = enrol(programme, portal.customer)
    portal.user.language = "it"
    portal.user.save(update_fields=["language"])
    page = portal.client.get("/club/preferences/", HTTP_ACCEPT_LANGUAGE="it")
    assert page.status_code == 200
    text = " ".join(re.sub(r"<[^>]+>", " ", page.content.decode()).split())
    assert f"Socio dal 10 marzo 2026 · tessera {member.card_number}" in text
    assert "Marzo" not in text

    english = portal_customer(language="en")
    enrol(programme, english.customer)
    text = " ".join(
        re.sub(r"<[^>]+>", " ", english.client.get("/club/preferences/").content.decode()).split()
    )
    assert "Member since 10 March 2026" in text


@pytest.fixture
def italian_soci() -> Iterator[None]:
    """The catalogue entry the lead adds to locale/it (msgctxt "loyalty programme", msgid "Members",
    msgstr "Soci"), present for this test whether or not the catalogue has it yet."""
    catalog = trans_real.translation("it")._catalog  # type: ignore[attr-defined]
    key = "loyalty programme\x04Members"
    first = catalog._catalogs[0]
    had, previous = key in first, first.get(key)
    first[key] = "Soci"
    yield
    if had:
        first[key] = previous
    else:
        first.pop(key, None)


def test_staff_navigation_and_headings_say_soci_in_italian(italian_soci: None) -> None:
    programme = ProgrammeFactory(code="club")
    member = MemberFactory(programme=programme)
    client = Client()
    client.force_login(user_with_roles("agent", language="it"))
    listing = client.get("/loyalty/members/", HTTP_ACCEPT_LANGUAGE="it").content.decode()
    assert '<a class="nav-link active" href="/loyalty/members/" aria-current="page">Soci</a>' in listing
    assert "<h1>Soci</h1>" in listing and "<title>Soci" in listing
    assert "Membri" not in listing
    detail = client.get(f"/loyalty/members/{member.public_id}/", HTTP_ACCEPT_LANGUAGE="it").content.decode()
    assert '<a href="/loyalty/members/">Soci</a>' in detail and "Membri" not in detail
    # A team's members stay "Membri": the same English word without the loyalty context.
    with translation.override("it"):
        assert translation.gettext("Members") == "Membri"
        assert translation.pgettext("loyalty programme", "Members") == "Soci"
