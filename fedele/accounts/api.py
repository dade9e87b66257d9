"""Accounts API: who am I, and my API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from django.http import HttpRequest
from ninja import Field, Router, Schema

from fedele.accounts import selectors, services
from fedele.accounts.auth import require_scope
from fedele.accounts.models import ApiToken, User
from fedele.shared.api import ErrorEnvelope, StrictSchema

router = Router(tags=["accounts"])
ERRORS = {
    400: ErrorEnvelope,
    401: ErrorEnvelope,
    403: ErrorEnvelope,
    404: ErrorEnvelope,
    409: ErrorEnvelope,
    422: ErrorEnvelope,
    429: ErrorEnvelope,
}


class MeOut(Schema):
    id: UUID
    email: str
    first_name: str
    last_name: str
    language: str
    roles: list[str]
    two_factor_enabled: bool


class TokenIn(StrictSchema):
    name: str = Field(..., min_length=1, max_length=100)
    scopes: list[Literal["read", "write"]] = Field(default=["read", "write"], min_length=1, max_length=2)
    expires_in_days: int | None = Field(None, ge=1, le=3650)


class TokenOut(Schema):
    id: UUID
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @staticmethod
    def resolve_id(obj: ApiToken) -> UUID:
        return obj.public_id


class TokenCreatedOut(TokenOut):
    token: str


def _user(request: HttpRequest) -> User:
    user = request.user
    assert isinstance(user, User)
    return user


@router.get("/me", response={200: MeOut, **ERRORS}, summary="The calling user")
def me(request: HttpRequest) -> MeOut:
    user = _user(request)
    return MeOut(
        id=user.public_id,
        email=user.email,
        first_name=user.first_name,
        last_name=user.last_name,
        language=user.language,
        roles=sorted(user.role_names),
        two_factor_enabled=user.has_two_factor,
    )


@router.get("/me/tokens", response={200: list[TokenOut], **ERRORS}, summary="My API tokens")
def list_tokens(request: HttpRequest) -> list[ApiToken]:
    require_scope(request, "read")
    return list(selectors.api_token_list(user=_user(request)))


@router.post(
    "/me/tokens", response={201: TokenCreatedOut, **ERRORS}, summary="Create an API token (shown once)"
)
def create_token(request: HttpRequest, payload: TokenIn) -> tuple[int, TokenCreatedOut]:
    require_scope(request, "write")
    token, plain = services.api_token_create(
        user=_user(request), name=payload.name, scopes=payload.scopes, expires_in_days=payload.expires_in_days
    )
    return 201, TokenCreatedOut(
        id=token.public_id,
        name=token.name,
        prefix=token.prefix,
        scopes=token.scopes,
        created_at=token.created_at,
        last_used_at=None,
        expires_at=token.expires_at,
        revoked_at=None,
        token=plain,
    )


@router.post(
    "/me/tokens/{token_id}/revoke", response={200: TokenOut, **ERRORS}, summary="Revoke an API token"
)
def revoke_token(request: HttpRequest, token_id: UUID) -> ApiToken:
    require_scope(request, "write")
    return services.api_token_revoke(user=_user(request), token_public_id=str(token_id))
