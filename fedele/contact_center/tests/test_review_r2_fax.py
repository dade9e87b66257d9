"""Review R2: the HTTP fax adapter turns any answer it cannot use into FaxSendFailed (a JSON list or
string used to raise AttributeError, which the document sender does not catch)."""

from __future__ import annotations

import httpx
import pytest

from fedele.contact_center.ivr.fax import FaxSendFailed, HttpFaxProvider


def _provider(response: httpx.Response) -> HttpFaxProvider:
    client = httpx.Client(transport=httpx.MockTransport(lambda request: response))
    return HttpFaxProvider("https://fax.example.it/send", "token", client=client)


def _send(provider: HttpFaxProvider) -> str:
    return provider.send(
        to_number="+390212345678",
        file_name="manuale.pdf",
        content=b"%PDF-1.4",
        content_type="application/pdf",
        reference="doc-1",
    )


@pytest.mark.parametrize("body", [b'[{"id": "F1"}]', b'"F1"', b"7", b"null"])
def test_json_that_is_not_an_object_is_a_failed_send(body: bytes) -> None:
    answer = httpx.Response(200, content=body, headers={"Content-Type": "application/json"})
    with pytest.raises(FaxSendFailed, match="without an id"):
        _send(_provider(answer))


def test_an_object_with_an_id_is_the_provider_id() -> None:
    assert _send(_provider(httpx.Response(200, json={"id": "F42"}))) == "F42"
