"""Loyalty demo data: the programme "club-fedele" (Club Fedele, punti/points, a point is worth €0.01,
24-month rolling expiry, 14-day return window) with Bronze/Silver/Gold, its earning rules and a
bonus campaign, a rewards catalogue, two coalition partners, and about six months of member history.

Everything goes through the real services at the time it happens (``clock.travel_to``): members enrol
(the sign-up rule awards their welcome points), buy in the shop and at partners (pending for 14 days,
then matured by the ledger job), climb tiers when they cross a threshold, redeem vouchers and
donations, and a few purchases are refunded. Idempotent: nothing is added once the programme exists.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from fedele.accounts.facade import Actor, actor_for
from fedele.loyalty.models import Member, Partner, Programme, Reward
from fedele.shared import clock
from fedele.shared.demo import DEMO_PASSWORD, DemoContext, register_login
from fedele.shared.errors import ApplicationError

PROGRAMME_CODE = "club-fedele"
HISTORY_DAYS = 182
MEMBERS = 32
# (share of members, purchases per week, purchase amount range in EUR)
PROFILES = {
    "heavy": (0.1, 1.2, (170, 380)),
    "regular": (0.4, 0.4, (30, 120)),
    "occasional": (0.5, 0.15, (15, 70)),
}


@dataclass
class DemoMember:
    member: Member
    profile: str
    joined: datetime
    redeemed: int = 0
    purchases: list[str] = field(default_factory=list)


def load(context: DemoContext) -> None:
    if Programme.objects.filter(code=PROGRAMME_CODE).exists():
        return
    rng = random.Random(context.seed + 150)  # noqa: S311  (reproducible demo data, not security)
    admin_user = context.users.get("admin@fedele.demo")
    actor = actor_for(admin_user) if admin_user is not None else None
    now = clock.now()
    start = now - timedelta(days=HISTORY_DAYS)
    with clock.travel_to(start - timedelta(days=7)):
        programme = _programme(actor)
        _rules(actor, programme, start, now)
        rewards = _rewards(actor, programme)
        partners = _partners(actor, programme)
    customers: list[str] = list(context.records.get("customers", []))
    portal_customer = context.records.get("portal_customer")
    if portal_customer and portal_customer in customers:
        customers.remove(portal_customer)
    chosen = ([portal_customer] if portal_customer else []) + rng.sample(
        customers, min(len(customers), MEMBERS - (1 if portal_customer else 0))
    )
    joins = sorted(start + timedelta(days=rng.uniform(0, 60), hours=rng.uniform(8, 11)) for _ in chosen)
    if portal_customer:
        joins[0] = start + timedelta(hours=9)
    people: list[DemoMember] = []
    _history(context, rng, actor, programme, rewards, partners, list(zip(chosen, joins, strict=True)), people)
    context.counts["loyalty members"] = len(people)
    context.counts["loyalty transactions"] = sum(1 for _ in _transactions(programme))
    context.records["loyalty_programme"] = programme.code


def _transactions(programme: Programme) -> Any:
    from fedele.loyalty.models import PointsTransaction

    return PointsTransaction.objects.filter(programme=programme).values_list("id", flat=True).iterator()


def _programme(actor: Actor | None) -> Programme:
    from fedele.loyalty.services.programmes import programme_create, programme_set_status, tier_create

    programme = programme_create(
        actor=actor,
        data={
            "code": PROGRAMME_CODE,
            "name_it": "Club Fedele",
            "name_en": "Fedele Club",
            "currency_name_it": "punti",
            "currency_name_en": "points",
            "point_value": "0.01",
            "points_per_euro": "1",
            "rounding": "down",
            "expiry_policy": "rolling_months",
            "expiry_months": 24,
            "pending_days": 14,
            "tier_metric": "qualifying_points",
            "tier_window": "rolling_12_months",
            "is_coalition": True,
        },
    )
    for data in (
        {"code": "bronze", "name_it": "Bronzo", "name_en": "Bronze", "threshold": "0", "color": "#b08d57"},
        {
            "code": "silver",
            "name_it": "Argento",
            "name_en": "Silver",
            "threshold": "1000",
            "earn_multiplier": "1.25",
            "support_priority": 1,
            "benefits": ["free_shipping"],
            "color": "#9ea7b0",
        },
        {
            "code": "gold",
            "name_it": "Oro",
            "name_en": "Gold",
            "threshold": "5000",
            "earn_multiplier": "1.5",
            "support_priority": 3,
            "benefits": ["free_shipping", "priority_support", "early_access"],
            "color": "#d4a017",
        },
    ):
        tier_create(actor=actor, programme=programme, data=data)
    return programme_set_status(actor=actor, programme=programme, status="active")


def _rules(actor: Actor | None, programme: Programme, start: datetime, now: datetime) -> None:
    from fedele.loyalty.services.campaigns import campaign_create, campaign_set_status
    from fedele.loyalty.services.rules import rule_create

    base = {"status": "active"}
    rule_create(
        actor=actor,
        programme=programme,
        data={
            **base,
            "code": "spesa",
            "name_it": "1 punto per euro",
            "name_en": "1 point per euro",
            "event_type": "spend",
            "points_per_euro": "1",
        },
    )
    rule_create(
        actor=actor,
        programme=programme,
        data={
            **base,
            "code": "benvenuto",
            "name_it": "Benvenuto nel club",
            "name_en": "Welcome to the club",
            "event_type": "sign_up",
            "fixed_points": 100,
            "qualifying": False,
        },
    )
    rule_create(
        actor=actor,
        programme=programme,
        data={
            **base,
            "code": "compleanno",
            "name_it": "Buon compleanno",
            "name_en": "Happy birthday",
            "event_type": "birthday",
            "fixed_points": 200,
            "qualifying": False,
        },
    )
    rule_create(
        actor=actor,
        programme=programme,
        data={
            **base,
            "code": "recensione",
            "name_it": "Recensione di un prodotto",
            "name_en": "Product review",
            "event_type": "review",
            "fixed_points": 50,
            "qualifying": False,
            "cap_per_member_per_day": 50,
        },
    )
    # A time-boxed double-points campaign, two months into the history, with a 10% holdout group.
    campaign_start = start + timedelta(days=70)
    campaign = campaign_create(
        actor=actor,
        programme=programme,
        data={
            "code": "primavera-x2",
            "name_it": "Punti doppi di primavera",
            "name_en": "Spring double points",
            "starts_at": campaign_start,
            "ends_at": campaign_start + timedelta(days=21),
            "holdout_percent": 10,
        },
    )
    campaign_set_status(actor=actor, campaign=campaign, status="active")
    rule_create(
        actor=actor,
        programme=programme,
        data={
            **base,
            "code": "primavera-doppi",
            "name_it": "Punti doppi",
            "name_en": "Double points",
            "event_type": "spend",
            "multiplier": "2",
            "points_per_euro": "0",
            "campaign": str(campaign.public_id),
            "valid_from": campaign.starts_at,
            "valid_until": campaign.ends_at,
        },
    )


def _rewards(actor: Actor | None, programme: Programme) -> dict[str, Reward]:
    from fedele.loyalty.services.rewards import reward_create, voucher_codes_generate

    catalogue = [
        {
            "code": "buono-10",
            "kind": "voucher",
            "name_it": "Buono sconto 10 €",
            "name_en": "€10 voucher",
            "description_it": "Un codice da usare nel negozio online.",
            "description_en": "A code to use in the online shop.",
            "points_cost": 1000,
        },
        {
            "code": "buono-25",
            "kind": "voucher",
            "name_it": "Buono sconto 25 €",
            "name_en": "€25 voucher",
            "points_cost": 2400,
            "eligible_tiers": ["silver", "gold"],
        },
        {
            "code": "borraccia",
            "kind": "physical",
            "name_it": "Borraccia termica",
            "name_en": "Thermal bottle",
            "points_cost": 1800,
            "stock": 40,
            "per_member_limit": 2,
        },
        {
            "code": "dona-alberi",
            "kind": "donation",
            "name_it": "Pianta un albero",
            "name_en": "Plant a tree",
            "charity_name": "Rete Clima",
            "points_cost": 500,
        },
        {
            "code": "lounge",
            "kind": "physical",
            "name_it": "Accesso lounge evento",
            "name_en": "Event lounge pass",
            "points_cost": 3000,
            "stock": 10,
            "eligible_tiers": ["gold"],
        },
    ]
    rewards = {}
    for position, data in enumerate(catalogue):
        rewards[str(data["code"])] = reward_create(
            actor=actor, programme=programme, data={**data, "position": position}
        )
    for code, prefix in (("buono-10", "FED10-"), ("buono-25", "FED25-")):
        voucher_codes_generate(actor=actor, reward=rewards[code], count=60, prefix=prefix, length=8)
    return rewards


def _partners(actor: Actor | None, programme: Programme) -> list[Partner]:
    from fedele.loyalty.services.partners import partner_create, partner_user_add

    partners = [
        partner_create(
            actor=actor,
            programme=programme,
            data={
                "code": "carburanti",
                "name": "Stazioni Rapide S.r.l.",
                "category": "fuel",
                "earn_price_per_point": "0.008",
                "burn_price_per_point": "0.007",
                "contact_email": "loyalty@stazionirapide.example",
            },
        ),
        partner_create(
            actor=actor,
            programme=programme,
            data={
                "code": "libreria",
                "name": "Libreria del Corso",
                "category": "books",
                "earn_price_per_point": "0.009",
                "burn_price_per_point": "0.008",
                "contact_email": "cassa@libreriadelcorso.example",
            },
        ),
    ]
    # The bookshop's cashier signs in to the partner portal (/partner/) with the demo password.
    partner_user_add(
        actor=actor,
        partner=partners[1],
        email=PARTNER_LOGIN,
        first_name="Giulia",
        last_name="Conti",
        password=DEMO_PASSWORD,
    )
    register_login(PARTNER_LOGIN, "loyalty partner staff (Libreria del Corso, portal at /partner/)")
    return partners


PARTNER_LOGIN = "libreria@fedele.demo"


def _profile(rng: random.Random, index: int) -> str:
    if index == 0:
        return "heavy"  # the portal customer (or the first member) shows a full tier ladder
    roll = rng.random()
    cumulative = 0.0
    for name, (share, _rate, _amounts) in PROFILES.items():
        cumulative += share
        if roll < cumulative:
            return name
    return "occasional"


def _history(
    context: DemoContext,
    rng: random.Random,
    actor: Actor | None,
    programme: Programme,
    rewards: dict[str, Reward],
    partners: list[Partner],
    joins: list[tuple[str, datetime]],
    people: list[DemoMember],
) -> None:
    from fedele.loyalty.services.ledger import lots_mature_due
    from fedele.loyalty.services.members import member_enrol

    pending = list(joins)
    now = clock.now()
    first_day = joins[0][1].replace(hour=0, minute=0, second=0, microsecond=0)
    days = (now - first_day).days
    for offset in range(days + 1):
        day = first_day + timedelta(days=offset)
        while pending and pending[0][1] < day + timedelta(days=1):
            customer, joined = pending.pop(0)
            with clock.travel_to(joined):
                birthday = None
                if rng.random() < 0.6:
                    birthday = date(1960 + rng.randrange(45), 1 + rng.randrange(12), 1 + rng.randrange(28))
                member = member_enrol(
                    actor=actor,
                    programme=programme,
                    customer_public_id=customer,
                    channel="demo",
                    birthday=birthday,
                )
            people.append(DemoMember(member, _profile(rng, len(people)), joined))
        for person in people:
            if person.joined > day:
                continue
            _day_of(rng, actor, programme, rewards, partners, person, day, now)
        if offset % 7 == 6:
            moment = min(day + timedelta(hours=23), now)
            with clock.travel_to(moment):
                lots_mature_due(now=moment, programme=programme)
        context.progress("loyalty history", offset + 1, days + 1)
    lots_mature_due(now=clock.now(), programme=programme)


def _day_of(
    rng: random.Random,
    actor: Actor | None,
    programme: Programme,
    rewards: dict[str, Reward],
    partners: list[Partner],
    person: DemoMember,
    day: datetime,
    now: datetime,
) -> None:
    from fedele.loyalty.services.rules import event_record

    _share, per_week, (low, high) = PROFILES[person.profile]
    moment = day + timedelta(hours=rng.uniform(9, 20))
    if moment >= now:
        return
    member = person.member
    if rng.random() < per_week / 7:
        reference = f"ORD-{moment:%y%m%d}-{member.pk:04d}-{len(person.purchases)}"
        amount = Decimal(rng.randint(low * 100, high * 100)) / 100
        with clock.travel_to(moment):
            event_record(
                actor=actor,
                programme=programme,
                member=member,
                event_type="spend",
                source="shop",
                external_id=reference,
                amount_eur=amount,
                channel="online" if rng.random() < 0.6 else "store",
                reference=reference,
            )
            person.purchases.append(reference)
            if rng.random() < 0.04:
                _refund(actor, programme, reference, amount, rng)
    elif rng.random() < per_week / 25:
        _partner_visit(rng, actor, partners, member, moment)
    elif rng.random() < 0.004:
        with clock.travel_to(moment):
            event_record(
                actor=actor,
                programme=programme,
                member=member,
                event_type="review",
                source="shop",
                external_id=f"REV-{member.pk}-{moment:%y%m%d}",
            )
    if rng.random() < 0.03:
        _redeem(rng, actor, rewards, person, moment)


def _refund(
    actor: Actor | None, programme: Programme, reference: str, amount: Decimal, rng: random.Random
) -> None:
    from fedele.loyalty.services.ledger import purchase_refund

    partial = rng.random() < 0.5
    refund = (amount / 2).quantize(Decimal("0.01")) if partial else None
    try:
        purchase_refund(
            actor=actor,
            programme=programme,
            reference=reference,
            refund_eur=refund,
            idempotency_key=f"demo-refund-{reference}",
        )
    except ApplicationError:
        # A purchase whose rules awarded nothing has nothing to refund: that is fine in a demo.
        return


def _partner_visit(
    rng: random.Random, actor: Actor | None, partners: list[Partner], member: Member, moment: datetime
) -> None:
    from fedele.loyalty.services.partners import partner_burn, partner_earn

    partner = rng.choice(partners)
    with clock.travel_to(moment):
        member.refresh_from_db(fields=["available"])
        if member.available >= 300 and rng.random() < 0.25:
            partner_burn(
                actor=actor,
                partner=partner,
                card_number=member.card_number,
                points=200,
                external_id=f"B-{member.pk}-{moment:%y%m%d%H%M}",
            )
            return
        partner_earn(
            actor=actor,
            partner=partner,
            card_number=member.card_number,
            external_id=f"E-{member.pk}-{moment:%y%m%d%H%M}",
            amount_eur=Decimal(rng.randint(2000, 9000)) / 100,
            occurred_at=moment,
        )


def _redeem(
    rng: random.Random, actor: Actor | None, rewards: dict[str, Reward], person: DemoMember, moment: datetime
) -> None:
    from fedele.loyalty.services.rewards import reward_redeem

    member = person.member
    member.refresh_from_db(fields=["available", "tier"])
    choices = ["dona-alberi", "buono-10"]
    if member.tier is not None and member.tier.code in ("silver", "gold"):
        choices.append("buono-25")
    reward = rewards[rng.choice(choices)]
    if member.available < reward.points_cost:
        return
    with clock.travel_to(moment + timedelta(minutes=5)):
        try:
            reward_redeem(
                actor=actor,
                member=member,
                reward=reward,
                idempotency_key=f"demo-{member.pk}-{person.redeemed}",
            )
        except ApplicationError:
            return
    person.redeemed += 1
