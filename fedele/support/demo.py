"""Support demo data: the "Supporto" team (three agents and the supervisor), the support mailbox and
about sixty tickets over the last sixty days, written through the real services at the time they
happen (``clock.travel_to``), so numbers, history, SLA clocks and CSAT are what the product would
have made: some answered in time, some breached, some waiting for the customer, most solved.

Idempotent: nothing is added when the demo tickets exist (the demo framework's --if-empty).
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from fedele.accounts.facade import Actor, actor_for
from fedele.customers.facade import customer_summary
from fedele.shared import clock
from fedele.shared.demo import DEMO_PASSWORD, DemoContext, register_login
from fedele.support.models import AgentProfile, Mailbox, Ticket

TEAM_NAME = "Supporto"
MAILBOX_ADDRESS = "support@fedele.example"
DAYS = 60
TICKETS = 60
# The accounts demo makes agent@ and supervisor@; the two other agents of the team are made here.
EXTRA_AGENTS = [
    ("francesca.ricci@fedele.demo", "Francesca", "Ricci", 20),
    ("matteo.esposito@fedele.demo", "Matteo", "Esposito", 15),
]
TOPICS = [
    (
        "Fattura di {month} più alta del solito",
        "incident",
        "high",
        "Buongiorno, la fattura di {month} è il doppio del solito. Potete verificare?",
    ),
    ("Addebito doppio sul conto", "complaint", "urgent", "Mi avete addebitato due volte lo stesso importo."),
    (
        "Come cambio l'IBAN per l'addebito?",
        "question",
        "normal",
        "Vorrei cambiare il conto su cui addebitate le fatture.",
    ),
    (
        "Il modem non si connette",
        "incident",
        "high",
        "Da ieri sera il modem non si connette a internet, la spia DSL lampeggia.",
    ),
    ("Richiesta copia del contratto", "request", "low", "Potete inviarmi una copia del contratto firmato?"),
    (
        "Cambio indirizzo di fatturazione",
        "request",
        "normal",
        "Mi sono trasferito, ecco il nuovo indirizzo: via Roma 12, Bologna.",
    ),
    ("Disdetta del servizio", "request", "normal", "Vorrei disdire il servizio dalla prossima scadenza."),
    (
        "Punti fedeltà non accreditati",
        "question",
        "low",
        "Non vedo i punti dell'ultimo acquisto nel mio profilo.",
    ),
    ("Linea lenta la sera", "incident", "normal", "Dopo le 20 la velocità scende moltissimo."),
    (
        "Sollecito di pagamento non dovuto",
        "collections",
        "high",
        "Ho ricevuto un sollecito ma ho già pagato il 3 del mese.",
    ),
]
REPLIES = [
    "Gentile cliente, grazie per la segnalazione: stiamo verificando e la ricontattiamo entro oggi.",
    "Abbiamo verificato: l'importo è corretto, è incluso il conguaglio annuale. Le allego il dettaglio.",
    "Abbiamo disposto il rimborso, lo vedrà sul conto entro 5 giorni lavorativi.",
    "Può riavviare il modem e dirci quali spie sono accese?",
    "Fatto: la modifica è attiva da oggi.",
]
FOLLOW_UPS = [
    "Grazie, ho riavviato ma la spia è ancora rossa.",
    "Perfetto, grazie mille!",
    "Ho inviato il documento richiesto.",
]
MONTHS = ["gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto", "settembre",
          "ottobre", "novembre", "dicembre"]  # fmt: skip


def load(context: DemoContext) -> None:
    from fedele.support.services import tickets

    if Ticket.objects.filter(channel__in=["email", "portal", "phone", "chat"]).exists():
        return
    rng = random.Random(context.seed + 11)  # noqa: S311  (reproducible demo data, not security)
    supervisor = context.users.get("supervisor@fedele.demo")
    agent_users = [user for user in [context.users.get("agent@fedele.demo"), *_extra_agents(context)] if user]
    if supervisor is None or not agent_users:
        return
    team = _team([*agent_users, supervisor])
    for user, capacity in zip(agent_users, (25, 20, 15), strict=False):
        AgentProfile.objects.update_or_create(user=user, defaults={"capacity": capacity, "available": True})
    boss = actor_for(supervisor)
    agents = [actor_for(user) for user in agent_users]
    admin = context.users.get("admin@fedele.demo")
    mailbox = _mailbox(actor_for(admin) if admin is not None else boss)
    requesters = _requesters(context, rng)
    now = clock.now()
    for index in range(TICKETS):
        created = (
            now - timedelta(days=DAYS) + timedelta(minutes=int((DAYS * 24 * 60 - 600) * index / TICKETS))
        )
        created = created.replace(hour=8 + rng.randrange(10), minute=rng.randrange(60))
        if created > now - timedelta(hours=2):
            created = now - timedelta(hours=2 + index % 5)
        email, name = requesters[index % len(requesters)]
        _one_ticket(tickets, rng, index, created, now, email, name, agents, boss, team, mailbox)
        context.progress("support tickets", index + 1, TICKETS)
    _portal_tickets(context, tickets, agents, now)
    _csat(context)
    from fedele.support.services.sla import sla_run_due

    sla_run_due(now)
    _knowledge_base(boss)
    context.counts["support tickets"] = Ticket.objects.count()


def _extra_agents(context: DemoContext) -> list[Any]:
    # The accounts facade has no way to make staff users: this demo uses Django's user model and the
    # role groups directly (demo data only; see the report to the lead).
    user_model = get_user_model()
    made = []
    for email, first_name, last_name, _capacity in EXTRA_AGENTS:
        user = user_model.objects.filter(email=email).first()
        if user is None:
            user = user_model.objects.create_user(
                email, DEMO_PASSWORD, first_name=first_name, last_name=last_name, language="it"
            )
            user.groups.set(Group.objects.filter(name="agent"))
        context.users[email] = user
        register_login(email, "Support agent (team Supporto)")
        made.append(user)
    return made


def _team(members: list[Any]) -> Any:
    team_model = apps.get_model("accounts", "Team")
    team = team_model.objects.filter(name=TEAM_NAME).first() or team_model.objects.create(name=TEAM_NAME)
    team.members.add(*members)
    return team


def _mailbox(manager: Actor) -> Mailbox:
    existing = Mailbox.objects.filter(address=MAILBOX_ADDRESS).first()
    if existing is not None:
        return existing
    from fedele.support.services.mailboxes import mailbox_create

    return mailbox_create(actor=manager, data={"name": "Assistenza clienti", "address": MAILBOX_ADDRESS})


def _requesters(context: DemoContext, rng: random.Random) -> list[tuple[str, str]]:
    people: list[tuple[str, str]] = []
    for public_id in list(context.records.get("customers", []))[:40]:
        summary = customer_summary(str(public_id))
        if summary is not None and summary.email:
            people.append((summary.email, summary.display_name))
    while len(people) < 25:
        first, last = context.faker.first_name(), context.faker.last_name()
        address = f"{first}.{last}{rng.randrange(100)}@example.it".lower().replace(" ", "").replace("'", "")
        people.append((address, f"{first} {last}"))
    rng.shuffle(people)
    return people


def _one_ticket(
    tickets: Any,
    rng: random.Random,
    index: int,
    created: datetime,
    now: datetime,
    email: str,
    name: str,
    agents: list[Actor],
    boss: Actor,
    team: Any,
    mailbox: Mailbox,
) -> None:
    subject, ticket_type, priority, body = TOPICS[index % len(TOPICS)]
    month = MONTHS[(created.month - 2) % 12]
    channel = rng.choice(["email", "email", "email", "portal", "phone", "chat"])
    agent = agents[index % len(agents)]
    with clock.travel_to(created):
        ticket = tickets.ticket_create(
            actor=None,
            subject=subject.format(month=month),
            body=body.format(month=month),
            channel=channel,
            requester_email=email,
            requester_name=name,
            ticket_type=ticket_type,
            priority=priority,
            team_public_id=str(team.public_id),
            mailbox=mailbox if channel == "email" else None,
            tags=["demo", ticket_type],
        )
    age = now - created
    fate = rng.random()
    if age < timedelta(hours=6) or (fate < 0.08 and age > timedelta(days=3)):
        return  # untouched: new, and the old ones breach their first-response target
    first_reply = created + timedelta(minutes=rng.randrange(20, 8 * 60 if fate > 0.2 else 30 * 60))
    first_reply = min(first_reply, now - timedelta(minutes=30))
    with clock.travel_to(first_reply):
        tickets.ticket_update(actor=agent, ticket=ticket, changes={"assignee": str(agent.public_id)})
        tickets.message_add(
            actor=agent, ticket=ticket, kind="reply", body=rng.choice(REPLIES), send_email=False
        )
    if fate < 0.25:
        with clock.travel_to(first_reply + timedelta(minutes=5)):
            tickets.ticket_update(actor=agent, ticket=ticket, changes={"status": "pending_customer"})
        return
    answer = first_reply + timedelta(hours=rng.randrange(1, 30))
    if answer < now:
        with clock.travel_to(answer):
            tickets.message_add(
                actor=None, ticket=ticket, kind="customer", body=rng.choice(FOLLOW_UPS),
                author_email=email, author_name=name, channel=channel,
            )  # fmt: skip
    if fate < 0.35:
        return  # open again, waiting for the agent
    if fate < 0.40:
        with clock.travel_to(min(answer, now) + timedelta(minutes=10)):
            tickets.message_add(actor=boss, ticket=ticket, kind="note", body="Coinvolgo l'amministrazione.")
    solved = min(answer + timedelta(hours=rng.randrange(1, 20)), now - timedelta(minutes=5))
    if solved <= first_reply:
        return
    with clock.travel_to(solved):
        tickets.message_add(
            actor=agent, ticket=ticket, kind="reply", body="Risolto, la ringraziamo per la pazienza.",
            new_status="solved", send_email=False,
        )  # fmt: skip


def _portal_tickets(context: DemoContext, tickets: Any, agents: list[Actor], now: datetime) -> None:
    """Two requests of the demo portal customer (cliente@fedele.demo): one open, one solved."""
    customer_id = context.records.get("portal_customer")
    portal_user = get_user_model().objects.filter(email="cliente@fedele.demo").first()
    if not customer_id or portal_user is None:
        return
    customer = actor_for(portal_user)
    for days, subject, solved in ((12, "Bolletta non ricevuta", True), (2, "Modem da sostituire", False)):
        with clock.travel_to(now - timedelta(days=days)):
            ticket = tickets.ticket_create(
                actor=customer, subject=subject, body="Potete aiutarmi?", channel="portal",
                requester_user_id=portal_user.pk, requester_email=portal_user.email,
                customer_public_id=str(customer_id),
            )  # fmt: skip
        with clock.travel_to(now - timedelta(days=days) + timedelta(hours=2)):
            tickets.message_add(
                actor=agents[0], ticket=ticket, kind="reply", body=REPLIES[0],
                new_status="solved" if solved else None, send_email=False,
            )  # fmt: skip
    context.records["portal_tickets"] = 2


def _csat(context: DemoContext) -> None:
    """Answers to CSAT for the portal customer's solved request (other surveys stay unanswered: their
    tokens only exist in the e-mails)."""
    portal_user = get_user_model().objects.filter(email="cliente@fedele.demo").first()
    if portal_user is None:
        return
    try:
        from fedele.support.services.surveys import survey_rate_ticket
    except ImportError:  # pragma: no cover - the surveys area is not there
        return
    customer = actor_for(portal_user)
    for ticket in Ticket.objects.filter(
        requester_user_id=portal_user.pk, status_kind__in=["solved", "closed"]
    ):
        survey_rate_ticket(actor=customer, ticket=ticket, score=5, comment="Veloci e gentili, grazie!")


def _knowledge_base(boss: Actor) -> None:
    try:
        from fedele.support.kb.demo import load_articles
    except ImportError:  # pragma: no cover - the knowledge-base area is not there
        return
    load_articles(boss)
