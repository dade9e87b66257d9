"""Twilio's webhook parameters → normalised ``CallEvent``s, and the TwiML we answer with.

Parameter names are Twilio's (https://www.twilio.com/docs/voice/twiml#request-parameters and the
status/recording callback references): CallSid, AccountSid, From, To, CallStatus, Direction,
AnsweredBy, SequenceNumber, Timestamp, RecordingSid, RecordingUrl, RecordingStatus, RecordingDuration,
Digits. Twilio gives no id per callback, so the event id is built from what identifies the callback:
the call and its status (and the sequence number Twilio adds when it reports several events), or the
recording and its status. A retried callback therefore carries the same id and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from fedele.contact_center.telephony.port import CallEvent, CallEventKind
from fedele.contact_center.telephony.twilio import PROVIDER
from fedele.shared import clock

# CallStatus → normalised kind (https://www.twilio.com/docs/voice/api/call-resource#call-status-values).
STATUS_KINDS = {
    "queued": CallEventKind.NEW,
    "initiated": CallEventKind.NEW,
    "ringing": CallEventKind.RINGING,
    "in-progress": CallEventKind.ANSWERED,
    "answered": CallEventKind.ANSWERED,
    "completed": CallEventKind.HANGUP,
    "busy": CallEventKind.HANGUP,
    "no-answer": CallEventKind.HANGUP,
    "failed": CallEventKind.HANGUP,
    "canceled": CallEventKind.HANGUP,
}


class UnusableCallback(ValueError):
    """Signed by Twilio but not something we act on (unknown status, missing CallSid)."""


def _first(params: Mapping[str, Any], name: str) -> str:
    value = params.get(name, "")
    if isinstance(value, (list, tuple)):
        value = value[0] if value else ""
    return str(value).strip()


def _direction(params: Mapping[str, Any]) -> str:
    # Twilio: "inbound", "outbound-api" (REST), "outbound-dial" (a <Dial> leg).
    return "outbound" if _first(params, "Direction").startswith("outbound") else "inbound"


def callback_time(params: Mapping[str, Any]) -> datetime:
    """Twilio's ``Timestamp`` (RFC 2822, UTC) when present, else now."""
    stamp = _first(params, "Timestamp")
    if stamp:
        try:
            moment = parsedate_to_datetime(stamp)
        except (TypeError, ValueError):
            return clock.now()
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return clock.now()


def _call_sid(params: Mapping[str, Any]) -> str:
    sid = _first(params, "CallSid")
    if not sid or len(sid) > 120:
        raise UnusableCallback("CallSid missing")
    return sid


def _base(params: Mapping[str, Any], kind: CallEventKind, event_id: str, data: dict[str, Any]) -> CallEvent:
    return CallEvent(
        kind=kind,
        provider=PROVIDER,
        call_ref=_call_sid(params),
        event_id=event_id,
        at=callback_time(params),
        direction=_direction(params),
        from_number=_first(params, "From")[:200],
        to_number=_first(params, "To")[:200],
        data=data,
    )


def voice_event(params: Mapping[str, Any]) -> CallEvent:
    """The voice webhook: a call arrived (``call.new``)."""
    sid = _call_sid(params)
    data: dict[str, Any] = {"status": _first(params, "CallStatus"), "account": _first(params, "AccountSid")}
    if _first(params, "CallerName"):
        data["caller_name"] = _first(params, "CallerName")[:120]
    if _first(params, "ForwardedFrom"):
        data["forwarded_from"] = _first(params, "ForwardedFrom")[:40]
    return _base(params, CallEventKind.NEW, f"{sid}:voice", data)


def status_event(params: Mapping[str, Any], *, interaction: str = "") -> CallEvent:
    """A status callback (``CallStatus``) as its normalised kind."""
    sid = _call_sid(params)
    status = _first(params, "CallStatus")
    kind = STATUS_KINDS.get(status)
    if kind is None:
        raise UnusableCallback(f"unknown CallStatus {status!r}")
    sequence = _first(params, "SequenceNumber")
    event_id = f"{sid}:{status}" + (f":{sequence}" if sequence else "")
    data: dict[str, Any] = {"status": status}
    for name, key in (
        ("AnsweredBy", "answered_by"),
        ("CallDuration", "call_duration"),
        ("SipResponseCode", "sip"),
    ):
        if _first(params, name):
            data[key] = _first(params, name)
    if interaction:
        data["interaction"] = interaction
    return _base(params, kind, event_id, data)


def recording_event(params: Mapping[str, Any], *, kind: CallEventKind, box: str = "") -> CallEvent | None:
    """A recording status callback (or the ``<Record>`` action): ``recording.ready`` /
    ``voicemail.ready`` once the recording is complete; None for the other statuses."""
    sid = _first(params, "RecordingSid")
    status = _first(params, "RecordingStatus") or "completed"
    if not sid or status != "completed":
        return None
    url = _first(params, "RecordingUrl")
    data: dict[str, Any] = {
        "recording_ref": sid[:120],
        "url": url[:500],
        "duration_seconds": _first(params, "RecordingDuration") or "0",
    }
    if box:
        data["box"] = box
    return _base(params, kind, f"{sid}:{status}", data)


def digits_event(params: Mapping[str, Any]) -> CallEvent:
    """The caller's keys from a ``<Gather>`` (``call.dtmf``). Twilio gives a Gather action no id of
    its own, so these are not deduplicated here (the IVR engine refuses input it is not waiting for)."""
    digits = _first(params, "Digits")[:40]
    return _base(params, CallEventKind.DTMF, "", {"digits": digits})
