"""Audio for the SIP adapter: WAV in and out (8 kHz, 16-bit mono, what G.711 carries), tones, and
the IVR's prompts.

Prompts come, in order of preference, from a pre-rendered WAV named by the step (``audio``), from
``espeak-ng`` when it is installed (rendered once per text and language, then cached), or from a
short, clearly audible tone sequence so a flow still works on a machine with no speech synthesiser.
Nothing is ever downloaded.
"""

from __future__ import annotations

import hashlib
import io
import logging
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np

from fedele.contact_center.telephony.sip.rtp import SAMPLE_RATE

logger = logging.getLogger(__name__)

ESPEAK_VOICES = {"it": "it", "en": "en-gb"}
MAX_PROMPT_SECONDS = 120


def silence(milliseconds: int) -> bytes:
    return bytes(2 * (SAMPLE_RATE * max(0, milliseconds) // 1000))


def tone(frequencies: tuple[float, ...], milliseconds: int, *, amplitude: float = 0.3) -> bytes:
    """A tone (several frequencies are summed, e.g. a DTMF pair) with 5 ms fades so it does not click."""
    count = SAMPLE_RATE * max(0, milliseconds) // 1000
    if count == 0:
        return b""
    times = np.arange(count) / SAMPLE_RATE
    wave_sum = sum(np.sin(2 * np.pi * frequency * times) for frequency in frequencies)
    signal = np.asarray(wave_sum, dtype=np.float64) / max(1, len(frequencies))
    fade = min(count // 2, SAMPLE_RATE * 5 // 1000)
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        signal[:fade] *= ramp
        signal[-fade:] *= ramp[::-1]
    return bytes((signal * amplitude * 32_767).astype("<i2").tobytes())


def beep() -> bytes:
    """The beep before a voicemail recording."""
    return tone((1_000.0,), 300) + silence(100)


def hold_tone() -> bytes:
    """One cycle of what a caller hears while queued: a soft two-note chime, then quiet."""
    return tone((523.25,), 250, amplitude=0.15) + tone((659.25,), 250, amplitude=0.15) + silence(1_500)


def placeholder_prompt() -> bytes:
    """Stands in for speech when no synthesiser and no recorded prompt exist: a rising two-tone cue."""
    return tone((440.0,), 150) + silence(50) + tone((660.0,), 150) + silence(150)


def write_wav(target: Path | io.BytesIO, pcm: bytes) -> None:
    with wave.open(target if isinstance(target, io.BytesIO) else str(target), "wb") as output:
        output.setnchannels(1)
        output.setsampwidth(2)
        output.setframerate(SAMPLE_RATE)
        output.writeframes(pcm)


def wav_bytes(pcm: bytes) -> bytes:
    buffer = io.BytesIO()
    write_wav(buffer, pcm)
    return buffer.getvalue()


def read_wav(source: Path | io.BytesIO) -> bytes:
    """Any PCM WAV as 8 kHz 16-bit mono (channels averaged, sample rate converted linearly: prompts
    are speech for a telephone line, a better resampler would be wasted)."""
    with wave.open(source if isinstance(source, io.BytesIO) else str(source), "rb") as reader:
        channels, width, rate = reader.getnchannels(), reader.getsampwidth(), reader.getframerate()
        if rate <= 0 or rate * MAX_PROMPT_SECONDS < reader.getnframes():
            raise ValueError("a prompt longer than two minutes (or no sample rate)")
        frames = reader.readframes(reader.getnframes())
    if width == 1:
        samples = (np.frombuffer(frames, dtype=np.uint8).astype(np.float64) - 128) * 256
    elif width == 2:
        samples = np.frombuffer(frames, dtype="<i2").astype(np.float64)
    else:
        raise ValueError("only 8- and 16-bit WAV prompts are supported")
    if channels > 1:
        samples = samples[: len(samples) - len(samples) % channels].reshape(-1, channels).mean(axis=1)
    if rate != SAMPLE_RATE and len(samples):
        count = int(len(samples) * SAMPLE_RATE / rate)
        samples = np.interp(np.linspace(0, len(samples) - 1, count), np.arange(len(samples)), samples)
    return bytes(np.clip(samples, -32_768, 32_767).astype("<i2").tobytes())


class PromptLibrary:
    """Finds or renders the audio for a say/play step. ``directory`` holds pre-rendered prompts
    (``<name>.wav``, or ``<language>/<name>.wav``) and the cache of synthesised ones."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._cache: dict[str, bytes] = {}

    def audio_for(self, *, audio: str, text: str, language: str) -> bytes:
        key = f"{audio}|{language}|{text}"
        if key not in self._cache:
            self._cache[key] = self._load(audio=audio, text=text, language=language)
        return self._cache[key]

    def _load(self, *, audio: str, text: str, language: str) -> bytes:
        if audio:
            recorded = self._recorded(audio, language)
            if recorded is not None:
                return recorded
            logger.warning("SIP prompt %r not found under %s", audio, self.directory)
        if text:
            spoken = self._synthesised(text, language)
            if spoken is not None:
                return spoken
        return placeholder_prompt()

    def _recorded(self, name: str, language: str) -> bytes | None:
        safe_name = Path(name).name  # a step never reaches outside the prompt directory
        if not safe_name.endswith(".wav"):
            safe_name += ".wav"
        for candidate in (self.directory / language / safe_name, self.directory / safe_name):
            if candidate.is_file():
                return read_wav(candidate)
        return None

    def _synthesised(self, text: str, language: str) -> bytes | None:
        espeak = shutil.which("espeak-ng")
        if espeak is None:
            return None
        digest = hashlib.sha256(f"{language}\n{text}".encode()).hexdigest()[:24]
        cached = self.directory / "tts" / f"{digest}.wav"
        if not cached.is_file():
            cached.parent.mkdir(parents=True, exist_ok=True)
            voice = ESPEAK_VOICES.get(language, language or "en")
            try:
                subprocess.run(  # noqa: S603 - fixed binary, text passed as one argument
                    [espeak, "-v", voice, "-s", "160", "-w", str(cached), text],
                    check=True,
                    capture_output=True,
                    timeout=30,
                )
            except (OSError, subprocess.SubprocessError):
                logger.exception("espeak-ng could not render a prompt")
                return None
        return read_wav(cached)
