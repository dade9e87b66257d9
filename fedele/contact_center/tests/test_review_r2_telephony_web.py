"""Review R2: recording playback is limited to calls the listener may see (an agent granted the
listen permission hears their own calls only; nothing is audited for a refused one), and a suffix
range on an empty file cannot be satisfied."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from fedele.accounts.tests.factories import user_with_roles
from fedele.contact_center.models import Interaction, Recording
from fedele.contact_center.services.interactions import interaction_create
from fedele.contact_center.telephony.events import call_event_apply
from fedele.contact_center.telephony.port import CallEvent, CallEventKind
from fedele.contact_center.telephony.simulator import silent_wav
from fedele.contact_center.tests.factories import AgentFactory
from fedele.contact_center.web.telephony import parse_range
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)
AUDIO = silent_wav(seconds=1)


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path


def _recording_of(agent_pk: int | None, ref: str) -> Recording:
    interaction = interaction_create(
        channel="voice",
        direction="inbound",
        from_address="+393331234567",
        to_address="+390212345678",
        provider="simulator",
        provider_ref=ref,
        at=T0,
    )
    Interaction.objects.filter(pk=interaction.pk).update(agent_id=agent_pk)
    call_event_apply(
        CallEvent(
            kind=CallEventKind.RECORDING_READY,
            provider="simulator",
            call_ref=ref,
            event_id=f"{ref}:rec",
            at=T0,
            data={"recording_ref": f"{ref}-R", "audio": AUDIO, "duration_seconds": 1},
        )
    )
    return Recording.objects.get(interaction=interaction)


def _listening_agent() -> Any:
    user = user_with_roles("agent")
    user.user_permissions.add(Permission.objects.get(codename="listen_recordings"))
    return AgentFactory(user=user)


def test_a_listening_agent_plays_their_own_call_but_not_a_colleagues() -> None:
    agent = _listening_agent()
    colleague = AgentFactory()
    own = _recording_of(agent.pk, "C-own")
    other = _recording_of(colleague.pk, "C-other")
    client = Client()
    client.force_login(agent.user)

    refused = client.get(f"/contact-center/recordings/{other.public_id}/audio/")
    assert refused.status_code == 404
    assert not AuditLog.objects.filter(action="contact_center.recording_played").exists()

    played = client.get(f"/contact-center/recordings/{own.public_id}/audio/")
    assert played.status_code == 200
    assert b"".join(played.streaming_content) == AUDIO
    assert list(
        AuditLog.objects.filter(action="contact_center.recording_played").values_list("object_id", flat=True)
    ) == [str(own.public_id)]


def test_a_supervisor_still_plays_every_call() -> None:
    recording = _recording_of(AgentFactory().pk, "C-any")
    client = Client()
    client.force_login(user_with_roles("supervisor"))
    response = client.get(f"/contact-center/recordings/{recording.public_id}/audio/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == AUDIO


def test_a_suffix_range_of_an_empty_file_cannot_be_satisfied() -> None:
    with pytest.raises(ValueError):
        parse_range("bytes=-5", 0)
    assert parse_range("bytes=-5", 10) == (5, 9)
    assert parse_range("bytes=-50", 10) == (0, 9)
