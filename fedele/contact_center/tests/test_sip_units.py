"""The SIP adapter's building blocks, without a network: SIP message parsing, SDP negotiation, RTP,
G.711 (bit-exact with the reference tables), RFC 4733 DTMF detection with its redundant end packets,
prompts and WAV files, and where a call is handed for an agent."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from django.test import override_settings

from fedele.contact_center.models import Agent
from fedele.contact_center.telephony.sip import audio
from fedele.contact_center.telephony.sip.application import agent_uri, display_name_of, number_of
from fedele.contact_center.telephony.sip.message import (
    SipParseError,
    parse_message,
    response_to,
    salvage_response,
    split_comma_values,
)
from fedele.contact_center.telephony.sip.rtp import (
    DtmfDetector,
    RtpError,
    RtpPacket,
    dtmf_packets,
    g711_decode,
    g711_encode,
    parse_rtp,
    parse_telephone_event,
    telephone_event_payload,
)
from fedele.contact_center.telephony.sip.sdp import SdpError, build_answer, negotiate, parse_offer

INVITE = (
    "INVITE sip:+390600000001@10.0.0.5 SIP/2.0\r\n"
    "v: SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKfirst\r\n"
    "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKsecond, SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKthird\r\n"
    'f: "Rossi, Mario" <sip:+390612345678@pbx.example>;tag=abc\r\n'
    "t: <sip:+390600000001@pbx.example>\r\n"
    "i: call-1@pbx\r\n"
    "CSeq: 7 INVITE\r\n"
    "Subject: a folded\r\n  header\r\n"
    "c: application/sdp\r\n"
    "l: 5\r\n"
    "\r\n"
    "v=0\r\nEXTRA"
)


def _packet(timestamp: int, digit: str, *, end: bool, duration: int = 800, sequence: int = 1) -> RtpPacket:
    return RtpPacket(
        payload_type=101,
        sequence=sequence,
        timestamp=timestamp,
        ssrc=1,
        payload=telephone_event_payload(digit, end=end, duration=duration),
    )


# ---- SIP messages ----------------------------------------------------------------------------------


def test_a_request_with_compact_and_folded_headers_parses() -> None:
    message = parse_message(INVITE.encode())
    assert (message.method, message.uri) == ("INVITE", "sip:+390600000001@10.0.0.5")
    assert message.call_id == "call-1@pbx"
    assert message.cseq == (7, "INVITE")
    assert message.from_tag == "abc"
    assert message.to_tag == ""
    assert message.top_branch == "z9hG4bKfirst"
    assert message.header_values("Via") == [
        "SIP/2.0/UDP 10.0.0.9:5060;branch=z9hG4bKfirst",
        "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKsecond",
        "SIP/2.0/UDP 10.0.0.2;branch=z9hG4bKthird",
    ]
    assert message.header("Subject") == "a folded header"
    assert message.body == b"v=0\r\n"  # Content-Length frames the body; the rest is dropped


def test_a_response_copies_the_transaction_headers_and_adds_our_tag() -> None:
    response = response_to(parse_message(INVITE.encode()), 180, to_tag="ourtag")
    text = response.to_bytes().decode()
    assert text.startswith("SIP/2.0 180 Ringing\r\n")
    assert text.count("Via: ") == 3
    assert "To: <sip:+390600000001@pbx.example>;tag=ourtag\r\n" in text
    assert "CSeq: 7 INVITE\r\n" in text
    assert text.endswith("Content-Length: 0\r\n\r\n")
    assert parse_message(text.encode()).to_tag == "ourtag"


@pytest.mark.parametrize(
    ("mutation", "error"),
    [
        (lambda text: text.replace("l: 5", "l: 500"), "shorter than Content-Length"),
        (lambda text: text.replace("l: 5", "l: five"), "bad Content-Length"),
        (lambda text: text.replace("CSeq: 7 INVITE", "CSeq: 7 BYE"), "does not match"),
        (lambda text: text.replace("i: call-1@pbx\r\n", ""), "missing Call-ID"),
        (lambda text: text.replace("SIP/2.0\r\n", "SIP/3.0\r\n", 1), "bad start line"),
        (lambda text: text.replace("CSeq: 7", "CSeq 7"), "bad header line"),
        (lambda text: text.replace("\r\n\r\n", "\r\n"), "no end of headers"),
    ],
)
def test_malformed_messages_are_refused(mutation, error: str) -> None:
    with pytest.raises(SipParseError, match=error):
        parse_message(mutation(INVITE).encode())


def test_non_utf8_empty_and_oversized_datagrams_are_refused() -> None:
    for data in (b"", b"\xff\xfe\r\n\r\n", b"x" * 70_000):
        with pytest.raises(SipParseError):
            parse_message(data)


def test_a_400_is_salvaged_only_for_an_addressable_request() -> None:
    broken = INVITE.replace("CSeq: 7 INVITE\r\n", "").encode()
    reply = salvage_response(broken, 400)
    assert reply is not None and reply.startswith(b"SIP/2.0 400 Bad Request\r\n")
    assert b"Call-ID: call-1@pbx\r\n" in reply
    assert salvage_response(INVITE.replace("i: call-1@pbx\r\n", "").encode(), 400) is None  # no Call-ID
    assert salvage_response(INVITE.replace("INVITE sip", "ACK sip", 1).encode(), 400) is None  # never to ACK
    assert salvage_response(b"SIP/2.0 200 OK\r\n\r\n", 400) is None  # never to a response
    assert salvage_response(b"\xff\xfe", 400) is None


def test_commas_inside_quotes_and_brackets_do_not_split_values() -> None:
    assert split_comma_values('"Rossi, Mario" <sip:a@b>, <sip:c@d;x=1,2>') == [
        '"Rossi, Mario" <sip:a@b>',
        "<sip:c@d;x=1,2>",
    ]


def test_numbers_and_display_names_come_from_the_addresses() -> None:
    assert number_of("sip:+390612345678@pbx.example;user=phone") == "+390612345678"
    assert number_of("sip:pbx.example") == ""
    assert number_of("tel:+39061") == ""
    assert display_name_of('"Mario Rossi" <sip:1@x>;tag=1') == "Mario Rossi"
    assert display_name_of("<sip:1@x>") == ""


# ---- SDP -------------------------------------------------------------------------------------------

OFFER = (
    "v=0\r\no=- 1 1 IN IP4 10.0.0.9\r\ns=-\r\nc=IN IP4 10.0.0.9\r\nt=0 0\r\n"
    "m=audio 40000 RTP/AVP 18 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=sendrecv\r\n"
)


def test_the_offerers_first_g711_codec_wins_with_telephone_event() -> None:
    offer = parse_offer(OFFER.encode())
    assert (offer.address, offer.port, offer.payload_types) == ("10.0.0.9", 40000, (18, 8, 0, 101))
    negotiated = negotiate(offer)
    assert (negotiated.codec, negotiated.payload_type, negotiated.telephone_event_type) == ("PCMA", 8, 101)
    assert not offer.on_hold


def test_the_answer_is_exact() -> None:
    negotiated = negotiate(parse_offer(OFFER.encode()))
    answer = build_answer(address="192.0.2.1", port=20000, negotiated=negotiated, session_id=42)
    assert answer.decode() == (
        "v=0\r\no=fedele 42 1 IN IP4 192.0.2.1\r\ns=fedele\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\n"
        "m=audio 20000 RTP/AVP 8 101\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-16\r\na=ptime:20\r\na=sendrecv\r\n"
    )


def test_hold_offers_are_recognised_both_ways() -> None:
    assert parse_offer(OFFER.replace("a=sendrecv", "a=sendonly").encode()).on_hold
    assert parse_offer(OFFER.replace("a=sendrecv", "a=inactive").encode()).on_hold
    assert parse_offer(OFFER.replace("c=IN IP4 10.0.0.9", "c=IN IP4 0.0.0.0").encode()).on_hold


@pytest.mark.parametrize(
    ("offer", "error"),
    [
        (OFFER.replace("18 8 0 101", "18 101"), "no common codec"),
        (OFFER.replace("audio 40000", "audio 0"), "rejected"),
        (OFFER.replace("m=audio", "m=video"), "no audio"),
        (OFFER.replace("audio 40000", "audio 99999"), "bad media port"),
        (OFFER.replace("18 8 0 101", "18 x"), "bad payload type"),
        (OFFER.replace("c=IN IP4 10.0.0.9\r\n", ""), "no connection address"),
    ],
)
def test_offers_we_cannot_use_are_refused(offer: str, error: str) -> None:
    with pytest.raises(SdpError, match=error):
        negotiate(parse_offer(offer.encode()))


# ---- RTP and G.711 ---------------------------------------------------------------------------------


def test_rtp_round_trip_and_header_extras() -> None:
    packet = RtpPacket(
        payload_type=0, sequence=65_535, timestamp=2**32 - 1, ssrc=7, payload=b"\x01\x02", marker=True
    )
    assert parse_rtp(packet.to_bytes()) == packet
    # One CSRC, a one-word header extension and 2 bytes of padding around a 3-byte payload.
    data = (
        struct.pack("!BBHII", 0x80 | 0x20 | 0x10 | 1, 8, 1, 2, 3)
        + b"CSRC"
        + struct.pack("!HH", 0xBEDE, 1)
        + b"EXT!"
        + b"abc"
        + b"\x00\x02"
    )
    parsed = parse_rtp(data)
    assert (parsed.payload_type, parsed.payload, parsed.marker) == (8, b"abc", False)
    for bad in (b"short", b"\x40" + b"\x00" * 11, struct.pack("!BBHII", 0x90, 0, 0, 0, 0)):
        with pytest.raises(RtpError):
            parse_rtp(bad)


@pytest.mark.parametrize(
    ("sample", "ulaw", "alaw"),
    [
        (0, 0xFF, 0xD5),
        (-1, 0x7E, 0x55),
        (100, 0xF2, 0xD3),
        (-1000, 0x4E, 0x7A),
        (32767, 0x80, 0xAA),
        (-32768, 0x00, 0x2A),
    ],
)
def test_g711_encoding_matches_the_reference_tables(sample: int, ulaw: int, alaw: int) -> None:
    pcm = struct.pack("<h", sample)
    assert g711_encode(pcm, "PCMU") == bytes([ulaw])
    assert g711_encode(pcm, "PCMA") == bytes([alaw])


def test_g711_decoding_matches_the_reference_tables() -> None:
    assert struct.unpack("<4h", g711_decode(bytes([0x00, 0x80, 0xFF, 0xD5]), "PCMU")) == (
        -32124,
        32124,
        0,
        716,
    )
    assert struct.unpack("<4h", g711_decode(bytes([0xD5, 0x55, 0x2A, 0x80]), "PCMA")) == (8, -8, -32256, 5504)
    # Every code survives decode → encode unchanged (except μ-law's negative zero, 0x7F → 0xFF).
    codes = bytes(range(256))
    assert g711_encode(g711_decode(codes, "PCMA"), "PCMA") == codes
    assert g711_encode(g711_decode(codes, "PCMU"), "PCMU") == codes.replace(b"\x7f", b"\xff")
    with pytest.raises(ValueError, match="unsupported codec"):
        g711_encode(b"\0\0", "G729")


# ---- RFC 4733 DTMF ---------------------------------------------------------------------------------


def test_one_key_press_with_three_end_packets_is_one_digit() -> None:
    detector = DtmfDetector()
    packets = dtmf_packets("2", payload_type=101, sequence=10, timestamp=8000, ssrc=1)
    digits = [digit for packet in packets for digit in detector.feed(packet)]
    assert digits == ["2"]
    assert detector.flush() == []
    assert len(packets) == 7  # updates at 20, 40, 60, 80 ms, then the end three times
    assert [packet.marker for packet in packets] == [True] + [False] * 6
    events = [parse_telephone_event(packet.payload) for packet in packets]
    assert [event.duration for event in events] == [160, 320, 480, 640, 800, 800, 800]
    assert [event.end for event in events] == [False] * 4 + [True] * 3


def test_the_same_key_twice_is_two_digits_and_late_redundant_ends_are_ignored() -> None:
    detector = DtmfDetector()
    assert detector.feed(_packet(1000, "5", end=True)) == ["5"]
    assert detector.feed(_packet(1000, "5", end=True)) == []
    assert detector.feed(_packet(5000, "5", end=False)) == []
    assert detector.feed(_packet(1000, "5", end=True)) == []  # reordered redundant end of the first
    assert detector.feed(_packet(5000, "5", end=True)) == ["5"]


def test_a_press_whose_end_packets_are_all_lost_still_counts_once() -> None:
    detector = DtmfDetector()
    assert detector.feed(_packet(1000, "1", end=False)) == []
    assert detector.feed(_packet(3000, "#", end=False)) == ["1"]  # the next press reveals it
    assert detector.flush() == ["#"]
    assert detector.feed(_packet(3000, "#", end=True)) == []  # its end arriving late: already counted


def test_events_that_are_not_keys_and_short_payloads_are_ignored() -> None:
    detector = DtmfDetector()
    flash = RtpPacket(
        payload_type=101, sequence=1, timestamp=1, ssrc=1, payload=struct.pack("!BBH", 16, 0x80, 800)
    )
    short = RtpPacket(payload_type=101, sequence=2, timestamp=2, ssrc=1, payload=b"\x01")
    assert detector.feed(flash) == []
    assert detector.feed(short) == []
    assert detector.flush() == []


# ---- audio and prompts -----------------------------------------------------------------------------


def test_wav_files_are_read_as_8khz_mono(tmp_path: Path) -> None:
    import wave

    path = tmp_path / "stereo16k.wav"
    with wave.open(str(path), "wb") as output:
        output.setnchannels(2)
        output.setsampwidth(2)
        output.setframerate(16_000)
        output.writeframes(np.full(16_000 * 2, 1000, dtype="<i2").tobytes())  # 1 s, both channels
    pcm = audio.read_wav(path)
    samples = np.frombuffer(pcm, dtype="<i2")
    assert len(samples) == 8_000
    assert int(samples.min()) == int(samples.max()) == 1000
    round_trip = audio.read_wav(io.BytesIO(audio.wav_bytes(pcm)))
    assert round_trip == pcm


def test_tones_have_the_asked_length() -> None:
    assert len(audio.tone((440.0,), 250)) == 2 * 2_000
    assert audio.tone((440.0,), 0) == b""
    assert audio.silence(-5) == b""
    assert len(audio.beep()) == 2 * (2_400 + 800)


def test_prompts_prefer_recorded_files_and_never_leave_their_directory(tmp_path: Path) -> None:
    (tmp_path / "en").mkdir()
    recorded = audio.tone((300.0,), 100)
    audio.write_wav(tmp_path / "en" / "welcome.wav", recorded)
    (tmp_path / "secret.wav").write_bytes(audio.wav_bytes(audio.silence(10)))
    library = audio.PromptLibrary(tmp_path / "en" / "..")
    assert library.audio_for(audio="welcome", text="Welcome", language="en") == recorded
    outside = audio.PromptLibrary(tmp_path / "en").audio_for(audio="../secret.wav", text="", language="it")
    assert outside == audio.placeholder_prompt()  # "../" is dropped: the name is looked up inside only


# ---- hand-off target -------------------------------------------------------------------------------


def _call_from(uri: str) -> object:
    class Call:
        from_uri = uri
        source = ("10.0.0.5", 5062)

    return Call()


def test_the_agent_uri_is_the_extension_at_the_pbx_domain() -> None:
    call = _call_from("sip:+390612345678@pbx.example")
    assert agent_uri(agent=Agent(extension="201"), call=call) == "sip:201@pbx.example"  # type: ignore[arg-type]
    assert agent_uri(agent=Agent(extension="sip:anna@desk.example"), call=call) == "sip:anna@desk.example"  # type: ignore[arg-type]
    assert agent_uri(agent=Agent(phone_number="+39021234567"), call=call) == "sip:+39021234567@pbx.example"  # type: ignore[arg-type]
    assert agent_uri(agent=Agent(), call=call) == ""  # type: ignore[arg-type]
    with override_settings(FEDELE_SIP_AGENT_URI="sip:{extension}@{host}:{port};transport=udp"):
        assert agent_uri(agent=Agent(extension="201"), call=call) == "sip:201@10.0.0.5:5062;transport=udp"  # type: ignore[arg-type]


# ---- digest authentication (RFC 2617 §3.5 and RFC 7616 §3.9.1 worked examples) ----


def test_digest_responses_match_the_rfc_examples() -> None:
    from fedele.contact_center.telephony.sip.digest import digest_response, parse_challenge

    rfc2617 = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert rfc2617.qop == ("auth", "auth-int") and rfc2617.algorithm == "MD5"
    assert (
        digest_response(
            rfc2617,
            username="Mufasa",
            password="Circle Of Life",
            method="GET",
            uri="/dir/index.html",
            cnonce="0a4f113b",
        )
        == "6629fae49393a05397450978507c4ef1"
    )
    challenge = (
        'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm={algorithm}, '
        'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
        'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"'
    )
    expected = {
        "MD5": "8ca523f5e9506fed4657c9700eebdbec",
        "SHA-256": "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
    }
    for algorithm, response in expected.items():
        assert (
            digest_response(
                parse_challenge(challenge.format(algorithm=algorithm)),
                username="Mufasa",
                password="Circle of Life",
                method="GET",
                uri="/dir/index.html",
                cnonce="f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            )
            == response
        )


def test_the_authorization_header_and_the_challenges_we_refuse() -> None:
    from fedele.contact_center.telephony.sip.digest import (
        DigestError,
        authorization,
        best_challenge,
        parse_challenge,
    )

    # No qop (RFC 2069 form): response = MD5(HA1:nonce:HA2), no cnonce/nc.
    plain = parse_challenge('Digest realm="fedele.test", nonce="b5e1c0ffee42", algorithm=MD5')
    assert authorization(
        plain, username="trunk", password="pw", method="INVITE", uri="sip:+390612345678@fedele.test"
    ) == (
        'Digest username="trunk", realm="fedele.test", nonce="b5e1c0ffee42", '
        'uri="sip:+390612345678@fedele.test", response="ef9fbc9384ae32f6ec3a5111c22d9a47", algorithm=MD5'
    )
    strongest = best_challenge(
        [
            'Basic realm="x"',
            'Digest realm="r", nonce="1", algorithm=MD5',
            'Digest realm="r", nonce="2", algorithm=SHA-256',
        ]
    )
    assert (strongest.algorithm, strongest.nonce) == ("SHA-256", "2")
    for refused in (
        'Basic realm="x"',
        'Digest realm="r"',
        'Digest realm="r", nonce="1", algorithm=SHA-512-256',
        'Digest realm="r", nonce="1", qop="auth-int"',
    ):
        with pytest.raises(DigestError):
            parse_challenge(refused)
