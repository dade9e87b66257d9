"""Accounts API: who am I, and my API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from django.db import transaction
from django.http import HttpRequest
from ninja import Field, Router, Schema, Status

from fedele.accounts import selectors, services
from fedele.accounts.models import ApiToken, Team, User
from fedele.shared.api import ERROR_RESPONSES, StrictSchema, require_scope
from fedele.shared.errors import NotFound, PermissionDenied, ValidationFailed

router = Router(tags=["accounts"])


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


@router.get("/me", response={200: MeOut, **ERROR_RESPONSES}, summary="The calling user")
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


@router.get("/me/tokens", response={200: list[TokenOut], **ERROR_RESPONSES}, summary="My API tokens")
def list_tokens(request: HttpRequest) -> list[ApiToken]:
    require_scope(request, "read")
    return list(selectors.api_token_list(user=_user(request)))


@router.post(
    "/me/tokens",
    response={201: TokenCreatedOut, **ERROR_RESPONSES},
    summary="Create an API token (shown once)",
)
def create_token(request: HttpRequest, payload: TokenIn) -> Status[ApiToken]:
    require_scope(request, "write")
    token, plain = services.api_token_create(
        user=_user(request), name=payload.name, scopes=payload.scopes, expires_in_days=payload.expires_in_days
    )
    # The model itself, not TokenCreatedOut(**values): resolve_id reads obj.public_id. The plain
    # token rides on the instance for this one response only; it is never stored.
    token.token = plain  # type: ignore[attr-defined]
    return Status(201, token)


@router.post(
    "/me/tokens/{token_id}/revoke", response={200: TokenOut, **ERROR_RESPONSES}, summary="Revoke an API token"
)
def revoke_token(request: HttpRequest, token_id: UUID) -> ApiToken:
    require_scope(request, "write")
    return services.api_token_revoke(user=_user(request), token_public_id=str(token_id))


# --- administration: users and teams (permission accounts.manage_users) ------------------------


def _require_admin(request: HttpRequest, scope: str) -> User:
    require_scope(request, scope)
    user = _user(request)
    if not user.has_perm("accounts.manage_users"):
        raise PermissionDenied("You do not have permission to manage users.")
    return user


class UserOut(Schema):
    id: UUID
    email: str
    first_name: str
    last_name: str
    language: str
    roles: list[str]
    is_active: bool
    organisation: str | None
    two_factor_enabled: bool

    @staticmethod
    def resolve_id(obj: User) -> UUID:
        return obj.public_id

    @staticmethod
    def resolve_roles(obj: User) -> list[str]:
        return sorted(obj.role_names)

    @staticmethod
    def resolve_organisation(obj: User) -> str | None:
        return obj.organisation.name if obj.organisation else None

    @staticmethod
    def resolve_two_factor_enabled(obj: User) -> bool:
        return obj.has_two_factor


RoleLiteral = Literal[
    "admin",
    "supervisor",
    "agent",
    "billing_clerk",
    "loyalty_manager",
    "technician",
    "dispatcher",
    "analyst",
    "portal_customer",
    "partner",
]


class UserIn(StrictSchema):
    email: str = Field(..., min_length=3, max_length=254)
    first_name: str = Field("", max_length=150)
    last_name: str = Field("", max_length=150)
    language: Literal["it", "en"] = "it"
    roles: list[RoleLiteral] = Field(..., min_length=1, max_length=10)
    password: str = Field(..., min_length=10, max_length=200)


class UserPatch(StrictSchema):
    roles: list[RoleLiteral] | None = Field(None, min_length=1, max_length=10)
    is_active: bool | None = None


class TeamIn(StrictSchema):
    name: str = Field(..., min_length=1, max_length=120)
    member_ids: list[UUID] = Field(default=[], max_length=500)


class TeamOut(Schema):
    id: UUID
    name: str
    member_ids: list[UUID]

    @staticmethod
    def resolve_id(obj: Team) -> UUID:
        return obj.public_id

    @staticmethod
    def resolve_member_ids(obj: Team) -> list[UUID]:
        return sorted(member.public_id for member in obj.members.all())


def _user_ids(public_ids: list[UUID]) -> list[int]:
    found = dict(User.objects.filter(public_id__in=public_ids).values_list("public_id", "pk"))
    missing = [str(p) for p in public_ids if p not in found]
    if missing:
        raise ValidationFailed(
            "Unknown users.", fields={"member_ids": [f"Unknown user {m}." for m in missing]}
        )
    return [found[p] for p in public_ids]


@router.get("/users", response={200: list[UserOut], **ERROR_RESPONSES}, summary="List users (admin)")
def list_users(request: HttpRequest, search: str = "") -> list[User]:
    _require_admin(request, "read")
    return list(selectors.user_list(search=search[:100])[:500])


@router.post("/users", response={201: UserOut, **ERROR_RESPONSES}, summary="Create a user (admin)")
def create_user(request: HttpRequest, payload: UserIn) -> Status[User]:
    _require_admin(request, "write")
    user = services.user_create(
        email=payload.email,
        password=payload.password,
        roles=payload.roles,
        first_name=payload.first_name,
        last_name=payload.last_name,
        language=payload.language,
    )
    return Status(201, selectors.user_list().get(pk=user.pk))


@router.patch(
    "/users/{user_id}",
    response={200: UserOut, **ERROR_RESPONSES},
    summary="Change roles or activation (admin)",
)
def update_user(request: HttpRequest, user_id: UUID, payload: UserPatch) -> User:
    admin = _require_admin(request, "write")
    user = User.objects.filter(public_id=user_id).first()
    if user is None:
        raise NotFound("User not found.")
    with transaction.atomic():
        if payload.roles is not None:
            services.user_set_roles(user=user, roles=payload.roles)
        if payload.is_active is not None:
            services.user_set_active(user=user, is_active=payload.is_active, acting_user_id=admin.pk)
    return selectors.user_list().get(pk=user.pk)


@router.get("/teams", response={200: list[TeamOut], **ERROR_RESPONSES}, summary="List teams (admin)")
def list_teams(request: HttpRequest) -> list[Team]:
    _require_admin(request, "read")
    return list(Team.objects.prefetch_related("members").order_by("name"))


@router.post("/teams", response={201: TeamOut, **ERROR_RESPONSES}, summary="Create a team (admin)")
def create_team(request: HttpRequest, payload: TeamIn) -> Status[Team]:
    _require_admin(request, "write")
    team = services.team_create(name=payload.name, member_ids=_user_ids(payload.member_ids))
    return Status(201, Team.objects.prefetch_related("members").get(pk=team.pk))
