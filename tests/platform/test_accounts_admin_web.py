"""User and team administration pages: create, change roles, deactivate, teams; only for user managers."""

from __future__ import annotations

import pytest
from django.test import Client

from fedele.accounts.models import Team, User
from fedele.accounts.tests.factories import DEFAULT_PASSWORD, user_with_roles
from fedele.shared.models import AuditLog


def signed_in(client: Client, *roles: str) -> User:
    user = user_with_roles(*roles)
    assert client.login(username=user.email, password=DEFAULT_PASSWORD)
    return user


@pytest.mark.django_db
def test_admin_creates_a_user_from_the_page(client: Client) -> None:
    signed_in(client, "admin")
    assert client.get("/accounts/users/new/").status_code == 200
    response = client.post(
        "/accounts/users/new/",
        {
            "email": "Nuova@Example.it",
            "first_name": "Nuova",
            "last_name": "Collega",
            "language": "it",
            "roles": ["agent", "dispatcher"],
            "password": "Long-enough-pass-77",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/accounts/users/"
    created = User.objects.get(email="nuova@example.it")
    assert created.role_names == frozenset({"agent", "dispatcher"})
    assert created.check_password("Long-enough-pass-77")


@pytest.mark.django_db
def test_bad_user_form_is_422_with_field_errors_and_creates_nothing(client: Client) -> None:
    admin = signed_in(client, "admin")
    before = User.objects.count()
    response = client.post(
        "/accounts/users/new/",
        {"email": admin.email, "language": "it", "roles": ["agent"], "password": "Long-enough-pass-77"},
    )
    assert response.status_code == 422
    assert "Already in use." in response.content.decode()
    response = client.post(
        "/accounts/users/new/", {"email": "x@example.it", "language": "it", "password": "short"}
    )
    assert response.status_code == 422
    assert 'id="id_roles_errors"' in response.content.decode()
    assert User.objects.count() == before


@pytest.mark.django_db
def test_admin_changes_roles_and_deactivates_but_not_themselves(client: Client) -> None:
    admin = signed_in(client, "admin")
    agent = user_with_roles("agent")
    response = client.post(
        f"/accounts/users/{agent.public_id}/", {"roles": ["analyst"]}
    )  # unchecked: inactive
    assert response.status_code == 302
    agent = User.objects.get(pk=agent.pk)
    assert agent.role_names == frozenset({"analyst"})
    assert agent.is_active is False
    assert AuditLog.objects.filter(action="user.deactivated", object_id=str(agent.public_id)).count() == 1

    response = client.post(f"/accounts/users/{admin.public_id}/", {"roles": ["admin"]})
    assert response.status_code == 422
    assert "You cannot deactivate your own account." in response.content.decode()
    assert User.objects.get(pk=admin.pk).is_active is True


@pytest.mark.django_db
def test_teams_page_creates_a_team_with_members(client: Client) -> None:
    signed_in(client, "admin")
    first = user_with_roles("agent")
    second = user_with_roles("agent")
    response = client.post("/accounts/teams/", {"name": "Back office", "members": [first.pk, second.pk]})
    assert response.status_code == 302
    team = Team.objects.get(name="Back office")
    assert set(team.members.values_list("pk", flat=True)) == {first.pk, second.pk}
    response = client.post("/accounts/teams/", {"name": "Back office"})
    assert response.status_code == 422
    assert Team.objects.count() == 1
    page = client.get("/accounts/teams/").content.decode()
    assert "Back office" in page


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/accounts/users/new/", "/accounts/teams/"])
def test_administration_pages_are_refused_to_other_roles(client: Client, path: str) -> None:
    signed_in(client, "supervisor")
    assert client.get(path).status_code == 403


@pytest.mark.django_db
def test_teams_take_active_staff_only(client: Client) -> None:
    signed_in(client, "admin")
    portal = user_with_roles("portal_customer")
    partner = user_with_roles("partner")
    staff = user_with_roles("technician")
    page = client.get("/accounts/teams/").content.decode()
    assert f'value="{portal.pk}"' not in page and f'value="{partner.pk}"' not in page
    assert f'value="{staff.pk}"' in page

    from fedele.accounts import services
    from fedele.shared.errors import ValidationFailed

    with pytest.raises(ValidationFailed) as caught:
        services.team_create(name="Mixed", member_ids=[staff.pk, portal.pk])
    assert caught.value.fields == {"members": ["Only active staff can be members."]}
    assert not Team.objects.filter(name="Mixed").exists()
