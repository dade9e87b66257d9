"""The earn endpoint's fast path: ``POST /api/v1/loyalty/events`` with group commit (ADR 0002).

The plain form of the request (bearer token, a JSON body that validates against ``EventIn``, no
Idempotency-Key header, no cookies) is answered here; everything else goes to the ninja view in
``api/rules.py``, whose answers this path reproduces byte for byte (tested). Concurrent requests are
recorded together by ``events_record_many``: one database transaction for a group instead of one per
request, each event with exactly its one-by-one outcome.

Per group, in the worker thread: the token is checked once (scope ``write``, permission
``loyalty.operate_loyalty``; anything else is Django's to refuse), every request counts against the
caller's rate limit, the programme and the members are read with one query each, and the audit rows
carry the caller, its address and the group's first request id.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from fedele.accounts.facade import actor_for, authenticate_api_token
from fedele.loyalty.api.rules import OPERATE, EventIn, EventOut, _event_out, event_fields, external_id_reused
from fedele.loyalty.selectors import config_cache
from fedele.loyalty.selectors import rules as selectors
from fedele.loyalty.services.rules_events_batch import EventRequest, events_record_many
from fedele.shared import context, fastpath, ratelimit, versioned_cache
from fedele.shared.errors import ApplicationError, NotFound, RateLimited

PATH = "/api/v1/loyalty/events"


_Call = fastpath.JsonCall[EventIn]


async def record_event(request: fastpath.FastRequest) -> fastpath.FastResponse | None:
    call = fastpath.json_call(request, EventIn)
    if call is None:
        return None  # Django answers
    return await _GROUPS.submit(call)


_render = fastpath.render_json
_error = fastpath.render_error


def _process(calls: list[_Call]) -> list[fastpath.FastResponse | None]:
    """One group of calls: grouped by caller and language, then by programme."""
    answers: list[fastpath.FastResponse | None] = [None] * len(calls)
    for (authorization, language, client, user_agent), indexes in fastpath.by_caller(calls).items():
        # One request scope per caller: the cache versions are read once for its whole group.
        with versioned_cache.scope(), translation.override(language):
            _process_caller(calls, indexes, answers, authorization, client, user_agent, language)
    return answers


def _process_caller(
    calls: list[_Call],
    indexes: list[int],
    answers: list[fastpath.FastResponse | None],
    authorization: str,
    client: str | None,
    user_agent: str,
    language: str,
) -> None:
    found = authenticate_api_token(authorization[7:].strip())
    if found is None or "write" not in found[1]:
        return  # Django answers: 401, or 403 for the missing scope
    user = found[0]
    actor = actor_for(user)
    if not (actor.is_internal and actor.can(OPERATE)):
        return  # Django answers 403
    bucket = "api:auth:" + hashlib.sha256(authorization.encode()).hexdigest()[:40]
    admitted: list[int] = []
    for index in indexes:
        try:
            ratelimit.hit(bucket, limit=_rate_limit())
        except RateLimited as error:
            answers[index] = _error(error, language)
            continue
        admitted.append(index)
    saved = context.set_current(
        context.RequestContext(
            actor_id=user.pk,
            actor_label=user.email,
            ip_address=client,
            user_agent=user_agent,
            request_id=calls[admitted[0]].request_id if admitted else "",
        )
    )
    try:
        by_programme: dict[str, list[int]] = defaultdict(list)
        for index in admitted:
            by_programme[calls[index].payload.programme].append(index)
        for code, group in by_programme.items():
            _process_programme(actor, code, calls, group, answers, language)
    finally:
        context.reset(saved)


def _rate_limit() -> int:
    return int(settings.FEDELE_API_RATE_LIMIT_PER_MINUTE)


def _process_programme(
    actor: Any,
    code: str,
    calls: list[_Call],
    indexes: list[int],
    answers: list[fastpath.FastResponse | None],
    language: str,
) -> None:
    try:
        programme = config_cache.programme_get(code)
    except ApplicationError as error:
        for index in indexes:
            answers[index] = _error(error, language)
        return
    members = selectors.members_find(
        programme, [calls[index].payload.member for index in indexes], tiers=config_cache.tiers(programme)
    )
    requests: list[EventRequest] = []
    asked: list[int] = []
    for index in indexes:
        payload = calls[index].payload
        member = members.get(payload.member.strip())
        if member is None:
            answers[index] = _error(NotFound(_("Member not found."), code="member_not_found"), language)
            continue
        member.programme = programme
        requests.append(EventRequest(member=member, **event_fields(payload)))
        asked.append(index)
    if not requests:
        return
    outcomes = events_record_many(actor=actor, programme=programme, requests=requests)
    for index, request, outcome in zip(asked, requests, outcomes, strict=True):
        if outcome.error is not None:
            answers[index] = _error(outcome.error, language)
            continue
        event = outcome.event
        assert event is not None
        if event.member_id != request.member.pk:
            answers[index] = _error(external_id_reused(), language)
            continue
        event.member = request.member
        data = EventOut.model_validate(_event_out(event, programme)).model_dump()
        answers[index] = _render(201 if outcome.created else 200, data, [("content-language", language)])


_GROUPS: fastpath.GroupCommit[_Call, fastpath.FastResponse | None] = fastpath.GroupCommit(
    _process, max_group=200, workers=1, name="loyalty-earn-group-commit"
)


def register() -> None:
    fastpath.register("POST", PATH, record_event)
