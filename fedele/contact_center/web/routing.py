"""The routing area's settings pages under /contact-center/settings/: queues (channels, calendar,
service level, wrap-up, overflow) with their workflow (a JSON editor validated on save, every
problem listed), skills, and agents (skills with proficiency, capacity per channel, queues).
Everyone here needs ``contact_center.manage_contact_center``."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import URLPattern, URLResolver, path
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from fedele.accounts.facade import actor_for
from fedele.contact_center.models import Agent, Channel, Queue, RoutingWorkflow, Skill
from fedele.contact_center.selectors import routing as selectors
from fedele.contact_center.services import routing_config
from fedele.contact_center.services.presence import capacity_of
from fedele.contact_center.services.routing_workflows import Strategy, workflow_save
from fedele.shared.errors import PermissionDenied, ValidationFailed

MANAGE = "contact_center.manage_contact_center"
QUEUE_FIELDS = (
    "code",
    "name_it",
    "name_en",
    "calendar_code",
    "service_level_seconds",
    "service_level_target",
    "wrap_up_seconds",
    "max_wait_seconds",
    "priority",
    "overflow_queue",
)
WORKFLOW_EXAMPLE = {
    "filters": [
        {
            "name": "VIP",
            "expression": "tier in ['gold', 'platinum']",
            "targets": [{"queue": "QUEUE", "expression": "billing >= 4", "priority": 20, "timeout": 30}],
        }
    ],
    "strategy": "longest_idle",
    "relaxation": [{"after_seconds": 30, "lower_by": 1}, {"after_seconds": 120, "drop_skills": True}],
    "offer_timeout_seconds": 15,
    "closed": {"action": "voicemail"},
}

View = Callable[..., HttpResponse]


def managers_only(view: View) -> View:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not actor_for(request.user).can(MANAGE):
            raise PermissionDenied(_("Only contact-center administrators may change routing."))
        return view(request, *args, **kwargs)

    return wrapper


def _actor_id(request: HttpRequest) -> int:
    return actor_for(request.user).user_id


@managers_only
@require_http_methods(["GET"])
def routing_settings(request: HttpRequest) -> HttpResponse:
    agents = selectors.agent_list()
    loads = selectors.agent_loads([agent.pk for agent in agents])
    return render(
        request,
        "contact_center/routing/settings.html",
        {
            "queues": selectors.queue_live(active_only=False),
            "skills": Skill.objects.all(),
            "agents": [
                {
                    "agent": agent,
                    "skills": sorted((s.skill.code, s.proficiency) for s in agent.skills.all()),
                    "queues": sorted(q.code for q in agent.queues.all()),
                    "load": loads.get(agent.pk, {}),
                }
                for agent in agents
            ],
            "workflows": {w.queue_id: w for w in RoutingWorkflow.objects.all()},
        },
    )


def _queue_form_values(request: HttpRequest) -> dict[str, Any]:
    values: dict[str, Any] = {name: request.POST.get(name, "") for name in QUEUE_FIELDS}
    values["channels"] = request.POST.getlist("channels")
    values["active"] = request.POST.get("active") == "on"
    return values


def _queue_values(queue: Queue | None) -> dict[str, Any]:
    if queue is None:
        return {
            "channels": [Channel.VOICE],
            "active": True,
            "service_level_seconds": 20,
            "service_level_target": 80,
            "wrap_up_seconds": 30,
            "max_wait_seconds": 0,
            "priority": 0,
        }
    values = {name: getattr(queue, name, "") for name in QUEUE_FIELDS if name != "overflow_queue"}
    values["overflow_queue"] = queue.overflow_queue.code if queue.overflow_queue else ""
    values["channels"] = list(queue.channels or [])
    values["active"] = queue.active
    return values


@managers_only
@require_http_methods(["GET", "POST"])
def queue_edit(request: HttpRequest, code: str | None = None) -> HttpResponse:
    queue = get_object_or_404(Queue, code=code) if code else None
    values = _queue_values(queue)
    errors: dict[str, list[str]] = {}
    status = 200
    if request.method == "POST":
        values = _queue_form_values(request)
        try:
            saved = routing_config.queue_save(data=values, queue=queue, actor_id=_actor_id(request))
        except ValidationFailed as error:
            errors, status = error.fields, 422
        else:
            messages.success(request, _("Queue %(code)s saved.") % {"code": saved.code})
            return redirect("contact_center:routing_queue_edit", code=saved.code)
    workflow = RoutingWorkflow.objects.filter(queue=queue).first() if queue else None
    return render(
        request,
        "contact_center/routing/queue_form.html",
        {
            "queue": queue,
            "values": values,
            "errors": errors,
            "channels": Channel.choices,
            "other_queues": Queue.objects.exclude(pk=queue.pk) if queue else Queue.objects.all(),
            "workflow": workflow,
            "workflow_text": json.dumps(workflow.definition if workflow else _example(queue), indent=2),
            "workflow_problems": [],
            "strategies": [s.value for s in Strategy],
        },
        status=status,
    )


def _example(queue: Queue | None) -> dict[str, Any]:
    example = json.loads(json.dumps(WORKFLOW_EXAMPLE))
    example["filters"][0]["targets"][0]["queue"] = queue.code if queue else "QUEUE"
    return example


@managers_only
@require_POST
def workflow_edit(request: HttpRequest, code: str) -> HttpResponse:
    """The workflow editor (htmx): the JSON is parsed and validated; every problem is listed with
    its path, and nothing is saved until there are none."""
    queue = get_object_or_404(Queue, code=code)
    text = request.POST.get("definition", "")
    problems: list[str] = []
    workflow = RoutingWorkflow.objects.filter(queue=queue).first()
    status = 200
    try:
        definition = json.loads(text)
    except json.JSONDecodeError as error:
        problems = [
            _("Not valid JSON: %(message)s (line %(line)d, column %(column)d).")
            % {"message": error.msg, "line": error.lineno, "column": error.colno}
        ]
    else:
        try:
            workflow = workflow_save(
                queue=queue,
                code=request.POST.get("code", "") or f"{queue.code}-flow",
                name=request.POST.get("name", "") or queue.name_en,
                definition=definition,
                active=request.POST.get("active", "on") == "on",
                actor_id=_actor_id(request),
            )
        except ValidationFailed as error:
            problems = [message for messages_ in error.fields.values() for message in messages_] or [
                error.message
            ]
    if problems:
        status = 422
    return render(
        request,
        "contact_center/routing/partials/_workflow.html",
        {
            "queue": queue,
            "workflow": workflow,
            "workflow_text": text,
            "workflow_problems": problems,
            "saved": not problems,
            "strategies": [s.value for s in Strategy],
        },
        status=status,
    )


@managers_only
@require_http_methods(["GET", "POST"])
def skill_list(request: HttpRequest) -> HttpResponse:
    errors: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = {name: request.POST.get(name, "") for name in ("code", "name_it", "name_en")}
        try:
            routing_config.skill_save(data=values, actor_id=_actor_id(request))
        except ValidationFailed as error:
            errors, status = error.fields, 422
        else:
            values = {}
    htmx = bool(getattr(request, "htmx", False))
    template = (
        "contact_center/routing/partials/_skills.html" if htmx else "contact_center/routing/skills.html"
    )
    return render(
        request, template, {"skills": Skill.objects.all(), "errors": errors, "values": values}, status=status
    )


@managers_only
@require_http_methods(["GET", "POST"])
def agent_edit(request: HttpRequest, public_id: str) -> HttpResponse:
    agent = get_object_or_404(Agent, public_id=public_id)
    errors: dict[str, list[str]] = {}
    status = 200
    skills: dict[str, Any] = {s.skill.code: s.proficiency for s in agent.skills.select_related("skill")}
    capacity = {channel: (agent.capacity or {}).get(channel, "") for channel in Channel.values}
    queue_codes = set(agent.queues.values_list("code", flat=True))
    if request.method == "POST":
        skills = {
            code: request.POST.get(f"skill_{code}", "")
            for code in Skill.objects.values_list("code", flat=True)
            if request.POST.get(f"skill_{code}", "")
        }
        capacity = {channel: request.POST.get(f"capacity_{channel}", "") for channel in Channel.values}
        queue_codes = set(request.POST.getlist("queues"))
        try:
            routing_config.agent_profile_set(
                agent=agent,
                skills=skills,
                capacity=capacity,
                queue_codes=queue_codes,
                actor_id=_actor_id(request),
            )
        except ValidationFailed as error:
            errors, status = error.fields, 422
        else:
            messages.success(request, _("%(name)s's profile saved.") % {"name": agent.display_name})
            return redirect("contact_center:routing_agent_edit", public_id=agent.public_id)
    return render(
        request,
        "contact_center/routing/agent_form.html",
        {
            "agent": agent,
            "skill_rows": [(skill, str(skills.get(skill.code, ""))) for skill in Skill.objects.all()],
            "capacity_rows": [
                (value, label, capacity.get(value, ""), capacity_of(agent)[value])
                for value, label in Channel.choices
            ],
            "queues": Queue.objects.all(),
            "queue_codes": queue_codes,
            "errors": errors,
            "levels": range(1, 6),
        },
        status=status,
    )


urlpatterns: list[URLPattern | URLResolver] = [
    path("settings/routing/", routing_settings, name="routing_settings"),
    path("settings/routing/queues/new/", queue_edit, name="routing_queue_new"),
    path("settings/routing/queues/<slug:code>/", queue_edit, name="routing_queue_edit"),
    path("settings/routing/queues/<slug:code>/workflow/", workflow_edit, name="routing_workflow_edit"),
    path("settings/routing/skills/", skill_list, name="routing_skills"),
    path("settings/routing/agents/<uuid:public_id>/", agent_edit, name="routing_agent_edit"),
]
