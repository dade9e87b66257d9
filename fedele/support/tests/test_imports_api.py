"""Ticket imports through the API, the /support/imports/ pages and the support_import command."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from fedele.accounts.tests.factories import auth_header, user_with_roles
from fedele.shared.models import OutboxEvent
from fedele.support.models import Ticket, TicketImport, TicketMessage
from fedele.support.services import imports

FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = pytest.mark.django_db


def _upload(name: str, content: bytes | None = None) -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content if content is not None else (FIXTURES / name).read_bytes())


def _post(client: Client, headers: dict[str, str], name: str, **form: Any) -> Any:
    data = {"source": "zendesk", "format": "json", "mode": "all_or_none", **form, "file": _upload(name)}
    return client.post("/api/v1/support/imports", data, **headers)


def test_api_import_then_read_it_back(client: Client) -> None:
    headers = auth_header(user_with_roles("supervisor"))
    response = _post(client, headers, "zendesk_tickets.json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert {k: body[k] for k in ("source", "format", "mode", "status", "total", "imported", "skipped")} == {
        "source": "zendesk",
        "format": "json",
        "mode": "all_or_none",
        "status": "done",
        "total": 5,
        "imported": 5,
        "skipped": 0,
    }
    assert (body["failed"], body["messages_imported"], body["errors"]) == (0, 9, [])
    assert Ticket.objects.count() == 5

    again = client.get(f"/api/v1/support/imports/{body['id']}", **headers)
    assert again.status_code == 200
    assert again.json() == body


def test_api_reports_bad_rows_with_their_lines_and_writes_nothing(client: Client) -> None:
    headers = auth_header(user_with_roles("supervisor"))
    response = _post(client, headers, "zendesk_bad.csv", format="csv")

    assert response.status_code == 201
    body = response.json()
    assert (body["status"], body["total"], body["imported"], body["failed"]) == ("failed", 4, 0, 2)
    assert body["errors"] == [
        {"line": 3, "message": "'due@example' is not an e-mail address."},
        {"line": 4, "message": "Created at 'ieri' is not a date and time (use ISO 8601)."},
    ]
    assert Ticket.objects.count() == 0
    assert OutboxEvent.objects.filter(event_type="support.tickets_imported").count() == 0


def test_api_good_rows_mode(client: Client) -> None:
    headers = auth_header(user_with_roles("supervisor"))
    body = _post(client, headers, "zendesk_bad.csv", format="csv", mode="good_rows").json()
    assert (body["status"], body["imported"], body["failed"]) == ("done", 2, 2)


def test_api_refuses_an_unreadable_file_with_the_error_envelope(client: Client) -> None:
    headers = auth_header(user_with_roles("supervisor"))
    data = {"source": "zendesk", "format": "json", "file": _upload("x.json", b"[{")}
    response = client.post("/api/v1/support/imports", data, **headers)
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "invalid_json"
    assert TicketImport.objects.count() == 0


def test_api_refuses_a_file_over_the_limit(client: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(imports, "MAX_BYTES", 10)
    headers = auth_header(user_with_roles("supervisor"))
    response = _post(client, headers, "zendesk_tickets.json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "file_too_large"
    assert Ticket.objects.count() == 0


def test_api_refuses_unknown_source_and_format(client: Client) -> None:
    headers = auth_header(user_with_roles("supervisor"))
    response = _post(client, headers, "zendesk_tickets.json", source="freshdesk")
    assert response.status_code == 422
    assert Ticket.objects.count() == 0


@pytest.mark.parametrize(("role", "scopes"), [("agent", ("read", "write")), ("supervisor", ("read",))])
def test_api_needs_the_permission_and_the_write_scope(
    client: Client, role: str, scopes: tuple[str, ...]
) -> None:
    headers = auth_header(user_with_roles(role), scopes=scopes)
    response = _post(client, headers, "zendesk_tickets.json")
    assert response.status_code == 403
    assert Ticket.objects.count() == 0


def test_api_history_and_unknown_import(client: Client, django_assert_max_num_queries: Any) -> None:
    supervisor = user_with_roles("supervisor")
    headers = auth_header(supervisor)
    for name in ("zendesk_tickets.json", "zendesk_bad.json"):
        _post(client, headers, name)
    with django_assert_max_num_queries(8):
        response = client.get("/api/v1/support/imports?limit=1", **headers)
    assert response.status_code == 200
    page = response.json()
    assert [item["status"] for item in page["items"]] == ["failed"]
    assert page["next_cursor"]
    rest = client.get(f"/api/v1/support/imports?limit=5&cursor={page['next_cursor']}", **headers).json()
    assert [item["status"] for item in rest["items"]] == ["done"]
    missing = client.get("/api/v1/support/imports/00000000-0000-4000-8000-000000000000", **headers)
    assert missing.status_code == 404
    agent_headers = auth_header(user_with_roles("agent"))
    assert client.get("/api/v1/support/imports", **agent_headers).status_code == 403


def test_page_upload_redirects_to_the_report(client: Client) -> None:
    client.force_login(user_with_roles("supervisor"))
    page = client.get(reverse("support:imports"))
    assert page.status_code == 200
    assert b'id="import-form"' in page.content

    response = client.post(
        reverse("support:imports"),
        {"source": "zammad", "format": "json", "mode": "good_rows", "file": _upload("zammad_tickets.json")},
    )
    result = TicketImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("support:import_detail", args=[result.public_id])
    assert (result.imported, result.messages_imported) == (3, 5)
    detail = client.get(response["Location"])
    assert detail.status_code == 200
    assert b'id="import-summary"' in detail.content
    history = client.get(reverse("support:imports"))
    assert b'id="import-history"' in history.content
    assert str(result.public_id).encode() in history.content


def test_page_shows_line_errors(client: Client) -> None:
    client.force_login(user_with_roles("supervisor"))
    response = client.post(
        reverse("support:imports"),
        {"source": "zendesk", "format": "json", "mode": "all_or_none", "file": _upload("zendesk_bad.json")},
        follow=True,
    )
    assert response.status_code == 200
    content = response.content.decode()
    assert 'id="import-errors"' in content
    assert "created_at is required." in content
    assert Ticket.objects.count() == 0


def test_page_shows_a_file_error_in_the_form(client: Client) -> None:
    client.force_login(user_with_roles("supervisor"))
    response = client.post(
        reverse("support:imports"),
        {"source": "zendesk", "format": "csv", "mode": "all_or_none", "file": _upload("x.csv", b"")},
    )
    assert response.status_code == 422
    assert b'id="import-error"' in response.content
    assert TicketImport.objects.count() == 0


def test_page_is_refused_to_agents(client: Client) -> None:
    client.force_login(user_with_roles("agent"))
    assert client.get(reverse("support:imports")).status_code == 403
    detail = client.get(reverse("support:import_detail", args=["00000000-0000-4000-8000-000000000000"]))
    assert detail.status_code == 403


def test_command_imports_a_file_and_reports_json(tmp_path: Path) -> None:
    lines = [
        json.dumps(
            {"id": n, "subject": f"Problema {n}", "status": "solved", "created_at": "2026-01-01T08:00:00Z"}
        )
        for n in range(1, 2_501)
    ]
    export = tmp_path / "tickets.json"
    export.write_text("\n".join(lines) + "\n")
    out, err = io.StringIO(), io.StringIO()

    call_command(
        "support_import", str(export), "--source", "zendesk", "--format", "json", stdout=out, stderr=err
    )

    result = json.loads(out.getvalue())
    assert {k: result[k] for k in ("status", "total", "imported", "skipped", "refused", "messages")} == {
        "status": "done",
        "total": 2500,
        "imported": 2500,
        "skipped": 0,
        "refused": 0,
        "messages": 0,
    }
    assert "2,500 tickets read" in err.getvalue()
    assert Ticket.objects.filter(status_kind="solved").count() == 2500
    assert TicketMessage.objects.count() == 0


def test_command_exits_1_when_tickets_are_refused(tmp_path: Path) -> None:
    export = tmp_path / "bad.json"
    export.write_bytes((FIXTURES / "zendesk_bad.json").read_bytes())
    out = io.StringIO()
    with pytest.raises(SystemExit) as exited:
        call_command(
            "support_import",
            str(export),
            "--source",
            "zendesk",
            "--format",
            "json",
            stdout=out,
            stderr=io.StringIO(),
        )
    assert exited.value.code == 1
    assert json.loads(out.getvalue())["imported"] == 2


def test_command_refuses_a_missing_or_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="is not a file"):
        call_command("support_import", str(tmp_path / "none.json"), "--source", "zendesk", "--format", "json")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(CommandError, match="The file is empty"):
        call_command(
            "support_import", str(empty), "--source", "zammad", "--format", "csv", stderr=io.StringIO()
        )
