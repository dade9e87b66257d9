"""Recordings and voicemail: storage through Django's storage API, audited playback with HTTP range
requests and the listen permission, the retention job deleting exactly the expired files and rows
(time-machine), voicemail boxes (SIP-style audio in the event), notification and callback task,
PCI pauses in the interaction view, and the voice settings pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import time_machine
from django.test import Client

from fedele.accounts.tests.factories import user_with_roles
from fedele.contact_center.models import (
    Interaction,
    InteractionState,
    Outcome,
    QueueTelephonySettings,
    Recording,
    RecordingPause,
    VoicemailBox,
    VoicemailMessage,
    VoiceNumber,
)
from fedele.contact_center.services import recordings, voicemail
from fedele.contact_center.services.interactions import (
    interaction_create,
    interaction_end,
    interaction_enqueue,
)
from fedele.contact_center.telephony.events import call_event_apply
from fedele.contact_center.telephony.port import CallEvent, CallEventKind
from fedele.contact_center.telephony.simulator import silent_wav
from fedele.contact_center.tests.factories import AgentFactory, QueueFactory
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog, Notification

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)
AUDIO = silent_wav(seconds=1)  # 16,044 bytes


@pytest.fixture(autouse=True)
def _media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = tmp_path
    return tmp_path


def call(queue: Any = None, *, ref: str = "C1") -> Interaction:
    interaction = interaction_create(
        channel="voice",
        direction="inbound",
        from_address="+393331234567",
        to_address="+390212345678",
        provider="simulator",
        provider_ref=ref,
        at=T0,
    )
    if queue is not None:
        interaction = interaction_enqueue(interaction=interaction, queue_code=queue.code, at=T0)
    return interaction


def ready(ref: str, kind: CallEventKind, **data: Any) -> CallEvent:
    return CallEvent(
        kind=kind, provider="simulator", call_ref=ref, event_id=f"{ref}:{kind}", at=T0, data=data
    )


def stored_recording(queue: Any = None, *, ref: str = "C1") -> Recording:
    interaction = call(queue, ref=ref)
    call_event_apply(
        ready(ref, CallEventKind.RECORDING_READY, recording_ref=f"{ref}-R", audio=AUDIO, duration_seconds=61)
    )
    return Recording.objects.get(interaction=interaction)


# ------------------------------------------------------------------------------------------- storing


def test_a_recording_with_audio_is_stored_at_once_and_only_once(_media: Path) -> None:
    queue = QueueFactory(code="support")
    QueueTelephonySettings.objects.create(queue=queue, recording_retention_days=90)
    recording = stored_recording(queue)
    assert (recording.state, recording.size_bytes, recording.duration_seconds) == (
        Recording.State.STORED,
        len(AUDIO),
        61,
    )
    assert recording.retain_until == T0 + timedelta(days=90)
    assert (_media / str(recording.audio.name)).read_bytes() == AUDIO
    call_event_apply(ready("C1", CallEventKind.RECORDING_READY, recording_ref="C1-R", audio=AUDIO))
    assert Recording.objects.count() == 1


def test_a_queue_without_retention_keeps_recordings_forever() -> None:
    assert stored_recording(QueueFactory(code="sales")).retain_until is None


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ({"recording_ref": "X"}, "recording_without_audio"),
        ({"recording_ref": "X", "audio": b"not audio at all"}, "invalid_audio"),
        ({"recording_ref": "X", "audio": AUDIO, "duration_seconds": -5}, None),
    ],
)
def test_bad_recordings_are_refused_and_nothing_is_written(data: dict[str, Any], code: str | None) -> None:
    interaction = call()
    if code is None:
        # A negative duration from a provider is read as 0, not refused: the audio is what matters.
        call_event_apply(ready("C1", CallEventKind.RECORDING_READY, **data))
        assert Recording.objects.get().duration_seconds == 0
        return
    with pytest.raises(ValidationFailed) as error:
        recordings.recording_create(
            interaction=interaction, provider="simulator", audio=data.get("audio"), source_url=""
        )
    assert error.value.code == code
    assert Recording.objects.count() == 0


# ------------------------------------------------------------------------------------------- playback


def test_playback_is_audited_and_supports_ranges() -> None:
    recording = stored_recording()
    supervisor = user_with_roles("supervisor")
    client = Client()
    client.force_login(supervisor)
    url = f"/contact-center/recordings/{recording.public_id}/audio/"
    whole = client.get(url)
    assert whole.status_code == 200
    assert b"".join(whole.streaming_content) == AUDIO
    assert (whole["Content-Type"], whole["Content-Length"], whole["Accept-Ranges"]) == (
        "audio/wav",
        str(len(AUDIO)),
        "bytes",
    )
    part = client.get(url, HTTP_RANGE="bytes=4-11")
    assert part.status_code == 206
    assert b"".join(part.streaming_content) == AUDIO[4:12]
    assert part["Content-Range"] == f"bytes 4-11/{len(AUDIO)}"
    tail = client.get(url, HTTP_RANGE="bytes=-4")
    assert b"".join(tail.streaming_content) == AUDIO[-4:]
    open_ended = client.get(url, HTTP_RANGE=f"bytes={len(AUDIO) - 2}-")
    assert b"".join(open_ended.streaming_content) == AUDIO[-2:]
    outside = client.get(url, HTTP_RANGE=f"bytes={len(AUDIO)}-")
    assert outside.status_code == 416
    assert outside["Content-Range"] == f"bytes */{len(AUDIO)}"
    audits = AuditLog.objects.filter(
        action="contact_center.recording_played", object_id=str(recording.public_id)
    )
    assert audits.count() == 5
    assert set(audits.values_list("actor_id", flat=True)) == {supervisor.pk}
    assert sorted((row or {})["range"] for row in audits.values_list("after", flat=True)) == sorted(
        ["", "bytes=4-11", "bytes=-4", f"bytes={len(AUDIO) - 2}-", f"bytes={len(AUDIO)}-"]
    )


def test_without_the_listen_permission_nothing_is_served_or_audited_as_played() -> None:
    recording = stored_recording()
    client = Client()
    client.force_login(user_with_roles("agent"))
    response = client.get(f"/contact-center/recordings/{recording.public_id}/audio/")
    assert response.status_code == 403
    assert not AuditLog.objects.filter(action="contact_center.recording_played").exists()
    assert Client().get(f"/contact-center/recordings/{recording.public_id}/audio/").status_code == 302


def test_unknown_or_pending_recordings_are_not_found() -> None:
    supervisor = user_with_roles("supervisor")
    with pytest.raises(NotFound):
        recordings.playback_open(user=supervisor, public_id="00000000-0000-0000-0000-000000000000")
    interaction = call()
    pending = recordings.recording_create(
        interaction=interaction, provider="twilio", source_url="https://api.twilio.com/x"
    )
    with pytest.raises(NotFound):
        recordings.playback_open(user=supervisor, public_id=str(pending.public_id))
    with pytest.raises(PermissionDenied):
        recordings.playback_open(user=user_with_roles("agent"), public_id=str(pending.public_id))


# ------------------------------------------------------------------------------------------- retention


def test_the_retention_job_deletes_exactly_the_expired_files_and_rows(
    _media: Path, django_capture_on_commit_callbacks: Any
) -> None:
    short = QueueFactory(code="short")
    long = QueueFactory(code="long")
    QueueTelephonySettings.objects.create(
        queue=short, recording_retention_days=30, voicemail_retention_days=7
    )
    QueueTelephonySettings.objects.create(queue=long, recording_retention_days=31)
    old = stored_recording(short, ref="A")
    kept = stored_recording(long, ref="B")
    forever = stored_recording(QueueFactory(code="forever"), ref="C")
    box = VoicemailBox.objects.create(code="short-vm", name="Short", queue=short, create_callback=False)
    message = voicemail.voicemail_create(
        interaction=call(short, ref="D"), box=box, provider="simulator", audio=AUDIO, at=T0
    )
    files = {row.pk: _media / str(row.audio.name) for row in (old, kept, forever)}
    voicemail_file = _media / str(message.audio.name)
    assert all(path.exists() for path in [*files.values(), voicemail_file])

    # Files are deleted once the rows' deletion has committed.
    with (
        time_machine.travel(T0 + timedelta(days=30) - timedelta(seconds=1), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert recordings.recordings_purge_expired() == {"recordings": 0, "voicemail": 1}
    assert not voicemail_file.exists()
    assert not VoicemailMessage.objects.exists()
    with (
        time_machine.travel(T0 + timedelta(days=30), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        counts = recordings.recordings_purge_expired()
    assert counts == {"recordings": 1, "voicemail": 0}
    assert set(Recording.objects.values_list("pk", flat=True)) == {kept.pk, forever.pk}
    assert not files[old.pk].exists()
    assert files[kept.pk].exists() and files[forever.pk].exists()
    expired = AuditLog.objects.filter(action="contact_center.recording_expired")
    assert sorted(expired.values_list("object_id", flat=True)) == sorted(
        [str(old.public_id), str(message.public_id)]
    )
    with (
        time_machine.travel(T0 + timedelta(days=400), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert recordings.recordings_purge_expired() == {"recordings": 1, "voicemail": 0}
    assert not files[kept.pk].exists()
    assert list(Recording.objects.values_list("pk", flat=True)) == [forever.pk]


def test_a_file_already_gone_does_not_stop_the_row_deletion(_media: Path) -> None:
    queue = QueueFactory(code="short")
    QueueTelephonySettings.objects.create(queue=queue, recording_retention_days=1)
    recording = stored_recording(queue)
    (_media / str(recording.audio.name)).unlink()
    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        assert recordings.recordings_purge_expired() == {"recordings": 1, "voicemail": 0}
    assert not Recording.objects.exists()


# ------------------------------------------------------------------------------------------- voicemail


def test_voicemail_from_a_sip_style_event_after_the_hangup(django_capture_on_commit_callbacks: Any) -> None:
    from django.core import mail

    queue = QueueFactory(code="support")
    agent_user = user_with_roles("agent", email="agente@example.it")
    agent = AgentFactory(user=agent_user)
    agent.queues.add(queue)
    box = voicemail.voicemail_box_save(code="giulia", name="Giulia", agent_id=agent.pk)
    interaction = call(queue, ref="SIP-1")
    interaction_end(interaction=interaction, outcome=Outcome.ABANDONED, at=T0 + timedelta(seconds=30))
    with django_capture_on_commit_callbacks(execute=True):
        call_event_apply(
            ready(
                "SIP-1",
                CallEventKind.VOICEMAIL_READY,
                box="giulia",
                audio=AUDIO,
                duration_seconds=12,
                recording_ref="SIP-1-VM",
                transcription="Richiamatemi per la fattura.",
            )
        )
    message = VoicemailMessage.objects.get()
    assert (message.box_id, message.duration_seconds, message.transcription, message.state) == (
        box.pk,
        12,
        "Richiamatemi per la fattura.",
        Recording.State.STORED,
    )
    interaction.refresh_from_db()
    assert interaction.outcome == Outcome.VOICEMAIL  # the message came after the hang-up
    callback = message.callback_interaction
    assert callback is not None
    assert (callback.queue_id, callback.state, callback.attributes["preferred_agent_id"]) == (
        queue.pk,
        InteractionState.QUEUED,
        agent.pk,
    )
    assert Notification.objects.filter(recipient=agent_user).count() == 1
    assert [m.to for m in mail.outbox] == [["agente@example.it"]]
    # The same provider message again: nothing new.
    call_event_apply(
        ready("SIP-1", CallEventKind.VOICEMAIL_READY, box="giulia", audio=AUDIO, recording_ref="SIP-1-VM")
    )
    assert VoicemailMessage.objects.count() == 1
    assert Interaction.objects.filter(attributes__kind="callback").count() == 1


def test_voicemail_to_an_unknown_box_is_refused_and_nothing_is_written() -> None:
    interaction = call(ref="X")
    with pytest.raises(ValidationFailed) as error:
        call_event_apply(ready("X", CallEventKind.VOICEMAIL_READY, box="nobody", audio=AUDIO))
    assert error.value.code == "voicemail_box_not_found"
    assert not VoicemailMessage.objects.exists()
    assert not interaction.events.filter(kind="voicemail.ready").exists()


def test_voicemail_box_rules() -> None:
    queue = QueueFactory(code="q")
    agent = AgentFactory()
    with pytest.raises(ValidationFailed) as both:
        voicemail.voicemail_box_save(code="x", name="X", queue_id=queue.pk, agent_id=agent.pk)
    assert "queue" in both.value.fields
    with pytest.raises(ValidationFailed) as neither:
        voicemail.voicemail_box_save(code="bad code!", name="", max_message_seconds=4)
    assert set(neither.value.fields) == {"queue", "code", "name", "max_message_seconds"}
    assert not VoicemailBox.objects.exists()


def test_voicemail_pages_show_a_box_to_its_people_only() -> None:
    queue = QueueFactory(code="support")
    box = VoicemailBox.objects.create(
        code="support-vm", name="Support line", queue=queue, create_callback=False
    )
    message = voicemail.voicemail_create(interaction=call(queue), box=box, provider="simulator", audio=AUDIO)
    subscriber = user_with_roles("supervisor")
    box.subscribers.add(subscriber)
    outsider = user_with_roles("agent")
    client = Client()
    client.force_login(outsider)
    assert "Support line" not in client.get("/contact-center/voicemail/").content.decode()
    assert client.get(f"/contact-center/voicemail/{box.public_id}/").status_code == 404
    assert client.get(f"/contact-center/voicemail/messages/{message.public_id}/audio/").status_code == 404
    client.force_login(subscriber)
    listing = client.get("/contact-center/voicemail/").content.decode()
    assert "Support line" in listing
    page = client.get(f"/contact-center/voicemail/{box.public_id}/").content.decode()
    assert "+393331234567" in page and "<audio" in page
    audio = client.get(f"/contact-center/voicemail/messages/{message.public_id}/audio/")
    assert b"".join(audio.streaming_content) == AUDIO
    message.refresh_from_db()
    assert message.listened_at is not None
    assert AuditLog.objects.filter(action="contact_center.voicemail_played", actor=subscriber).count() == 1


# ------------------------------------------------------------------------------------------- views


def test_interaction_view_lists_recordings_and_pci_pauses() -> None:
    recording = stored_recording()
    interaction = recording.interaction
    Interaction.objects.filter(pk=interaction.pk).update(answered_at=T0)
    RecordingPause.objects.create(
        interaction=interaction, paused_at=T0 + timedelta(seconds=42), resumed_at=T0 + timedelta(seconds=67)
    )
    client = Client()
    client.force_login(user_with_roles("supervisor"))
    page = client.get(f"/contact-center/interactions/{interaction.public_id}/recordings/").content.decode()
    assert f"/contact-center/recordings/{recording.public_id}/audio/" in page
    assert "(+42 s)" in page and "<td>25</td>" in page
    client.force_login(user_with_roles("agent"))
    assert client.get(f"/contact-center/interactions/{interaction.public_id}/recordings/").status_code == 404


def test_voice_settings_page_saves_and_refuses_bad_values() -> None:
    queue = QueueFactory(code="support", channels=["voice"])
    client = Client()
    client.force_login(user_with_roles("admin"))
    assert client.get("/contact-center/settings/voice/").status_code == 200
    bad = client.post(
        "/contact-center/settings/voice/queues/support/",
        {
            "record_calls": "on",
            "announce_recording": "on",
            "announcement_it": "",
            "recording_retention_days": "0",
        },
    )
    assert bad.status_code == 422
    assert not QueueTelephonySettings.objects.exists()
    good = client.post(
        "/contact-center/settings/voice/queues/support/",
        {
            "record_calls": "on",
            "announce_recording": "on",
            "announcement_it": "Registriamo.",
            "announcement_en": "We record.",
            "recording_retention_days": "180",
            "voicemail_retention_days": "",
        },
    )
    assert good.status_code == 302
    row = QueueTelephonySettings.objects.get(queue=queue)
    assert (row.record_calls, row.recording_retention_days, row.voicemail_retention_days) == (True, 180, None)
    added = client.post(
        "/contact-center/settings/voice/numbers/",
        {"number": "02 1234 5678", "queue": "support", "provider": "simulator", "language": "it"},
    )
    assert added.status_code == 302
    assert VoiceNumber.objects.get().number == "+390212345678"
    refused = client.post(
        "/contact-center/settings/voice/numbers/",
        {"number": "abc", "queue": "nope", "provider": "x", "language": "de"},
    )
    assert refused.status_code == 422
    assert VoiceNumber.objects.count() == 1
    client.force_login(user_with_roles("agent"))
    assert client.get("/contact-center/settings/voice/").status_code == 403


def test_voicemail_boxes_are_managed_on_the_settings_page() -> None:
    queue = QueueFactory(code="support", channels=["voice"])
    client = Client()
    client.force_login(user_with_roles("admin"))
    saved = client.post(
        "/contact-center/settings/voice/boxes/",
        {
            "code": "support-vm",
            "name": "Support",
            "owner": f"queue:{queue.pk}",
            "max_message_seconds": "90",
            "create_callback": "on",
        },
    )
    assert saved.status_code == 302
    box = VoicemailBox.objects.get()
    assert (box.queue_id, box.agent_id, box.max_message_seconds, box.create_callback) == (
        queue.pk,
        None,
        90,
        True,
    )
    refused = client.post(
        "/contact-center/settings/voice/boxes/",
        {"code": "x y", "name": "", "owner": "nobody", "max_message_seconds": "0"},
    )
    assert refused.status_code == 422
    assert VoicemailBox.objects.count() == 1
    assert "support-vm" in client.get("/contact-center/settings/voice/").content.decode()
    client.force_login(user_with_roles("agent"))
    assert client.post("/contact-center/settings/voice/boxes/", {"code": "z", "name": "Z"}).status_code == 403


def test_the_recordings_partial_for_htmx_and_a_page_otherwise() -> None:
    recording = stored_recording()
    client = Client()
    client.force_login(user_with_roles("supervisor"))
    url = f"/contact-center/interactions/{recording.interaction.public_id}/recordings/"
    partial = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    page = client.get(url).content.decode()
    assert partial.lstrip().startswith("<section") and "<html" not in partial
    assert "<html" in page and 'data-testid="interaction-recordings"' in page


def test_jobs_are_scheduled_and_a_lost_fetch_is_retried() -> None:
    import httpx

    from fedele.contact_center.telephony import tasks
    from fedele.contact_center.telephony.registry import adapter_override
    from fedele.contact_center.telephony.twilio import TwilioAdapter
    from fedele.shared.scheduler import PERIODIC_JOBS

    assert (
        PERIODIC_JOBS["contact-center-recordings-retention"].task_name
        == "contact_center.recordings_purge_expired"
    )
    assert PERIODIC_JOBS["contact-center-media-fetch-due"].every_seconds == 300
    interaction = call()
    with time_machine.travel(T0, tick=False):
        pending = recordings.recording_create(
            interaction=interaction,
            provider="twilio",
            provider_ref="RE9",
            source_url="https://api.twilio.com/RE9",
        )
    fetched: list[str] = []

    def serve(request: httpx.Request) -> httpx.Response:
        fetched.append(str(request.url))
        return httpx.Response(200, content=AUDIO)

    adapter = TwilioAdapter(
        account_sid="AC1", auth_token="t", client=httpx.Client(transport=httpx.MockTransport(serve))
    )
    with adapter_override("twilio", adapter):
        with time_machine.travel(T0 + timedelta(minutes=4), tick=False):
            assert tasks.media_fetch_due.delay().get() == 0
        with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
            assert tasks.media_fetch_due.delay().get() == 1
    pending.refresh_from_db()
    assert (pending.state, pending.size_bytes, fetched) == (
        Recording.State.STORED,
        len(AUDIO),
        ["https://api.twilio.com/RE9"],
    )
    assert tasks.recordings_purge_expired.delay().get() == {
        "recordings": 0,
        "voicemail": 0,
        "orphan_files": 0,
    }


def test_demo_data_loads_once(django_capture_on_commit_callbacks: Any) -> None:

    from fedele.contact_center.telephony import demo
    from fedele.shared.demo import DemoContext

    for code in ("billing", "technical"):
        QueueFactory(code=code, channels=["voice"])
    supervisor = user_with_roles("supervisor")
    context = DemoContext(faker=None, seed=1, users={"supervisor@fedele.demo": supervisor})
    with django_capture_on_commit_callbacks(execute=True):
        demo.load(context)
        demo.load(context)
    assert sorted(VoiceNumber.objects.values_list("number", flat=True)) == ["+390212345670", "+390212345671"]
    assert VoicemailMessage.objects.count() == 2 == context.counts["voicemail messages"]
    assert QueueTelephonySettings.objects.get(queue__code="billing").record_calls is True
    assert Notification.objects.filter(recipient=supervisor).count() == 2
    assert Interaction.objects.filter(attributes__kind="callback", state=InteractionState.QUEUED).count() == 2


def test_a_refused_duplicate_leaves_no_audio_file_behind(_media: Path) -> None:
    """Storage is not transactional: the second webhook's row is refused by the unique constraint, and
    the audio it had already saved is deleted again."""
    from django.db import IntegrityError

    interaction = call()
    first = recordings.recording_create(
        interaction=interaction, provider="twilio", provider_ref="RE1", audio=AUDIO
    )
    with pytest.raises(IntegrityError):
        recordings.recording_create(
            interaction=interaction, provider="twilio", provider_ref="RE1", audio=AUDIO
        )
    assert Recording.objects.count() == 1
    assert [path.name for path in _media.rglob("*") if path.is_file()] == [Path(first.audio.name).name]

    box = VoicemailBox.objects.create(
        code="vm", name="Line", queue=QueueFactory(code="vm"), create_callback=False
    )
    message = voicemail.voicemail_create(
        interaction=interaction, box=box, provider="twilio", provider_ref="RE9", audio=AUDIO
    )
    with pytest.raises(IntegrityError):
        voicemail.voicemail_create(
            interaction=interaction, box=box, provider="twilio", provider_ref="RE9", audio=AUDIO
        )
    assert VoicemailMessage.objects.count() == 1
    assert sorted(path.name for path in _media.rglob("*") if path.is_file()) == sorted(
        [Path(first.audio.name).name, Path(message.audio.name).name]
    )
