"""Demo staff: one user per role, a partner organisation with its user, a team."""

from __future__ import annotations

from fedele.accounts import services
from fedele.accounts.contracts import OrganisationKind, Role
from fedele.accounts.models import Organisation, User
from fedele.shared.demo import DEMO_PASSWORD, DemoContext

DEMO_USERS: list[tuple[str, list[str], str, str]] = [
    ("admin@fedele.demo", [Role.ADMIN.value], "Alessandra", "Conti"),
    ("supervisor@fedele.demo", [Role.SUPERVISOR.value], "Marco", "Ferrari"),
    ("agent@fedele.demo", [Role.AGENT.value], "Giulia", "Romano"),
    ("billing@fedele.demo", [Role.BILLING_CLERK.value], "Paolo", "Greco"),
    ("loyalty@fedele.demo", [Role.LOYALTY_MANAGER.value], "Chiara", "Bruno"),
    ("technician@fedele.demo", [Role.TECHNICIAN.value], "Luca", "Gallo"),
    ("dispatcher@fedele.demo", [Role.DISPATCHER.value], "Sara", "Costa"),
    ("analyst@fedele.demo", [Role.ANALYST.value], "Davide", "Fontana"),
    ("partner@fedele.demo", [Role.PARTNER.value], "Roberto", "Moretti"),
]


def load(context: DemoContext) -> None:
    services.roles_sync()
    partner = Organisation.objects.filter(
        name="Negozi Elettra S.r.l."
    ).first() or services.organisation_create(
        name="Negozi Elettra S.r.l.", kind=OrganisationKind.PARTNER.value
    )
    for index, (email, roles, first_name, last_name) in enumerate(DEMO_USERS, start=1):
        user = User.objects.filter(email=email).first()
        if user is None:
            user = services.user_create(
                email=email,
                password=DEMO_PASSWORD,
                roles=roles,
                first_name=first_name,
                last_name=last_name,
                language="it",
                organisation=partner if Role.PARTNER.value in roles else None,
                validate_strength=False,
            )
        context.users[email] = user
        context.progress("staff", index, len(DEMO_USERS))
    if not services.Team.objects.filter(name="Customer care").exists():
        services.team_create(
            name="Customer care",
            member_ids=[context.users["agent@fedele.demo"].pk, context.users["supervisor@fedele.demo"].pk],
        )
    context.options["partner_organisation_id"] = partner.pk
    context.counts["users"] = len(DEMO_USERS)
