"""The IVR flow format: a versioned JSON (or YAML) document of named nodes.

```yaml
languages: [it, en]          # prompts must exist in every declared language
default_language: it
start: welcome
nodes:
  welcome: {type: say, prompt: {it: "Benvenuto", en: "Welcome"}, next: main}
  main:
    type: menu
    prompt: {it: "Premi 1 per le fatture, 2 per l'assistenza", en: "Press 1 for billing, 2 for support"}
    options: {"1": billing, "2": code}
    retries: 2               # further attempts after the first; then on_fail (default: goodbye + hang up)
  code:
    type: collect
    variable: customer_code
    prompt: {it: "Digita il codice cliente seguito da cancelletto", en: "Enter your customer code then hash"}
    min_length: 6
    max_length: 10
    check: customer_code     # luhn | codice_fiscale | customer_code (see ivr/checks.py)
    next: balance
  balance: {type: lookup, lookup: balance_due, next: tell, on_missing: support}
  tell: {type: say, prompt: {it: "Devi {balance_due} euro", en: "You owe {balance_due} euros"}, next: support}
  support: {type: queue, queue: support, skills: {billing: 2}}
```

A prompt is a text for the provider's text-to-speech or a pre-rendered audio file name, per language:
``{it: "testo"}`` or ``{it: {audio: "benvenuto.wav", text: "Benvenuto"}}``. ``{name}`` in a text is a
session variable (a lookup's result, a collected value).
"""

from __future__ import annotations

import json
from typing import Any

import yaml

from fedele.shared.errors import ValidationFailed

LANGUAGES = ("it", "en")
DIGITS = frozenset("0123456789*#")

# Nodes that wait for the caller's keys; they always have a way out (on_fail, or goodbye and hang up).
INPUT_TYPES = frozenset({"menu", "collect", "language", "callback"})
# Nodes that end the walk: the call leaves the IVR.
TERMINAL_TYPES = frozenset({"queue", "voicemail", "transfer", "hangup"})
# Nodes that run straight through to the next one.
PASS_THROUGH_TYPES = frozenset({"say", "play", "lookup", "hours", "document"})
NODE_TYPES = INPUT_TYPES | TERMINAL_TYPES | PASS_THROUGH_TYPES

# Which keys of each node type name another node.
TARGET_KEYS: dict[str, tuple[str, ...]] = {
    "say": ("next",),
    "play": ("next",),
    "menu": ("on_fail",),
    "collect": ("next", "on_fail"),
    "lookup": ("next", "on_missing"),
    "hours": ("open", "closed"),
    "language": ("next", "on_fail"),
    "callback": ("declined", "closed"),
    "document": ("next", "on_fail"),
    "queue": ("closed",),
    "voicemail": (),
    "transfer": (),
    "hangup": (),
}
# Keys that must be present (a node of that type cannot work without them).
REQUIRED_KEYS: dict[str, tuple[str, ...]] = {
    "say": ("prompt", "next"),
    "play": ("prompt", "next"),
    "menu": ("prompt", "options"),
    "collect": ("prompt", "variable", "next"),
    "lookup": ("lookup", "next"),
    "hours": ("calendar", "open", "closed"),
    "language": ("prompt", "options", "next"),
    "callback": ("prompt", "queue", "declined"),
    "document": ("document", "channel", "next"),
    "queue": ("queue",),
    "voicemail": ("box",),
    "transfer": ("target",),
    "hangup": (),
}
# Keys holding prompts (checked for every declared language).
PROMPT_KEYS = ("prompt", "invalid_prompt", "accepted_prompt", "position_prompt")

DEFAULT_TIMEOUT_SECONDS = 5
DEFAULT_RETRIES = 2
MAX_SOURCE_CHARACTERS = 200_000


def parse_source(source: str, source_format: str) -> dict[str, Any]:
    """The definition a JSON or YAML text describes. Syntax errors become a ValidationFailed that says
    where (line and column) so the editor can show it."""
    if len(source) > MAX_SOURCE_CHARACTERS:
        raise ValidationFailed(
            "The flow is too long.", code="ivr_flow_too_long", fields={"source": "too long"}
        )
    if source_format == "json":
        try:
            data = json.loads(source)
        except json.JSONDecodeError as error:
            message = f"JSON: {error.msg} (line {error.lineno}, column {error.colno})"
            raise ValidationFailed(message, code="ivr_flow_syntax", fields={"source": message}) from error
    elif source_format == "yaml":
        try:
            data = yaml.safe_load(source)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            message = f"YAML: {getattr(error, 'problem', None) or error}{where}"
            raise ValidationFailed(message, code="ivr_flow_syntax", fields={"source": message}) from error
    else:
        raise ValidationFailed(
            "The format must be json or yaml.",
            code="ivr_flow_format",
            fields={"source_format": "json or yaml"},
        )
    if not isinstance(data, dict):
        message = "The flow must be a mapping with languages, start and nodes."
        raise ValidationFailed(message, code="ivr_flow_syntax", fields={"source": message})
    return data


def render_source(definition: dict[str, Any], source_format: str) -> str:
    if source_format == "yaml":
        return yaml.safe_dump(definition, allow_unicode=True, sort_keys=False)
    return json.dumps(definition, ensure_ascii=False, indent=2)


def node_targets(node: dict[str, Any]) -> list[str]:
    """Every node name this node can continue to (menu options included)."""
    node_type = str(node.get("type", ""))
    targets = [node[key] for key in TARGET_KEYS.get(node_type, ()) if isinstance(node.get(key), str)]
    if node_type == "menu" and isinstance(node.get("options"), dict):
        targets.extend(value for value in node["options"].values() if isinstance(value, str))
    return targets


def declared_languages(definition: dict[str, Any]) -> list[str]:
    languages = definition.get("languages") or [definition.get("default_language") or "it"]
    return [str(language) for language in languages] if isinstance(languages, list) else ["it"]


def default_language(definition: dict[str, Any]) -> str:
    return str(definition.get("default_language") or declared_languages(definition)[0])
