"""IVR pages and API: the editor, live validation, test call, publish refused with problems (nothing
changes), rollback, diff, prompts side by side, permissions; the API's error envelopes."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.contact_center.models import Document, IvrFlow, IvrFlowVersion, IvrSession, IvrVersionStatus
from fedele.contact_center.tests.ivr_support import BILLING_FLOW, billing_flow, make_queues, published_flow

pytestmark = pytest.mark.django_db
API = "/api/v1/contact-center"


@pytest.fixture(autouse=True)
def _english(settings, tmp_path):
    settings.LANGUAGE_CODE = "en"
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def admin_client(client: Client) -> Client:
    client.force_login(user_with_roles("admin"))
    return client


def test_agents_cannot_open_the_editor(client: Client):
    make_queues()
    published_flow()
    client.force_login(user_with_roles("agent"))
    assert client.get("/contact-center/ivr/").status_code == 403
    assert client.get("/contact-center/ivr/main-line/").status_code == 403
    assert client.post("/contact-center/ivr/main-line/publish/").status_code == 403


def test_flow_page_shows_node_cards_prompts_and_versions(admin_client: Client):
    make_queues()
    published_flow()
    page = admin_client.get("/contact-center/ivr/main-line/").content.decode()
    assert 'data-node="main"' in page and 'data-node="billing"' in page
    assert "Premi 1 per l&#x27;assistenza, 2 per le fatture." in page
    assert 'name="prompt:main:prompt:en"' in page
    assert 'id="ivr-valid"' in page
    assert 'data-version="1"' in page
    listing = admin_client.get("/contact-center/ivr/").content.decode()
    assert 'href="/contact-center/ivr/main-line/"' in listing


def test_create_flow_from_the_list_page(admin_client: Client):
    response = admin_client.post("/contact-center/ivr/", {"code": "night", "name": "Night line"})
    assert response.status_code == 302 and response["Location"] == "/contact-center/ivr/night/"
    flow = IvrFlow.objects.get(code="night")
    assert flow.versions.get().status == IvrVersionStatus.DRAFT
    refused = admin_client.post("/contact-center/ivr/", {"code": "documents", "name": "x"})
    assert refused.status_code == 422
    assert IvrFlow.objects.count() == 1


def test_live_validation_lists_problems_for_the_typed_text(admin_client: Client):
    make_queues()
    published_flow()
    broken = billing_flow()
    broken["nodes"]["tell"]["next"] = "ghost"
    response = admin_client.post(
        "/contact-center/ivr/main-line/validate/", {"source": json.dumps(broken), "source_format": "json"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "tell: Goes to “ghost”, which is not a node." in html
    syntax = admin_client.post(
        "/contact-center/ivr/main-line/validate/", {"source": "{", "source_format": "json"}
    )
    assert (
        "JSON: Expecting property name enclosed in double quotes (line 1, column 2)"
        in syntax.content.decode()
    )


def test_save_and_publish_refused_keeps_the_live_version(admin_client: Client):
    make_queues()
    flow = published_flow()
    broken = billing_flow()
    broken["nodes"]["billing"]["queue"] = "ghost"
    response = admin_client.post(
        "/contact-center/ivr/main-line/save/",
        {"source": json.dumps(broken), "source_format": "json", "publish": "1"},
    )
    assert response.status_code == 422
    assert "billing: The queue “ghost” does not exist." in response.content.decode()
    flow.refresh_from_db()
    assert flow.published_version is not None and flow.published_version.number == 1
    assert IvrFlowVersion.objects.get(flow=flow, number=2).status == IvrVersionStatus.DRAFT


def test_save_publish_diff_and_rollback(admin_client: Client):
    make_queues()
    flow = published_flow()
    changed = billing_flow(default_language="en")
    response = admin_client.post(
        "/contact-center/ivr/main-line/save/",
        {"source": json.dumps(changed), "source_format": "json", "publish": "1"},
    )
    assert response.status_code == 302
    flow.refresh_from_db()
    assert flow.published_version is not None and flow.published_version.number == 2
    diff = admin_client.get("/contact-center/ivr/main-line/diff/?from=1&to=2").content.decode()
    assert "-  &quot;default_language&quot;: &quot;it&quot;," in diff
    assert "+  &quot;default_language&quot;: &quot;en&quot;," in diff
    assert admin_client.get("/contact-center/ivr/main-line/diff/?from=1&to=9").status_code == 404
    rolled = admin_client.post("/contact-center/ivr/main-line/rollback/1/")
    assert rolled.status_code == 302
    flow.refresh_from_db()
    assert flow.published_version is not None
    assert (flow.published_version.number, flow.published_version.definition) == (3, BILLING_FLOW)


def test_prompts_side_by_side_go_into_the_draft(admin_client: Client):
    make_queues()
    flow = published_flow()
    response = admin_client.post(
        "/contact-center/ivr/main-line/prompts/",
        {
            "prompt:welcome:prompt:it": "Ciao!",
            "prompt:welcome:prompt:en": "Hello!",
            "prompt:ghost:prompt:it": "x",
        },
    )
    assert response.status_code == 302
    draft = IvrFlowVersion.objects.get(flow=flow, status=IvrVersionStatus.DRAFT)
    assert draft.definition["nodes"]["welcome"]["prompt"] == {"it": "Ciao!", "en": "Hello!"}
    assert "ghost" not in draft.definition["nodes"]
    flow.refresh_from_db()
    assert flow.published_version is not None
    assert flow.published_version.definition["nodes"]["welcome"]["prompt"]["it"] == "Benvenuti in Fedele."


def test_test_call_panel_walks_the_editor_text_and_saves_nothing(admin_client: Client):
    make_queues()
    flow = published_flow()
    versions = IvrFlowVersion.objects.count()
    response = admin_client.post(
        "/contact-center/ivr/main-line/simulate/",
        {"source": json.dumps(BILLING_FLOW), "source_format": "json", "inputs": "7, 1"},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert html.count("data-turn=") == 3
    assert "Spiacenti, la scelta non è valida." in html
    assert "Posizione in coda: 1." in html
    assert IvrFlowVersion.objects.count() == versions
    assert not IvrSession.objects.exists()
    flow.refresh_from_db()
    broken = billing_flow(start="nowhere")
    refused = admin_client.post(
        "/contact-center/ivr/main-line/simulate/",
        {"source": json.dumps(broken), "source_format": "json", "inputs": "1"},
    )
    assert "Fix the flow&#x27;s problems before a test call." in refused.content.decode()


def test_documents_page_uploads_and_lists(admin_client: Client):
    response = admin_client.post(
        "/contact-center/ivr/documents/",
        {
            "code": "manual",
            "title_it": "Manuale",
            "title_en": "Manual",
            "kind": "file",
            "sms_keyword": "manuale",
            "file": SimpleUploadedFile("m.pdf", b"%PDF-1.4", content_type="application/pdf"),
        },
    )
    assert response.status_code == 302
    assert Document.objects.get().sms_keyword == "MANUALE"
    page = admin_client.get("/contact-center/ivr/documents/").content.decode()
    assert "MANUALE" in page
    refused = admin_client.post(
        "/contact-center/ivr/documents/", {"code": "x", "title_it": "", "title_en": ""}
    )
    assert refused.status_code == 422
    assert Document.objects.count() == 1


# API --------------------------------------------------------------------------------------------------


def _api(client: Client, method: str, path: str, body: Any = None, user: Any = None) -> Any:
    headers = auth_header(user or user_with_roles("admin"))
    data = json.dumps(body) if body is not None else None
    return getattr(client, method)(f"{API}{path}", data=data, content_type="application/json", **headers)


def test_api_create_publish_refused_then_fixed(client: Client):
    make_queues()
    admin = user_with_roles("admin")
    broken = billing_flow()
    broken["nodes"]["billing"]["queue"] = "ghost"
    created = _api(
        client, "post", "/ivr/flows", {"code": "api-line", "name": "API", "source": json.dumps(broken)}, admin
    )
    assert created.status_code == 201, created.content
    assert created.json()["versions"][0]["status"] == "draft"
    refused = _api(client, "post", "/ivr/flows/api-line/publish", user=admin)
    assert refused.status_code == 422
    assert refused.json()["error"] == {
        "code": "ivr_flow_invalid",
        "message": "The flow has 1 problem(s); it cannot be published.",
        "fields": {"definition": ["billing: The queue “ghost” does not exist."]},
    }
    assert IvrFlow.objects.get(code="api-line").published_version is None
    check = _api(client, "post", "/ivr/flows/api-line/validate", {"source": json.dumps(BILLING_FLOW)}, admin)
    assert check.json() == {"valid": True, "problems": []}
    saved = _api(client, "put", "/ivr/flows/api-line/draft", {"source": json.dumps(BILLING_FLOW)}, admin)
    assert saved.status_code == 200 and saved.json()["number"] == 1
    published = _api(client, "post", "/ivr/flows/api-line/publish", user=admin)
    assert published.status_code == 200 and published.json()["status"] == "published"
    turns = _api(client, "post", "/ivr/flows/api-line/simulate", {"inputs": ["2", None]}, admin).json()
    assert [turn["waiting_at"] for turn in turns] == ["main", "code", "code"]
    assert turns[2]["steps"][0]["text"] == "Spiacenti, non è stata ricevuta alcuna scelta."
    number = _api(client, "post", "/ivr/numbers", {"number": "+39 02 1234 5678", "flow": "api-line"}, admin)
    assert number.json() == {"number": "+390212345678", "flow": "api-line"}
    detail = _api(client, "get", "/ivr/flows/api-line", user=admin).json()
    assert (detail["published_version"], detail["numbers"]) == (1, ["+390212345678"])


def test_api_permissions_and_unknown_flow(client: Client):
    make_queues()
    published_flow()
    agent = user_with_roles("agent")
    assert _api(client, "get", "/ivr/flows", user=agent).status_code == 403
    admin = user_with_roles("admin")
    missing = _api(client, "get", "/ivr/flows/nope", user=admin)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "ivr_flow_not_found"
    read_only = client.post(
        f"{API}/ivr/flows/main-line/publish", content_type="application/json", **auth_header(admin, ("read",))
    )
    assert read_only.status_code == 403
