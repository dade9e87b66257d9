"""Where recordings and voicemail audio meet storage (local files or an S3-compatible bucket).

Ranged reads. Playback with an HTTP ``Range`` asks storage for those bytes only: on S3 one
``GetObject`` with ``Range: bytes=a-b`` whose body is streamed (django-storages' ``S3File`` would
download the whole object into a temporary file on the first read, whatever was asked); on local
storage the file is opened and seeked. A whole-file request streams the object the same way.

Audio left behind by a transaction that did not commit. Storage is not transactional and Django has no
``on_rollback``. The audio is written under its final key inside the create's transaction, so a row
that commits always has its file (no copy or rename after commit, no second write of a large file).
What can go wrong is the other way round: the create succeeded, but an OUTER transaction (the call
event, the webhook) rolled back afterwards, and the file has no row. Two things handle that:

- a create that fails itself deletes its file at once (``recordings.audio_dropped_on_failure``);
- ``audio_orphans_sweep`` (run by the hourly retention job) lists the audio prefixes and deletes every
  file older than ``FEDELE_AUDIO_ORPHAN_GRACE_MINUTES`` (default 60) that no recording or voicemail
  row references. The grace period covers a transaction still open when the sweep looks (its row is
  not visible yet); a file is judged only by rows that committed, so the sweep is correct on SQLite and
  PostgreSQL alike and needs no bookkeeping row written outside the transaction (which SQLite could not
  do while the transaction holds its write lock).
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import IO, Any

from django.conf import settings
from django.db.models.fields.files import FieldFile

from fedele.contact_center.models import Recording, VoicemailMessage
from fedele.shared import audit, clock

logger = logging.getLogger(__name__)

AUDIO_PREFIXES: tuple[tuple[str, type[Recording] | type[VoicemailMessage]], ...] = (
    ("contact_center/recordings/", Recording),
    ("contact_center/voicemail/", VoicemailMessage),
)
DEFAULT_ORPHAN_GRACE_MINUTES = 60
_LOOKUP_BATCH = 500


# ------------------------------------------------------------------------------------------- ranges


def _s3_bucket(storage: Any) -> Any | None:
    """The boto3 bucket behind an S3 storage (django-storages), None for any other storage."""
    if not callable(getattr(storage, "_normalize_name", None)) or not hasattr(storage, "bucket_name"):
        return None
    return storage.bucket


def _s3_key(storage: Any, name: str) -> str:
    from storages.utils import clean_name  # type: ignore[import-untyped]

    return str(storage._normalize_name(clean_name(name)))


def open_byte_range(audio: FieldFile, first: int, last: int, *, whole: bool = False) -> IO[bytes]:
    """A stream of bytes ``first``..``last`` (inclusive) of the stored file; ``whole``: the entire
    file (``first`` = 0). The caller reads at most ``last - first + 1`` bytes and closes it."""
    storage = audio.storage
    bucket = _s3_bucket(storage)
    if bucket is None:
        handle = storage.open(str(audio.name), "rb")
        handle.seek(first)
        return handle
    arguments: dict[str, Any] = {}
    if not whole:
        arguments["Range"] = f"bytes={first}-{last}"
    body: IO[bytes] = bucket.Object(_s3_key(storage, str(audio.name))).get(**arguments)["Body"]
    return body


# ------------------------------------------------------------------------------------------- orphans


def orphan_grace() -> timedelta:
    minutes = getattr(settings, "FEDELE_AUDIO_ORPHAN_GRACE_MINUTES", DEFAULT_ORPHAN_GRACE_MINUTES)
    return timedelta(minutes=int(minutes))


def _stored_files(storage: Any, prefix: str) -> Iterator[tuple[str, datetime]]:
    """(name as a FileField keeps it, last modified) of every file under ``prefix``."""
    bucket = _s3_bucket(storage)
    if bucket is not None:
        location = str(getattr(storage, "location", "") or "").strip("/")
        paginator = storage.connection.meta.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=storage.bucket_name, Prefix=_s3_key(storage, prefix)):
            for entry in page.get("Contents", ()):
                key = str(entry["Key"])
                name = key[len(location) :].lstrip("/") if location else key
                yield name, entry["LastModified"]
        return
    if not storage.exists(prefix):
        return
    folders = [prefix.rstrip("/")]
    while folders:
        folder = folders.pop()
        directories, files = storage.listdir(folder)
        folders.extend(posixpath.join(folder, directory) for directory in sorted(directories))
        for file_name in sorted(files):
            name = posixpath.join(folder, file_name)
            yield name, storage.get_modified_time(name)


def audio_orphans_sweep(*, now: datetime | None = None, limit: int = 10_000) -> list[str]:
    """Delete audio files that no recording or voicemail row references, older than the grace period
    (see the module docstring). Returns the deleted names, each audited. A file that cannot be deleted
    is logged and left for the next run."""
    from fedele.contact_center.services.recordings import _delete_file

    moment = now or clock.now()
    cutoff = moment - orphan_grace()
    deleted: list[str] = []
    for prefix, model in AUDIO_PREFIXES:
        storage = model._meta.get_field("audio").storage
        candidates = [name for name, modified in _stored_files(storage, prefix) if modified <= cutoff]
        for start in range(0, len(candidates), _LOOKUP_BATCH):
            batch = candidates[start : start + _LOOKUP_BATCH]
            referenced = set(model.objects.filter(audio__in=batch).values_list("audio", flat=True))
            for name in batch:
                if name in referenced or len(deleted) >= limit:
                    continue
                if not _delete_file(storage, name):
                    continue
                deleted.append(name)
                audit.record(
                    action="contact_center.audio_orphan_deleted",
                    object_type=f"contact_center.{model._meta.model_name}",
                    object_id=posixpath.basename(name)[:64],
                    before={"file": name},
                )
    if deleted:
        logger.info("Deleted %d audio files no row referenced", len(deleted))
    return deleted
