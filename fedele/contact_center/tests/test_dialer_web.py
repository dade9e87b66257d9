"""The dialer's pages: permissions, creating a campaign, importing with line-numbered errors, the
simulator and its chart, the do-not-call list and RPO uploads."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from fedele.accounts.tests.factories import user_with_roles
from fedele.contact_center.models import Campaign, CampaignContact, DoNotCallEntry, RpoImportBatch
from fedele.contact_center.tests.factories import QueueFactory
from fedele.shared import clock

pytestmark = pytest.mark.django_db


@pytest.fixture
def supervisor_client(client: Client) -> Client:
    QueueFactory(code="outbound")
    client.force_login(user_with_roles("supervisor"))
    return client


def _create(client: Client) -> None:
    response = client.post(
        "/contact-center/dialer/",
        {
            "code": "spring",
            "name": "Spring offers",
            "queue": "outbound",
            "mode": "predictive",
            "target_abandon_percent": "1.5",
            "abandon_rule": "rolling_30_days",
            "max_attempts": "4",
            "check_rpo": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    assert response["Location"] == "/contact-center/dialer/spring/"


def test_agents_cannot_open_the_dialer(client: Client) -> None:
    client.force_login(user_with_roles("agent"))
    assert client.get("/contact-center/dialer/").status_code == 403
    assert client.get("/contact-center/dialer/do-not-call/").status_code == 403


def test_create_a_campaign_and_see_it(supervisor_client: Client) -> None:
    _create(supervisor_client)
    campaign = Campaign.objects.get()
    assert (campaign.mode, str(campaign.target_abandon_rate), campaign.max_attempts) == (
        "predictive",
        "0.0150",
        4,
    )
    page = supervisor_client.get("/contact-center/dialer/spring/").content.decode()
    assert "Regulatory abandon meter" in page
    assert "09:00–20:00" in page and "10:00–14:00" in page
    listing = supervisor_client.get("/contact-center/dialer/").content.decode()
    assert 'href="/contact-center/dialer/spring/"' in listing


def test_bad_campaign_form_shows_errors_and_writes_nothing(supervisor_client: Client) -> None:
    response = supervisor_client.post(
        "/contact-center/dialer/",
        {
            "code": "x y",
            "name": "",
            "queue": "outbound",
            "mode": "predictive",
            "target_abandon_percent": "5",
            "abandon_rule": "rolling_30_days",
            "max_attempts": "4",
        },
    )
    assert response.status_code == 200
    assert 'aria-invalid="true"' in response.content.decode()
    assert Campaign.objects.count() == 0


def test_import_shows_each_bad_line_then_imports_good_rows(supervisor_client: Client) -> None:
    _create(supervisor_client)
    content = b"phone,name\n3331234567,Anna\nxyz,Bruno\n3331234568,Carla\n"
    response = supervisor_client.post(
        "/contact-center/dialer/spring/import/",
        {"file": SimpleUploadedFile("list.csv", content), "mode": "all_or_none"},
    )
    assert response.status_code == 422
    assert "line 3: &#x27;xyz&#x27; is not a phone number." in response.content.decode()
    assert CampaignContact.objects.count() == 0
    response = supervisor_client.post(
        "/contact-center/dialer/spring/import/",
        {"file": SimpleUploadedFile("list.csv", content), "mode": "good_rows"},
    )
    assert response.status_code == 302
    assert sorted(CampaignContact.objects.values_list("phone", flat=True)) == [
        "+393331234567",
        "+393331234568",
    ]


def test_start_and_pause(supervisor_client: Client) -> None:
    _create(supervisor_client)
    supervisor_client.post("/contact-center/dialer/spring/state/", {"state": "running"})
    assert Campaign.objects.get().state == "running"
    supervisor_client.post("/contact-center/dialer/spring/state/", {"state": "paused"})
    assert Campaign.objects.get().state == "paused"
    supervisor_client.post("/contact-center/dialer/spring/state/", {"state": "exploded"})
    assert Campaign.objects.get().state == "paused"


def test_simulator_partial_has_the_distribution_and_a_chart(supervisor_client: Client) -> None:
    _create(supervisor_client)
    response = supervisor_client.post(
        "/contact-center/dialer/spring/simulate/",
        {
            "agents": "20",
            "live_answer_percent": "30",
            "machine_percent": "15",
            "mean_handle_seconds": "180",
            "hours": "1",
            "seeds": "3",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "<svg" in html and html.count("<rect") == 2  # two half-hour slots
    assert "3 runs; 0 over the cap." in html
    bad = supervisor_client.post(
        "/contact-center/dialer/spring/simulate/",
        {
            "agents": "0",
            "live_answer_percent": "30",
            "machine_percent": "15",
            "mean_handle_seconds": "180",
            "hours": "1",
            "seeds": "3",
        },
        HTTP_HX_REQUEST="true",
    )
    assert bad.status_code == 422
    assert "<svg" not in bad.content.decode()


def test_do_not_call_page(supervisor_client: Client) -> None:
    response = supervisor_client.post(
        "/contact-center/dialer/do-not-call/", {"form": "dnc", "phone": "333 1234567"}
    )
    assert response.status_code == 302
    assert list(DoNotCallEntry.objects.values_list("phone", flat=True)) == ["+393331234567"]
    bad = supervisor_client.post("/contact-center/dialer/do-not-call/", {"form": "dnc", "phone": "12"})
    assert bad.status_code == 422
    assert DoNotCallEntry.objects.count() == 1
    assert "+393331234567" in supervisor_client.get("/contact-center/dialer/do-not-call/").content.decode()
    supervisor_client.post("/contact-center/dialer/do-not-call/", {"remove": "+393331234567"})
    assert DoNotCallEntry.objects.count() == 0
    upload = supervisor_client.post(
        "/contact-center/dialer/do-not-call/",
        {
            "form": "rpo",
            "file": SimpleUploadedFile("rpo.txt", b"3331234567\nnope\n"),
            "checked_on": clock.today().isoformat(),
            "mode": "all_or_none",
        },
    )
    assert upload.status_code == 422
    assert "line 2" in upload.content.decode()
    assert RpoImportBatch.objects.count() == 0
