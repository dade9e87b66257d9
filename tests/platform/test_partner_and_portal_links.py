"""Handing customers to partners and linking portal logins go through audited services."""

from __future__ import annotations

import pytest

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import OrganisationFactory, user_with_roles
from fedele.customers.selectors import customer_queryset_for
from fedele.customers.services.contacts import contact_link_portal_user
from fedele.customers.services.customers import customer_assign_partner
from fedele.customers.tests.factories import ContactFactory, CustomerFactory
from fedele.shared.errors import Conflict, NotFound
from fedele.shared.models import AuditLog


@pytest.mark.django_db
def test_partner_sees_a_customer_only_once_it_is_assigned_and_the_change_is_audited() -> None:
    organisation = OrganisationFactory()
    partner = actor_for(user_with_roles("partner", organisation=organisation))
    admin = actor_for(user_with_roles("admin"))
    customer = CustomerFactory()
    assert not customer_queryset_for(partner).filter(pk=customer.pk).exists()

    customer_assign_partner(
        actor=admin, customer_public_id=str(customer.public_id), organisation_id=organisation.pk
    )
    assert list(customer_queryset_for(partner).values_list("pk", flat=True)) == [customer.pk]
    row = AuditLog.objects.get(action="customer.partner_assigned")
    assert (row.before, row.after) == ({"managed_by": None}, {"managed_by": organisation.pk})

    customer_assign_partner(
        actor=admin, customer_public_id=str(customer.public_id), organisation_id=organisation.pk
    )
    assert AuditLog.objects.filter(action="customer.partner_assigned").count() == 1  # no change, no row
    with pytest.raises(NotFound):
        customer_assign_partner(
            actor=partner, customer_public_id=str(CustomerFactory().public_id), organisation_id=None
        )


@pytest.mark.django_db
def test_a_portal_login_belongs_to_one_contact_only() -> None:
    admin = actor_for(user_with_roles("admin"))
    login = user_with_roles("portal_customer")
    first = ContactFactory()
    second = ContactFactory()
    contact_link_portal_user(actor=admin, contact_public_id=str(first.public_id), user_id=login.pk)
    first.refresh_from_db()
    assert first.portal_user_id == login.pk
    with pytest.raises(Conflict) as caught:
        contact_link_portal_user(actor=admin, contact_public_id=str(second.public_id), user_id=login.pk)
    assert caught.value.code == "login_in_use"
    second.refresh_from_db()
    assert second.portal_user_id is None
    assert AuditLog.objects.filter(action="contact.portal_login_linked").count() == 1
