"""Every write about users, roles, tokens, 2FA and login throttling."""

from __future__ import annotations

import copy
import hashlib
import hmac
import math
import secrets
from collections.abc import Iterable
from datetime import timedelta

import pyotp
from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction
from django.db.models import F, Q, QuerySet
from django.db.models.signals import m2m_changed, post_delete, post_save

from fedele.accounts.contracts import EXTERNAL_ROLES, Role
from fedele.accounts.models import ApiToken, LoginThrottle, Organisation, Team, User
from fedele.accounts.roles import ROLE_PERMISSIONS
from fedele.accounts.selectors import actor_from_user
from fedele.shared import audit, clock, versioned_cache
from fedele.shared.errors import Conflict, NotFound, RateLimited, ValidationFailed

AUTH_CACHE = "accounts.auth"
TOKEN_PREFIX = "fdl"  # noqa: S105  (a public marker, not a secret)
API_SCOPES = frozenset({"read", "write"})


def roles_sync(*, using: str = "default") -> None:
    """Make one Group per role holding exactly the role's permissions (those that exist yet)."""
    for role, codes in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.using(using).get_or_create(name=role.value)
        wanted = []
        for code in sorted(codes):
            app_label, codename = code.split(".", 1)
            permission = (
                Permission.objects.using(using)
                .filter(content_type__app_label=app_label, codename=codename)
                .first()
            )
            if permission is not None:
                wanted.append(permission)
        group.permissions.set(wanted)


def _validated_roles(roles: Iterable[str]) -> list[str]:
    valid = {r.value for r in Role}
    chosen = sorted(set(roles))
    unknown = [r for r in chosen if r not in valid]
    if unknown:
        raise ValidationFailed(
            f"Unknown role(s): {', '.join(unknown)}.", fields={"roles": f"Unknown: {', '.join(unknown)}"}
        )
    if not chosen:
        raise ValidationFailed(
            "A user needs at least one role.", fields={"roles": "Choose at least one role."}
        )
    return chosen


def user_create(
    *,
    email: str,
    password: str | None,
    roles: Iterable[str],
    first_name: str = "",
    last_name: str = "",
    language: str = "it",
    organisation: Organisation | None = None,
    validate_strength: bool = True,
) -> User:
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except DjangoValidationError as error:
        raise ValidationFailed(
            "The e-mail address is not valid.", fields={"email": "Enter a valid e-mail address."}
        ) from error
    chosen = _validated_roles(roles)
    if language not in ("it", "en"):
        raise ValidationFailed("Language must be it or en.", fields={"language": "it or en"})
    if password and validate_strength:
        try:
            validate_password(password, User(email=email, first_name=first_name, last_name=last_name))
        except DjangoValidationError as error:
            raise ValidationFailed(
                "The password is too weak.", fields={"password": list(error.messages)}
            ) from error
    with transaction.atomic():
        if User.objects.filter(email=email).exists():
            raise Conflict(
                "A user with this e-mail already exists.",
                code="duplicate_email",
                fields={"email": "Already in use."},
            )
        try:
            with transaction.atomic():
                user = User.objects.create_user(
                    email,
                    password,
                    first_name=first_name,
                    last_name=last_name,
                    language=language,
                    organisation=organisation,
                )
        except IntegrityError as error:
            raise Conflict(
                "A user with this e-mail already exists.",
                code="duplicate_email",
                fields={"email": "Already in use."},
            ) from error
        user.groups.set(Group.objects.filter(name__in=chosen))
        audit.record(
            action="user.created",
            object_type="user",
            object_id=str(user.public_id),
            after={
                "email": email,
                "roles": chosen,
                "organisation": organisation.name if organisation else None,
            },
        )
    return user


def user_set_roles(*, user: User, roles: Iterable[str]) -> User:
    chosen = _validated_roles(roles)
    with transaction.atomic():
        before = sorted(user.role_names)
        user.groups.set(Group.objects.filter(name__in=chosen))
        user.__dict__.pop("role_names", None)
        audit.record(
            action="user.roles_changed",
            object_type="user",
            object_id=str(user.public_id),
            before={"roles": before},
            after={"roles": chosen},
        )
    return user


def user_set_preferences(*, user: User, language: str | None = None, theme: str | None = None) -> User:
    fields: dict[str, list[str]] = {}
    if language is not None and language not in ("it", "en"):
        fields["language"] = ["it or en"]
    if theme is not None and theme not in ("auto", "light", "dark"):
        fields["theme"] = ["auto, light or dark"]
    if fields:
        raise ValidationFailed("Invalid preferences.", fields=fields)
    with transaction.atomic():
        before = {"language": user.language, "theme": user.theme}
        if language is not None:
            user.language = language
        if theme is not None:
            user.theme = theme
        user.save(update_fields=["language", "theme"])
        audit.record(
            action="user.preferences_changed",
            object_type="user",
            object_id=str(user.public_id),
            before=before,
            after={"language": user.language, "theme": user.theme},
        )
    return user


def organisation_create(*, name: str, kind: str) -> Organisation:
    if not name.strip():
        raise ValidationFailed("An organisation needs a name.", fields={"name": "Required."})
    with transaction.atomic():
        organisation = Organisation.objects.create(name=name.strip(), kind=kind)
        audit.record(
            action="organisation.created",
            object_type="organisation",
            object_id=str(organisation.public_id),
            after={"name": name, "kind": kind},
        )
    return organisation


def staff_queryset() -> QuerySet[User]:
    """Active users with at least one internal role: the people who can be in a team."""
    internal = [role.value for role in Role if role not in EXTERNAL_ROLES]
    return User.objects.filter(is_active=True).filter(
        Q(is_superuser=True) | Q(pk__in=Group.objects.filter(name__in=internal).values("user"))
    )


def _staff_members(member_ids: Iterable[int]) -> list[User]:
    wanted = sorted(set(member_ids))
    members = list(staff_queryset().filter(pk__in=wanted))
    if len(members) != len(wanted):
        raise ValidationFailed(
            "Teams are made of active staff only.", fields={"members": "Only active staff can be members."}
        )
    return members


def team_create(*, name: str, member_ids: Iterable[int] = ()) -> Team:
    if not name.strip():
        raise ValidationFailed("A team needs a name.", fields={"name": "Required."})
    members = _staff_members(member_ids)
    with transaction.atomic():
        if Team.objects.filter(name=name.strip()).exists():
            raise Conflict("A team with this name exists.", fields={"name": "Already in use."})
        team = Team.objects.create(name=name.strip())
        team.members.set(members)
        audit.record(
            action="team.created", object_type="team", object_id=str(team.public_id), after={"name": name}
        )
    return team


# --- API tokens -----------------------------------------------------------------------------------


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def api_token_create(
    *, user: User, name: str, scopes: Iterable[str] = ("read", "write"), expires_in_days: int | None = None
) -> tuple[ApiToken, str]:
    """Returns the stored token and the plain token, which is never shown again."""
    chosen = sorted(set(scopes))
    if not name.strip():
        raise ValidationFailed("A token needs a name.", fields={"name": "Required."})
    if not chosen or any(s not in API_SCOPES for s in chosen):
        raise ValidationFailed("Scopes must be read and/or write.", fields={"scopes": "read, write"})
    if expires_in_days is not None and not 1 <= expires_in_days <= 3650:
        raise ValidationFailed("Expiry must be 1-3650 days.", fields={"expires_in_days": "1-3650"})
    prefix = secrets.token_hex(4)
    plain = f"{TOKEN_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    now = clock.now()
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user,
            name=name.strip()[:100],
            prefix=prefix,
            token_hash=hash_token(plain),
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
    return token, plain


def api_token_revoke(*, user: User, token_public_id: str) -> ApiToken:
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().filter(public_id=token_public_id, user=user).first()
        if token is None:
            raise NotFound("Token not found.")
        if token.revoked_at is None:
            token.revoked_at = clock.now()
            token.save(update_fields=["revoked_at"])
            audit.record(action="api_token.revoked", object_type="api_token", object_id=str(token.public_id))
    return token


class _CachedToken:
    """A token with its user and the user's Actor, as loaded once per process and auth version.

    Each request gets copies (``fresh_token``): requests may set attributes on ``request.user``."""

    __slots__ = ("last_used_at", "token")

    def __init__(self, token: ApiToken) -> None:
        # The Actor (roles, permissions, organisation) is worked out now, once, not per request.
        token.user._fedele_actor = actor_from_user(token.user)  # type: ignore[attr-defined]
        self.token = token
        self.last_used_at = token.last_used_at

    def fresh_token(self) -> ApiToken:
        user = copy.copy(self.token.user)
        token = copy.copy(self.token)
        token.user = user
        token.last_used_at = self.last_used_at
        return token


def _permission_codes(user: User) -> set[str]:
    """What ``ModelBackend.get_all_permissions`` finds (direct and through groups; every permission
    for an active superuser), in one statement instead of two."""
    if not user.is_active:
        return set()
    permissions = Permission.objects.all()
    if not user.is_superuser:
        permissions = permissions.filter(Q(user=user) | Q(group__user=user))
    return {
        f"{app_label}.{codename}"
        for app_label, codename in permissions.values_list("content_type__app_label", "codename").distinct()
    }


def _load_token(token_hash: str) -> _CachedToken | None:
    token = (
        ApiToken.objects.select_related("user", "user__organisation")
        .prefetch_related("user__groups")
        .filter(token_hash=token_hash)
        .first()
    )
    if token is None:
        return None
    # The authentication backend's own per-user cache (EmailBackend is a ModelBackend).
    token.user._perm_cache = _permission_codes(token.user)  # type: ignore[attr-defined]
    return _CachedToken(token)


# Tokens by hash with their users, per process; any change to users, roles, permissions, tokens or
# organisations bumps AUTH_CACHE (see the receivers at the end of this module).
_tokens: versioned_cache.VersionedMapping[_CachedToken] = versioned_cache.VersionedMapping(
    AUTH_CACHE, _load_token
)


def api_token_authenticate(plain: str) -> ApiToken | None:
    if not plain.startswith(f"{TOKEN_PREFIX}_") or len(plain) > 200:
        return None
    cached = _tokens.get(hash_token(plain))
    now = clock.now()
    if cached is None:
        return None
    token = cached.token
    if token.revoked_at is not None or not token.user.is_active:
        return None
    if token.expires_at is not None and token.expires_at <= now:
        return None
    if cached.last_used_at is None or now - cached.last_used_at > timedelta(minutes=1):
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        cached.last_used_at = now
    return cached.fresh_token()


# --- login throttling -----------------------------------------------------------------------------


def login_check_allowed(*, email: str, ip_address: str) -> None:
    throttle = LoginThrottle.objects.filter(email=email.strip().lower(), ip_address=ip_address).first()
    now = clock.now()
    if throttle and throttle.locked_until and throttle.locked_until > now:
        seconds = max(1, math.ceil((throttle.locked_until - now).total_seconds()))
        raise RateLimited(
            "Too many failed sign-in attempts. Try again later.",
            retry_after_seconds=seconds,
            code="login_locked",
        )


def login_record_failure(*, email: str, ip_address: str) -> None:
    email = email.strip().lower()[:254]
    now = clock.now()
    with transaction.atomic():
        throttle, _ = LoginThrottle.objects.select_for_update().get_or_create(
            email=email, ip_address=ip_address, defaults={"last_failure_at": now}
        )
        LoginThrottle.objects.filter(pk=throttle.pk).update(failures=F("failures") + 1, last_failure_at=now)
        throttle.refresh_from_db()
        if throttle.failures >= settings.FEDELE_LOGIN_MAX_FAILURES:
            throttle.locked_until = now + timedelta(seconds=settings.FEDELE_LOGIN_LOCKOUT_SECONDS)
            throttle.failures = 0
            throttle.save(update_fields=["locked_until", "failures"])
        audit.record(action="login.failed", object_type="login", object_id=email)


def login_record_success(*, user: User, ip_address: str) -> None:
    LoginThrottle.objects.filter(email=user.email, ip_address=ip_address).delete()
    audit.record(
        action="login.succeeded", object_type="user", object_id=str(user.public_id), actor_id=user.pk
    )


# --- TOTP two-factor -----------------------------------------------------------------------------


def totp_begin_setup(*, user: User) -> str:
    """A fresh secret, not active until confirmed with a valid code."""
    secret = pyotp.random_base32()
    with transaction.atomic():
        user.totp_secret = secret
        user.totp_enabled_at = None
        user.save(update_fields=["totp_secret", "totp_enabled_at"])
    return secret


def totp_verify(*, user: User, code: str) -> bool:
    """A valid code for this step or the one either side, used at most once (no replay, even racing)."""
    if not user.totp_secret:
        return False
    cleaned = "".join(ch for ch in code if ch.isdigit())
    if len(cleaned) != 6:
        return False
    totp = pyotp.TOTP(user.totp_secret)
    now = clock.now()
    for offset in (0, -1, 1):
        moment = now + timedelta(seconds=offset * totp.interval)
        if hmac.compare_digest(totp.at(moment), cleaned):
            counter = int(totp.timecode(moment))
            # A conditional UPDATE is the lock: of two requests with the same code only one wins.
            won = User.objects.filter(pk=user.pk, totp_last_counter__lt=counter).update(
                totp_last_counter=counter
            )
            if won:
                user.totp_last_counter = counter
            return bool(won)
    return False


def totp_confirm(*, user: User, code: str) -> User:
    if not totp_verify(user=user, code=code):
        raise ValidationFailed(
            "The code is not valid.", code="invalid_totp", fields={"code": "Invalid code."}
        )
    with transaction.atomic():
        user.totp_enabled_at = clock.now()
        user.save(update_fields=["totp_enabled_at"])
        audit.record(action="user.2fa_enabled", object_type="user", object_id=str(user.public_id))
    return user


def totp_disable(*, user: User, code: str) -> User:
    if not totp_verify(user=user, code=code):
        raise ValidationFailed(
            "The code is not valid.", code="invalid_totp", fields={"code": "Invalid code."}
        )
    with transaction.atomic():
        user.totp_secret = ""
        user.totp_enabled_at = None
        user.save(update_fields=["totp_secret", "totp_enabled_at"])
        audit.record(action="user.2fa_disabled", object_type="user", object_id=str(user.public_id))
    return user


def totp_provisioning_uri(*, user: User) -> str:
    return str(
        pyotp.TOTP(user.totp_secret).provisioning_uri(name=user.email, issuer_name=settings.FEDELE_BRAND_NAME)
    )


def user_set_active(*, user: User, is_active: bool, acting_user_id: int | None = None) -> User:
    """Deactivating keeps the account (audit trail, authorship) but stops sign-in and its API tokens."""
    if acting_user_id is not None and acting_user_id == user.pk and not is_active:
        raise Conflict("You cannot deactivate your own account.", code="cannot_deactivate_self")
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        if locked.is_active == is_active:
            return locked
        locked.is_active = is_active
        locked.save(update_fields=["is_active"])
        audit.record(
            action="user.activated" if is_active else "user.deactivated",
            object_type="user",
            object_id=str(locked.public_id),
            before={"is_active": not is_active},
            after={"is_active": is_active},
        )
    return locked


def team_set_members(*, team: Team, member_ids: Iterable[int]) -> Team:
    users = _staff_members(member_ids)
    with transaction.atomic():
        before = sorted(str(u.public_id) for u in team.members.all())
        team.members.set(users)
        audit.record(
            action="team.members_changed",
            object_type="team",
            object_id=str(team.public_id),
            before={"members": before},
            after={"members": sorted(str(u.public_id) for u in users)},
        )
    return team


def user_erase(*, user: User) -> User:
    """GDPR erasure of a login: no name, no address, no way in; the row stays for the audit trail."""
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        before = {"email": locked.email, "first_name": locked.first_name, "last_name": locked.last_name}
        locked.email = f"erased-{locked.public_id}@erased.invalid"
        locked.first_name = ""
        locked.last_name = ""
        locked.is_active = False
        locked.totp_secret = ""
        locked.totp_enabled_at = None
        locked.set_unusable_password()
        locked.save()
        ApiToken.objects.filter(user=locked, revoked_at__isnull=True).update(revoked_at=clock.now())
        audit.record(
            action="user.erased",
            object_type="user",
            object_id=str(locked.public_id),
            before=dict.fromkeys(before, "[erased]"),
            after={"email": locked.email, "is_active": False},
        )
    return locked


# --- cache invalidation ---------------------------------------------------------------------------
# Receivers, not calls in each service: the admin, factories and data fixes change these rows too,
# and a token, role or deactivation must take effect on the next request of every process.


def _auth_changed(**_kwargs: object) -> None:
    versioned_cache.bump(AUTH_CACHE)


for _model in (User, ApiToken, Group, Organisation):
    post_save.connect(_auth_changed, sender=_model, dispatch_uid=f"fedele.accounts.auth_cache.save.{_model}")
    post_delete.connect(_auth_changed, sender=_model, dispatch_uid=f"fedele.accounts.auth_cache.del.{_model}")
for _through in (User.groups.through, User.user_permissions.through, Group.permissions.through):
    m2m_changed.connect(
        _auth_changed, sender=_through, dispatch_uid=f"fedele.accounts.auth_cache.m2m.{_through}"
    )
