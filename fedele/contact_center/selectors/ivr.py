"""Reads for the IVR editor and document-on-demand pages."""

from __future__ import annotations

import difflib
import json
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, QuerySet

from fedele.contact_center.ivr import flow as flow_format
from fedele.contact_center.ivr.validator import Problem
from fedele.contact_center.models import (
    Document,
    DocumentRequest,
    IvrFlow,
    IvrFlowVersion,
    IvrVersionStatus,
)
from fedele.shared.errors import NotFound

EDGE_LABELS = {
    "next": "→",
    "on_fail": "✗",
    "on_missing": "∅",
    "open": "open",
    "closed": "closed",
    "declined": "no",
}


def flow_list() -> QuerySet[IvrFlow]:
    return (
        IvrFlow.objects.select_related("published_version")
        .annotate(version_count=Count("versions"), number_count=Count("numbers", distinct=True))
        .order_by("code")
    )


def flow_get(code: str) -> IvrFlow:
    flow = IvrFlow.objects.select_related("published_version").filter(code=code).first()
    if flow is None:
        raise NotFound("No such flow.", code="ivr_flow_not_found")
    return flow


def flow_versions(flow: IvrFlow) -> list[IvrFlowVersion]:
    return list(flow.versions.select_related("created_by", "published_by").order_by("-number"))


def flow_working_version(flow: IvrFlow) -> IvrFlowVersion | None:
    """What the editor opens: the draft if there is one, else the published version."""
    draft = flow.versions.filter(status=IvrVersionStatus.DRAFT).first()
    return draft or flow.published_version


@dataclass(frozen=True, slots=True)
class NodeCard:
    name: str
    type: str
    prompts: list[tuple[str, str, str]]  # (key, Italian, English)
    edges: list[tuple[str, str]]  # (label, target)
    is_start: bool
    problems: list[str] = field(default_factory=list)
    details: list[tuple[str, str]] = field(default_factory=list)
    # (key, Italian text, English text) without audio markers: the side-by-side prompt editor's values.
    prompt_texts: list[tuple[str, str, str]] = field(default_factory=list)


def _prompt_text(prompt: Any, language: str) -> str:
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, dict):
        entry = prompt.get(language)
        if isinstance(entry, dict):
            audio = entry.get("audio")
            return str(entry.get("text") or (f"♪ {audio}" if audio else ""))
        return str(entry or "")
    return ""


def _raw_text(prompt: Any, language: str) -> str:
    entry = prompt.get(language) if isinstance(prompt, dict) else prompt
    if isinstance(entry, dict):
        return str(entry.get("text") or "")
    return str(entry or "")


def node_cards(definition: dict[str, Any], problems: list[Problem]) -> list[NodeCard]:
    nodes = definition.get("nodes") if isinstance(definition, dict) else None
    if not isinstance(nodes, dict):
        return []
    start = definition.get("start")
    cards = []
    for name, node in nodes.items():
        if not isinstance(node, dict):
            node = {}
        node_type = str(node.get("type", "?"))
        edges: list[tuple[str, str]] = []
        if node_type == "menu" and isinstance(node.get("options"), dict):
            edges.extend((str(digit), str(target)) for digit, target in node["options"].items())
        for key in flow_format.TARGET_KEYS.get(node_type, ()):
            if isinstance(node.get(key), str):
                edges.append((EDGE_LABELS.get(key, key), node[key]))
        prompts = [
            (key, _prompt_text(node[key], "it"), _prompt_text(node[key], "en"))
            for key in flow_format.PROMPT_KEYS
            if key in node
        ]
        details = [
            (
                key,
                json.dumps(node[key], ensure_ascii=False)
                if isinstance(node[key], (dict, list))
                else str(node[key]),
            )
            for key in (
                "options" if node_type == "language" else "",
                "variable",
                "check",
                "lookup",
                "queue",
                "skills",
                "box",
                "target",
                "calendar",
                "document",
                "channel",
            )
            if key and key in node
        ]
        cards.append(
            NodeCard(
                name=str(name),
                type=node_type,
                prompts=prompts,
                edges=edges,
                is_start=name == start,
                problems=[problem.message for problem in problems if problem.node == name],
                details=details,
                prompt_texts=[
                    (key, _raw_text(node[key], "it"), _raw_text(node[key], "en"))
                    for key in flow_format.PROMPT_KEYS
                    if key in node
                ],
            )
        )
    return cards


def version_diff(old: IvrFlowVersion, new: IvrFlowVersion) -> list[str]:
    """A unified diff of two versions' definitions (canonical JSON, so formatting never shows)."""
    # Sorted keys: PostgreSQL's jsonb does not keep the order the author wrote.
    before = json.dumps(old.definition, ensure_ascii=False, indent=2, sort_keys=True).splitlines()
    after = json.dumps(new.definition, ensure_ascii=False, indent=2, sort_keys=True).splitlines()
    return list(difflib.unified_diff(before, after, f"v{old.number}", f"v{new.number}", lineterm="", n=2))


def document_list() -> QuerySet[Document]:
    return Document.objects.annotate(request_count=Count("requests")).order_by("code")


def document_request_list(limit: int = 50) -> list[DocumentRequest]:
    return list(
        DocumentRequest.objects.select_related("document")
        .prefetch_related("log")
        .order_by("-created_at", "-id")[:limit]
    )
