"""Accounts services: roles, users, API tokens at rest, login throttling, TOTP."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pyotp
import pytest
from django.contrib.auth.models import Group, Permission

from fedele.accounts import services
from fedele.accounts.contracts import Role
from fedele.accounts.models import ApiToken, LoginThrottle, User
from fedele.accounts.roles import ROLE_PERMISSIONS
from fedele.accounts.tests.factories import user_with_roles
from fedele.shared.errors import Conflict, NotFound, RateLimited, ValidationFailed
from fedele.shared.models import AuditLog

START = datetime(2026, 2, 10, 8, 30, tzinfo=UTC)


def _existing(codes: set[str]) -> set[str]:
    found = set()
    for code in codes:
        app_label, codename = code.split(".", 1)
        if Permission.objects.filter(content_type__app_label=app_label, codename=codename).exists():
            found.add(code)
    return found


def _group_codes(role: Role) -> set[str]:
    group = Group.objects.get(name=role.value)
    return {
        f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")
    }


# --- roles ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_role_sync_gives_each_group_exactly_its_existing_permissions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        ROLE_PERMISSIONS, Role.AGENT, ROLE_PERMISSIONS[Role.AGENT] | {"customers.not_a_real_permission"}
    )
    stray = Permission.objects.get(content_type__app_label="shared", codename="view_audit")
    services.roles_sync()
    Group.objects.get(name=Role.AGENT.value).permissions.add(stray)  # drift, e.g. an admin's hand edit
    services.roles_sync()
    assert set(Group.objects.values_list("name", flat=True)) >= {r.value for r in Role}
    for role in Role:
        assert _group_codes(role) == _existing(ROLE_PERMISSIONS[role]), role
    assert "customers.not_a_real_permission" not in _group_codes(Role.AGENT)
    assert "shared.view_audit" not in _group_codes(Role.AGENT)
    assert _group_codes(Role.PORTAL_CUSTOMER) == set()
    assert _group_codes(Role.PARTNER) == {
        "customers.view_customer",
        "customers.add_customer",
        "customers.view_contact",
    }
    assert {
        "customers.erase_personal_data",
        "accounts.manage_users",
        "shared.manage_webhooks",
    } <= _group_codes(Role.ADMIN)


@pytest.mark.django_db
def test_users_get_permissions_through_their_roles() -> None:
    agent = User.objects.get(pk=user_with_roles("agent").pk)
    assert agent.has_perm("customers.add_customer")
    assert not agent.has_perm("customers.erase_personal_data")
    assert agent.role_names == frozenset({"agent"})
    assert agent.is_internal
    portal = User.objects.get(pk=user_with_roles("portal_customer").pk)
    assert portal.get_all_permissions() == set()
    assert not portal.is_internal


# --- users ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_user_create_normalises_and_audits() -> None:
    user = services.user_create(
        email="  Mario.Rossi@Example.IT ", password="Long-enough-pass-77", roles=["agent", "analyst"]
    )
    assert user.email == "mario.rossi@example.it"
    assert user.check_password("Long-enough-pass-77")
    assert user.role_names == frozenset({"agent", "analyst"})
    row = AuditLog.objects.get(action="user.created")
    assert row.object_id == str(user.public_id)
    assert row.after == {
        "email": "mario.rossi@example.it",
        "roles": ["agent", "analyst"],
        "organisation": None,
    }


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"roles": ["wizard"]}, "roles"),
        ({"roles": []}, "roles"),
        ({"language": "de"}, "language"),
        ({"password": "short"}, "password"),
        ({"password": "password123"}, "password"),
    ],
)
def test_user_create_refuses_bad_input_and_writes_nothing(kwargs: dict[str, object], field: str) -> None:
    values: dict[str, object] = {
        "email": "ok@example.it",
        "password": "Long-enough-pass-77",
        "roles": ["agent"],
    }
    values.update(kwargs)
    before = (User.objects.count(), AuditLog.objects.count())
    with pytest.raises(ValidationFailed) as caught:
        services.user_create(**values)  # type: ignore[arg-type]
    assert field in caught.value.fields
    assert (User.objects.count(), AuditLog.objects.count()) == before


@pytest.mark.django_db
def test_duplicate_email_is_a_conflict_case_insensitively() -> None:
    services.user_create(email="dup@example.it", password=None, roles=["agent"])
    before = (User.objects.count(), AuditLog.objects.count())
    with pytest.raises(Conflict) as caught:
        services.user_create(email="DUP@example.it", password=None, roles=["agent"])
    assert caught.value.code == "duplicate_email"
    assert (User.objects.count(), AuditLog.objects.count()) == before


@pytest.mark.django_db
def test_user_without_password_cannot_sign_in() -> None:
    user = services.user_create(email="nopass@example.it", password=None, roles=["agent"])
    assert not user.has_usable_password()


# --- API tokens ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_api_token_is_stored_only_as_a_hash(time_machine) -> None:
    time_machine.move_to(START, tick=False)
    user = user_with_roles("agent")
    token, plain = services.api_token_create(user=user, name=" CI ", scopes=["read"], expires_in_days=30)
    assert plain.startswith(f"fdl_{token.prefix}_")
    assert len(token.prefix) == 8
    assert token.token_hash == hashlib.sha256(plain.encode()).hexdigest()
    assert token.name == "CI"
    assert token.scopes == ["read"]
    assert token.expires_at == START + timedelta(days=30)
    row = ApiToken.objects.filter(pk=token.pk).values().get()
    assert all(plain not in str(value) for value in row.values())
    assert not any(plain in str(r.after) for r in AuditLog.objects.all())
    assert services.api_token_authenticate(plain) == token
    assert services.api_token_authenticate(plain + "x") is None
    assert services.api_token_authenticate(token.token_hash) is None
    assert services.api_token_authenticate("fdl_" + "a" * 300) is None


@pytest.mark.django_db
def test_revoked_expired_and_inactive_tokens_do_not_authenticate(time_machine) -> None:
    time_machine.move_to(START, tick=False)
    user = user_with_roles("agent")
    revoked, revoked_plain = services.api_token_create(user=user, name="old")
    expiring, expiring_plain = services.api_token_create(user=user, name="temp", expires_in_days=1)
    services.api_token_revoke(user=user, token_public_id=str(revoked.public_id))
    services.api_token_revoke(user=user, token_public_id=str(revoked.public_id))  # twice: one audit row
    assert AuditLog.objects.filter(action="api_token.revoked").count() == 1
    assert services.api_token_authenticate(revoked_plain) is None
    time_machine.move_to(START + timedelta(days=1) - timedelta(seconds=1), tick=False)
    assert services.api_token_authenticate(expiring_plain) == expiring
    time_machine.move_to(START + timedelta(days=1), tick=False)
    assert services.api_token_authenticate(expiring_plain) is None
    _, active_plain = services.api_token_create(user=user, name="live")
    services.user_set_active(user=user, is_active=False)
    assert services.api_token_authenticate(active_plain) is None


@pytest.mark.django_db
def test_token_revoke_is_scoped_to_its_owner() -> None:
    owner = user_with_roles("agent")
    stranger = user_with_roles("agent")
    token, plain = services.api_token_create(user=owner, name="mine")
    with pytest.raises(NotFound):
        services.api_token_revoke(user=stranger, token_public_id=str(token.public_id))
    token.refresh_from_db()
    assert token.revoked_at is None
    assert services.api_token_authenticate(plain) == token


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": " "}, "name"),
        ({"scopes": ["admin"]}, "scopes"),
        ({"scopes": []}, "scopes"),
        ({"expires_in_days": 0}, "expires_in_days"),
        ({"expires_in_days": 3651}, "expires_in_days"),
    ],
)
def test_api_token_create_validation(kwargs: dict[str, object], field: str) -> None:
    user = user_with_roles("agent")
    values: dict[str, object] = {"user": user, "name": "ok"}
    values.update(kwargs)
    with pytest.raises(ValidationFailed) as caught:
        services.api_token_create(**values)  # type: ignore[arg-type]
    assert list(caught.value.fields) == [field]
    assert ApiToken.objects.count() == 0


@pytest.mark.django_db
def test_last_used_is_written_at_most_once_a_minute(time_machine) -> None:
    time_machine.move_to(START, tick=False)
    token, plain = services.api_token_create(user=user_with_roles("agent"), name="t")
    services.api_token_authenticate(plain)
    token.refresh_from_db()
    assert token.last_used_at == START
    time_machine.move_to(START + timedelta(seconds=59), tick=False)
    services.api_token_authenticate(plain)
    token.refresh_from_db()
    assert token.last_used_at == START
    time_machine.move_to(START + timedelta(seconds=61), tick=False)
    services.api_token_authenticate(plain)
    token.refresh_from_db()
    assert token.last_used_at == START + timedelta(seconds=61)


# --- login throttling ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_login_locks_after_max_failures_and_unlocks_after_the_lockout(settings, time_machine) -> None:
    settings.FEDELE_LOGIN_MAX_FAILURES = 3
    settings.FEDELE_LOGIN_LOCKOUT_SECONDS = 600
    time_machine.move_to(START, tick=False)
    email, address = "Victim@Example.it", "203.0.113.9"
    for _ in range(2):
        services.login_check_allowed(email=email, ip_address=address)
        services.login_record_failure(email=email, ip_address=address)
    throttle = LoginThrottle.objects.get()
    assert (throttle.email, throttle.failures, throttle.locked_until) == ("victim@example.it", 2, None)
    services.login_record_failure(email=email, ip_address=address)
    throttle.refresh_from_db()
    assert throttle.locked_until == START + timedelta(seconds=600)
    assert throttle.failures == 0
    with pytest.raises(RateLimited) as caught:
        services.login_check_allowed(email="victim@example.it", ip_address=address)
    assert caught.value.code == "login_locked"
    assert caught.value.retry_after_seconds == 600
    # Another address, or another account, is not locked.
    services.login_check_allowed(email=email, ip_address="198.51.100.1")
    services.login_check_allowed(email="other@example.it", ip_address=address)
    assert AuditLog.objects.filter(action="login.failed", object_id="victim@example.it").count() == 3

    time_machine.move_to(START + timedelta(seconds=599, milliseconds=500), tick=False)
    with pytest.raises(RateLimited) as caught:
        services.login_check_allowed(email=email, ip_address=address)
    assert caught.value.retry_after_seconds == 1
    time_machine.move_to(START + timedelta(seconds=600), tick=False)
    services.login_check_allowed(email=email, ip_address=address)


@pytest.mark.django_db
def test_successful_login_clears_the_failures() -> None:
    user = user_with_roles("agent")
    services.login_record_failure(email=user.email, ip_address="127.0.0.1")
    services.login_record_success(user=user, ip_address="127.0.0.1")
    assert LoginThrottle.objects.count() == 0
    assert AuditLog.objects.filter(action="login.succeeded", actor_id=user.pk).count() == 1


# --- TOTP --------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_totp_setup_confirm_verify_and_disable(time_machine) -> None:
    time_machine.move_to(START, tick=False)
    user = user_with_roles("agent")
    secret = services.totp_begin_setup(user=user)
    assert len(secret) == 32
    assert not user.has_two_factor
    totp = pyotp.TOTP(secret)

    with pytest.raises(ValidationFailed) as caught:
        services.totp_confirm(user=user, code="000000" if totp.now() != "000000" else "111111")
    assert caught.value.code == "invalid_totp"
    assert User.objects.get(pk=user.pk).totp_enabled_at is None
    assert not AuditLog.objects.filter(action="user.2fa_enabled").exists()

    services.totp_confirm(user=user, code=totp.now())
    assert User.objects.get(pk=user.pk).totp_enabled_at == START
    assert AuditLog.objects.filter(action="user.2fa_enabled").count() == 1

    now = START.timestamp()
    # The confirming code was consumed: replaying it is refused.
    assert not services.totp_verify(user=user, code=totp.at(now))
    assert not services.totp_verify(user=user, code=totp.at(now - 30))  # older steps too
    assert services.totp_verify(
        user=user, code=f"{totp.at(now + 30)[:3]} {totp.at(now + 30)[3:]}"
    )  # as typed
    assert not services.totp_verify(user=user, code=totp.at(now + 30))  # used once only
    time_machine.move_to(START + timedelta(seconds=120), tick=False)
    later = now + 120
    assert services.totp_verify(user=user, code=totp.at(later - 30))  # clock drift: one step back
    assert services.totp_verify(user=user, code=totp.at(later + 30))  # and one ahead
    assert not services.totp_verify(user=user, code=totp.at(later + 120))
    assert not services.totp_verify(user=user, code=totp.at(later)[:5])
    assert not services.totp_verify(user=user, code="abcdef")
    time_machine.move_to(START + timedelta(seconds=300), tick=False)
    uri = services.totp_provisioning_uri(user=user)
    assert uri.startswith("otpauth://totp/fedele:") and f"secret={secret}" in uri

    services.totp_disable(user=user, code=totp.at(START.timestamp() + 300))
    fresh = User.objects.get(pk=user.pk)
    assert (fresh.totp_secret, fresh.totp_enabled_at) == ("", None)
    assert not services.totp_verify(user=fresh, code=totp.now())


# --- activation and teams ------------------------------------------------------------------------


@pytest.mark.django_db
def test_user_cannot_deactivate_self_and_repeat_is_a_no_op() -> None:
    user = user_with_roles("admin")
    with pytest.raises(Conflict):
        services.user_set_active(user=user, is_active=False, acting_user_id=user.pk)
    assert User.objects.get(pk=user.pk).is_active
    other = user_with_roles("agent")
    services.user_set_active(user=other, is_active=False, acting_user_id=user.pk)
    services.user_set_active(user=other, is_active=False, acting_user_id=user.pk)
    assert AuditLog.objects.filter(action="user.deactivated").count() == 1


@pytest.mark.django_db
def test_team_members_must_exist_and_be_active() -> None:
    a = user_with_roles("agent")
    b = user_with_roles("agent")
    team = services.team_create(name="Front office", member_ids=[a.pk])
    services.user_set_active(user=b, is_active=False)
    with pytest.raises(ValidationFailed):
        services.team_set_members(team=team, member_ids=[a.pk, b.pk])
    assert list(team.members.all()) == [a]
    with pytest.raises(Conflict):
        services.team_create(name="Front office")


@pytest.mark.django_db
def test_failed_login_with_a_very_long_email_is_recorded() -> None:
    """The audit row's object id is 64 characters: a longer e-mail is cut, not a 500 on PostgreSQL."""
    email = "a" * 200 + "@example.it"
    services.login_record_failure(email=email, ip_address="192.0.2.1")
    assert LoginThrottle.objects.get().email == email
    assert AuditLog.objects.get(action="login.failed").object_id == email[:64]
