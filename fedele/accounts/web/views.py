"""Sign-in (throttled, with optional TOTP), sign-out, language, profile, API tokens, users."""

from __future__ import annotations

import base64
import io

import qrcode
import qrcode.image.svg
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST
from django.views.i18n import set_language

from fedele.accounts import selectors, services
from fedele.accounts.contracts import Role
from fedele.accounts.models import User
from fedele.shared.errors import RateLimited, ValidationFailed
from fedele.shared.middleware import client_address

PENDING_2FA_SESSION_KEY = "fedele_pending_2fa_user"
NEXT_SESSION_KEY = "fedele_next"

ROLE_LABELS = {
    Role.ADMIN.value: gettext_lazy("Administrator"),
    Role.SUPERVISOR.value: gettext_lazy("Supervisor"),
    Role.AGENT.value: gettext_lazy("Agent"),
    Role.BILLING_CLERK.value: gettext_lazy("Billing clerk"),
    Role.LOYALTY_MANAGER.value: gettext_lazy("Loyalty manager"),
    Role.TECHNICIAN.value: gettext_lazy("Technician"),
    Role.DISPATCHER.value: gettext_lazy("Dispatcher"),
    Role.ANALYST.value: gettext_lazy("Analyst"),
    Role.PORTAL_CUSTOMER.value: gettext_lazy("Portal customer"),
    Role.PARTNER.value: gettext_lazy("Partner"),
}
THEME_CHOICES = [
    ("auto", gettext_lazy("Auto (follow the system)")),
    ("light", gettext_lazy("Light")),
    ("dark", gettext_lazy("Dark")),
]
LANGUAGE_CHOICES = [("it", "Italiano"), ("en", "English")]
TOKEN_SCOPE_CHOICES = [
    ("read", gettext_lazy("Read")),
    ("write", gettext_lazy("Write")),
]


class LoginForm(forms.Form):
    email = forms.EmailField(
        label=gettext_lazy("E-mail"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "username", "autofocus": True}),
    )
    password = forms.CharField(
        label=gettext_lazy("Password"),
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        max_length=200,
    )


class TotpForm(forms.Form):
    code = forms.CharField(
        label=gettext_lazy("Code"),
        max_length=8,
        min_length=6,
        widget=forms.TextInput(
            attrs={
                "autocomplete": "one-time-code",
                "inputmode": "numeric",
                "pattern": "[0-9 ]*",
                "autofocus": True,
            }
        ),
    )


def _safe_next(request: HttpRequest) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, {request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return "/"


@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect(_safe_next(request))
    form = LoginForm(request.POST or None)
    error = ""
    status = 200
    if request.method == "POST" and form.is_valid():
        email = form.cleaned_data["email"].lower()
        address = client_address(request) or ""
        try:
            services.login_check_allowed(email=email, ip_address=address)
        except RateLimited as locked:
            error = _("Too many failed attempts. Try again in %(minutes)d minutes.") % {
                "minutes": max(1, locked.retry_after_seconds // 60)
            }
            status = 429
        else:
            user = authenticate(request, username=email, password=form.cleaned_data["password"])
            if user is None:
                services.login_record_failure(email=email, ip_address=address)
                error = _("E-mail or password is not correct.")
                status = 400
            else:
                assert isinstance(user, User)
                if user.has_two_factor:
                    request.session[PENDING_2FA_SESSION_KEY] = user.pk
                    request.session[NEXT_SESSION_KEY] = _safe_next(request)
                    return redirect("accounts:two_factor")
                login(request, user)
                services.login_record_success(user=user, ip_address=address)
                return redirect(_safe_next(request))
    elif request.method == "POST":
        status = 400
    response = render(
        request,
        "accounts/login.html",
        {"form": form, "error": error, "next": _safe_next(request), "locked": status == 429},
        status=status,
    )
    if status == 429:
        response["Retry-After"] = str(settings.FEDELE_LOGIN_LOCKOUT_SECONDS)
    return response


@require_http_methods(["GET", "POST"])
def two_factor_view(request: HttpRequest) -> HttpResponse:
    user_id = request.session.get(PENDING_2FA_SESSION_KEY)
    user = User.objects.filter(pk=user_id, is_active=True).first() if user_id else None
    if user is None:
        return redirect("accounts:login")
    if request.method == "POST" and request.POST.get("action") == "cancel":
        request.session.pop(PENDING_2FA_SESSION_KEY, None)
        return redirect("accounts:login")
    form = TotpForm(request.POST or None)
    error = ""
    status = 200
    if request.method == "POST" and form.is_valid():
        address = client_address(request) or ""
        try:
            services.login_check_allowed(email=user.email, ip_address=address)
        except RateLimited:
            request.session.pop(PENDING_2FA_SESSION_KEY, None)
            return redirect("accounts:login")
        if services.totp_verify(user=user, code=form.cleaned_data["code"]):
            next_url = request.session.pop(NEXT_SESSION_KEY, "/")
            request.session.pop(PENDING_2FA_SESSION_KEY, None)
            login(request, user, backend="fedele.accounts.backends.EmailBackend")
            services.login_record_success(user=user, ip_address=address)
            return redirect(next_url)
        services.login_record_failure(email=user.email, ip_address=address)
        error = _("The code is not valid.")
        status = 400
    elif request.method == "POST":
        status = 400
    return render(
        request,
        "accounts/two_factor.html",
        {"form": form, "error": error, "email": user.email},
        status=status,
    )


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("accounts:login")


@require_POST
def language_view(request: HttpRequest) -> HttpResponse:
    """The top bar's language switch: Django's set_language, and the signed-in user's saved preference.

    The user's saved language wins over the cookie (UserLanguageMiddleware), so switching must save it.
    """
    language = request.POST.get("language", "")
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        user = request.user
        assert isinstance(user, User)
        if user.language != language:
            services.user_set_preferences(user=user, language=language)
    return set_language(request)


def _qr_svg(data: str) -> str:
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


def _grouped_secret(secret: str) -> str:
    """A TOTP secret in groups of four, easier to type into an authenticator app."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


@login_required
@require_http_methods(["GET", "POST"])
def profile_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    context: dict[str, object] = {
        "new_token": None,
        "errors": {},
        "theme_choices": THEME_CHOICES,
        "language_choices": LANGUAGE_CHOICES,
        "scope_choices": TOKEN_SCOPE_CHOICES,
        "role_labels": sorted(str(ROLE_LABELS.get(name, name)) for name in user.role_names),
    }
    status = 200
    action = request.POST.get("action", "") if request.method == "POST" else ""
    if action:
        try:
            if action == "preferences":
                services.user_set_preferences(
                    user=user, language=request.POST.get("language"), theme=request.POST.get("theme")
                )
                if getattr(request, "htmx", False) or request.headers.get("X-Fedele-Background") == "1":
                    # The top bar's theme switch saves in the background: nothing to show.
                    response = HttpResponse(status=204)
                else:
                    messages.success(request, _("Your preferences have been saved."))
                    response = redirect("accounts:profile")
                response.set_cookie(settings.LANGUAGE_COOKIE_NAME, user.language, samesite="Lax")
                return response
            if action == "create_token":
                scopes = request.POST.getlist("scopes") or ["read"]
                token, plain = services.api_token_create(
                    user=user, name=request.POST.get("name", ""), scopes=scopes
                )
                context["new_token"] = plain
                context["new_token_name"] = token.name
            elif action == "revoke_token":
                services.api_token_revoke(user=user, token_public_id=request.POST.get("token_id", ""))
                messages.success(request, _("The token has been revoked."))
                return redirect("accounts:profile")
            elif action == "begin_2fa":
                services.totp_begin_setup(user=user)
            elif action == "confirm_2fa":
                services.totp_confirm(user=user, code=request.POST.get("code", ""))
                messages.success(request, _("Two-factor authentication is on."))
                return redirect("accounts:profile")
            elif action == "disable_2fa":
                services.totp_disable(user=user, code=request.POST.get("code", ""))
                messages.success(request, _("Two-factor authentication is off."))
                return redirect("accounts:profile")
        except ValidationFailed as failure:
            context["errors"] = failure.fields
            context["error_action"] = action
            context["values"] = request.POST
            status = 422
    if user.totp_secret and not user.has_two_factor:
        # Set-up begun and not confirmed yet: keep showing the QR code until it is.
        context["totp_qr"] = _qr_svg(services.totp_provisioning_uri(user=user))
        context["totp_secret"] = _grouped_secret(user.totp_secret)
    context["tokens"] = selectors.api_token_list(user=user)
    return render(request, "accounts/profile.html", context, status=status)


@login_required
@permission_required("accounts.manage_users", raise_exception=True)
def user_list_view(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "").strip()[:100]
    users = list(selectors.user_list(search=query)[:200])
    rows = [
        {
            "user": user,
            "roles": sorted(str(ROLE_LABELS.get(group.name, group.name)) for group in user.groups.all()),
        }
        for user in users
    ]
    return render(request, "accounts/user_list.html", {"rows": rows, "users": users, "query": query})
