"""Review R1 — voicemail: each person told of a new message reads it in their own language, and the
e-mail goes to each of them alone (one subscriber's address is not shown to the others)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.core import mail
from django.utils import translation

from fedele.accounts.tests.factories import user_with_roles
from fedele.contact_center.models import VoicemailBox
from fedele.contact_center.services import voicemail
from fedele.contact_center.services.interactions import interaction_create, interaction_enqueue
from fedele.contact_center.telephony.simulator import silent_wav
from fedele.contact_center.tests.factories import QueueFactory
from fedele.shared.models import Notification

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path
    settings.FEDELE_PUBLIC_URL = "https://cc.example.it"


def test_each_subscriber_is_told_in_their_language_by_their_own_email(
    django_capture_on_commit_callbacks: Any,
) -> None:
    queue = QueueFactory(code="support")
    box = VoicemailBox.objects.create(
        code="support-vm", name="Assistenza", queue=queue, create_callback=False
    )
    italian = user_with_roles("supervisor", email="giulia@example.it", language="it")
    english = user_with_roles("supervisor", email="john@example.com", language="en")
    box.subscribers.add(italian, english)
    interaction = interaction_create(
        channel="voice",
        direction="inbound",
        from_address="+393331234567",
        to_address="+390212345678",
        provider="simulator",
        provider_ref="C1",
        at=T0,
    )
    interaction = interaction_enqueue(interaction=interaction, queue_code=queue.code, at=T0)
    # The provider's webhook request runs in English (its Accept-Language, or none).
    with translation.override("en"), django_capture_on_commit_callbacks(execute=True):
        voicemail.voicemail_create(
            interaction=interaction, box=box, provider="simulator", audio=silent_wav(seconds=1), at=T0
        )
    titles = dict(Notification.objects.values_list("recipient__email", "title"))
    assert titles == {
        "giulia@example.it": "Nuovo messaggio in segreteria in Assistenza da +393331234567",
        "john@example.com": "New voicemail in Assistenza from +393331234567",
    }
    sent = sorted((message.to, message.subject) for message in mail.outbox)
    assert sent == [
        (["giulia@example.it"], "Nuovo messaggio in segreteria in Assistenza da +393331234567"),
        (["john@example.com"], "New voicemail in Assistenza from +393331234567"),
    ]
