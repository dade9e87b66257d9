# ruff: noqa: F811 - the S3 fixtures come from test_recordings_s3
"""Audio in an S3 bucket (moto's real HTTP server, as test_recordings_s3): a ranged playback asks the
bucket for the requested bytes only (observed on the wire: every GetObject's Range and the length the
bucket sent back); the orphan sweep deletes exactly the objects no row references after their grace
period, including the one an outer transaction rolled back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.db import transaction
from django.test import Client

from fedele.accounts.tests.factories import user_with_roles
from fedele.contact_center.models import Recording, VoicemailBox, VoicemailMessage
from fedele.contact_center.services import audio_storage, recordings, voicemail
from fedele.contact_center.telephony.simulator import silent_wav
from fedele.contact_center.tests.factories import QueueFactory
from fedele.contact_center.tests.test_recordings_s3 import (  # noqa: F401 - fixtures
    BUCKET,
    T0,
    call,
    objects,
    s3,
    s3_endpoint,
    s3_storage,
)
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db
AUDIO = silent_wav(seconds=10)  # 160,044 bytes: more than two of the view's 64 KiB chunks
SIZE = len(AUDIO)


class WireLog:
    """Every S3 call the storage's client makes, with what the bucket answered."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, int]] = []

    def __call__(self, http_response: Any, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append(
            (model.name, str(parsed.get("ContentRange", "")), int(parsed.get("ContentLength", -1)))
        )


@pytest.fixture
def wire(s3_storage: Path) -> WireLog:
    log = WireLog()
    default_storage.connection.meta.client.meta.events.register("after-call.s3", log)  # type: ignore[attr-defined]
    return log


def _recording() -> Recording:
    return recordings.recording_create(
        interaction=call(), provider="simulator", provider_ref="R1", audio=AUDIO, at=T0
    )


def test_a_range_fetches_only_the_requested_bytes_from_the_bucket(s3: Any, wire: WireLog) -> None:
    recording = _recording()
    client = Client()
    client.force_login(user_with_roles("supervisor"))
    url = f"/contact-center/recordings/{recording.public_id}/audio/"
    cases = [
        ("bytes=0-0", AUDIO[:1], f"bytes 0-0/{SIZE}"),
        ("bytes=-500", AUDIO[-500:], f"bytes {SIZE - 500}-{SIZE - 1}/{SIZE}"),
        ("bytes=30000-30099", AUDIO[30000:30100], f"bytes 30000-30099/{SIZE}"),
        ("bytes=150000-", AUDIO[150000:], f"bytes 150000-{SIZE - 1}/{SIZE}"),
        ("bytes=100-999999", AUDIO[100:], f"bytes 100-{SIZE - 1}/{SIZE}"),
    ]
    for header, expected, content_range in cases:
        wire.calls.clear()
        response = client.get(url, HTTP_RANGE=header)
        body = b"".join(response.streaming_content)
        assert (response.status_code, response["Content-Range"], response["Content-Length"]) == (
            206,
            content_range,
            str(len(expected)),
        ), header
        assert body == expected, header
        # One GET for exactly those bytes: the bucket sent len(expected) bytes, not all 160,044.
        assert wire.calls == [("GetObject", content_range, len(expected))], header


def test_the_whole_file_is_one_streamed_get_and_an_unsatisfiable_range_reads_nothing(
    s3: Any, wire: WireLog
) -> None:
    recording = _recording()
    client = Client()
    client.force_login(user_with_roles("supervisor"))
    url = f"/contact-center/recordings/{recording.public_id}/audio/"
    wire.calls.clear()
    whole = client.get(url)
    assert (whole.status_code, b"".join(whole.streaming_content)) == (200, AUDIO)
    assert wire.calls == [("GetObject", "", SIZE)]
    for header in (f"bytes={SIZE}-", "bytes=-0", "bytes=500-400"):
        wire.calls.clear()
        refused = client.get(url, HTTP_RANGE=header)
        assert (refused.status_code, refused["Content-Range"]) == (416, f"bytes */{SIZE}"), header
        assert wire.calls == [], header


def test_a_voicemail_range_is_read_the_same_way(s3: Any, wire: WireLog) -> None:
    box = VoicemailBox.objects.create(code="main-vm", name="Main", queue=QueueFactory(code="main"))
    message = voicemail.voicemail_create(
        interaction=call(ref="C2"), box=box, provider="simulator", audio=AUDIO, at=T0
    )
    supervisor = user_with_roles("supervisor")
    box.subscribers.add(supervisor)
    client = Client()
    client.force_login(supervisor)
    wire.calls.clear()
    response = client.get(
        f"/contact-center/voicemail/messages/{message.public_id}/audio/", HTTP_RANGE="bytes=44-47"
    )
    assert response.status_code == 206
    assert b"".join(response.streaming_content) == AUDIO[44:48]
    assert wire.calls == [("GetObject", f"bytes 44-47/{SIZE}", 4)]


def test_an_outer_rollback_leaves_an_object_the_sweep_deletes_after_the_grace_period(
    s3: Any, s3_storage: Path, settings
) -> None:
    settings.FEDELE_AUDIO_ORPHAN_GRACE_MINUTES = 30
    kept = _recording()
    box = VoicemailBox.objects.create(code="main-vm", name="Main", queue=QueueFactory(code="main"))
    kept_message = voicemail.voicemail_create(
        interaction=call(ref="C2"), box=box, provider="simulator", audio=AUDIO[:8000], at=T0
    )
    created: dict[str, str] = {}
    with pytest.raises(RuntimeError), transaction.atomic():
        lost = recordings.recording_create(
            interaction=call(ref="C3"), provider="simulator", provider_ref="R3", audio=AUDIO, at=T0
        )
        lost_message = voicemail.voicemail_create(
            interaction=call(ref="C4"), box=box, provider="simulator", audio=AUDIO[:100], at=T0
        )
        created = {"recording": str(lost.audio.name), "voicemail": str(lost_message.audio.name)}
        raise RuntimeError("the call event failed after the audio was stored")
    assert not Recording.objects.filter(provider_ref="R3").exists()
    assert VoicemailMessage.objects.count() == 1
    day = "2026/12/07"
    assert created == {
        "recording": f"contact_center/recordings/{day}/{lost.public_id}-call.wav",
        "voicemail": f"contact_center/voicemail/{day}/{lost_message.public_id}-voicemail.wav",
    }
    # Storage is not transactional: the objects are there until the sweep.
    assert set(objects(s3)) == {kept.audio.name, kept_message.audio.name, *created.values()}
    written = datetime.now(UTC)
    # Within the grace period (a transaction may still be open): nothing is deleted.
    assert audio_storage.audio_orphans_sweep(now=written + timedelta(minutes=29)) == []
    assert len(objects(s3)) == 4
    deleted = audio_storage.audio_orphans_sweep(now=written + timedelta(minutes=31))
    assert deleted == [created["recording"], created["voicemail"]]
    assert objects(s3) == {kept.audio.name: AUDIO, kept_message.audio.name: AUDIO[:8000]}
    assert list(
        AuditLog.objects.filter(action="contact_center.audio_orphan_deleted")
        .order_by("id")
        .values_list("object_type", "object_id")
    ) == [
        ("contact_center.recording", f"{lost.public_id}-call.wav"),
        ("contact_center.voicemailmessage", f"{lost_message.public_id}-voicemail.wav"),
    ]
    # Idempotent: a second run finds nothing more.
    assert audio_storage.audio_orphans_sweep(now=written + timedelta(minutes=90)) == []
    assert list(s3_storage.iterdir()) == []


def test_the_sweep_leaves_files_outside_the_audio_prefixes(s3: Any, s3_storage: Path) -> None:
    s3.put_object(Bucket=BUCKET, Key="contact_center/documents/manual.pdf", Body=b"%PDF-1.4")
    s3.put_object(Bucket=BUCKET, Key="contact_center/recordingsX/2026/a.wav", Body=b"RIFF")
    assert audio_storage.audio_orphans_sweep(now=datetime.now(UTC) + timedelta(days=1)) == []
    assert sorted(objects(s3)) == [
        "contact_center/documents/manual.pdf",
        "contact_center/recordingsX/2026/a.wav",
    ]
