"""API authentication: bearer tokens (hashed at rest) or the web session (with CSRF)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from ninja.security import HttpBearer, SessionAuth

from fedele.accounts.models import User
from fedele.accounts.services import api_token_authenticate
from fedele.shared import context, versioned_cache
from fedele.shared.api import SCOPES_ATTRIBUTE
from fedele.shared.middleware import client_address


def _bind(request: HttpRequest, user: User, scopes: list[str]) -> User:
    request.user = user
    setattr(request, SCOPES_ATTRIBUTE, frozenset(scopes))
    context.set_current(
        context.RequestContext(
            actor_id=user.pk,
            actor_label=user.email,
            ip_address=client_address(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
            request_id=context.current().request_id,
        )
    )
    return user


class ApiTokenAuth(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str) -> Any:
        # The per-process caches (token, configuration) read their version once from here on.
        versioned_cache.begin_request()
        api_token = api_token_authenticate(token)
        if api_token is None:
            return None
        return _bind(request, api_token.user, list(api_token.scopes))


class WebSessionAuth(SessionAuth):
    """The logged-in web user may call the API from pages (htmx, charts), with CSRF protection."""

    def authenticate(self, request: HttpRequest, key: str | None) -> Any:
        versioned_cache.begin_request()
        user = super().authenticate(request, key)
        if user is None:
            return None
        return _bind(request, user, ["read", "write"])
