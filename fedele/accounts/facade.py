"""The only surface other modules may import from accounts."""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from django.db import transaction

from fedele.accounts import selectors, services
from fedele.accounts.contracts import Actor, OrganisationKind, Role, UserSummary
from fedele.accounts.models import ApiToken, Organisation, User
from fedele.shared import audit, clock
from fedele.shared.errors import NotFound, ValidationFailed

__all__ = [
    "Actor",
    "ApiTokenSummary",
    "Role",
    "UserSummary",
    "actor_for",
    "authenticate_api_token",
    "create_organisation",
    "create_organisation_user",
    "create_portal_user",
    "erase_user",
    "grant_to_role",
    "organisation_users",
    "revoke_api_token",
    "scoped_api_token_create",
    "scoped_api_tokens",
    "user_summary",
]


def actor_for(user: Any) -> Actor:
    """The Actor for request.user (or a User)."""
    if not isinstance(user, User):
        raise TypeError("actor_for needs an authenticated fedele user.")
    cached: Actor | None = getattr(user, "_fedele_actor", None)
    if cached is None:
        cached = selectors.actor_from_user(user)
        user._fedele_actor = cached  # type: ignore[attr-defined]
    return cached


def authenticate_api_token(plain: str) -> tuple[User, frozenset[str]] | None:
    """The user and scopes of a valid bearer token (not revoked, not expired, active user), else None:
    for fast paths that authenticate outside Django's request cycle (cached per process under the
    accounts version, as the API's own authentication)."""
    token = services.api_token_authenticate(plain)
    if token is None:
        return None
    return token.user, frozenset(token.scopes)


def user_summary(user_id: int) -> UserSummary | None:
    user = User.objects.filter(pk=user_id).prefetch_related("groups").first()
    if user is None:
        return None
    return UserSummary(user.pk, user.public_id, user.email, user.get_full_name(), user.role_names)


def create_portal_user(
    *,
    email: str,
    password: str | None,
    first_name: str = "",
    last_name: str = "",
    language: str = "it",
    validate_strength: bool = True,
) -> int:
    user = services.user_create(
        email=email,
        password=password,
        roles=[Role.PORTAL_CUSTOMER.value],
        first_name=first_name,
        last_name=last_name,
        language=language,
        validate_strength=validate_strength,
    )
    return user.pk


def user_id_for_email(email: str) -> int | None:
    return User.objects.filter(email=email.strip().lower()).values_list("pk", flat=True).first()


def erase_user(user_id: int) -> bool:
    """GDPR erasure of a portal login: pseudonymised e-mail, no name, no password, tokens revoked.

    Returns True when the user existed and was still active. Runs in the caller's transaction.
    """
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return False
    was_active = user.is_active
    services.user_erase(user=user)
    return was_active


def grant_to_role(role: Role, permissions: set[str]) -> None:
    """Modules add their permissions to the standard roles from their AppConfig.ready()."""
    from fedele.accounts import roles

    roles.extend(role, permissions)


# --- organisations and their users / scoped API tokens (coalition partners) ----------------------


@dataclass(frozen=True, slots=True)
class ApiTokenSummary:
    """An API token as other modules may show it: never the token itself, only its prefix."""

    public_id: UUID
    user_id: int
    user_email: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > clock.now())


def create_organisation(*, name: str, kind: OrganisationKind) -> int:
    """An organisation (e.g. a coalition partner's company). Runs in the caller's transaction."""
    return services.organisation_create(name=name, kind=kind.value).pk


def create_organisation_user(
    *,
    organisation_id: int,
    email: str,
    role: Role,
    password: str | None = None,
    first_name: str = "",
    last_name: str = "",
    language: str = "it",
) -> int:
    """A user of an organisation with one external role (e.g. a partner's staff member). Raises
    ValidationFailed / Conflict like the users API; runs in the caller's transaction."""
    organisation = Organisation.objects.filter(pk=organisation_id).first()
    if organisation is None:
        raise NotFound("Organisation not found.")
    user = services.user_create(
        email=email,
        password=password,
        roles=[role.value],
        first_name=first_name,
        last_name=last_name,
        language=language,
        organisation=organisation,
    )
    return user.pk


def organisation_users(organisation_id: int) -> list[UserSummary]:
    """The active users of an organisation, by e-mail."""
    users = (
        User.objects.filter(organisation_id=organisation_id, is_active=True)
        .prefetch_related("groups")
        .order_by("email")
    )
    return [UserSummary(u.pk, u.public_id, u.email, u.get_full_name(), u.role_names) for u in users]


def _token_summary(token: ApiToken) -> ApiTokenSummary:
    return ApiTokenSummary(
        public_id=token.public_id,
        user_id=token.user_id,
        user_email=token.user.email,
        name=token.name,
        prefix=token.prefix,
        scopes=tuple(token.scopes),
        created_at=token.created_at,
        last_used_at=token.last_used_at,
        expires_at=token.expires_at,
        revoked_at=token.revoked_at,
    )


def scoped_api_token_create(
    *,
    user_id: int,
    name: str,
    scopes: Iterable[str],
    allowed_scopes: frozenset[str],
    expires_in_days: int | None = None,
) -> tuple[str, ApiTokenSummary]:
    """An API token carrying a module's own scopes (e.g. ``loyalty:partner:earn``) instead of the
    generic read/write. Returns the plain token (shown once, only its hash is kept) and its summary.
    Runs in the caller's transaction."""
    chosen = sorted(set(scopes))
    if not chosen or any(scope not in allowed_scopes for scope in chosen):
        raise ValidationFailed(
            f"Scopes must be among: {', '.join(sorted(allowed_scopes))}.",
            code="invalid_scopes",
            fields={"scopes": ", ".join(sorted(allowed_scopes))},
        )
    if not name.strip():
        raise ValidationFailed("A token needs a name.", fields={"name": "Required."})
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        raise ValidationFailed("Expiry must be 1-3650 days.", fields={"expires_in_days": "1-3650"})
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise NotFound("User not found.")
    prefix = secrets.token_hex(4)
    plain = f"{services.TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    now = clock.now()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name.strip()[:100],
            prefix=prefix,
            token_hash=services.hash_token(plain),
            scopes=chosen,
            created_at=now,
            expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
        )
        audit.record(
            action="api_token.created",
            object_type="api_token",
            object_id=str(token.public_id),
            after={"name": token.name, "scopes": chosen, "user": str(user.public_id)},
        )
    return plain, _token_summary(token)


def scoped_api_tokens(user_ids: Iterable[int]) -> list[ApiTokenSummary]:
    """The tokens of these users (active and revoked), newest first."""
    tokens = (
        ApiToken.objects.filter(user_id__in=sorted(set(user_ids)))
        .select_related("user")
        .order_by("-created_at", "-id")
    )
    return [_token_summary(token) for token in tokens]


def revoke_api_token(*, token_public_id: str, user_ids: Iterable[int]) -> ApiTokenSummary:
    """Revoke a token if it belongs to one of these users (else NotFound: no peeking at others').
    Revoking twice is harmless. Runs in the caller's transaction."""
    try:
        wanted = UUID(str(token_public_id))
    except ValueError as error:
        raise NotFound("Token not found.") from error
    with transaction.atomic():
        token = (
            ApiToken.objects.select_for_update()
            .select_related("user")
            .filter(public_id=wanted, user_id__in=sorted(set(user_ids)))
            .first()
        )
        if token is None:
            raise NotFound("Token not found.")
        if token.revoked_at is None:
            token.revoked_at = clock.now()
            token.save(update_fields=["revoked_at"])
            audit.record(action="api_token.revoked", object_type="api_token", object_id=str(token.public_id))
    return _token_summary(token)
