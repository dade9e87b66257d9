"""The only surface other modules may import from accounts."""

from __future__ import annotations

from typing import Any

from fedele.accounts import selectors, services
from fedele.accounts.contracts import Actor, Role, UserSummary
from fedele.accounts.models import User

__all__ = [
    "Actor",
    "Role",
    "UserSummary",
    "actor_for",
    "create_portal_user",
    "erase_user",
    "grant_to_role",
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
