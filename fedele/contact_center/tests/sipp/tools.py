"""Running sipp against fedele's SIP user agent in tests: free ports, the DTMF pcap sipp replays
(generated here, with our own RFC 4733 packet builder, so nothing binary is shipped), and the
scenario files next to this module."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fedele.contact_center.telephony.sip.rtp import (
    BYTES_PER_PCM_FRAME,
    FRAME_MS,
    SAMPLES_PER_FRAME,
    RtpPacket,
    dtmf_packets,
    g711_encode,
)

SCENARIOS = Path(__file__).parent
SIPP = shutil.which("sipp")
TELEPHONE_EVENT_TYPE = 101  # what the scenarios offer in their SDP


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def free_udp_port_pair() -> int:
    """An even port whose odd neighbour is free too (sipp binds media port and port+1 for RTCP)."""
    for _ in range(50):
        port = free_udp_port()
        port -= port % 2
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as first,
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as second,
            ):
                first.bind(("127.0.0.1", port))
                second.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise OSError("no free UDP port pair")


def _ipv4_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(rtp: bytes) -> bytes:
    udp = struct.pack("!HHHH", 40_000, 40_002, 8 + len(rtp), 0) + rtp
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes([127, 0, 0, 1]), bytes([127, 0, 0, 1])
    )
    header = header[:10] + struct.pack("!H", _ipv4_checksum(header)) + header[12:]
    return b"\0" * 12 + b"\x08\x00" + header + udp  # Ethernet: zero MACs, IPv4


def dtmf_records(digits: str, *, start: float = 0.0, gap_ms: int = 300) -> list[tuple[float, bytes]]:
    """RFC 4733 key presses: update packets 20 ms apart, the three end packets back to back, as
    phones send them."""
    records: list[tuple[float, bytes]] = []
    moment = start
    sequence, timestamp = 1_000, 160_000
    for digit in digits:
        packets: list[RtpPacket] = dtmf_packets(
            digit, payload_type=TELEPHONE_EVENT_TYPE, sequence=sequence, timestamp=timestamp, ssrc=0x1234_5678
        )
        for packet in packets:
            records.append((moment, packet.to_bytes()))
            moment += 0.020 if not packet.payload[1] & 0x80 else 0.0005
        sequence += len(packets)
        timestamp += 8 * (gap_ms + 100)
        moment += gap_ms / 1000
    return records


def audio_records(pcm: bytes, *, codec: str, payload_type: int, start: float) -> list[tuple[float, bytes]]:
    """20 ms G.711 frames of ``pcm`` (8 kHz 16-bit), starting at ``start`` seconds."""
    records: list[tuple[float, bytes]] = []
    for index, offset in enumerate(range(0, len(pcm), BYTES_PER_PCM_FRAME)):
        frame = pcm[offset : offset + BYTES_PER_PCM_FRAME].ljust(BYTES_PER_PCM_FRAME, b"\0")
        packet = RtpPacket(
            payload_type=payload_type,
            sequence=5_000 + index,
            timestamp=800_000 + index * SAMPLES_PER_FRAME,
            ssrc=0x0BAD_CAFE,
            payload=g711_encode(frame, codec),
            marker=index == 0,
        )
        records.append((start + index * FRAME_MS / 1000, packet.to_bytes()))
    return records


def write_pcap(path: Path, records: list[tuple[float, bytes]]) -> None:
    """A libpcap file (Ethernet/IPv4/UDP) of RTP packets at the given offsets in seconds."""
    with path.open("wb") as output:
        output.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65_535, 1))
        for seconds, rtp in sorted(records, key=lambda record: record[0]):
            frame = _frame(rtp)
            whole = int(seconds)
            micros = round((seconds - whole) * 1_000_000)
            output.write(struct.pack("<IIII", 1_700_000_000 + whole, micros, len(frame), len(frame)))
            output.write(frame)


def write_dtmf_pcap(path: Path, digits: str) -> None:
    write_pcap(path, dtmf_records(digits))


@dataclass(frozen=True)
class SippRun:
    returncode: int
    stdout: str
    stderr: str
    error_log: str

    @property
    def succeeded(self) -> bool:
        return self.returncode == 0


def start_sipp(
    *,
    scenario: str,
    work_dir: Path,
    server_port: int,
    service: str,
    digits: str = "",
    records: list[tuple[float, bytes]] | None = None,
    calls: int = 1,
    rate: float = 1.0,
    extra: list[str] | None = None,
) -> subprocess.Popen[str]:
    """Start sipp as a UAC placing ``calls`` calls (at ``rate`` per second, all at once allowed) to
    ``service`` at 127.0.0.1:``server_port``."""
    assert SIPP is not None
    shutil.copy(SCENARIOS / scenario, work_dir / scenario)
    if records is not None:
        write_pcap(work_dir / "dtmf.pcap", records)
    elif digits:
        write_dtmf_pcap(work_dir / "dtmf.pcap", digits)
    command = [
        SIPP,
        f"127.0.0.1:{server_port}",
        "-sf",
        scenario,
        "-s",
        service,
        "-i",
        "127.0.0.1",
        "-p",
        str(free_udp_port()),
        "-mi",
        "127.0.0.1",
        "-mp",
        str(free_udp_port_pair()),
        "-m",
        str(calls),
        "-l",
        str(calls),
        "-r",
        str(rate),
        "-nostdin",
        "-timeout",
        "90s",
        "-timeout_error",
        "-trace_err",
        "-error_file",
        "errors.log",
        *(extra or []),
    ]
    # sipp from PATH with our own arguments: nothing untrusted reaches the command line.
    return subprocess.Popen(  # noqa: S603
        command, cwd=work_dir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish_sipp(process: subprocess.Popen[str], work_dir: Path, *, timeout: float = 90) -> SippRun:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
    error_file = work_dir / "errors.log"
    return SippRun(
        returncode=process.returncode,
        stdout=stdout[-4000:],
        stderr=stderr[-4000:],
        error_log=error_file.read_text(errors="replace")[-4000:] if error_file.exists() else "",
    )
