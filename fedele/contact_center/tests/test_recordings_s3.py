"""Recordings and voicemail in an S3-compatible bucket (django-storages), against a real S3 HTTP server
started here (moto's ThreadedMotoServer on 127.0.0.1: boto3 speaks HTTP to it as to any bucket):
the object lands under its exact key with the exact bytes, private, and no local file is written;
playback through the audited view streams it with range support; the retention job deletes the
object; an object already gone, or a bucket that refuses the deletion, does not stop the rows'
deletion. The FEDELE_S3_* variables are read by the settings as documented."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import httpx
import pytest
import time_machine
from django.conf import settings as django_settings
from django.core.files.storage import default_storage
from django.test import Client, override_settings
from moto.server import ThreadedMotoServer

from fedele.accounts.tests.factories import user_with_roles
from fedele.contact_center.models import (
    Interaction,
    QueueTelephonySettings,
    Recording,
    VoicemailBox,
    VoicemailMessage,
)
from fedele.contact_center.services import recordings, voicemail
from fedele.contact_center.services.interactions import interaction_create, interaction_enqueue
from fedele.contact_center.telephony.simulator import silent_wav
from fedele.contact_center.tests.factories import QueueFactory
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 12, 7, 10, 0, 0, tzinfo=UTC)
AUDIO = silent_wav(seconds=1)  # 16,044 bytes
BUCKET = "fedele-recordings"
KEYS = {"aws_access_key_id": "fedele-test", "aws_secret_access_key": "fedele-test-secret"}
REGION = "eu-south-1"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str) -> Iterator[Any]:
    """A boto3 client on an empty bucket of the test's own (the server is reset after each test)."""
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION, **KEYS)
    client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    yield client
    # moto's own reset endpoint: every bucket and object of this server is gone for the next test.
    httpx.post(f"{s3_endpoint}/moto-api/reset").raise_for_status()


@pytest.fixture
def s3_storage(s3: Any, s3_endpoint: str, tmp_path: Path) -> Iterator[Path]:
    """STORAGES["default"] as the settings build it when FEDELE_S3_BUCKET is set, on the test server;
    MEDIA_ROOT is an empty folder that must stay empty."""
    default: dict[str, Any] = django_settings.STORAGES["default"]
    options = {
        **default.get("OPTIONS", {}),
        "bucket_name": BUCKET,
        "endpoint_url": s3_endpoint,
        "region_name": REGION,
        "access_key": KEYS["aws_access_key_id"],
        "secret_key": KEYS["aws_secret_access_key"],
        "addressing_style": "path",
        "default_acl": "private",
        "querystring_auth": False,
        "file_overwrite": False,
    }
    storages = {
        **django_settings.STORAGES,
        "default": {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options},
    }
    media = tmp_path / "media"
    media.mkdir()
    # override_settings sends setting_changed: Django empties its storages cache and default_storage's
    # wrapped instance, and FileFields resolve their storage through default_storage (a lazy object).
    with override_settings(STORAGES=storages, MEDIA_ROOT=media):
        yield media


def objects(s3: Any) -> dict[str, bytes]:
    listing = s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])
    return {item["Key"]: s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read() for item in listing}


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


def test_the_model_field_uses_the_s3_storage_of_the_settings(s3_storage: Path) -> None:
    from storages.backends.s3 import S3Storage  # type: ignore[import-untyped]

    field_storage = Recording._meta.get_field("audio").storage  # type: ignore[attr-defined]
    assert field_storage is default_storage
    assert default_storage.bucket_name == BUCKET  # type: ignore[attr-defined]
    assert type(default_storage._wrapped) is S3Storage  # type: ignore[attr-defined]


def test_a_recording_and_a_voicemail_land_in_the_bucket_private_and_nowhere_else(
    s3: Any, s3_storage: Path
) -> None:
    recording = recordings.recording_create(
        interaction=call(), provider="simulator", provider_ref="R1", audio=AUDIO, at=T0
    )
    box = VoicemailBox.objects.create(
        code="main-vm", name="Main", queue=QueueFactory(code="main"), create_callback=False
    )
    message = voicemail.voicemail_create(
        interaction=call(ref="C2"), box=box, provider="simulator", audio=AUDIO[:8000], at=T0
    )
    recording_key = f"contact_center/recordings/2026/12/07/{recording.public_id}-call.wav"
    voicemail_key = f"contact_center/voicemail/2026/12/07/{message.public_id}-voicemail.wav"
    assert Recording.objects.get().audio.name == recording_key
    assert VoicemailMessage.objects.get().audio.name == voicemail_key
    assert objects(s3) == {recording_key: AUDIO, voicemail_key: AUDIO[:8000]}
    assert (recording.size_bytes, message.size_bytes) == (16044, 8000)
    assert list(s3_storage.iterdir()) == []
    for key in (recording_key, voicemail_key):
        head = s3.head_object(Bucket=BUCKET, Key=key)
        assert head["ContentLength"] == len(AUDIO if key == recording_key else AUDIO[:8000])
        grants = s3.get_object_acl(Bucket=BUCKET, Key=key)["Grants"]
        assert [grant["Permission"] for grant in grants] == ["FULL_CONTROL"]
        assert [grant["Grantee"]["Type"] for grant in grants] == ["CanonicalUser"]
    # No signed URL to leak: the storage's URL is the bare object address, useless without credentials.
    assert "?" not in recording.audio.url
    assert recording.audio.url.endswith(f"/{BUCKET}/{recording_key}")


def test_playback_streams_the_exact_bytes_with_ranges_and_is_audited(s3: Any, s3_storage: Path) -> None:
    recording = recordings.recording_create(
        interaction=call(), provider="simulator", provider_ref="R1", audio=AUDIO, at=T0
    )
    supervisor = user_with_roles("supervisor")
    client = Client()
    client.force_login(supervisor)
    url = f"/contact-center/recordings/{recording.public_id}/audio/"
    whole = client.get(url)
    assert whole.status_code == 200
    assert b"".join(whole.streaming_content) == AUDIO
    assert (whole["Content-Type"], whole["Content-Length"], whole["Accept-Ranges"]) == (
        "audio/wav",
        "16044",
        "bytes",
    )
    part = client.get(url, HTTP_RANGE="bytes=4-11")
    assert part.status_code == 206
    assert b"".join(part.streaming_content) == AUDIO[4:12] == b"\xa4\x3e\x00\x00WAVE"
    assert (part["Content-Range"], part["Content-Length"]) == ("bytes 4-11/16044", "8")
    tail = client.get(url, HTTP_RANGE="bytes=-4")
    assert tail.status_code == 206
    assert b"".join(tail.streaming_content) == AUDIO[-4:]
    assert tail["Content-Range"] == "bytes 16040-16043/16044"
    outside = client.get(url, HTTP_RANGE="bytes=16044-")
    assert (outside.status_code, outside["Content-Range"]) == (416, "bytes */16044")
    audits = AuditLog.objects.filter(
        action="contact_center.recording_played", object_id=str(recording.public_id)
    )
    assert sorted((row or {})["range"] for row in audits.values_list("after", flat=True)) == [
        "",
        "bytes=-4",
        "bytes=16044-",
        "bytes=4-11",
    ]
    assert set(audits.values_list("actor_id", flat=True)) == {supervisor.pk}
    # Without the listen permission: nothing is read from the bucket and nothing is audited as played.
    refused = Client()
    refused.force_login(user_with_roles("agent"))
    assert refused.get(url).status_code == 403
    assert audits.count() == 4


def test_the_retention_job_deletes_the_expired_objects_only(
    s3: Any, s3_storage: Path, django_capture_on_commit_callbacks: Any
) -> None:
    short = QueueFactory(code="short")
    QueueTelephonySettings.objects.create(
        queue=short, recording_retention_days=30, voicemail_retention_days=7
    )
    old = recordings.recording_create(
        interaction=call(short, ref="A"), provider="simulator", provider_ref="A-R", audio=AUDIO, at=T0
    )
    kept = recordings.recording_create(
        interaction=call(ref="B"), provider="simulator", provider_ref="B-R", audio=AUDIO, at=T0
    )
    box = VoicemailBox.objects.create(code="short-vm", name="Short", queue=short, create_callback=False)
    message = voicemail.voicemail_create(
        interaction=call(short, ref="D"), box=box, provider="simulator", audio=AUDIO, at=T0
    )
    old_key, kept_key, message_key = (str(row.audio.name) for row in (old, kept, message))
    assert set(objects(s3)) == {old_key, kept_key, message_key}

    with (
        time_machine.travel(T0 + timedelta(days=7), tick=False),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        assert recordings.recordings_purge_expired() == {"recordings": 0, "voicemail": 1}
    assert len(callbacks) == 1
    assert set(objects(s3)) == {old_key, kept_key}
    with (
        time_machine.travel(T0 + timedelta(days=30), tick=False),
        django_capture_on_commit_callbacks(execute=True),
    ):
        assert recordings.recordings_purge_expired() == {"recordings": 1, "voicemail": 0}
    assert objects(s3) == {kept_key: AUDIO}
    assert list(Recording.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not VoicemailMessage.objects.exists()
    assert sorted(
        AuditLog.objects.filter(action="contact_center.recording_expired").values_list("object_id", flat=True)
    ) == sorted([str(old.public_id), str(message.public_id)])


def test_an_object_already_gone_does_not_stop_the_row_deletion(
    s3: Any, s3_storage: Path, django_capture_on_commit_callbacks: Any
) -> None:
    queue = QueueFactory(code="short")
    QueueTelephonySettings.objects.create(queue=queue, recording_retention_days=1)
    gone = recordings.recording_create(
        interaction=call(queue, ref="A"), provider="simulator", provider_ref="A-R", audio=AUDIO, at=T0
    )
    there = recordings.recording_create(
        interaction=call(queue, ref="B"), provider="simulator", provider_ref="B-R", audio=AUDIO, at=T0
    )
    s3.delete_object(Bucket=BUCKET, Key=str(gone.audio.name))
    assert set(objects(s3)) == {str(there.audio.name)}
    with (
        time_machine.travel(T0 + timedelta(days=2), tick=False),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
    ):
        assert recordings.recordings_purge_expired() == {"recordings": 2, "voicemail": 0}
    assert len(callbacks) == 2
    assert not Recording.objects.exists()
    assert objects(s3) == {}


def test_storage_unreachable_at_deletion_does_not_stop_the_purge(
    s3: Any, s3_storage: Path, django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The S3 server cannot be reached when the files are deleted (a botocore error, not an OSError):
    every expired row is still deleted and audited, each failure is logged with the object's key."""
    import socket

    from botocore.config import Config  # type: ignore[import-untyped]

    queue = QueueFactory(code="short")
    QueueTelephonySettings.objects.create(queue=queue, recording_retention_days=1)
    rows = [
        recordings.recording_create(
            interaction=call(queue, ref=ref),
            provider="simulator",
            provider_ref=f"{ref}-R",
            audio=AUDIO,
            at=T0,
        )
        for ref in ("A", "B")
    ]
    with socket.socket() as probe:  # a local port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    s3_default: dict[str, Any] = django_settings.STORAGES["default"]
    storages = {
        **django_settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                **s3_default["OPTIONS"],
                "endpoint_url": f"http://127.0.0.1:{closed_port}",
                "client_config": Config(retries={"max_attempts": 1, "mode": "standard"}, connect_timeout=2),
            },
        },
    }
    with (
        override_settings(STORAGES=storages),
        time_machine.travel(T0 + timedelta(days=2), tick=False),
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        caplog.at_level("ERROR", logger="fedele.contact_center.services.recordings"),
    ):
        assert recordings.recordings_purge_expired() == {"recordings": 2, "voicemail": 0}
    assert len(callbacks) == 2
    assert not Recording.objects.exists()
    assert AuditLog.objects.filter(action="contact_center.recording_expired").count() == 2
    assert [record.getMessage() for record in caplog.records if record.name.startswith("fedele.")] == [
        f"Could not delete audio {row.audio.name}" for row in rows
    ]
    # The objects are still in the bucket (the log names them for a manual clean-up).
    assert set(objects(s3)) == {str(row.audio.name) for row in rows}


def test_the_settings_read_the_fedele_s3_variables() -> None:
    script = (
        "import json, config.settings.base as s; print(json.dumps(s.STORAGES['default'], sort_keys=True))"
    )
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("FEDELE_S3_")}
    base_env["DJANGO_SECRET_KEY"] = base_env.get("DJANGO_SECRET_KEY", "x" * 50)

    def storage_for(extra: dict[str, str]) -> Any:
        result = subprocess.run(  # noqa: S603 - this interpreter, a fixed script
            [sys.executable, "-c", script],
            env={**base_env, **extra},
            cwd=django_settings.BASE_DIR,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return json.loads(result.stdout.strip().splitlines()[-1])

    assert storage_for({}) == {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    assert storage_for(
        {
            "FEDELE_S3_BUCKET": "calls",
            "FEDELE_S3_ENDPOINT_URL": "https://s3.example.net",
            "FEDELE_S3_REGION": "eu-central-1",
            "FEDELE_S3_ACCESS_KEY_ID": "AKID",
            "FEDELE_S3_SECRET_ACCESS_KEY": "SECRET",
            "FEDELE_S3_PATH_STYLE": "true",
        }
    ) == {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "access_key": "AKID",
            "addressing_style": "path",
            "bucket_name": "calls",
            "default_acl": "private",
            "endpoint_url": "https://s3.example.net",
            "file_overwrite": False,
            "max_memory_size": 8388608,
            "querystring_auth": False,
            "region_name": "eu-central-1",
            "secret_key": "SECRET",
        },
    }
    assert storage_for({"FEDELE_S3_BUCKET": "calls"})["OPTIONS"] == {
        "access_key": None,
        "addressing_style": None,
        "bucket_name": "calls",
        "default_acl": "private",
        "endpoint_url": None,
        "file_overwrite": False,
        "max_memory_size": 8388608,
        "querystring_auth": False,
        "region_name": None,
        "secret_key": None,
    }
