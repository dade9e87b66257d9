from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from fedele.accounts.models import User


class EmailBackend(ModelBackend):
    """Sign-in by e-mail, case-insensitive. Throttling lives in the login service, not here."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        email = (username or kwargs.get("email") or "").strip().lower()
        if not email or password is None:
            return None
        user = User.objects.filter(email=email).first()
        if user is None:
            User().set_password(password)  # same work as a real check: no timing oracle on e-mails
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None
