"""The fax port of document-on-demand: a ``FaxProvider`` sends one document to one number.

Adapters:

- ``SpoolFaxProvider`` (default): writes ``<reference>.pdf`` and ``<reference>.json`` (number, file name)
  into ``settings.FEDELE_FAX_SPOOL_DIR`` for a local fax gateway (HylaFAX, t38modem, a gateway
  watching the folder) to pick up. The same reference overwrites the same files: a retry sends once.
- ``HttpFaxProvider``: POSTs the document as multipart/form-data to ``settings.FEDELE_FAX_HTTP_URL``
  with a bearer token (``FEDELE_FAX_HTTP_TOKEN``) and the reference as ``Idempotency-Key``; the
  provider's JSON answer carries its ``id``.

``settings.FEDELE_FAX_PROVIDER`` picks the adapter ("spool" or "http").
"""

from __future__ import annotations

import abc
import json
import os
import re
from pathlib import Path

import httpx
from django.conf import settings

__all__ = ["FaxProvider", "FaxSendFailed", "HttpFaxProvider", "SpoolFaxProvider", "fax_provider"]

_REFERENCE = re.compile(r"^[A-Za-z0-9_\-]{1,80}$")


class FaxSendFailed(Exception):
    pass


class FaxProvider(abc.ABC):
    name: str

    @abc.abstractmethod
    def send(
        self, *, to_number: str, file_name: str, content: bytes, content_type: str, reference: str
    ) -> str:
        """Hand the document over; returns the provider's id for the fax. ``reference`` is ours and the
        same on a retry."""


class SpoolFaxProvider(FaxProvider):
    name = "spool"

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def send(
        self, *, to_number: str, file_name: str, content: bytes, content_type: str, reference: str
    ) -> str:
        if not _REFERENCE.match(reference):
            raise FaxSendFailed(f"bad reference {reference!r}")
        self.directory.mkdir(parents=True, exist_ok=True)
        document = self.directory / f"{reference}.pdf"
        meta = self.directory / f"{reference}.json"
        # Write under a temporary name and rename, so the gateway never reads half a file; the
        # metadata goes last because the gateway starts on seeing it.
        for path, data in (
            (document, content),
            (
                meta,
                json.dumps({"to": to_number, "file_name": file_name, "content_type": content_type}).encode(),
            ),
        ):
            partial = path.with_suffix(path.suffix + ".part")
            partial.write_bytes(data)
            os.replace(partial, path)
        return reference


class HttpFaxProvider(FaxProvider):
    name = "http"

    def __init__(self, url: str, token: str, *, client: httpx.Client | None = None) -> None:
        self.url = url
        self.token = token
        self.client = client or httpx.Client(timeout=30.0)

    def send(
        self, *, to_number: str, file_name: str, content: bytes, content_type: str, reference: str
    ) -> str:
        try:
            response = self.client.post(
                self.url,
                headers={"Authorization": f"Bearer {self.token}", "Idempotency-Key": reference},
                data={"to": to_number, "reference": reference},
                files={"document": (file_name, content, content_type)},
            )
        except httpx.HTTPError as error:
            raise FaxSendFailed(f"fax provider unreachable: {error}") from error
        if response.status_code >= 400:
            raise FaxSendFailed(f"fax provider refused ({response.status_code}): {response.text[:200]}")
        try:
            payload = response.json()
        except ValueError as error:
            raise FaxSendFailed("fax provider answered without JSON") from error
        # Any JSON but an object (a list, a string) is an answer without an id, not a crash that
        # escapes the send log's error handling.
        provider_id = str(payload.get("id") or "") if isinstance(payload, dict) else ""
        if not provider_id:
            raise FaxSendFailed("fax provider answered without an id")
        return provider_id


def fax_provider() -> FaxProvider:
    kind = str(getattr(settings, "FEDELE_FAX_PROVIDER", "spool"))
    if kind == "http":
        return HttpFaxProvider(
            str(getattr(settings, "FEDELE_FAX_HTTP_URL", "")),
            str(getattr(settings, "FEDELE_FAX_HTTP_TOKEN", "")),
        )
    default_dir = Path(str(getattr(settings, "MEDIA_ROOT", "var"))) / "fax-spool"
    return SpoolFaxProvider(getattr(settings, "FEDELE_FAX_SPOOL_DIR", None) or default_dir)
