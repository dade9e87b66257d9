"""The agent desktop end to end through its pages: state control, an offer arriving and being accepted or
rejected, the screen pop from the real facades (support, billing, loyalty), unknown callers linked to a
customer, wrap-up with a ticket, canned replies, click-to-dial; permissions and bad input."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from fedele.accounts.contracts import Role
from fedele.accounts.tests.factories import UserFactory
from fedele.contact_center.models import (
    AgentState,
    CannedReply,
    Interaction,
    InteractionEvent,
    InteractionState,
    Offer,
    OfferState,
    Outcome,
)
from fedele.contact_center.selectors.desktop import (
    ScreenPopSection,
    canned_replies_for,
    expand_placeholders,
    register_screen_pop_section,
    screen_pop,
    unregister_screen_pop_section,
)
from fedele.contact_center.services.desktop import (
    canned_reply_delete,
    canned_reply_save,
    interaction_customer_link,
)
from fedele.contact_center.services.interactions import interaction_end
from fedele.contact_center.tests.desktop_support import known_customer, make_desk, offered_call
from fedele.contact_center.tests.factories import QueueFactory, WrapUpCodeFactory
from fedele.customers.tests.factories import CustomerFactory
from fedele.shared.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _route_by_hand(settings) -> None:
    # The tests run the router themselves (route_pending) so every step is deterministic.
    settings.CONTACT_CENTER_ROUTE_ON_COMMIT = False


def go_available(client, desk) -> None:
    response = client.post(reverse("contact_center:desktop_state"), {"state": "available"})
    assert response.status_code == 200
    desk.agent.refresh_from_db()
    assert desk.agent.state == AgentState.AVAILABLE


def test_agent_goes_available_gets_an_offer_accepts_sees_screen_pop_and_wraps_up(client) -> None:
    desk = make_desk()
    customer = known_customer()
    WrapUpCodeFactory(code="solved", name_en="Solved")
    client.force_login(desk.user)
    go_available(client, desk)
    interaction, offer = offered_call(desk)

    page = client.get(reverse("contact_center:desktop")).content.decode()
    assert 'data-testid="offer-card"' in page and f'data-offer="{offer.public_id}"' in page
    card = page.split('data-testid="offer-card"')[1].split('data-testid="offer-accept"')[0]
    assert "Mario Rossi" in card and "Gold" in card

    accepted = client.post(
        reverse("contact_center:desktop_offer_accept", args=[offer.public_id]), HTTP_HX_REQUEST="true"
    )
    assert accepted.status_code == 204
    assert accepted["HX-Redirect"] == f"/contact-center/desktop/?i={interaction.public_id}"
    interaction.refresh_from_db()
    assert (interaction.state, interaction.agent_id) == (InteractionState.CONNECTED, desk.agent.pk)

    work = client.get(accepted["HX-Redirect"]).content.decode()
    assert 'data-testid="screen-pop"' in work
    assert f'href="/customers/{customer.public_id}/"' in work
    assert "Modem lampeggia" in work
    assert 'data-testid="pop-open-amount">122.00 EUR<' in work
    assert 'data-testid="pop-overdue-amount">122.00 EUR<' in work
    assert 'data-tier="gold"' in work
    assert 'data-testid="softphone"' in work
    assert 'data-testid="offer-card"' not in work

    interaction_end(interaction=interaction, outcome=Outcome.HANDLED)
    desk.agent.refresh_from_db()
    assert desk.agent.state == AgentState.WRAP_UP
    wrap = client.post(
        reverse("contact_center:desktop_wrap_up", args=[interaction.public_id]),
        {"wrap_up_code": "solved", "notes": "Reset del modem", "ticket": "create"},
        HTTP_HX_REQUEST="true",
    )
    assert wrap.status_code == 204
    assert wrap["HX-Redirect"] == "/contact-center/desktop/"
    interaction.refresh_from_db()
    assert interaction.state == InteractionState.ENDED
    assert interaction.wrap_up_code is not None and interaction.wrap_up_code.code == "solved"
    assert interaction.wrap_up_notes == "Reset del modem"
    assert interaction.ticket_public_id != ""
    desk.agent.refresh_from_db()
    assert desk.agent.state == AgentState.AVAILABLE


def test_rejecting_an_offer_puts_the_contact_back_and_shows_no_card(client) -> None:
    desk = make_desk()
    client.force_login(desk.user)
    go_available(client, desk)
    interaction, offer = offered_call(desk, phone="+390699999999")
    response = client.post(reverse("contact_center:desktop_offer_reject", args=[offer.public_id]))
    assert response.status_code == 200
    assert 'data-testid="offer-card"' not in response.content.decode()
    offer.refresh_from_db()
    interaction.refresh_from_db()
    assert offer.state == OfferState.REJECTED
    assert (interaction.state, interaction.agent_id) == (InteractionState.QUEUED, None)


def test_someone_elses_offer_cannot_be_accepted_and_nothing_changes(client) -> None:
    desk = make_desk()
    client.force_login(desk.user)
    go_available(client, desk)
    interaction, offer = offered_call(desk)
    other = UserFactory(roles=[Role.AGENT])
    from fedele.contact_center.tests.factories import AgentFactory

    AgentFactory(user=other)
    client.force_login(other)
    response = client.post(reverse("contact_center:desktop_offer_accept", args=[offer.public_id]))
    assert response.status_code == 404
    offer.refresh_from_db()
    assert offer.state == OfferState.PENDING
    assert Interaction.objects.get(pk=interaction.pk).state == InteractionState.OFFERED


def test_break_needs_a_listed_reason_and_bad_state_changes_nothing(client) -> None:
    desk = make_desk()
    client.force_login(desk.user)
    go_available(client, desk)
    bad = client.post(reverse("contact_center:desktop_state"), {"state": "break", "reason": "nap"})
    assert bad.status_code == 422
    desk.agent.refresh_from_db()
    assert desk.agent.state == AgentState.AVAILABLE
    bad_state = client.post(reverse("contact_center:desktop_state"), {"state": "busy"})
    assert bad_state.status_code == 422
    ok = client.post(reverse("contact_center:desktop_state"), {"state": "break", "reason": "lunch"})
    assert ok.status_code == 200
    assert 'data-state="break"' in ok.content.decode()
    desk.agent.refresh_from_db()
    assert (desk.agent.state, desk.agent.break_reason) == (AgentState.BREAK, "lunch")


def test_desktop_needs_an_agent_profile_and_the_permission(client) -> None:
    client.force_login(UserFactory(roles=[Role.AGENT]))
    assert client.get(reverse("contact_center:desktop")).status_code == 403
    client.force_login(UserFactory(roles=[Role.ANALYST]))
    assert client.get(reverse("contact_center:desktop")).status_code == 403
    client.logout()
    assert client.get(reverse("contact_center:desktop")).status_code == 302


def test_unknown_caller_is_searched_and_linked(client) -> None:
    desk = make_desk()
    customer = CustomerFactory(
        first_name="Anna", last_name="Bianchi", display_name="Anna Bianchi", phone="+390611111111"
    )
    client.force_login(desk.user)
    go_available(client, desk)
    interaction, offer = offered_call(desk, phone="+393330000000")
    client.post(reverse("contact_center:desktop_offer_accept", args=[offer.public_id]))
    work = client.get(reverse("contact_center:desktop_work", args=[interaction.public_id])).content.decode()
    assert 'data-testid="pop-unknown"' in work
    hits = client.get(
        reverse("contact_center:desktop_customer", args=[interaction.public_id]), {"q": "Bianchi"}
    )
    assert hits.status_code == 200
    assert "Anna Bianchi" in hits.content.decode()
    linked = client.post(
        reverse("contact_center:desktop_customer", args=[interaction.public_id]),
        {"customer": str(customer.public_id)},
    )
    assert linked.status_code == 200
    assert 'data-testid="pop-customer">Anna Bianchi<' in linked.content.decode()
    interaction.refresh_from_db()
    assert interaction.customer_public_id == str(customer.public_id)
    assert InteractionEvent.objects.filter(interaction=interaction, kind="customer_linked").count() == 1
    assert AuditLog.objects.filter(action="contact_center.interaction_customer_linked").count() == 1


def test_customer_link_refuses_unknown_customer_other_agents_and_a_second_customer() -> None:
    desk = make_desk()
    first = CustomerFactory()
    second = CustomerFactory()
    from fedele.contact_center.tests.factories import AgentFactory, InteractionFactory

    interaction = InteractionFactory(agent=desk.agent, state=InteractionState.CONNECTED, queue=desk.queue)
    with pytest.raises(NotFound):
        interaction_customer_link(interaction=interaction, agent=desk.agent, customer_public_id="not-a-uuid")
    with pytest.raises(PermissionDenied):
        interaction_customer_link(
            interaction=interaction, agent=AgentFactory(), customer_public_id=str(first.public_id)
        )
    interaction.refresh_from_db()
    assert interaction.customer_public_id == ""
    interaction_customer_link(
        interaction=interaction, agent=desk.agent, customer_public_id=str(first.public_id)
    )
    again = interaction_customer_link(
        interaction=interaction, agent=desk.agent, customer_public_id=str(first.public_id)
    )
    assert again.customer_public_id == str(first.public_id)
    with pytest.raises(Conflict):
        interaction_customer_link(
            interaction=interaction, agent=desk.agent, customer_public_id=str(second.public_id)
        )
    assert InteractionEvent.objects.filter(interaction=interaction, kind="customer_linked").count() == 1


def test_screen_pop_from_real_facades_and_registered_sections() -> None:
    desk = make_desk()
    customer = known_customer()
    from fedele.contact_center.tests.factories import InteractionFactory

    earlier = InteractionFactory(
        customer_public_id=str(customer.public_id), state=InteractionState.ENDED, queue=desk.queue
    )
    interaction = InteractionFactory(
        customer_public_id=str(customer.public_id),
        from_address="+390612345678",
        agent=desk.agent,
        queue=desk.queue,
    )
    pop = screen_pop(interaction)
    assert pop.known and pop.customer.display_name == "Mario Rossi"
    assert [ticket.subject for ticket in pop.open_tickets] == ["Modem lampeggia"]
    assert pop.balance.open_amount == Decimal("122.00") and pop.balance.overdue_amount == Decimal("122.00")
    assert [invoice.total for invoice in pop.invoices] == [Decimal("122.00")]
    assert pop.subscriptions == []
    assert (pop.tier, pop.tier_name) == ("gold", "Gold")
    assert [past.pk for past in pop.recent_interactions] == [earlier.pk]
    assert pop.extra_sections == []  # no field-service module: no equipment section at all

    register_screen_pop_section(
        ScreenPopSection("equipment", "Equipment", lambda customer_id: [("Router X1", "installed", "")])
    )
    try:
        assert [(s.key, s.rows) for s in screen_pop(interaction).extra_sections] == [
            ("equipment", [("Router X1", "installed", "")])
        ]
    finally:
        unregister_screen_pop_section("equipment")

    stranger = InteractionFactory(from_address="+393330000000", queue=desk.queue)
    same_number = InteractionFactory(
        from_address="+393330000000", queue=desk.queue, state=InteractionState.ENDED
    )
    unknown = screen_pop(stranger)
    assert not unknown.known and unknown.open_tickets == [] and unknown.balance is None
    assert [past.pk for past in unknown.recent_interactions] == [same_number.pk]


def test_canned_replies_save_expand_and_refuse_bad_input() -> None:
    desk = make_desk()
    other_queue = QueueFactory(code="sales")
    reply = canned_reply_save(
        shortcut="/Saluto",
        title="Greeting",
        body_it="Buongiorno {{customer.first_name}}, sono {{agent.name}}. {{unknown.thing}}",
        body_en="Hello {{ customer.name }}, this is {{agent.name}} ({{interaction.number}}).",
    )
    assert reply.shortcut == "saluto"
    canned_reply_save(
        shortcut="sales-only", title="Sales", body_it="Vendite", body_en="Sales", queue_code="sales"
    )
    customer = CustomerFactory(first_name="Mario", display_name="Mario Rossi", language="it")
    from fedele.contact_center.tests.factories import InteractionFactory

    interaction = InteractionFactory(number="I-00000042", queue=desk.queue, agent=desk.agent)
    from fedele.customers.facade import customer_summary

    summary = customer_summary(str(customer.public_id))
    views = canned_replies_for(interaction, desk.agent, customer=summary)
    assert [(view.shortcut, view.text) for view in views] == [
        ("saluto", "Buongiorno Mario, sono Giulia Verdi. {{unknown.thing}}")
    ]
    english = canned_replies_for(interaction, desk.agent, customer=None, language="en")
    assert english[0].text == "Hello , this is Giulia Verdi (I-00000042)."
    assert [v.shortcut for v in canned_replies_for(None, None)] == ["saluto"]
    assert expand_placeholders("{{customer.name}}!", {"customer.name": "Anna"}) == "Anna!"
    assert other_queue.code == "sales"

    before = CannedReply.objects.count()
    for kwargs, field in (
        ({"shortcut": "bad shortcut"}, "shortcut"),
        ({"shortcut": ""}, "shortcut"),
        ({"shortcut": "x" * 41}, "shortcut"),
        ({"title": ""}, "title"),
        ({"body_en": ""}, "body_en"),
        ({"body_it": "x" * 4001}, "body_it"),
        ({"queue_code": "nope"}, "queue"),
        ({"shortcut": "saluto"}, "shortcut"),
    ):
        data = {"shortcut": "ok", "title": "T", "body_it": "a", "body_en": "b", **kwargs}
        with pytest.raises(ValidationFailed) as error:
            canned_reply_save(**data)
        assert field in error.value.fields
    assert CannedReply.objects.count() == before
    canned_reply_delete(reply=reply)
    with pytest.raises(NotFound):
        canned_reply_delete(reply=reply)


def test_chat_console_shows_canned_replies_for_the_queue(client) -> None:
    desk = make_desk()
    canned_reply_save(
        shortcut="thanks",
        title="Thanks",
        body_it="Grazie {{customer.name}}",
        body_en="Thanks {{customer.name}}",
    )
    client.force_login(desk.user)
    go_available(client, desk)
    interaction, offer = offered_call(desk, phone="+390611112222", channel="sms")
    client.post(reverse("contact_center:desktop_offer_accept", args=[offer.public_id]))
    work = client.get(reverse("contact_center:desktop_work", args=[interaction.public_id])).content.decode()
    assert 'data-testid="chat-console"' in work
    assert 'id="cc-canned-replies"' in work and '"shortcut": "thanks"' in work
    assert 'data-testid="softphone"' not in work


def test_wrap_up_requires_a_code_when_codes_exist_and_changes_nothing(client) -> None:
    desk = make_desk()
    WrapUpCodeFactory(code="solved")
    client.force_login(desk.user)
    go_available(client, desk)
    interaction, offer = offered_call(desk)
    client.post(reverse("contact_center:desktop_offer_accept", args=[offer.public_id]))
    interaction_end(interaction=interaction, outcome=Outcome.HANDLED)
    response = client.post(
        reverse("contact_center:desktop_wrap_up", args=[interaction.public_id]),
        {"notes": "x", "ticket": "create"},
    )
    assert response.status_code == 422
    interaction.refresh_from_db()
    assert (interaction.state, interaction.ticket_public_id, interaction.wrap_up_notes) == (
        InteractionState.WRAP_UP,
        "",
        "",
    )
    bad_ticket = client.post(
        reverse("contact_center:desktop_wrap_up", args=[interaction.public_id]),
        {"wrap_up_code": "solved", "ticket": "attach", "ticket_ref": "00000000-0000-0000-0000-000000000000"},
    )
    assert bad_ticket.status_code == 404
    interaction.refresh_from_db()
    assert interaction.state == InteractionState.WRAP_UP


def test_other_agents_cannot_open_my_contact(client) -> None:
    desk = make_desk()
    client.force_login(desk.user)
    go_available(client, desk)
    interaction, offer = offered_call(desk)
    client.post(reverse("contact_center:desktop_offer_accept", args=[offer.public_id]))
    from fedele.contact_center.tests.factories import AgentFactory

    other = UserFactory(roles=[Role.AGENT])
    AgentFactory(user=other)
    client.force_login(other)
    assert client.get(reverse("contact_center:desktop_work", args=[interaction.public_id])).status_code == 404
    assert client.get(reverse("contact_center:desktop"), {"i": str(interaction.public_id)}).status_code == 404
    assert Offer.objects.get(pk=offer.pk).state == OfferState.ACCEPTED


def test_click_to_dial_places_an_outbound_call_through_the_simulator(client) -> None:
    desk = make_desk()
    client.force_login(desk.user)
    offline = client.post(reverse("contact_center:click_to_dial"), {"number": "06 1234 5678"})
    assert offline.status_code == 409
    assert offline.json()["error"]["code"] == "agent_offline"
    assert not Interaction.objects.filter(direction="outbound").exists()
    go_available(client, desk)
    bad = client.post(reverse("contact_center:click_to_dial"), {"number": "not a number"})
    assert bad.status_code == 422
    assert not Interaction.objects.filter(direction="outbound").exists()
    placed = client.post(reverse("contact_center:click_to_dial"), {"number": "06 1234 5678"})
    assert placed.status_code == 201
    body = placed.json()
    call = Interaction.objects.get(direction="outbound")
    assert (call.to_address, call.channel, call.provider) == ("+390612345678", "voice", "simulator")
    assert call.provider_ref != ""
    assert body["interaction"] == str(call.public_id)
    assert body["desktop_url"] == f"/contact-center/desktop/?i={call.public_id}"


def test_click_to_dial_script_is_loaded_for_agents_only(client) -> None:
    desk = make_desk()
    client.force_login(desk.user)
    page = client.get(reverse("contact_center:desktop")).content.decode()
    assert 'contact_center/click_to_dial.js" data-dial-url="/contact-center/dial/"' in page
    client.force_login(UserFactory(roles=[Role.ANALYST]))
    assert "click_to_dial.js" not in client.get(reverse("contact_center:interval_report")).content.decode()


def test_chat_console_with_a_real_web_chat(client) -> None:
    from fedele.contact_center.models import ChatWidget, InteractionMessage
    from fedele.contact_center.services import chat, routing
    from fedele.shared import clock

    desk = make_desk()
    widget = ChatWidget.objects.create(
        name="Sito",
        queue=desk.queue,
        allowed_origins=["https://www.example.it"],
        max_message_chars=200,
        created_at=clock.now(),
    )
    client.force_login(desk.user)
    go_available(client, desk)
    started = chat.chat_start(
        widget=widget, name="Anna", email="anna@example.it", consent=True, message="Ciao, la fattura?"
    )
    assert started.session is not None and not started.offline
    routing.route_pending(limit=10)
    offer = Offer.objects.get(agent=desk.agent, state=OfferState.PENDING)
    interaction = offer.interaction
    assert interaction.channel == "chat"
    client.post(reverse("contact_center:desktop_offer_accept", args=[offer.public_id]))

    work = client.get(reverse("contact_center:desktop_work", args=[interaction.public_id])).content.decode()
    assert 'data-testid="chat-console"' in work and "Ciao, la fattura?" in work
    chat.chat_visitor_message(session=started.session, body="Ho pagato due volte")
    transcript = client.get(
        reverse("contact_center:desktop_transcript", args=[interaction.public_id])
    ).content.decode()
    assert "Ho pagato due volte" in transcript

    sent = client.post(
        reverse("contact_center:desktop_message_send", args=[interaction.public_id]),
        {"body": "Verifico subito"},
    )
    assert sent.status_code == 200 and "Verifico subito" in sent.content.decode()
    assert list(InteractionMessage.objects.filter(interaction=interaction).values_list("sender", "body")) == [
        ("customer", "Ciao, la fattura?"),
        ("customer", "Ho pagato due volte"),
        ("agent", "Verifico subito"),
    ]
    too_long = client.post(
        reverse("contact_center:desktop_message_send", args=[interaction.public_id]), {"body": "x" * 201}
    )
    assert too_long.status_code == 422
    assert InteractionMessage.objects.filter(interaction=interaction).count() == 3
    assert (
        client.post(
            reverse("contact_center:desktop_typing", args=[interaction.public_id]), {"typing": "1"}
        ).status_code
        == 204
    )

    ended = client.post(reverse("contact_center:desktop_end", args=[interaction.public_id]))
    assert ended.status_code == 200
    assert ended["HX-Trigger"] == "cc:state, cc:contacts"
    interaction.refresh_from_db()
    assert interaction.state == InteractionState.WRAP_UP


def test_softphone_controls_drive_the_provider(client) -> None:
    from fedele.contact_center.telephony.simulator import simulator_reset

    desk = make_desk(extension="201")
    client.force_login(desk.user)
    go_available(client, desk)
    sim = simulator_reset(answer_inbound=False)
    call_ref = sim.incoming_call(from_number="+390612345678", to_number="+390200000000")
    interaction = Interaction.objects.get(provider="simulator", provider_ref=call_ref)
    from fedele.contact_center.services.interactions import interaction_enqueue
    from fedele.contact_center.services.routing import route_pending

    interaction_enqueue(interaction=interaction, queue_code=desk.queue.code)
    route_pending(limit=5)
    offer = Offer.objects.get(interaction=interaction, state=OfferState.PENDING)
    client.post(reverse("contact_center:desktop_offer_accept", args=[offer.public_id]))
    assert ("connect_agent", call_ref, {"agent": "201"}) in sim.commands

    def act(action: str, **data: str):
        return client.post(reverse("contact_center:desktop_call", args=[interaction.public_id, action]), data)

    held = act("hold")
    assert held.status_code == 200 and 'data-testid="call-unhold"' in held.content.decode()
    assert sim.calls[call_ref].held is True
    assert act("unhold").status_code == 200 and sim.calls[call_ref].held is False
    assert 'data-testid="call-unmute"' in act("mute").content.decode()
    assert sim.calls[call_ref].muted is True
    assert act("dtmf", digits="5").status_code == 204
    assert act("dtmf", digits="not-digits").status_code == 422
    assert act("transfer", target="").status_code == 422
    assert act("explode").status_code == 422
    interaction.refresh_from_db()
    assert interaction.state == InteractionState.CONNECTED
    assert act("hangup").status_code == 200
    interaction.refresh_from_db()
    assert (interaction.state, interaction.outcome) == (InteractionState.WRAP_UP, Outcome.HANDLED)
    assert interaction.hold_seconds >= 0
    assert [command[0] for command in sim.commands if command[1] == call_ref][-1] == "hangup"
    assert act("hold").status_code == 409
