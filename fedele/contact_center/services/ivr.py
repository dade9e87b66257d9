"""IVR flows: drafts, publishing (only valid flows), rollback, number mapping and the editor's test call.

A flow has at most one draft, which the editor saves as often as it likes (a draft may still have
problems; its syntax must parse). Publishing runs the validator and refuses with every problem, changing
nothing; a published version never changes again, and the previous one is retired (calls already on
it keep walking it). Rolling back publishes a copy of an old version as a new version.
Every write needs ``contact_center.manage_contact_center`` (or the system, actor None) and is audited.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils.translation import gettext as _

from fedele.accounts.contracts import Actor
from fedele.contact_center.ivr import flow as flow_format
from fedele.contact_center.ivr.engine import ivr_continue, ivr_start_version
from fedele.contact_center.ivr.steps import IvrStep
from fedele.contact_center.ivr.validator import Problem, validate_flow
from fedele.contact_center.models import (
    Channel,
    Direction,
    Interaction,
    InteractionState,
    IvrFlow,
    IvrFlowVersion,
    IvrNumber,
    IvrSession,
    IvrSessionState,
    IvrVersionStatus,
)
from fedele.shared import audit, clock
from fedele.shared.errors import ApplicationError, Conflict, NotFound, PermissionDenied, ValidationFailed
from fedele.shared.sms import InvalidPhoneNumber, e164

MANAGE = "contact_center.manage_contact_center"
CODE_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
MAX_SIMULATED_INPUTS = 30
# Flow codes are URL segments next to these pages.
RESERVED_CODES = frozenset({"documents", "new"})


def require_manager(actor: Actor | None) -> None:
    if actor is not None and not (actor.is_internal and actor.can(MANAGE)):
        raise PermissionDenied(_("You may not configure IVR flows."), code="permission_denied")


def _actor_user_id(actor: Actor | None) -> int | None:
    return actor.user_id if actor is not None else None


def problems_error(problems: Sequence[Problem]) -> ValidationFailed:
    return ValidationFailed(
        _("The flow has %(count)d problem(s); it cannot be published.") % {"count": len(problems)},
        code="ivr_flow_invalid",
        fields={"definition": [str(problem) for problem in problems]},
    )


def ivr_flow_create(
    *,
    actor: Actor | None,
    code: str,
    name: str,
    source: str,
    source_format: str = "json",
    description: str = "",
) -> IvrFlow:
    """A new flow with its first draft (version 1)."""
    require_manager(actor)
    code = (code or "").strip()
    name = (name or "").strip()
    errors: dict[str, str] = {}
    if not CODE_PATTERN.match(code):
        errors["code"] = _("Use 1-40 lower-case letters, digits and hyphens.")
    elif code in RESERVED_CODES:
        errors["code"] = _("This code is reserved.")
    if not name or len(name) > 120:
        errors["name"] = _("Enter a name of at most 120 characters.")
    if errors:
        raise ValidationFailed(_("Check the highlighted fields."), fields=errors)
    definition = flow_format.parse_source(source, source_format)
    now = clock.now()
    with transaction.atomic():
        if IvrFlow.objects.filter(code=code).exists():
            raise Conflict(
                _("A flow with this code already exists."), code="ivr_flow_exists", fields={"code": code}
            )
        flow = IvrFlow.objects.create(code=code, name=name, description=description.strip(), created_at=now)
        IvrFlowVersion.objects.create(
            flow=flow,
            number=1,
            definition=definition,
            source=source,
            source_format=source_format,
            created_at=now,
            created_by_id=_actor_user_id(actor),
        )
        audit.record(
            action="contact_center.ivr_flow_created",
            object_type="ivr_flow",
            object_id=str(flow.public_id),
            after={"code": code, "name": name},
        )
    return flow


def ivr_draft_save(
    *, actor: Actor | None, flow: IvrFlow, source: str, source_format: str = "json", note: str = ""
) -> IvrFlowVersion:
    """Save the editor's text as the flow's draft (a new version number when there is no draft)."""
    require_manager(actor)
    definition = flow_format.parse_source(source, source_format)
    now = clock.now()
    with transaction.atomic():
        locked = IvrFlow.objects.select_for_update().get(pk=flow.pk)
        draft = IvrFlowVersion.objects.filter(flow=locked, status=IvrVersionStatus.DRAFT).first()
        if draft is None:
            latest = IvrFlowVersion.objects.filter(flow=locked).aggregate(number=Max("number"))["number"] or 0
            draft = IvrFlowVersion(
                flow=locked, number=latest + 1, created_at=now, created_by_id=_actor_user_id(actor)
            )
        draft.definition = definition
        draft.source = source
        draft.source_format = source_format
        draft.note = (note or "").strip()[:200]
        draft.save()
        audit.record(
            action="contact_center.ivr_draft_saved",
            object_type="ivr_flow",
            object_id=str(locked.public_id),
            after={"version": draft.number},
        )
    return draft


def _publish(actor: Actor | None, flow: IvrFlow, version: IvrFlowVersion) -> IvrFlowVersion:
    problems = validate_flow(version.definition)
    if problems:
        raise problems_error(problems)
    now = clock.now()
    previous = flow.published_version_id
    IvrFlowVersion.objects.filter(flow=flow, status=IvrVersionStatus.PUBLISHED).update(
        status=IvrVersionStatus.RETIRED
    )
    version.status = IvrVersionStatus.PUBLISHED
    version.published_at = now
    version.published_by_id = _actor_user_id(actor)
    version.save()
    flow.published_version = version
    flow.save(update_fields=["published_version"])
    audit.record(
        action="contact_center.ivr_flow_published",
        object_type="ivr_flow",
        object_id=str(flow.public_id),
        before={"version": previous},
        after={"version": version.pk, "number": version.number},
    )
    return version


def ivr_publish(*, actor: Actor | None, flow: IvrFlow) -> IvrFlowVersion:
    """Publish the draft. Refused, with the validator's problems, when the flow is invalid."""
    require_manager(actor)
    with transaction.atomic():
        locked = IvrFlow.objects.select_for_update().get(pk=flow.pk)
        draft = IvrFlowVersion.objects.filter(flow=locked, status=IvrVersionStatus.DRAFT).first()
        if draft is None:
            raise Conflict(_("There is no draft to publish."), code="ivr_no_draft")
        return _publish(actor, locked, draft)


def ivr_rollback(*, actor: Actor | None, flow: IvrFlow, version_number: int) -> IvrFlowVersion:
    """Publish a copy of an old version as the newest version (the old one stays as it was)."""
    require_manager(actor)
    with transaction.atomic():
        locked = IvrFlow.objects.select_for_update().get(pk=flow.pk)
        old = IvrFlowVersion.objects.filter(flow=locked, number=version_number).first()
        if old is None:
            raise NotFound(_("No such version."), code="ivr_version_not_found")
        if old.status == IvrVersionStatus.DRAFT:
            raise Conflict(_("Publish a draft instead of rolling back to it."), code="ivr_rollback_draft")
        latest = IvrFlowVersion.objects.filter(flow=locked).aggregate(number=Max("number"))["number"] or 0
        copy = IvrFlowVersion(
            flow=locked,
            number=latest + 1,
            status=IvrVersionStatus.RETIRED,  # not a draft: the flow's own draft (if any) stays the draft
            definition=old.definition,
            source=old.source,
            source_format=old.source_format,
            note=_("Rollback to version %(number)d") % {"number": old.number},
            created_at=clock.now(),
            created_by_id=_actor_user_id(actor),
        )
        problems = validate_flow(copy.definition)
        if problems:
            raise problems_error(problems)
        copy.save()
        return _publish(actor, locked, copy)


def ivr_number_assign(*, actor: Actor | None, number: str, flow: IvrFlow) -> IvrNumber:
    """The dialled number (any written form, stored as E.164) answers with ``flow``."""
    require_manager(actor)
    try:
        normalised = e164(number)
    except InvalidPhoneNumber as error:
        raise ValidationFailed(
            _("Enter a phone number in E.164 (+39…)."), fields={"number": error.message}
        ) from error
    with transaction.atomic():
        mapping, created = IvrNumber.objects.select_for_update().get_or_create(
            number=normalised, defaults={"flow": flow, "created_at": clock.now()}
        )
        before = None if created else {"flow": mapping.flow.code}
        if not created:
            mapping.flow = flow
            mapping.save(update_fields=["flow"])
        audit.record(
            action="contact_center.ivr_number_assigned",
            object_type="ivr_number",
            object_id=normalised,
            before=before,
            after={"flow": flow.code},
        )
    return mapping


def ivr_number_remove(*, actor: Actor | None, number: str) -> None:
    require_manager(actor)
    with transaction.atomic():
        deleted, _rows = IvrNumber.objects.filter(number=number).delete()
        if not deleted:
            raise NotFound(_("No such number."), code="ivr_number_not_found")
        audit.record(action="contact_center.ivr_number_removed", object_type="ivr_number", object_id=number)


# The editor's test call -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimulatedTurn:
    """One engine turn of a test call: what the caller did (None for the start) and the steps."""

    input: str | None
    steps: list[IvrStep]
    waiting_at: str
    variables: dict[str, Any]
    error: str = ""


class _Rollback(Exception):
    pass


def ivr_simulate(
    *,
    version: IvrFlowVersion,
    inputs: Sequence[str | None],
    from_number: str = "+390000000000",
    language: str = "",
) -> list[SimulatedTurn]:
    """Walk ``version`` (a draft too) with the real engine on a throw-away call: ``inputs`` are the
    caller's keys per turn (None or "" = timed out). Everything it writes — the call, its session,
    a queue hand-off — is rolled back, so a test call leaves no trace."""
    if len(inputs) > MAX_SIMULATED_INPUTS:
        raise ValidationFailed(
            _("At most %(count)d inputs.") % {"count": MAX_SIMULATED_INPUTS}, fields={"inputs": "too many"}
        )
    turns: list[SimulatedTurn] = []
    try:
        with transaction.atomic():
            now = clock.now()
            interaction = Interaction.objects.create(
                number=f"SIM-{uuid.uuid4().hex[:12]}",
                channel=Channel.VOICE,
                direction=Direction.INBOUND,
                state=InteractionState.IVR,
                from_address=from_number,
                language=language,
                provider="simulator",
                created_at=now,
            )
            turns.append(
                _turn(None, interaction, lambda: ivr_start_version(interaction=interaction, version=version))
            )
            for entry in inputs:
                if turns[-1].error or not turns[-1].waiting_at:
                    break
                keys = entry or ""
                turns.append(
                    _turn(
                        keys or None,
                        interaction,
                        lambda keys=keys: ivr_continue(
                            interaction=interaction, digits=keys, timed_out=not keys
                        ),
                    )
                )
            raise _Rollback
    except _Rollback:
        pass
    return turns


def _turn(entry: str | None, interaction: Interaction, run: Any) -> SimulatedTurn:
    try:
        with transaction.atomic():
            steps = run()
    except ApplicationError as error:
        return SimulatedTurn(input=entry, steps=[], waiting_at="", variables={}, error=error.message)
    session = IvrSession.objects.get(interaction=interaction)
    waiting = session.awaiting if session.state == IvrSessionState.ACTIVE else ""
    return SimulatedTurn(input=entry, steps=steps, waiting_at=waiting, variables=dict(session.variables))
