"""Contact-center demo data: skills, three queues, the demo staff as agents (support's team and the
supervisor), wrap-up codes, canned replies in Italian and English, and a week of ended contacts written
through the real services at the time they happened (``clock.travel_to``), so the wallboard and the
interval reports show what the product itself would have recorded: most contacts answered, some late,
a few abandoned. Two calls wait in the billing queue at the end, so an agent who goes available on the
desktop gets an offer at once.

Idempotent: nothing is added when demo contacts exist.
"""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from fedele.contact_center.models import Agent, Channel, Direction, Interaction, Outcome, WrapUpCode
from fedele.shared import clock
from fedele.shared.demo import DemoContext

DAYS = 7
CONTACTS_PER_DAY = 24
ROME = ZoneInfo("Europe/Rome")
SKILLS = [
    ("billing", "Fatturazione", "Billing"),
    ("technical", "Assistenza tecnica", "Technical support"),
    ("sales", "Vendite", "Sales"),
]
QUEUES: list[dict[str, Any]] = [
    {
        "code": "billing",
        "name_it": "Fatture e pagamenti",
        "name_en": "Billing and payments",
        "channels": ["voice", "chat", "email", "sms"],
        "service_level_seconds": 20,
        "service_level_target": 80,
        "wrap_up_seconds": 30,
        "skill": "billing",
    },
    {
        "code": "technical",
        "name_it": "Assistenza tecnica",
        "name_en": "Technical support",
        "channels": ["voice", "chat", "social"],
        "service_level_seconds": 30,
        "service_level_target": 80,
        "wrap_up_seconds": 45,
        "skill": "technical",
    },
    {
        "code": "sales",
        "name_it": "Vendite",
        "name_en": "Sales",
        "channels": ["voice", "chat"],
        "service_level_seconds": 20,
        "service_level_target": 85,
        "wrap_up_seconds": 20,
        "skill": "sales",
    },
]
WRAP_UP_CODES = [
    ("solved", "Risolto al primo contatto", "Solved on first contact"),
    ("info", "Informazioni fornite", "Information given"),
    ("callback", "Da richiamare", "Call back"),
    ("complaint", "Reclamo", "Complaint"),
    ("sale", "Vendita conclusa", "Sale made"),
]
CANNED_REPLIES = [
    (
        "saluto",
        "Greeting",
        "Buongiorno {{customer.first_name}}, sono {{agent.name}}: come posso aiutarla?",
        "Hello {{customer.first_name}}, this is {{agent.name}}: how can I help?",
    ),
    (
        "attesa",
        "Please hold on",
        "Mi conceda un minuto per verificare, grazie.",
        "Give me a minute to check, thank you.",
    ),
    (
        "iban",
        "Change IBAN",
        "Può cambiare l'IBAN dall'area clienti, alla voce Pagamenti: vale dalla prossima fattura.",
        "You can change your IBAN in the customer area under Payments: it applies from the next invoice.",
    ),
    (
        "modem",
        "Restart the modem",
        "Provi a spegnere il modem per 30 secondi e a riaccenderlo: mi dice quali spie sono accese?",
        "Please switch the modem off for 30 seconds and on again: which lights are on?",
    ),
    (
        "chiusura",
        "Closing",
        "Grazie {{customer.first_name}}, buona giornata! Riferimento del contatto: {{interaction.number}}.",
        "Thank you {{customer.first_name}}, have a nice day! Your contact reference: {{interaction.number}}.",
    ),
]
STAFF = [
    "agent@fedele.demo",
    "francesca.ricci@fedele.demo",
    "matteo.esposito@fedele.demo",
    "supervisor@fedele.demo",
]


def load(context: DemoContext) -> None:
    if Interaction.objects.filter(attributes__demo=True).exists():
        return
    rng = random.Random(context.seed + 7)  # noqa: S311  (reproducible demo data, not security)
    admin = context.users.get("admin@fedele.demo")
    actor_id = admin.pk if admin is not None else None
    _skills_and_queues(actor_id)
    agents = _agents(context, actor_id)
    if not agents:
        return
    _wrap_up_codes()
    _canned_replies(actor_id)
    phones = _customer_phones(context)
    now = clock.now()
    total = DAYS * CONTACTS_PER_DAY
    done = 0
    for day_offset in range(DAYS, 0, -1):
        day = (now - timedelta(days=day_offset)).astimezone(ROME).date()
        for index in range(CONTACTS_PER_DAY):
            local = datetime.combine(day, time(9, 0), tzinfo=ROME) + timedelta(
                minutes=int(index * (9 * 60) / CONTACTS_PER_DAY) + rng.randrange(15)
            )
            _one_contact(rng, local.astimezone(ZoneInfo("UTC")), agents, phones)
            done += 1
            context.progress("contact-center contacts", done, total)
    _waiting_now(phones)
    context.counts["contact-center contacts"] = Interaction.objects.filter(attributes__demo=True).count()


def _skills_and_queues(actor_id: int | None) -> None:
    from fedele.contact_center.models import Queue, Skill
    from fedele.contact_center.services.routing_config import queue_save, skill_save

    for code, name_it, name_en in SKILLS:
        if not Skill.objects.filter(code=code).exists():
            skill_save(data={"code": code, "name_it": name_it, "name_en": name_en}, actor_id=actor_id)
    for queue in QUEUES:
        if not Queue.objects.filter(code=queue["code"]).exists():
            queue_save(data={k: v for k, v in queue.items() if k != "skill"}, actor_id=actor_id)


def _agents(context: DemoContext, actor_id: int | None) -> list[Agent]:
    from fedele.contact_center.services.routing_config import agent_profile_set

    agents = []
    for position, email in enumerate(STAFF):
        user = context.users.get(email)
        if user is None:
            continue
        agent, _created = Agent.objects.get_or_create(
            user=user,
            defaults={"display_name": user.get_full_name() or email, "extension": f"{201 + position}"},
        )
        skills = {"billing": 4, "technical": 3, "sales": 2}
        if position % 2:
            skills = {"billing": 2, "technical": 5, "sales": 3}
        agent_profile_set(
            agent=agent,
            skills=skills,
            capacity={"voice": 1, "chat": 3},
            queue_codes=[queue["code"] for queue in QUEUES],
            actor_id=actor_id,
        )
        agents.append(agent)
    return agents


def _wrap_up_codes() -> None:
    for code, name_it, name_en in WRAP_UP_CODES:
        WrapUpCode.objects.get_or_create(code=code, defaults={"name_it": name_it, "name_en": name_en})


def _canned_replies(actor_id: int | None) -> None:
    from fedele.contact_center.models import CannedReply
    from fedele.contact_center.services.desktop import canned_reply_save

    for shortcut, title, body_it, body_en in CANNED_REPLIES:
        if not CannedReply.objects.filter(shortcut=shortcut).exists():
            canned_reply_save(
                shortcut=shortcut, title=title, body_it=body_it, body_en=body_en, actor_id=actor_id
            )


def _customer_phones(context: DemoContext) -> list[str]:
    from fedele.customers.facade import customer_summary

    phones = []
    for public_id in list(context.records.get("customers", []))[:60]:
        summary = customer_summary(str(public_id))
        if summary is not None and summary.phone:
            phones.append(summary.phone)
    return phones or ["+390612345678", "+390298765432", "+393331234567"]


def _one_contact(rng: random.Random, start: datetime, agents: list[Agent], phones: list[str]) -> None:
    from fedele.contact_center.services.interactions import (
        interaction_connect,
        interaction_create,
        interaction_end,
        interaction_enqueue,
        interaction_wrap_up_complete,
    )

    queue = rng.choices(QUEUES, weights=(5, 3, 2))[0]
    channel = Channel.VOICE if rng.random() < 0.75 else Channel.CHAT
    with clock.travel_to(start):
        interaction = interaction_create(
            channel=channel,
            direction=Direction.INBOUND,
            from_address=rng.choice(phones),
            provider="simulator" if channel == Channel.VOICE else "",
            attributes={"demo": True},
            at=start,
        )
        interaction_enqueue(
            interaction=interaction, queue_code=queue["code"], required_skills={queue["skill"]: 1}, at=start
        )
    # Waits: mostly quick, a tail of long ones; a long wait is abandoned one time in three.
    wait = int(rng.expovariate(1 / 14))
    if wait > 45 and rng.random() < 0.35:
        moment = start + timedelta(seconds=wait)
        with clock.travel_to(moment):
            interaction_end(interaction=interaction, outcome=Outcome.ABANDONED, at=moment)
        return
    agent = rng.choice(agents)
    answered = start + timedelta(seconds=wait)
    ended = answered + timedelta(
        seconds=int(rng.gauss(240, 80)) if channel == Channel.VOICE else int(rng.gauss(420, 120))
    )
    ended = max(ended, answered + timedelta(seconds=30))
    wrapped = ended + timedelta(seconds=rng.randrange(10, 60))
    with clock.travel_to(answered):
        interaction_connect(interaction=interaction, agent=agent, at=answered)
    with clock.travel_to(ended):
        interaction_end(interaction=interaction, outcome=Outcome.HANDLED, at=ended)
    with clock.travel_to(wrapped):
        interaction_wrap_up_complete(
            interaction=interaction,
            agent=agent,
            wrap_up_code=rng.choice(WRAP_UP_CODES)[0],
            notes="",
            at=wrapped,
        )


def _waiting_now(phones: list[str]) -> None:
    from fedele.contact_center.services.interactions import interaction_create, interaction_enqueue

    now = clock.now()
    for seconds, phone in ((50, phones[0]), (12, phones[-1])):
        moment = now - timedelta(seconds=seconds)
        interaction = interaction_create(
            channel=Channel.VOICE,
            direction=Direction.INBOUND,
            from_address=phone,
            provider="simulator",
            attributes={"demo": True},
            at=moment,
        )
        interaction_enqueue(interaction=interaction, queue_code="billing", at=moment)
