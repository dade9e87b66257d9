"""The agent workspace pages: queue with views and bulk actions, ticket page with the reply form,
properties side form, new-ticket page, attachment download; access and scoping."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.core.files.base import ContentFile
from django.urls import reverse

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared import clock
from fedele.shared.models import OutboxEvent
from fedele.support.models import Attachment, Ticket, TicketMessage
from fedele.support.services.tickets import ticket_create
from fedele.support.tests.factories import TicketFactory, status, ticket_kwargs

pytestmark = pytest.mark.django_db

NOW = "2026-03-10 10:00:00+01:00"


def _agent(**kwargs: Any) -> Any:
    return user_with_roles("agent", language="en", **kwargs)


def _ticket(agent: Any, **overrides: Any) -> Ticket:
    return ticket_create(actor=actor_for(agent), **ticket_kwargs(channel="phone", **overrides))


# ---------------------------------------------------------------- access


def test_anonymous_users_are_sent_to_the_login_page(client):
    ticket = TicketFactory()
    for url in ("/support/", f"/support/tickets/{ticket.public_id}/", "/support/tickets/new/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


def test_portal_customers_get_403_on_every_workspace_page(client):
    ticket = TicketFactory()
    client.force_login(user_with_roles("portal_customer"))
    for url in ("/support/", f"/support/tickets/{ticket.public_id}/", "/support/tickets/new/"):
        assert client.get(url).status_code == 403
    before = TicketMessage.objects.count()
    response = client.post(f"/support/tickets/{ticket.public_id}/reply/", {"kind": "reply", "body": "hi"})
    assert response.status_code == 403
    assert TicketMessage.objects.count() == before


def test_read_only_staff_see_the_ticket_but_cannot_reply(client):
    ticket = TicketFactory()
    client.force_login(user_with_roles("analyst", language="en"))
    page = client.get(f"/support/tickets/{ticket.public_id}/")
    assert page.status_code == 200
    assert 'id="reply-form"' not in page.content.decode()
    response = client.post(f"/support/tickets/{ticket.public_id}/reply/", {"kind": "reply", "body": "hi"})
    assert response.status_code == 403
    assert TicketMessage.objects.filter(ticket=ticket).count() == 0


def test_a_ticket_that_does_not_exist_is_404(client):
    client.force_login(_agent())
    assert client.get("/support/tickets/00000000-0000-0000-0000-000000000000/").status_code == 404


# ---------------------------------------------------------------- queue


@time_machine.travel(NOW, tick=False)
def test_queue_lists_open_tickets_with_view_counts(client):
    agent = _agent()
    mine = TicketFactory(status=status("open"), assignee=agent, subject="Modem guasto")
    TicketFactory(status=status("new"), subject="Fattura doppia")
    TicketFactory(status=status("pending_customer"), subject="In attesa")
    solved = TicketFactory(status=status("solved"), solved_at=clock.now() - timedelta(days=1))
    TicketFactory(status=status("solved"), solved_at=clock.now() - timedelta(days=30))
    TicketFactory(status=status("open"), resolution_due_at=clock.now() + timedelta(minutes=20))
    client.force_login(agent)
    response = client.get("/support/")
    page = response.content.decode()
    assert response.status_code == 200
    assert mine.number in page and "Modem guasto" in page and "Fattura doppia" in page
    assert solved.number not in page
    counts = {view.key: count for view, count in response.context["built_in_views"]}
    assert counts == {"mine": 1, "unassigned": 2, "open": 3, "pending": 1, "sla": 1, "solved": 1}
    assert "20 min" in page  # the SLA countdown of the ticket due soon


@time_machine.travel(NOW, tick=False)
def test_queue_built_in_views_filter_exactly(client):
    agent = _agent()
    mine = TicketFactory(status=status("pending_customer"), assignee=agent)
    other = TicketFactory(status=status("open"))
    client.force_login(agent)
    rows = client.get("/support/?view=mine").context["rows"]
    assert [row.ticket.pk for row in rows] == [mine.pk]
    rows = client.get("/support/?view=unassigned").context["rows"]
    assert [row.ticket.pk for row in rows] == [other.pk]
    rows = client.get("/support/?view=pending").context["rows"]
    assert [row.ticket.pk for row in rows] == [mine.pk]


def test_queue_htmx_refresh_returns_only_the_table(client):
    ticket = TicketFactory(status=status("open"))
    client.force_login(_agent())
    response = client.get("/support/?view=open", HTTP_HX_REQUEST="true", HTTP_HX_TARGET="queue-results")
    page = response.content.decode()
    assert response.status_code == 200
    assert ticket.number in page
    assert "<html" not in page and 'id="queue-views"' not in page


def test_queue_page_queries_do_not_grow_with_50_tickets(client, django_assert_max_num_queries):
    agent = _agent()
    customer = CustomerFactory()
    TicketFactory.create_batch(25, status=status("open"), assignee=agent, customer=customer)
    TicketFactory.create_batch(25, status=status("new"), customer=CustomerFactory())
    client.force_login(agent)
    client.get("/support/")  # warm the session and role caches
    with django_assert_max_num_queries(20):
        response = client.get("/support/?view=open")
    assert len(response.context["rows"]) == 50


def test_queue_sort_by_priority_puts_urgent_first(client):
    low = TicketFactory(status=status("open"), priority="low")
    urgent = TicketFactory(status=status("open"), priority="urgent")
    high = TicketFactory(status=status("open"), priority="high")
    client.force_login(_agent())
    rows = client.get("/support/?view=open&ordering=-priority").context["rows"]
    assert [row.ticket.pk for row in rows] == [urgent.pk, high.pk, low.pk]


def test_bulk_assign_to_me_changes_every_selected_ticket(client):
    agent = _agent()
    first, second, untouched = (TicketFactory(status=status("open")) for _ in range(3))
    client.force_login(agent)
    response = client.post(
        "/support/bulk/", {"tickets": [str(first.public_id), str(second.public_id)], "assign_me": "1"}
    )
    assert response.status_code == 302
    assert set(Ticket.objects.filter(assignee=agent).values_list("pk", flat=True)) == {first.pk, second.pk}
    untouched.refresh_from_db()
    assert untouched.assignee_id is None


def test_bulk_priority_with_one_bad_ticket_changes_none(client):
    agent = _agent()
    ticket = TicketFactory(status=status("open"), priority="normal")
    client.force_login(agent)
    events_before = OutboxEvent.objects.count()
    client.post(
        "/support/bulk/",
        {
            "tickets": [str(ticket.public_id), "00000000-0000-0000-0000-000000000000"],
            "action": "priority",
            "value": "urgent",
        },
    )
    ticket.refresh_from_db()
    assert ticket.priority == "normal"
    assert OutboxEvent.objects.count() == events_before


def test_bulk_with_an_invalid_value_changes_none(client):
    agent = _agent()
    first, second = TicketFactory(status=status("open")), TicketFactory(status=status("open"))
    client.force_login(agent)
    client.post(
        "/support/bulk/",
        {"tickets": [str(first.public_id), str(second.public_id)], "action": "priority", "value": "whenever"},
    )
    assert list(Ticket.objects.order_by("pk").values_list("priority", flat=True)) == ["normal", "normal"]


def test_bulk_set_status_moves_tickets(client):
    agent = _agent()
    first, second = TicketFactory(status=status("open")), TicketFactory(status=status("open"))
    client.force_login(agent)
    client.post(
        "/support/bulk/",
        {
            "tickets": [str(first.public_id), str(second.public_id)],
            "action": "status",
            "value": "pending_customer",
        },
    )
    assert list(Ticket.objects.order_by("pk").values_list("status__code", flat=True)) == [
        "pending_customer",
        "pending_customer",
    ]


# ---------------------------------------------------------------- ticket page


def test_ticket_page_shows_the_reply_form_of_the_contract(client):
    agent = _agent()
    ticket = _ticket(agent)
    client.force_login(agent)
    response = client.get(f"/support/tickets/{ticket.public_id}/")
    page = response.content.decode()
    assert response.status_code == 200
    assert 'id="reply-form"' in page
    assert '<textarea class="form-control" id="reply-body" name="body"' in page
    assert 'name="kind" id="reply-kind-reply" value="reply"' in page
    assert 'name="kind" id="reply-kind-note" value="note"' in page
    assert 'id="reply-status" name="status"' in page
    assert "</i>Send</button>" in page
    assert "Da ieri sera la luce DSL lampeggia." in page  # the first message
    assert f'data-socket="/ws/support/tickets/{ticket.public_id}/"' in page
    assert "Public reply" in page and "Internal note" in page


def test_a_public_reply_posted_from_the_form_creates_exactly_one_message(client):
    agent = _agent()
    ticket = _ticket(agent)
    before = TicketMessage.objects.filter(ticket=ticket).count()
    client.force_login(agent)
    response = client.post(
        f"/support/tickets/{ticket.public_id}/reply/", {"kind": "reply", "body": "Riavvii il modem, grazie."}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/support/tickets/{ticket.public_id}/"
    messages = list(TicketMessage.objects.filter(ticket=ticket).order_by("id"))
    assert len(messages) == before + 1
    reply = messages[-1]
    assert (reply.kind, reply.body_text, reply.author_user_id) == (
        "reply",
        "Riavvii il modem, grazie.",
        agent.pk,
    )
    ticket.refresh_from_db()
    assert ticket.status.code == "open"  # an agent's public reply moves new → open


def test_an_internal_note_with_a_status_change(client):
    agent = _agent()
    ticket = _ticket(agent)
    client.force_login(agent)
    client.post(
        f"/support/tickets/{ticket.public_id}/reply/",
        {"kind": "note", "body": "Chiamato il tecnico.", "status": "pending_third_party"},
    )
    note = TicketMessage.objects.filter(ticket=ticket).order_by("id").last()
    assert (note.kind, note.body_text) == ("note", "Chiamato il tecnico.")
    ticket.refresh_from_db()
    assert ticket.status.code == "pending_third_party"


def test_htmx_reply_returns_the_conversation_and_a_fresh_form(client):
    agent = _agent()
    ticket = _ticket(agent)
    client.force_login(agent)
    response = client.post(
        f"/support/tickets/{ticket.public_id}/reply/",
        {"kind": "reply", "body": "Tutto risolto."},
        HTTP_HX_REQUEST="true",
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert page.count('id="conversation"') == 1 and "Tutto risolto." in page
    assert 'id="reply-form"' in page and 'hx-swap-oob="true"' in page
    assert "></textarea>" in page  # the new form is empty


@pytest.mark.parametrize("body", ["", "   \n  "])
def test_an_empty_reply_is_refused_and_changes_nothing(client, body):
    agent = _agent()
    ticket = _ticket(agent)
    messages_before = TicketMessage.objects.count()
    events_before = OutboxEvent.objects.count()
    client.force_login(agent)
    response = client.post(
        f"/support/tickets/{ticket.public_id}/reply/", {"kind": "reply", "body": body}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 422
    assert response["HX-Retarget"] == "#reply-form"
    assert "Write a message first." in response.content.decode()
    assert TicketMessage.objects.count() == messages_before
    assert OutboxEvent.objects.count() == events_before


def test_an_unknown_kind_is_refused(client):
    agent = _agent()
    ticket = _ticket(agent)
    before = TicketMessage.objects.count()
    client.force_login(agent)
    response = client.post(f"/support/tickets/{ticket.public_id}/reply/", {"kind": "customer", "body": "x"})
    assert response.status_code == 422
    assert TicketMessage.objects.count() == before


def test_the_properties_form_changes_only_what_changed(client):
    agent = _agent()
    ticket = _ticket(agent)
    client.force_login(agent)
    response = client.post(
        f"/support/tickets/{ticket.public_id}/update/",
        {
            "subject": ticket.subject,
            "status": ticket.status.code,
            "priority": "high",
            "ticket_type": ticket.ticket_type.code,
            "category": "",
            "team": "",
            "assignee": str(agent.public_id),
            "tags": "vip, Modem",
        },
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    ticket.refresh_from_db()
    assert (ticket.priority, ticket.assignee_id) == ("high", agent.pk)
    assert sorted(ticket.tags.values_list("name", flat=True)) == ["modem", "vip"]
    assert 'id="ticket-header" hx-swap-oob="true"' in response.content.decode()


def test_assign_to_me_button(client):
    agent = _agent()
    ticket = _ticket(agent)
    client.force_login(agent)
    client.post(f"/support/tickets/{ticket.public_id}/update/", {"assign_me": "1"})
    ticket.refresh_from_db()
    assert ticket.assignee_id == agent.pk


def test_internal_notes_are_marked_and_system_lines_collapsed(client):
    agent = _agent()
    ticket = _ticket(agent)
    TicketMessage.objects.create(ticket=ticket, kind="note", body_text="Solo per noi", created_at=clock.now())
    TicketMessage.objects.create(
        ticket=ticket, kind="system", body_text="Riga di sistema", created_at=clock.now()
    )
    client.force_login(agent)
    page = client.get(f"/support/tickets/{ticket.public_id}/").content.decode()
    assert 'data-kind="note"' in page and "bg-warning-subtle" in page
    assert '<details class="small text-secondary">' in page and "Riga di sistema" in page


# ---------------------------------------------------------------- attachments


def _attachment(ticket: Ticket) -> Attachment:
    attachment = Attachment(
        ticket=ticket,
        filename="bolletta.pdf",
        content_type="application/pdf",
        size=8,
        sha256="0" * 64,
        created_at=clock.now(),
    )
    attachment.file.save("bolletta.pdf", ContentFile(b"%PDF-1.4"), save=True)
    return attachment


def test_attachment_download_for_agents_only(client):
    ticket = TicketFactory()
    attachment = _attachment(ticket)
    url = f"/support/attachments/{attachment.public_id}/"
    client.force_login(_agent())
    response = client.get(url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"%PDF-1.4"
    assert response["Content-Disposition"] == 'attachment; filename="bolletta.pdf"'
    assert response["X-Content-Type-Options"] == "nosniff"
    client.force_login(user_with_roles("portal_customer"))
    assert client.get(url).status_code == 403
    client.force_login(_agent())
    assert client.get("/support/attachments/00000000-0000-0000-0000-000000000000/").status_code == 404


# ---------------------------------------------------------------- new ticket


def test_new_ticket_page_creates_a_phone_ticket_for_a_customer(client):
    agent = _agent()
    customer = CustomerFactory(display_name="Bar Centrale")
    client.force_login(agent)
    page = client.get(f"/support/tickets/new/?customer={customer.public_id}")
    assert page.status_code == 200 and "Bar Centrale" in page.content.decode()
    response = client.post(
        "/support/tickets/new/",
        {
            "customer": str(customer.public_id),
            "channel": "phone",
            "requester_name": "Luca Verdi",
            "requester_email": "luca@example.it",
            "subject": "Linea muta",
            "body": "Il cliente chiama: linea muta da stamattina.",
            "priority": "high",
            "tags": "linea",
        },
    )
    ticket = Ticket.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/support/tickets/{ticket.public_id}/"
    assert (ticket.channel, ticket.customer_id, ticket.priority, ticket.subject) == (
        "phone",
        customer.pk,
        "high",
        "Linea muta",
    )
    assert list(ticket.tags.values_list("name", flat=True)) == ["linea"]


def test_new_ticket_without_subject_is_refused_and_creates_nothing(client):
    client.force_login(_agent())
    response = client.post("/support/tickets/new/", {"channel": "phone", "subject": "", "body": "x"})
    assert response.status_code == 422
    assert Ticket.objects.count() == 0
    assert OutboxEvent.objects.count() == 0


def test_new_ticket_refuses_a_channel_agents_do_not_use(client):
    client.force_login(_agent())
    response = client.post("/support/tickets/new/", {"channel": "import", "subject": "x"})
    assert response.status_code == 422
    assert Ticket.objects.count() == 0


def test_customer_search_returns_pickable_customers(client):
    customer = CustomerFactory(display_name="Ferramenta Rossi")
    client.force_login(_agent())
    page = client.get("/support/tickets/customers/?q=Ferramenta").content.decode()
    assert f'data-customer="{customer.public_id}"' in page and "Ferramenta Rossi" in page


# ---------------------------------------------------------------- macros, suggestions, notifications


def test_macro_preview_fills_variables_and_apply_adds_the_reply(client):
    from fedele.support.models import Macro

    agent = _agent(first_name="Anna", last_name="Neri")
    ticket = _ticket(agent, language="it")
    macro = Macro.objects.create(
        name="Saluti",
        reply_it="Buongiorno, sono {{ agent.name }} per {{ ticket.number }}.",
        created_at=clock.now(),
    )
    client.force_login(agent)
    preview = client.get(
        f"/support/tickets/{ticket.public_id}/macro/?macro={macro.public_id}"
    ).content.decode()
    assert f"Buongiorno, sono Anna Neri per {ticket.number}." in preview
    assert TicketMessage.objects.filter(ticket=ticket, kind="reply").count() == 0
    client.post(f"/support/tickets/{ticket.public_id}/macro/apply/", {"macro": str(macro.public_id)})
    reply = TicketMessage.objects.filter(ticket=ticket, kind="reply").get()
    assert reply.body_text == f"Buongiorno, sono Anna Neri per {ticket.number}."


def test_kb_suggestions_partial_loads(client):
    agent = _agent()
    ticket = _ticket(agent)
    client.force_login(agent)
    response = client.get(f"/support/tickets/{ticket.public_id}/suggestions/")
    assert response.status_code == 200
    assert "<html" not in response.content.decode()


def test_assignment_and_follower_notifications():
    from fedele.shared.models import Notification
    from fedele.support.models import TicketWatcher
    from fedele.support.services.notify import notify_ticket_change

    assignee, follower, actor = _agent(), _agent(), _agent()
    ticket = TicketFactory(assignee=assignee)
    TicketWatcher.objects.create(ticket=ticket, kind="follower", user=follower, created_at=clock.now())
    TicketWatcher.objects.create(ticket=ticket, kind="follower", user=actor, created_at=clock.now())
    assert notify_ticket_change(ticket, "assigned", actor.pk) == 1
    assert notify_ticket_change(ticket, "customer_message", actor.pk) == 2
    assert notify_ticket_change(ticket, "something", actor.pk) == 0
    rows = sorted(Notification.objects.values_list("recipient_id", "title", "link"))
    link = f"/support/tickets/{ticket.public_id}/"
    assert rows == sorted(
        [
            (assignee.pk, f"Ticket {ticket.number} was assigned to you", link),
            (assignee.pk, f"New customer message on {ticket.number}", link),
            (follower.pk, f"New customer message on {ticket.number}", link),
        ]
    )


def test_follow_link_and_merge_from_the_ticket_page(client: Any) -> None:
    from fedele.support.models import TicketLink, TicketWatcher
    from fedele.support.services.tickets import ticket_create
    from fedele.support.tests.factories import ticket_kwargs

    agent = user_with_roles("agent")
    client.force_login(agent)
    first = ticket_create(actor=None, **ticket_kwargs(subject="Primo"))
    second = ticket_create(actor=None, **ticket_kwargs(subject="Secondo"))
    action = reverse("support:ticket_action", args=[first.public_id])

    client.post(action, {"action": "follow"})
    assert TicketWatcher.objects.filter(ticket=first, user=agent, kind="follower").count() == 1
    page = client.get(reverse("support:ticket_detail", args=[first.public_id])).content.decode()
    assert "Unfollow" in page
    client.post(action, {"action": "unfollow"})
    assert not TicketWatcher.objects.filter(ticket=first, user=agent).exists()

    client.post(action, {"action": "link", "number": second.number, "kind": "duplicate"})
    link = TicketLink.objects.get(source=first)
    assert (link.target_id, link.kind) == (second.pk, "duplicate")

    missing = client.post(action, {"action": "merge", "number": "T-999999"})
    assert missing.status_code == 302
    first.refresh_from_db()
    assert first.merged_into_id is None and first.status_kind == "new"

    merged = client.post(action, {"action": "merge", "number": second.number})
    assert merged["Location"] == reverse("support:ticket_detail", args=[second.public_id])
    first.refresh_from_db()
    assert (first.merged_into_id, first.status_kind) == (second.pk, "closed")
