from __future__ import annotations

from django.db.models import Prefetch, QuerySet

from fedele.accounts.contracts import Actor
from fedele.accounts.models import ApiToken, User


def actor_from_user(user: User) -> Actor:
    """Built once per request; permissions come from the role groups (cached by Django)."""
    return Actor(
        user_id=user.pk,
        public_id=user.public_id,
        email=user.email,
        roles=user.role_names,
        permissions=frozenset(user.get_all_permissions()),
        organisation_id=user.organisation_id,
        organisation_kind=user.organisation.kind if user.organisation_id and user.organisation else None,
        language=user.language,
        is_superuser=user.is_superuser,
        display_name=str(user.get_full_name()).strip() or user.email,
    )


def user_list(*, search: str = "") -> QuerySet[User]:
    from django.contrib.auth.models import Group

    queryset = User.objects.select_related("organisation").prefetch_related(
        Prefetch("groups", queryset=Group.objects.only("id", "name"))
    )
    if search:
        queryset = queryset.filter(email__icontains=search)
    return queryset.order_by("email")


def api_token_list(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")
