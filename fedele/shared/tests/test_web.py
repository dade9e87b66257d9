"""Kernel pages: layout, notifications, webhooks with their log, audit log with diffs, error partials."""

from __future__ import annotations

import itertools
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from fedele.shared import audit
from fedele.shared.models import AuditLog, Notification, WebhookAttempt, WebhookDelivery, WebhookEndpoint
from fedele.shared.web.admin_views import FieldChange, audit_diff

pytestmark = pytest.mark.django_db

_user_numbers = itertools.count(1)


def user_with_roles(*roles: str, **fields):
    """A user in the role groups; the kernel's tests may not import a business module."""
    user = get_user_model().objects.create_user(
        f"kernel-user-{next(_user_numbers)}@example.it", "Correct-Horse-9-Battery", language="en", **fields
    )
    user.groups.set(Group.objects.filter(name__in=roles))
    return user


@pytest.fixture
def admin_client(client):
    client.force_login(user_with_roles("admin"))
    return client


def test_the_layout_has_navigation_csrf_header_flash_area_and_vendor_assets(client):
    user = user_with_roles("agent")
    client.force_login(user)

    body = client.get("/customers/").content.decode()

    assert 'hx-headers=\'{"X-CSRFToken": "' in body
    assert '<div id="flash-area"' in body
    assert 'id="sidebar"' in body and "offcanvas-lg" in body
    assert 'data-section="customers"' in body
    assert 'href="/customers/" aria-current="page"' not in body or "nav-link active" in body
    assert 'data-section="billing"' in body
    assert "coming soon" in body
    for asset in (
        "vendor/htmx/htmx.min.js",
        "vendor/alpinejs/alpine.min.js",
        "vendor/bootstrap/bootstrap.bundle.min.js",
        "vendor/bootstrap/bootstrap.min.css",
        "vendor/bootstrap-icons/bootstrap-icons.min.css",
    ):
        assert f"/static/{asset}" in body
    assert 'hx-get="/search/"' in body
    assert 'hx-trigger="keyup changed delay:250ms, search"' in body
    assert 'data-notifications-socket="/ws/notifications/"' in body
    assert f'action="{reverse("accounts:language")}"' in body
    assert 'data-theme-preference="auto"' in body


def test_the_bell_shows_the_unread_count_and_the_dropdown_marks_all_read(client):
    user = user_with_roles("agent")
    client.force_login(user)
    for index in range(3):
        Notification.objects.create(recipient=user, title=f"Ticket {index}", created_at=timezone.now())

    page = client.get("/customers/").content.decode()
    assert 'data-notification-count="3"' in page

    partial = client.get("/notifications/", headers={"HX-Request": "true"})
    assert "<html" not in partial.content.decode()
    assert partial.content.decode().count("Ticket ") == 3

    marked = client.post("/notifications/", headers={"HX-Request": "true"})
    assert marked.status_code == 200
    assert 'data-notification-count="0"' in marked.content.decode()
    assert 'hx-swap-oob="true"' in marked.content.decode()
    assert Notification.objects.filter(read_at__isnull=True).count() == 0


def test_the_notifications_page_lists_only_the_users_own(client):
    user = user_with_roles("agent")
    other = user_with_roles("agent")
    Notification.objects.create(recipient=user, title="Mine", created_at=timezone.now())
    Notification.objects.create(recipient=other, title="Theirs", created_at=timezone.now())
    client.force_login(user)

    body = client.get("/notifications/").content.decode()

    assert "Mine" in body
    assert "Theirs" not in body


def test_creating_a_webhook_shows_the_secret_once(admin_client):
    response = admin_client.post(
        reverse("webhooks:list"),
        {
            "url": "https://example.com/hook",
            "event_types": "customers.CustomerCreated, customers.CustomerUpdated",
        },
    )

    endpoint = WebhookEndpoint.objects.get()
    assert response.status_code == 200
    assert endpoint.event_types == ["customers.CustomerCreated", "customers.CustomerUpdated"]
    assert f'value="{endpoint.secret}"' in response.content.decode()
    assert endpoint.secret not in admin_client.get(reverse("webhooks:list")).content.decode()


def test_an_invalid_webhook_is_refused_with_422_and_keeps_the_values(admin_client):
    response = admin_client.post(reverse("webhooks:list"), {"url": "ftp://example.com", "event_types": ""})

    assert response.status_code == 422
    assert WebhookEndpoint.objects.count() == 0
    body = response.content.decode()
    assert 'value="ftp://example.com"' in body
    assert "Use an http(s) URL." in body


def test_the_webhook_detail_lists_deliveries_with_each_attempt(admin_client):
    endpoint = WebhookEndpoint.objects.create(
        url="https://example.com/hook", secret="whsec_x", event_types=["*"], created_at=timezone.now()
    )
    delivery = WebhookDelivery.objects.create(
        endpoint=endpoint,
        event_id="00000000-0000-0000-0000-000000000001",
        event_type="customers.CustomerCreated",
        payload={"number": "C-1"},
        status=WebhookDelivery.Status.FAILED,
        attempts=2,
        last_status_code=500,
        created_at=timezone.now(),
    )
    WebhookAttempt.objects.create(
        delivery=delivery, attempted_at=timezone.now(), status_code=503, duration_ms=12
    )
    WebhookAttempt.objects.create(
        delivery=delivery, attempted_at=timezone.now(), error="timed out", duration_ms=10_000
    )

    response = admin_client.get(reverse("webhooks:detail", args=[endpoint.public_id]))

    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-status="failed"' in body
    assert "text-bg-danger" in body
    assert "HTTP 503" in body
    assert "timed out" in body
    assert reverse("webhooks:replay", args=[delivery.public_id]) in body
    assert response.context["status_choices"] == [
        ("pending", "Pending", 0),
        ("succeeded", "Succeeded", 0),
        ("retrying", "Retrying", 0),
        ("failed", "Failed", 1),
    ]


def test_webhook_pages_are_for_admins_only(client):
    client.force_login(user_with_roles("supervisor"))

    assert client.get(reverse("webhooks:list")).status_code == 403


def test_audit_diff_lists_changed_added_and_removed_fields():
    changes = audit_diff(
        {"city": "Roma", "email": "a@x.it", "phone": ""}, {"city": "Milano", "email": "", "phone": "+39"}
    )

    assert changes == [
        FieldChange("city", "Roma", "Milano", "changed"),
        FieldChange("email", "a@x.it", "", "removed"),
        FieldChange("phone", "", "+39", "added"),
    ]
    assert audit_diff(None, {"roles": ["agent"]}) == [FieldChange("roles", "", '["agent"]', "added")]


def test_the_audit_log_filters_by_object_and_action_prefix_and_shows_the_diff(client):
    client.force_login(user_with_roles("supervisor"))
    customer_id = str(uuid.uuid4())
    audit.record(
        action="customer.updated",
        object_type="customer",
        object_id=customer_id,
        before={"city": "Roma"},
        after={"city": "Milano"},
    )
    audit.record(action="login.failed", object_type="login", object_id="x@example.it")

    by_object = client.get(reverse("audit:list"), {"object": customer_id})
    by_action = client.get(reverse("audit:list"), {"action": "login."})

    assert [row.entry.action for row in by_object.context["rows"]] == ["customer.updated"]
    assert [row.entry.action for row in by_action.context["rows"]] == ["login.failed"]
    body = by_object.content.decode()
    assert '<span class="diff-removed px-1 rounded">Roma</span>' in body
    assert '<span class="diff-added px-1 rounded">Milano</span>' in body
    assert AuditLog.objects.count() == 2


def test_an_application_error_in_an_htmx_request_becomes_a_partial_for_the_flash_area(client):
    client.force_login(user_with_roles("agent"))

    response = client.get("/customers/00000000-0000-0000-0000-000000000000/", headers={"HX-Request": "true"})

    assert response.status_code == 404
    assert response["HX-Retarget"] == "#flash-area"
    body = response.content.decode()
    assert "<html" not in body
    assert "Customer not found." in body


def test_an_application_error_in_a_page_request_is_a_full_error_page(client):
    client.force_login(user_with_roles("analyst"))

    response = client.get("/customers/new/")

    assert response.status_code == 403
    body = response.content.decode()
    assert "<html" in body
    assert "You do not have permission to add customers." in body


def test_django_404s_render_the_product_page(client):
    client.force_login(user_with_roles("agent"))

    response = client.get("/no-such-page/")

    assert response.status_code == 404
    assert "Page not found." in response.content.decode()


def test_portal_users_start_on_a_welcome_page_without_widgets(client):
    client.force_login(user_with_roles("portal_customer"))

    welcome = client.get("/")

    assert welcome.status_code == 200
    assert welcome.context["widgets"] == []
