"""Factories for accounts. Users get their roles through the role groups, as in production."""

from __future__ import annotations

from collections.abc import Sequence

import factory
from django.contrib.auth.models import Group

from fedele.accounts.contracts import OrganisationKind, Role
from fedele.accounts.models import Organisation, User
from fedele.accounts.services import api_token_create, roles_sync

DEFAULT_PASSWORD = "Correct-Horse-9-Battery"


class OrganisationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Organisation

    name = factory.Sequence(lambda n: f"Partner {n} S.r.l.")
    kind = OrganisationKind.PARTNER.value


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.it")
    first_name = "Giulia"
    last_name = factory.Sequence(lambda n: f"Bianchi{n}")
    language = "en"
    password = factory.django.Password(DEFAULT_PASSWORD)

    @factory.post_generation
    def roles(self, create: bool, extracted: Sequence[str] | None, **kwargs: object) -> None:
        if not create:
            return
        wanted = list(extracted) if extracted is not None else [Role.AGENT.value]
        if Group.objects.filter(name__in=wanted).count() != len(set(wanted)):
            roles_sync()
        self.groups.set(Group.objects.filter(name__in=wanted))  # type: ignore[attr-defined]


def user_with_roles(*roles: str, **kwargs: object) -> User:
    user: User = UserFactory(roles=list(roles), **kwargs)  # type: ignore[assignment]
    return user


def token_for(user: User, scopes: Sequence[str] = ("read", "write")) -> str:
    _token, plain = api_token_create(user=user, name="test", scopes=scopes)
    return plain


def auth_header(user: User, scopes: Sequence[str] = ("read", "write")) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token_for(user, scopes)}"}
