"""The SMS/social channel settings pages: create, change, disable and enable a channel; bad input
shows field errors and writes nothing; only contact-center managers get in; every change is audited;
no secret value ever appears in the page."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from fedele.accounts.tests.factories import user_with_roles
from fedele.contact_center.models import MessagingChannel
from fedele.contact_center.tests.factories import QueueFactory
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db
BASE = "/contact-center/settings/messaging"
SECRET_VALUE = "s3cr3t-value-never-shown-9f2"


@pytest.fixture
def manager(client: Client) -> Client:
    QueueFactory(code="web", channels=["chat", "sms", "social"])
    QueueFactory(code="voice-only", channels=["voice"])
    client.force_login(user_with_roles("admin"))
    return client


def _form(**overrides: str) -> dict[str, str]:
    form = {
        "code": "sms-it",
        "name": "SMS Italia",
        "kind": "twilio",
        "network": "sms",
        "address": "02 1234 5678",
        "queue": "web",
        "secret_env": "FEDELE_TEST_SMS_SECRET",
        "outbound_url": "",
        "outbound_token_env": "",
        "active": "on",
    }
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


def _saved_audits(code: str) -> list[AuditLog]:
    return list(
        AuditLog.objects.filter(action="contact_center.messaging_channel_saved", object_id=code).order_by(
            "id"
        )
    )


def test_create_a_channel_from_the_form(manager: Client, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEDELE_TEST_SMS_SECRET", SECRET_VALUE)
    new_page = manager.get(f"{BASE}/channels/new/")
    assert new_page.status_code == 200
    assert 'id="channel-form"' in new_page.content.decode()

    response = manager.post(f"{BASE}/channels/new/", _form())
    assert response.status_code == 302
    assert response["Location"] == f"{BASE}/channels/sms-it/"
    channel = MessagingChannel.objects.get(code="sms-it")
    assert (channel.name, channel.kind, channel.network, channel.address, channel.queue.code) == (
        "SMS Italia",
        "twilio",
        "sms",
        "+390212345678",  # written in E.164
        "web",
    )
    assert (channel.secret_env, channel.active) == ("FEDELE_TEST_SMS_SECRET", True)
    audits = _saved_audits("sms-it")
    assert len(audits) == 1 and audits[0].before is None
    assert (audits[0].after or {})["address"] == "+390212345678"

    page = manager.get(f"{BASE}/channels/sms-it/").content.decode()
    assert "http://127.0.0.1:8000/contact-center/webhooks/messaging/sms-it/" in page
    assert 'data-testid="secret-state"><span class="text-success">Set on this server.</span>' in page
    assert SECRET_VALUE not in page
    listing = manager.get(f"{BASE}/").content.decode()
    assert 'data-testid="channel-sms-it"' in listing and "+390212345678" in listing
    assert SECRET_VALUE not in listing


def test_edit_a_channel_keeps_its_code(manager: Client) -> None:
    assert manager.post(f"{BASE}/channels/new/", _form()).status_code == 302
    response = manager.post(
        f"{BASE}/channels/sms-it/",
        _form(code="renamed", name="SMS clienti", network="whatsapp", address="+39 333 123 4567"),
    )
    assert response.status_code == 302
    assert response["Location"] == f"{BASE}/channels/sms-it/"
    channel = MessagingChannel.objects.get()
    assert (channel.code, channel.name, channel.network, channel.address) == (
        "sms-it",
        "SMS clienti",
        "whatsapp",
        "+393331234567",
    )
    audits = _saved_audits("sms-it")
    assert len(audits) == 2
    assert audits[1].before == {"name": "SMS Italia", "network": "sms", "address": "+390212345678"}
    assert audits[1].after == {"name": "SMS clienti", "network": "whatsapp", "address": "+393331234567"}
    page = manager.get(f"{BASE}/channels/sms-it/").content.decode()
    assert 'value="SMS clienti"' in page and 'name="code" value="sms-it"' in page and "readonly" in page
    assert 'data-testid="secret-state"><span class="text-danger">Not set on this server' in page


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"address": "not a number"}, "address", "Not a phone number."),
        ({"code": "X"}, "code", "2 to 40 lower-case letters, digits, - or _."),
        ({"name": ""}, "name", "A name of 1 to 120 characters."),
        ({"network": "telegram"}, "network", "Twilio carries sms and whatsapp."),
        ({"queue": "voice-only"}, "queue", "This queue does not take sms."),
        ({"queue": ""}, "queue", "Choose a queue."),
        ({"secret_env": "lower case"}, "secret_env", "The name of an environment variable"),
        ({"outbound_url": "ftp://x"}, "outbound_url", "An http(s) URL."),
    ],
)
def test_invalid_input_shows_errors_and_writes_nothing(
    manager: Client, overrides: dict[str, str], field: str, message: str
) -> None:
    response = manager.post(f"{BASE}/channels/new/", _form(**overrides))
    assert response.status_code == 422
    page = response.content.decode()
    assert "Please check the fields marked below." in page
    assert f'<div class="invalid-feedback">{message}' in page
    assert "is-invalid" in page
    assert MessagingChannel.objects.count() == 0
    assert AuditLog.objects.filter(action="contact_center.messaging_channel_saved").count() == 0


def test_an_address_is_unique_per_provider_and_network(manager: Client) -> None:
    assert manager.post(f"{BASE}/channels/new/", _form()).status_code == 302
    same_number = manager.post(f"{BASE}/channels/new/", _form(code="sms-bis", address="+390212345678"))
    assert same_number.status_code == 422
    assert "Another channel of this provider already uses this address." in same_number.content.decode()
    assert list(MessagingChannel.objects.values_list("code", flat=True)) == ["sms-it"]
    assert len(_saved_audits("sms-bis")) == 0
    # The same number on another network of the provider (WhatsApp) is a different channel.
    other_network = manager.post(
        f"{BASE}/channels/new/", _form(code="wa-it", network="whatsapp", address="+390212345678")
    )
    assert other_network.status_code == 302
    # Saving a channel again with its own address is no clash.
    assert manager.post(f"{BASE}/channels/sms-it/", _form(name="SMS")).status_code == 302


def test_disable_and_enable_a_channel(manager: Client) -> None:
    assert manager.post(f"{BASE}/channels/new/", _form()).status_code == 302
    disabled = manager.post(f"{BASE}/channels/sms-it/active/", {"active": "0"})
    assert disabled.status_code == 302 and disabled["Location"] == f"{BASE}/"
    assert MessagingChannel.objects.get().active is False
    assert _saved_audits("sms-it")[-1].after == {"active": False}
    listing = manager.get(f"{BASE}/").content.decode()
    assert 'data-testid="channel-enable"' in listing and "Channel sms-it disabled." in listing
    # A disabled channel's webhook no longer answers, but its settings page still opens.
    assert manager.post("/contact-center/webhooks/messaging/sms-it/", {}).status_code == 404
    assert manager.get(f"{BASE}/channels/sms-it/").status_code == 200
    enabled = manager.post(f"{BASE}/channels/sms-it/active/", {"active": "1"})
    assert enabled.status_code == 302
    assert MessagingChannel.objects.get().active is True
    assert len(_saved_audits("sms-it")) == 3


def test_users_without_the_permission_get_403_and_change_nothing(manager: Client) -> None:
    assert manager.post(f"{BASE}/channels/new/", _form()).status_code == 302
    other: Any = Client()
    for role in ("agent", "supervisor"):
        other.force_login(user_with_roles(role))
        assert other.get(f"{BASE}/channels/new/").status_code == 403
        assert other.post(f"{BASE}/channels/new/", _form(code="sms-two")).status_code == 403
        assert other.get(f"{BASE}/channels/sms-it/").status_code == 403
        assert other.post(f"{BASE}/channels/sms-it/", _form(name="Hijacked")).status_code == 403
        assert other.post(f"{BASE}/channels/sms-it/active/", {"active": "0"}).status_code == 403
    channel = MessagingChannel.objects.get()
    assert (channel.code, channel.name, channel.active) == ("sms-it", "SMS Italia", True)
    assert len(_saved_audits("sms-it")) == 1
    assert Client().get(f"{BASE}/channels/new/").status_code == 302  # anonymous → sign in


def test_unknown_channel_is_404(manager: Client) -> None:
    assert manager.get(f"{BASE}/channels/nope/").status_code == 404
    assert manager.post(f"{BASE}/channels/nope/active/", {"active": "0"}).status_code == 404
