"""Canned-reply settings pages, the navigation entries and the contact-center demo (loaded through the
real services, once; the wallboard and the report then show its week of contacts)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import override_settings
from django.urls import reverse
from faker import Faker

from fedele.accounts.contracts import Role
from fedele.accounts.tests.factories import UserFactory
from fedele.contact_center import demo
from fedele.contact_center.models import Agent, CannedReply, Interaction, InteractionState, Outcome, Queue
from fedele.contact_center.selectors.reports import interval_report
from fedele.shared import clock
from fedele.shared.demo import DemoContext, loaders
from fedele.shared.models import AuditLog
from fedele.shared.navigation import SECTIONS

pytestmark = pytest.mark.django_db


def test_navigation_has_the_contact_center_entries() -> None:
    names = {item.url_name: item.permission for item in SECTIONS["contact_center"].items}
    assert names["contact_center:desktop"] == "contact_center.handle_interactions"
    assert names["contact_center:wallboard"] == "contact_center.view_wallboards"
    assert names["contact_center:interval_report"] == "contact_center.view_wallboards"
    assert names["contact_center:canned_reply_list"] == "contact_center.manage_contact_center"


def test_canned_reply_pages_create_edit_refuse_and_delete(client) -> None:
    client.force_login(UserFactory(roles=[Role.ADMIN]))
    created = client.post(
        reverse("contact_center:canned_reply_new"),
        {"shortcut": "grazie", "title": "Thanks", "body_it": "Grazie!", "body_en": "Thanks!", "active": "on"},
    )
    assert created.status_code == 302
    reply = CannedReply.objects.get(shortcut="grazie")
    assert (reply.title, reply.active, reply.queue) == ("Thanks", True, None)
    listing = client.get(reverse("contact_center:canned_reply_list")).content.decode()
    assert "/grazie" in listing
    refused = client.post(
        reverse("contact_center:canned_reply_edit", args=[reply.pk]),
        {"shortcut": "Bad Shortcut!", "title": "", "body_it": "x", "body_en": "y"},
    )
    assert refused.status_code == 422
    reply.refresh_from_db()
    assert (reply.shortcut, reply.title) == ("grazie", "Thanks")
    edited = client.post(
        reverse("contact_center:canned_reply_edit", args=[reply.pk]),
        {"shortcut": "grazie", "title": "Thank you", "body_it": "Grazie mille!", "body_en": "Thanks a lot!"},
    )
    assert edited.status_code == 302
    reply.refresh_from_db()
    assert (reply.title, reply.active) == ("Thank you", False)
    assert client.post(reverse("contact_center:canned_reply_delete", args=[reply.pk])).status_code == 302
    assert not CannedReply.objects.exists()
    assert AuditLog.objects.filter(action__startswith="contact_center.canned_reply_").count() == 3


def test_canned_reply_pages_are_for_managers_only(client) -> None:
    client.force_login(UserFactory(roles=[Role.SUPERVISOR]))
    assert client.get(reverse("contact_center:canned_reply_list")).status_code == 403
    response = client.post(
        reverse("contact_center:canned_reply_new"),
        {"shortcut": "x", "title": "x", "body_it": "x", "body_en": "x"},
    )
    assert response.status_code == 403
    assert not CannedReply.objects.exists()


@override_settings(
    EMAIL_BACKEND="django.core.mail.backends.dummy.EmailBackend", CONTACT_CENTER_ROUTE_ON_COMMIT=False
)
def test_demo_loads_a_week_of_contacts_once() -> None:
    faker = Faker("it_IT")
    faker.seed_instance(7)
    context = DemoContext(faker=faker, seed=7, options={"customers": 20})
    registered = dict(loaders())
    registered["accounts"](context)
    registered["customers"](context)
    assert "contact_center" in registered

    demo.load(context)
    contacts = Interaction.objects.filter(attributes__demo=True)
    total = demo.DAYS * demo.CONTACTS_PER_DAY + 2
    assert contacts.count() == total
    assert set(Queue.objects.values_list("code", flat=True)) >= {"billing", "technical", "sales"}
    assert Agent.objects.filter(user__email="agent@fedele.demo").exists()
    assert CannedReply.objects.count() == len(demo.CANNED_REPLIES)
    ended = contacts.filter(state=InteractionState.ENDED)
    assert ended.filter(outcome=Outcome.HANDLED, wrap_up_code__isnull=False).count() >= 100
    assert contacts.filter(state=InteractionState.QUEUED, queue__code="billing").count() == 2
    handled = ended.filter(outcome=Outcome.HANDLED).first()
    assert handled is not None and handled.talk_seconds >= 30 and handled.answered_at is not None
    yesterday = (clock.now() - timedelta(days=1)).astimezone(demo.ROME).date()
    report = interval_report(start_date=yesterday, end_date=yesterday, interval_minutes=60)
    assert report.total.offered == demo.CONTACTS_PER_DAY
    assert report.total.answered + report.total.abandoned == demo.CONTACTS_PER_DAY

    demo.load(context)
    assert Interaction.objects.filter(attributes__demo=True).count() == total
