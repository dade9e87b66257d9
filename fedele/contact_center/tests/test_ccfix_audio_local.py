"""Local storage: audio stored by a create whose OUTER transaction then rolls back is deleted by the
hourly retention task's orphan sweep once the grace period has passed, and only that audio; ranged
playback still reads local files."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import transaction
from django.test import Client

from fedele.accounts.tests.factories import user_with_roles
from fedele.contact_center.models import Recording, VoicemailBox, VoicemailMessage
from fedele.contact_center.services import audio_storage, recordings, voicemail
from fedele.contact_center.services.interactions import interaction_create
from fedele.contact_center.telephony import tasks
from fedele.contact_center.telephony.simulator import silent_wav
from fedele.contact_center.tests.factories import QueueFactory

pytestmark = pytest.mark.django_db
T0 = datetime(2028, 2, 29, 23, 30, tzinfo=UTC)  # leap day, late evening UTC (already 1 March in Rome)
AUDIO = silent_wav(seconds=1)


@pytest.fixture(autouse=True)
def media(settings, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.FEDELE_AUDIO_ORPHAN_GRACE_MINUTES = 60
    return tmp_path / "media"


def _files(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*") if path.is_file())


def _call(ref: str):
    return interaction_create(
        channel="voice",
        direction="inbound",
        from_address="+393331234567",
        to_address="+390212345678",
        provider="simulator",
        provider_ref=ref,
        at=T0,
    )


def _age(root: Path, name: str, moment: datetime) -> None:
    os.utime(root / name, (moment.timestamp(), moment.timestamp()))


def test_an_outer_rollback_after_the_creates_leaves_no_file_after_the_sweep(media: Path) -> None:
    box = VoicemailBox.objects.create(code="main-vm", name="Main", queue=QueueFactory(code="main"))
    kept = recordings.recording_create(interaction=_call("C1"), provider="simulator", audio=AUDIO, at=T0)
    with pytest.raises(RuntimeError), transaction.atomic():
        lost = recordings.recording_create(interaction=_call("C2"), provider="simulator", audio=AUDIO, at=T0)
        lost_message = voicemail.voicemail_create(
            interaction=_call("C3"), box=box, provider="simulator", audio=AUDIO[:300], at=T0
        )
        raise RuntimeError("the webhook's transaction failed after the creates")
    assert (Recording.objects.count(), VoicemailMessage.objects.count()) == (1, 0)
    lost_key = f"contact_center/recordings/2028/02/29/{lost.public_id}-call.wav"
    lost_message_key = f"contact_center/voicemail/2028/02/29/{lost_message.public_id}-voicemail.wav"
    assert _files(media) == sorted([kept.audio.name, lost_key, lost_message_key])
    for name in _files(media):
        _age(media, name, T0)
    # 59 minutes on: a transaction might still be open; nothing goes.
    assert audio_storage.audio_orphans_sweep(now=T0 + timedelta(minutes=59)) == []
    assert len(_files(media)) == 3
    # The hourly task, an hour on: exactly the two orphans go; the committed recording stays.
    with time_machine.travel(T0 + timedelta(minutes=60), tick=False):
        assert tasks.recordings_purge_expired.delay().get() == {
            "recordings": 0,
            "voicemail": 0,
            "orphan_files": 2,
        }
    assert _files(media) == [kept.audio.name]
    assert (media / str(kept.audio.name)).read_bytes() == AUDIO


def test_a_file_of_a_committed_row_is_never_swept_however_old(media: Path) -> None:
    kept = recordings.recording_create(interaction=_call("C1"), provider="simulator", audio=AUDIO, at=T0)
    _age(media, kept.audio.name, T0 - timedelta(days=400))
    assert audio_storage.audio_orphans_sweep(now=T0 + timedelta(days=1)) == []
    assert _files(media) == [kept.audio.name]


def test_the_sweep_with_no_audio_folder_yet_deletes_nothing(media: Path) -> None:
    assert audio_storage.audio_orphans_sweep(now=T0) == []
    assert not media.exists() or _files(media) == []


def test_local_ranges_still_play(media: Path) -> None:
    recording = recordings.recording_create(interaction=_call("C1"), provider="simulator", audio=AUDIO, at=T0)
    client = Client()
    client.force_login(user_with_roles("supervisor"))
    url = f"/contact-center/recordings/{recording.public_id}/audio/"
    for header, expected in (
        ("bytes=0-0", AUDIO[:1]),
        ("bytes=-500", AUDIO[-500:]),
        ("bytes=8000-8099", AUDIO[8000:8100]),
        ("bytes=16000-", AUDIO[16000:]),
    ):
        response = client.get(url, HTTP_RANGE=header)
        assert (response.status_code, b"".join(response.streaming_content)) == (206, expected), header
    whole = client.get(url)
    assert (whole.status_code, b"".join(whole.streaming_content)) == (200, AUDIO)
    assert client.get(url, HTTP_RANGE="bytes=16044-").status_code == 416
