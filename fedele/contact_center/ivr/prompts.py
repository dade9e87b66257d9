"""Prompts: a node's per-language text or audio turned into steps, with session variables filled in."""

from __future__ import annotations

import re
from typing import Any

from fedele.contact_center.ivr.steps import IvrStep, StepKind

_VARIABLE = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
_DECIMAL = re.compile(r"^-?\d+\.\d+$")


def spoken_value(value: Any, language: str) -> str:
    """Italian speech reads a decimal comma: 12.50 is said as "12,50"."""
    text = str(value)
    if language == "it" and _DECIMAL.match(text):
        return text.replace(".", ",")
    return text


def fill(text: str, variables: dict[str, Any], language: str) -> str:
    """``{name}`` replaced by the variable's value; an unknown name stays as written."""

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        return spoken_value(variables[name], language) if name in variables else match.group(0)

    return _VARIABLE.sub(replace, text)


def prompt_parts(prompt: Any, language: str, fallback_language: str) -> tuple[str, str]:
    """(text, audio) of a prompt in ``language`` (the flow's default language when it lacks one)."""
    if isinstance(prompt, str):
        return prompt, ""
    if not isinstance(prompt, dict):
        return "", ""
    entry = prompt.get(language)
    if entry is None:
        entry = prompt.get(fallback_language)
    if isinstance(entry, str):
        return entry, ""
    if isinstance(entry, dict):
        return str(entry.get("text") or ""), str(entry.get("audio") or "")
    return "", ""


def prompt_steps(
    prompt: Any,
    *,
    language: str,
    fallback_language: str,
    variables: dict[str, Any],
    node: str,
    barge_in: bool = False,
) -> list[IvrStep]:
    """One step: ``play`` of the audio file when the prompt has one (its text kept as a fallback),
    else ``say``; none for an empty prompt. ``barge_in`` marks a prompt the caller may interrupt with
    keys (TwiML nests it in the Gather)."""
    text, audio = prompt_parts(prompt, language, fallback_language)
    if not text and not audio:
        return []
    params: dict[str, Any] = {"node": node}
    if barge_in:
        params["barge_in"] = True
    kind = StepKind.PLAY if audio else StepKind.SAY
    return [
        IvrStep(
            kind=kind, text=fill(text, variables, language), language=language, audio=audio, params=params
        )
    ]
