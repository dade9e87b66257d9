"""Web pages of accounts: sign-in with throttling and two-factor, language, profile, tokens, users."""

from __future__ import annotations

import time

import pyotp
import pytest
from django.urls import reverse

from fedele.accounts.models import ApiToken, LoginThrottle, User
from fedele.accounts.services import totp_begin_setup, totp_confirm
from fedele.accounts.tests.factories import DEFAULT_PASSWORD, user_with_roles
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db

LOGIN_URL = "/accounts/login/"


def sign_in(client, email: str, password: str = DEFAULT_PASSWORD, **extra):
    return client.post(LOGIN_URL, {"email": email, "password": password, **extra})


def test_login_page_renders_the_form_and_the_language_switch(client):
    response = client.get(LOGIN_URL)

    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="email"' in body
    assert 'name="password"' in body
    assert f'action="{reverse("set_language")}"' in body
    assert "vendor/bootstrap/bootstrap.min.css" in body


def test_login_with_the_right_password_signs_in_and_follows_next(client):
    user = user_with_roles("agent")

    response = sign_in(client, user.email.upper(), next="/customers/")

    assert response.status_code == 302
    assert response["Location"] == "/customers/"
    assert client.session["_auth_user_id"] == str(user.pk)
    assert AuditLog.objects.filter(action="login.succeeded", object_id=str(user.public_id)).count() == 1


def test_login_ignores_a_next_url_on_another_host(client):
    user = user_with_roles("agent")

    response = sign_in(client, user.email, next="https://evil.example/steal")

    assert response.status_code == 302
    assert response["Location"] == "/"


def test_login_with_a_wrong_password_is_refused_and_counted(client):
    user = user_with_roles("agent")

    response = sign_in(client, user.email, "not-the-password")

    assert response.status_code == 400
    assert "E-mail or password is not correct." in response.content.decode()
    assert "_auth_user_id" not in client.session
    throttle = LoginThrottle.objects.get(email=user.email)
    assert throttle.failures == 1
    assert throttle.locked_until is None


def test_five_failures_lock_the_account_with_429_even_for_the_right_password(client):
    user = user_with_roles("agent")

    statuses = [sign_in(client, user.email, f"wrong-{attempt}").status_code for attempt in range(5)]
    locked = sign_in(client, user.email)

    assert statuses == [400, 400, 400, 400, 400]
    assert locked.status_code == 429
    assert locked["Retry-After"] == "900"
    assert "Too many failed attempts. Try again in 15 minutes." in locked.content.decode()
    assert "_auth_user_id" not in client.session


def test_an_invalid_form_is_a_400_and_counts_no_failure(client):
    response = client.post(LOGIN_URL, {"email": "not-an-email", "password": ""})

    assert response.status_code == 400
    assert LoginThrottle.objects.count() == 0


def _user_with_two_factor() -> tuple[User, str]:
    user = user_with_roles("agent")
    secret = totp_begin_setup(user=user)
    # Confirm with the previous step's code, so the current one is still unused for the sign-in.
    totp_confirm(user=user, code=pyotp.TOTP(secret).at(time.time() - 30))
    return user, secret


def test_two_factor_users_are_asked_for_a_code_before_they_are_signed_in(client):
    user, secret = _user_with_two_factor()

    first = sign_in(client, user.email, next="/customers/")
    assert first.status_code == 302
    assert first["Location"] == reverse("accounts:two_factor")
    assert "_auth_user_id" not in client.session

    page = client.get(reverse("accounts:two_factor"))
    assert page.status_code == 200
    assert user.email in page.content.decode()

    wrong = client.post(reverse("accounts:two_factor"), {"code": "000000"})
    assert wrong.status_code == 400
    assert "The code is not valid." in wrong.content.decode()
    assert "_auth_user_id" not in client.session

    right = client.post(reverse("accounts:two_factor"), {"code": pyotp.TOTP(secret).now()})
    assert right.status_code == 302
    assert right["Location"] == "/customers/"
    assert client.session["_auth_user_id"] == str(user.pk)


def test_the_two_factor_step_without_a_pending_sign_in_goes_back_to_login(client):
    response = client.get(reverse("accounts:two_factor"))

    assert response.status_code == 302
    assert response["Location"] == LOGIN_URL


def test_cancelling_the_two_factor_step_forgets_the_pending_user(client):
    user, _secret = _user_with_two_factor()
    sign_in(client, user.email)

    response = client.post(reverse("accounts:two_factor"), {"action": "cancel"})

    assert response.status_code == 302
    assert response["Location"] == LOGIN_URL
    assert client.get(reverse("accounts:two_factor"))["Location"] == LOGIN_URL


def test_logout_needs_a_post_and_signs_out(client):
    user = user_with_roles("agent")
    client.force_login(user)

    assert client.get(reverse("accounts:logout")).status_code == 405
    response = client.post(reverse("accounts:logout"))

    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


def test_language_switch_saves_the_users_preference_and_sets_the_cookie(client):
    user = user_with_roles("agent")
    client.force_login(user)

    response = client.post(reverse("accounts:language"), {"language": "it", "next": "/customers/"})

    assert response.status_code == 302
    assert response["Location"] == "/customers/"
    assert response.cookies["django_language"].value == "it"
    user.refresh_from_db()
    assert user.language == "it"
    page = client.get("/customers/").content.decode()
    assert '<html lang="it"' in page
    assert "Nuovo cliente" in page  # needs the compiled catalogue (make translations)


def test_language_switch_ignores_an_unknown_language(client):
    user = user_with_roles("agent")
    client.force_login(user)

    client.post(reverse("accounts:language"), {"language": "xx", "next": "/"})

    user.refresh_from_db()
    assert user.language == "en"


def test_profile_saves_language_and_theme(client):
    user = user_with_roles("agent")
    client.force_login(user)

    response = client.post(
        reverse("accounts:profile"), {"action": "preferences", "language": "it", "theme": "dark"}
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.language, user.theme) == ("it", "dark")
    page = client.get(reverse("accounts:profile"))
    assert 'data-theme-preference="dark"' in page.content.decode()


def test_the_theme_switch_saves_in_the_background_with_204(client):
    user = user_with_roles("agent")
    client.force_login(user)

    response = client.post(
        reverse("accounts:profile"),
        {"action": "preferences", "theme": "light"},
        headers={"X-Fedele-Background": "1"},
    )

    assert response.status_code == 204
    user.refresh_from_db()
    assert (user.language, user.theme) == ("en", "light")


def test_an_invalid_theme_is_refused_with_422_and_changes_nothing(client):
    user = user_with_roles("agent")
    client.force_login(user)

    response = client.post(reverse("accounts:profile"), {"action": "preferences", "theme": "neon"})

    assert response.status_code == 422
    user.refresh_from_db()
    assert user.theme == "auto"


def test_a_new_api_token_is_shown_once(client):
    user = user_with_roles("agent")
    client.force_login(user)

    response = client.post(
        reverse("accounts:profile"), {"action": "create_token", "name": "Export", "scopes": ["read"]}
    )

    assert response.status_code == 200
    token = ApiToken.objects.get(user=user)
    assert token.name == "Export"
    assert token.scopes == ["read"]
    body = response.content.decode()
    assert 'id="new-token"' in body
    assert f'value="fdl_{token.prefix}_' in body
    again = client.get(reverse("accounts:profile")).content.decode()
    assert 'id="new-token"' not in again
    assert f"fdl_{token.prefix}…" in again


def test_a_token_without_a_name_is_refused_with_422(client):
    user = user_with_roles("agent")
    client.force_login(user)

    response = client.post(reverse("accounts:profile"), {"action": "create_token", "name": " "})

    assert response.status_code == 422
    assert ApiToken.objects.count() == 0
    assert "A token needs a name." in response.content.decode()


def test_revoking_a_token(client):
    user = user_with_roles("agent")
    client.force_login(user)
    client.post(reverse("accounts:profile"), {"action": "create_token", "name": "Old"})
    token = ApiToken.objects.get(user=user)

    response = client.post(
        reverse("accounts:profile"), {"action": "revoke_token", "token_id": str(token.public_id)}
    )

    assert response.status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_someone_elses_token_cannot_be_revoked(client):
    owner = user_with_roles("agent")
    other = user_with_roles("agent")
    client.force_login(owner)
    client.post(reverse("accounts:profile"), {"action": "create_token", "name": "Mine"})
    token = ApiToken.objects.get(user=owner)
    client.force_login(other)

    response = client.post(
        reverse("accounts:profile"), {"action": "revoke_token", "token_id": str(token.public_id)}
    )

    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_two_factor_set_up_shows_a_qr_code_and_turns_on_with_a_valid_code(client):
    user = user_with_roles("agent")
    client.force_login(user)

    started = client.post(reverse("accounts:profile"), {"action": "begin_2fa"})
    assert started.status_code == 200
    assert 'id="totp-qr"' in started.content.decode()
    assert 'src="data:image/svg+xml;base64,' in started.content.decode()
    user.refresh_from_db()
    assert user.totp_secret != ""
    assert user.totp_enabled_at is None

    refused = client.post(reverse("accounts:profile"), {"action": "confirm_2fa", "code": "123456"})
    assert refused.status_code == 422
    assert 'id="totp-qr"' in refused.content.decode()

    confirmed = client.post(
        reverse("accounts:profile"), {"action": "confirm_2fa", "code": pyotp.TOTP(user.totp_secret).now()}
    )
    assert confirmed.status_code == 302
    user.refresh_from_db()
    assert user.has_two_factor is True


def test_two_factor_can_be_turned_off_with_a_valid_code(client):
    user, secret = _user_with_two_factor()
    client.force_login(user)

    response = client.post(
        reverse("accounts:profile"), {"action": "disable_2fa", "code": pyotp.TOTP(secret).now()}
    )

    assert response.status_code == 302
    user.refresh_from_db()
    assert (user.has_two_factor, user.totp_secret) == (False, "")


def test_user_list_shows_roles_and_organisation_to_admins(client):
    admin = user_with_roles("admin", email="boss@example.it")
    from fedele.accounts.tests.factories import OrganisationFactory

    partner_org = OrganisationFactory(name="Negozi Elettra S.r.l.")
    user_with_roles("partner", email="partner@example.it", organisation=partner_org)
    client.force_login(admin)

    response = client.get(reverse("accounts:user_list"))

    assert response.status_code == 200
    body = response.content.decode()
    assert "partner@example.it" in body
    assert "Negozi Elettra S.r.l." in body
    assert ">Partner</span>" in body
    assert ">Administrator</span>" in body


def test_user_list_is_refused_to_agents(client):
    client.force_login(user_with_roles("agent"))

    assert client.get(reverse("accounts:user_list")).status_code == 403


@pytest.mark.parametrize(
    "url",
    ["/accounts/users/", "/settings/webhooks/", "/settings/audit/", "/customers/", "/customers/new/"],
)
def test_portal_customers_are_refused_staff_pages(client, url):
    client.force_login(user_with_roles("portal_customer"))

    response = client.get(url)

    assert response.status_code == 403


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get("/customers/")

    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/customers/"


def test_partners_start_on_their_customer_list(client):
    from fedele.accounts.tests.factories import OrganisationFactory

    client.force_login(user_with_roles("partner", organisation=OrganisationFactory()))

    response = client.get("/")

    assert response.status_code == 302
    assert response["Location"] == "/customers/"
