"""The flow validator: every problem that would strand or loop a caller, found before publishing.

It reports (all at once, in node order): unknown or missing node types and keys, targets that name no
node, a start that is not a node, nodes no call can reach, dead ends (a node with no way on that does
not end the call), loops that never wait for the caller (a say-loop would talk forever), prompts missing
in a declared language, bad digit maps, bad collect rules, unknown lookups and checks, and queues,
voicemail boxes, documents that do not exist. An invalid flow cannot be published.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.utils.translation import gettext as _

from fedele.contact_center.ivr import flow as flow_format
from fedele.contact_center.ivr.checks import CHECKS
from fedele.contact_center.ivr.lookups import LOOKUPS

_NODE_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,60}$")
_E164 = re.compile(r"^\+[1-9]\d{5,14}$")
_SIP_URI = re.compile(r"^sips?:[^\s@]+@[^\s]+$")
DOCUMENT_CHANNELS = ("email", "sms_link", "fax")


@dataclass(frozen=True, slots=True)
class Problem:
    node: str
    message: str

    def __str__(self) -> str:
        return f"{self.node}: {self.message}" if self.node else self.message


def validate_flow(definition: Any) -> list[Problem]:
    problems: list[Problem] = []
    if not isinstance(definition, dict):
        return [Problem("", _("The flow must be a mapping with languages, start and nodes."))]
    languages = _check_languages(definition, problems)
    nodes = definition.get("nodes")
    if not isinstance(nodes, dict) or not nodes:
        problems.append(Problem("", _("The flow has no nodes.")))
        return problems
    start = definition.get("start")
    if not isinstance(start, str) or start not in nodes:
        problems.append(Problem("", _("The start node “%(start)s” does not exist.") % {"start": start}))
    known = _Existing()
    for name, node in nodes.items():
        problems.extend(_check_node(str(name), node, nodes, languages, known))
    if isinstance(start, str) and start in nodes:
        problems.extend(_check_graph(start, nodes))
    return problems


def _check_languages(definition: dict[str, Any], problems: list[Problem]) -> list[str]:
    languages = definition.get("languages", ["it"])
    if not isinstance(languages, list) or not languages:
        problems.append(Problem("", _("languages must be a non-empty list (it, en).")))
        return ["it"]
    unknown = [str(language) for language in languages if language not in flow_format.LANGUAGES]
    if unknown:
        problems.append(Problem("", _("Unknown language(s): %(codes)s.") % {"codes": ", ".join(unknown)}))
    default = definition.get("default_language", languages[0])
    if default not in languages:
        problems.append(Problem("", _("The default language must be one of the declared languages.")))
    return [str(language) for language in languages if language in flow_format.LANGUAGES]


class _Existing:
    """Names of queues, voicemail boxes and documents, read once per validation."""

    def __init__(self) -> None:
        self._cache: dict[str, set[str]] = {}

    def names(self, kind: str) -> set[str] | None:
        if kind not in self._cache:
            found = self._load(kind)
            if found is None:
                return None
            self._cache[kind] = found
        return self._cache[kind]

    @staticmethod
    def _load(kind: str) -> set[str] | None:
        from fedele.contact_center.models import Document, Queue

        if kind == "queue":
            return set(Queue.objects.filter(active=True).values_list("code", flat=True))
        if kind == "document":
            return set(Document.objects.filter(active=True).values_list("code", flat=True))
        if kind == "box":
            # Voicemail boxes belong to the telephony area; checked once its table exists.
            try:
                model = apps.get_model("contact_center", "VoicemailBox")
            except LookupError:
                return None
            field_names = {field.name for field in model._meta.get_fields()}
            if "code" not in field_names:
                return None
            return set(model.objects.values_list("code", flat=True))
        return None


def _check_node(
    name: str, node: Any, nodes: dict[str, Any], languages: list[str], known: _Existing
) -> Iterable[Problem]:
    if not _NODE_NAME.match(name):
        yield Problem(name, _("A node name may use letters, digits, - and _ (at most 60)."))
    if not isinstance(node, dict):
        yield Problem(name, _("A node must be a mapping with a type."))
        return
    node_type = node.get("type")
    if node_type not in flow_format.NODE_TYPES:
        yield Problem(name, _("Unknown node type “%(type)s”.") % {"type": node_type})
        return
    for key in flow_format.REQUIRED_KEYS[node_type]:
        if node.get(key) in (None, "", {}):
            yield Problem(name, _("A %(type)s node needs “%(key)s”.") % {"type": node_type, "key": key})
    for target in flow_format.node_targets(node):
        if target not in nodes:
            yield Problem(name, _("Goes to “%(target)s”, which is not a node.") % {"target": target})
    for key in flow_format.PROMPT_KEYS:
        if key in node:
            yield from _check_prompt(name, key, node[key], languages)
    for key in ("timeout_seconds", "retries"):
        if key in node and (
            not isinstance(node[key], int) or isinstance(node[key], bool) or not 0 <= node[key] <= 60
        ):
            yield Problem(name, _("“%(key)s” must be a whole number from 0 to 60.") % {"key": key})
    yield from _check_specifics(name, node_type, node, known)


def _check_prompt(name: str, key: str, prompt: Any, languages: list[str]) -> Iterable[Problem]:
    if isinstance(prompt, str):
        if len(languages) > 1:
            yield Problem(name, _("“%(key)s” needs a prompt per language.") % {"key": key})
        return
    if not isinstance(prompt, dict):
        yield Problem(name, _("“%(key)s” must map each language to a text or an audio file.") % {"key": key})
        return
    for language in languages:
        entry = prompt.get(language)
        text = (
            entry
            if isinstance(entry, str)
            else (entry or {}).get("text")
            if isinstance(entry, dict)
            else None
        )
        audio = entry.get("audio") if isinstance(entry, dict) else None
        if not text and not audio:
            yield Problem(
                name, _("“%(key)s” has no prompt in %(language)s.") % {"key": key, "language": language}
            )


def _check_digit_map(name: str, options: Any) -> Iterable[Problem]:
    if not isinstance(options, dict) or not options:
        yield Problem(name, _("“options” must map keys (0-9, *, #) to choices."))
        return
    for digit in options:
        if str(digit) not in flow_format.DIGITS:
            yield Problem(name, _("“%(digit)s” is not a phone key (0-9, *, #).") % {"digit": digit})


def _check_specifics(name: str, node_type: str, node: dict[str, Any], known: _Existing) -> Iterable[Problem]:
    if node_type == "menu":
        yield from _check_digit_map(name, node.get("options"))
    elif node_type == "language":
        yield from _check_digit_map(name, node.get("options"))
        for language in (node.get("options") or {}).values() if isinstance(node.get("options"), dict) else ():
            if language not in flow_format.LANGUAGES:
                yield Problem(name, _("“%(language)s” is not a supported language.") % {"language": language})
    elif node_type == "collect":
        yield from _check_collect(name, node)
    elif node_type == "callback":
        if str(node.get("accept_digit", "1")) not in flow_format.DIGITS:
            yield Problem(name, _("“accept_digit” must be one phone key."))
        yield from _exists(name, "queue", node.get("queue"), known, _("queue"))
    elif node_type == "hours":
        from fedele.support import facade as support_facade

        if node.get("calendar") and not support_facade.calendar_exists(str(node["calendar"])):
            yield Problem(
                name, _("The business calendar “%(code)s” does not exist.") % {"code": node["calendar"]}
            )
    elif node_type == "lookup" and node.get("lookup") not in LOOKUPS:
        yield Problem(name, _("Unknown lookup “%(lookup)s”.") % {"lookup": node.get("lookup")})
    elif node_type == "queue":
        yield from _exists(name, "queue", node.get("queue"), known, _("queue"))
        skills = node.get("skills", {})
        if not isinstance(skills, dict) or any(
            not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 5
            for level in skills.values()
        ):
            yield Problem(name, _("“skills” must map skill codes to a proficiency from 1 to 5."))
        if "priority" in node and (
            not isinstance(node["priority"], int) or isinstance(node["priority"], bool)
        ):
            yield Problem(name, _("“priority” must be a whole number."))
    elif node_type == "voicemail":
        yield from _exists(name, "box", node.get("box"), known, _("voicemail box"))
    elif node_type == "transfer":
        target = str(node.get("target") or "")
        if target and not (_E164.match(target) or _SIP_URI.match(target)):
            yield Problem(name, _("Transfer to an E.164 number (+39…) or a SIP URI (sip:user@host)."))
    elif node_type == "document":
        yield from _exists(name, "document", node.get("document"), known, _("document"))
        if node.get("channel") not in DOCUMENT_CHANNELS:
            yield Problem(name, _("“channel” must be email, sms_link or fax."))
        if node.get("channel") == "fax" and not node.get("fax_variable"):
            yield Problem(name, _("A fax needs “fax_variable”, the collected fax number."))


def _check_collect(name: str, node: dict[str, Any]) -> Iterable[Problem]:
    minimum = node.get("min_length", 1)
    maximum = node.get("max_length", 20)
    if not all(
        isinstance(value, int) and not isinstance(value, bool) for value in (minimum, maximum)
    ) or not (1 <= minimum <= maximum <= 40):
        yield Problem(name, _("Lengths must satisfy 1 ≤ min_length ≤ max_length ≤ 40."))
    if "finish_on" in node and str(node["finish_on"]) not in ("", "#", "*"):
        yield Problem(name, _("“finish_on” must be #, * or empty."))
    pattern = node.get("pattern")
    if pattern is not None:
        try:
            re.compile(str(pattern))
        except re.error as error:
            yield Problem(
                name, _("“pattern” is not a valid regular expression: %(error)s") % {"error": error}
            )
    if "check" in node and node["check"] not in CHECKS:
        yield Problem(
            name,
            _("Unknown check “%(check)s” (luhn, codice_fiscale, customer_code).") % {"check": node["check"]},
        )
    variable = str(node.get("variable") or "")
    if variable and not re.match(r"^[a-z_][a-z0-9_]{0,39}$", variable):
        yield Problem(name, _("“variable” must be a lower-case name (letters, digits, _)."))


def _exists(name: str, kind: str, value: Any, known: _Existing, label: str) -> Iterable[Problem]:
    if not value:
        return
    names = known.names(kind)
    if names is not None and str(value) not in names:
        yield Problem(name, _("The %(label)s “%(value)s” does not exist.") % {"label": label, "value": value})


def _check_graph(start: str, nodes: dict[str, Any]) -> Iterable[Problem]:
    edges = {
        str(name): [target for target in flow_format.node_targets(node) if target in nodes]
        if isinstance(node, dict)
        else []
        for name, node in nodes.items()
    }
    reachable = _reachable(start, edges)
    for name in nodes:
        if str(name) not in reachable:
            yield Problem(str(name), _("No call can reach this node."))
    for name, node in nodes.items():
        if not isinstance(node, dict) or node.get("type") not in flow_format.NODE_TYPES:
            continue
        # A target that names no node is reported above; a dead end is a node with no target at all.
        if node["type"] in flow_format.PASS_THROUGH_TYPES and not flow_format.node_targets(node):
            yield Problem(str(name), _("Dead end: the call stops here without ending."))
    # Loops among nodes that never wait for the caller repeat forever: walk only pass-through edges.
    silent = {
        name: targets
        for name, targets in edges.items()
        if isinstance(nodes[name], dict) and nodes[name].get("type") in flow_format.PASS_THROUGH_TYPES
    }
    for cycle in _cycles(silent):
        yield Problem(cycle[0], _("Loop with no input: %(path)s.") % {"path": " → ".join([*cycle, cycle[0]])})


def _reachable(start: str, edges: dict[str, list[str]]) -> set[str]:
    seen = {start}
    stack = [start]
    while stack:
        for target in edges.get(stack.pop(), []):
            if target not in seen:
                seen.add(target)
                stack.append(target)
    return seen


def _cycles(edges: dict[str, list[str]]) -> list[list[str]]:
    """One representative cycle per strongly connected group of pass-through nodes (iterative DFS)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in edges:
        if root in state:
            continue
        path: list[str] = []
        stack: list[tuple[str, int]] = [(root, 0)]
        while stack:
            node, index = stack.pop()
            if index == 0:
                state[node] = 1
                path.append(node)
            targets = [target for target in edges.get(node, []) if target in edges]
            if index < len(targets):
                stack.append((node, index + 1))
                target = targets[index]
                if state.get(target) == 1:
                    found.append(path[path.index(target) :])
                elif target not in state:
                    stack.append((target, 0))
            else:
                state[node] = 2
                path.pop()
    return found
