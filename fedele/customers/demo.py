"""Demo customers: Italian persons and companies with valid codes, contacts, consent and a portal login."""

from __future__ import annotations

import random

from fedele.accounts.facade import actor_for, create_portal_user
from fedele.customers.contracts import ConsentChannel, ConsentPurpose
from fedele.customers.models import Contact, Customer
from fedele.customers.services.contacts import consent_record, contact_create, contact_link_portal_user
from fedele.customers.services.customers import customer_assign_partner, customer_create
from fedele.shared.demo import DEMO_PASSWORD, DemoContext

PORTAL_EMAIL = "cliente@fedele.demo"
SEGMENT_WEIGHTS = {"consumer": 70, "small_business": 20, "enterprise": 7, "public_administration": 3}


def _phone(faker: object, rng: random.Random) -> str:
    # Mobile numbers (3xx) are the usual contact for Italian customers and always parse as valid.
    return f"+39 3{rng.randint(20, 99)} {rng.randint(1000000, 9999999)}"


def load(context: DemoContext) -> None:
    faker = context.faker
    rng = random.Random(context.seed)  # noqa: S311  (reproducible demo data, not security)
    admin = actor_for(context.users["admin@fedele.demo"])
    total = int(context.options.get("customers", 500))
    partner_id = context.options.get("partner_organisation_id")
    created = 0
    made: list[str] = context.records.setdefault("customers", [])
    segments = list(SEGMENT_WEIGHTS)
    weights = list(SEGMENT_WEIGHTS.values())
    for index in range(total):
        segment = rng.choices(segments, weights)[0]
        is_company = segment != "consumer"
        email = f"{faker.user_name()}.{index}@{faker.free_email_domain()}"
        data: dict[str, object] = {
            "kind": "company" if is_company else "person",
            "email": email,
            "phone": _phone(faker, rng),
            "segment": segment,
            "language": "it" if rng.random() < 0.9 else "en",
            "street": faker.street_address()[:200],
            "postal_code": faker.postcode(),
            "city": faker.city(),
            "province": faker.state_abbr(),
            "country": "IT",
        }
        if is_company:
            data["company_name"] = faker.company()
            data["vat_number"] = faker.company_vat()
            data["pec"] = f"amministrazione.{index}@pec.example.it"
            data["sdi_code"] = "".join(rng.choices("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789", k=7))
        else:
            data["first_name"] = faker.first_name()
            data["last_name"] = faker.last_name()
            data["fiscal_code"] = faker.ssn()
        customer = customer_create(actor=admin, data=data, source="demo")
        made.append(str(customer.public_id))
        if partner_id and index % 25 == 0:
            customer_assign_partner(
                actor=admin, customer_public_id=str(customer.public_id), organisation_id=partner_id
            )
        if is_company:
            contact_create(
                actor=admin,
                customer_public_id=str(customer.public_id),
                data={
                    "first_name": faker.first_name(),
                    "last_name": faker.last_name(),
                    "job_title": rng.choice(
                        ["Amministrazione", "Responsabile acquisti", "IT manager", "Titolare"]
                    ),
                    "email": f"referente.{index}@example.it",
                    "mobile": _phone(faker, rng),
                },
            )
        if rng.random() < 0.6:
            consent_record(
                actor=admin,
                customer_public_id=str(customer.public_id),
                channel=ConsentChannel.EMAIL.value,
                purpose=ConsentPurpose.MARKETING.value,
                granted=rng.random() < 0.7,
                source="web form",
            )
        created += 1
        if index % 10 == 0 or index == total - 1:
            context.progress("customers", index + 1, total)
    _portal_login(context)
    context.counts["customers"] = created


def _portal_login(context: DemoContext) -> None:
    """One customer who can sign in to the self-service pages."""
    if Contact.objects.filter(portal_user__email=PORTAL_EMAIL).exists():
        return
    customer = Customer.objects.filter(kind="person", status="active").order_by("id").first()
    if customer is None:
        return
    context.records["portal_customer"] = str(customer.public_id)
    admin = actor_for(context.users["admin@fedele.demo"])
    contact = contact_create(
        actor=admin,
        customer_public_id=str(customer.public_id),
        data={
            "first_name": customer.first_name,
            "last_name": customer.last_name,
            "email": PORTAL_EMAIL,
        },
    )
    user_id = create_portal_user(
        email=PORTAL_EMAIL,
        password=DEMO_PASSWORD,
        first_name=customer.first_name,
        last_name=customer.last_name,
        validate_strength=False,
    )
    contact_link_portal_user(actor=admin, contact_public_id=str(contact.public_id), user_id=user_id)
