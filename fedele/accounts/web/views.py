"""Sign-in (throttled, with optional TOTP), sign-out, profile, API tokens, users."""

from __future__ import annotations

import base64
import io

import qrcode
import qrcode.image.svg
from django import forms
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from fedele.accounts import selectors, services
from fedele.accounts.models import User
from fedele.shared.errors import RateLimited, ValidationFailed
from fedele.shared.middleware import client_address

PENDING_2FA_SESSION_KEY = "fedele_pending_2fa_user"


class LoginForm(forms.Form):
    email = forms.EmailField(label=gettext_lazy("E-mail"), max_length=254)
    password = forms.CharField(label=gettext_lazy("Password"), widget=forms.PasswordInput, max_length=200)


class TotpForm(forms.Form):
    code = forms.CharField(label=gettext_lazy("Code"), max_length=8, min_length=6)


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
                    request.session["fedele_next"] = _safe_next(request)
                    return redirect("accounts:two_factor")
                login(request, user)
                services.login_record_success(user=user, ip_address=address)
                return redirect(_safe_next(request))
    elif request.method == "POST":
        status = 400
    return render(
        request,
        "accounts/login.html",
        {"form": form, "error": error, "next": _safe_next(request)},
        status=status,
    )


@require_http_methods(["GET", "POST"])
def two_factor_view(request: HttpRequest) -> HttpResponse:
    user_id = request.session.get(PENDING_2FA_SESSION_KEY)
    user = User.objects.filter(pk=user_id, is_active=True).first() if user_id else None
    if user is None:
        return redirect("accounts:login")
    form = TotpForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        address = client_address(request) or ""
        try:
            services.login_check_allowed(email=user.email, ip_address=address)
        except RateLimited:
            return redirect("accounts:login")
        if services.totp_verify(user=user, code=form.cleaned_data["code"]):
            next_url = request.session.get("fedele_next", "/")
            login(request, user, backend="fedele.accounts.backends.EmailBackend")
            services.login_record_success(user=user, ip_address=address)
            return redirect(next_url)
        services.login_record_failure(email=user.email, ip_address=address)
        error = _("The code is not valid.")
    return render(request, "accounts/two_factor.html", {"form": form, "error": error})


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("accounts:login")


def _qr_svg(data: str) -> str:
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=8)
    buffer = io.BytesIO()
    image.save(buffer)
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode()


@login_required
@require_http_methods(["GET", "POST"])
def profile_view(request: HttpRequest) -> HttpResponse:
    user = request.user
    assert isinstance(user, User)
    context: dict[str, object] = {
        "tokens": selectors.api_token_list(user=user),
        "new_token": None,
        "errors": {},
    }
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "preferences":
                services.user_set_preferences(
                    user=user, language=request.POST.get("language"), theme=request.POST.get("theme")
                )
                response = redirect("accounts:profile")
                response.set_cookie("django_language", user.language, samesite="Lax")
                return response
            if action == "create_token":
                scopes = request.POST.getlist("scopes") or ["read"]
                _token, plain = services.api_token_create(
                    user=user, name=request.POST.get("name", ""), scopes=scopes
                )
                context["new_token"] = plain
            elif action == "revoke_token":
                services.api_token_revoke(user=user, token_public_id=request.POST.get("token_id", ""))
            elif action == "begin_2fa":
                services.totp_begin_setup(user=user)
                context["totp_qr"] = _qr_svg(services.totp_provisioning_uri(user=user))
                context["totp_secret"] = user.totp_secret
            elif action == "confirm_2fa":
                services.totp_confirm(user=user, code=request.POST.get("code", ""))
            elif action == "disable_2fa":
                services.totp_disable(user=user, code=request.POST.get("code", ""))
        except ValidationFailed as failure:
            context["errors"] = failure.fields
            context["error_message"] = failure.message
            if action == "confirm_2fa" and user.totp_secret:
                context["totp_qr"] = _qr_svg(services.totp_provisioning_uri(user=user))
                context["totp_secret"] = user.totp_secret
        context["tokens"] = selectors.api_token_list(user=user)
    return render(request, "accounts/profile.html", context)


@login_required
@permission_required("accounts.manage_users", raise_exception=True)
def user_list_view(request: HttpRequest) -> HttpResponse:
    users = selectors.user_list(search=request.GET.get("q", "")[:100])[:200]
    return render(request, "accounts/user_list.html", {"users": users})
