"""Customer pages: list (filters, sorting, cursor pages, htmx partial, query count), create, detail."""

from __future__ import annotations

import itertools
import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import NoReverseMatch, reverse

from fedele.customers import selectors
from fedele.customers.models import ConsentRecord, Customer, TimelineEntry
from fedele.customers.tests.factories import CompanyFactory, ContactFactory, CustomerFactory
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db

_user_numbers = itertools.count(1)


def user_with_roles(*roles: str, **fields):
    """A user in the role groups, made without importing accounts' internals (module boundaries)."""
    user = get_user_model().objects.create_user(
        f"web-user-{next(_user_numbers)}@example.it", "Correct-Horse-9-Battery", language="en", **fields
    )
    user.groups.set(Group.objects.filter(name__in=roles))
    return user


LIST_URL = "/customers/"
CREATE_URL = "/customers/new/"

VALID_PERSON = {
    "kind": "person",
    "first_name": "Mario",
    "last_name": "Rossi",
    "fiscal_code": "RSSMRA85T10A562S",
    "email": "mario.rossi@example.it",
    "phone": "06 1234 5678",
    "segment": "consumer",
    "language": "it",
    "street": "Via Roma 1",
    "postal_code": "00184",
    "city": "Roma",
    "province": "RM",
    "country": "IT",
}


@pytest.fixture
def agent_client(client):
    client.force_login(user_with_roles("agent"))
    return client


def test_the_list_shows_active_customers_and_the_new_button_for_agents(agent_client):
    CustomerFactory(first_name="Anna", last_name="Verdi", city="Milano")
    CompanyFactory(company_name="Acme S.p.A.")
    CustomerFactory(first_name="Gone", last_name="Away", status="erased")

    response = agent_client.get(LIST_URL)

    assert response.status_code == 200
    body = response.content.decode()
    assert "Anna Verdi" in body
    assert "Acme S.p.A." in body
    assert "Gone Away" not in body
    assert 'id="new-customer-button"' in body
    assert response.context["stats"] == {"total": 2, "companies": 1, "persons": 1}
    assert [c.display_name for c in response.context["page"].items] == ["Acme S.p.A.", "Anna Verdi"]


def test_the_new_button_is_hidden_from_read_only_roles(client):
    client.force_login(user_with_roles("analyst"))

    response = client.get(LIST_URL)

    assert response.status_code == 200
    assert 'id="new-customer-button"' not in response.content.decode()


def test_filters_by_segment_kind_city_and_search(agent_client):
    CustomerFactory(first_name="Anna", last_name="Verdi", city="Milano", segment="consumer")
    CustomerFactory(first_name="Bruno", last_name="Neri", city="Roma", segment="consumer")
    CompanyFactory(company_name="Acme S.p.A.", city="Milano", segment="enterprise")

    def names(**params):
        response = agent_client.get(LIST_URL, params)
        return [c.display_name for c in response.context["page"].items]

    assert names(segment="enterprise") == ["Acme S.p.A."]
    assert names(kind="person") == ["Anna Verdi", "Bruno Neri"]
    assert names(city="milano") == ["Acme S.p.A.", "Anna Verdi"]
    assert names(q="neri") == ["Bruno Neri"]
    assert names(city="Milano", kind="person") == ["Anna Verdi"]


def test_sorting_by_a_column_and_back(agent_client):
    CustomerFactory(first_name="Anna", last_name="A", city="Torino")
    CustomerFactory(first_name="Bruno", last_name="B", city="Bari")

    ascending = agent_client.get(LIST_URL, {"ordering": "city"})
    descending = agent_client.get(LIST_URL, {"ordering": "-city"})
    unknown = agent_client.get(LIST_URL, {"ordering": "password"})

    assert [c.city for c in ascending.context["page"].items] == ["Bari", "Torino"]
    assert [c.city for c in descending.context["page"].items] == ["Torino", "Bari"]
    assert unknown.context["ordering"] == "name"
    assert ascending.context["sort_links"]["city"].direction == "asc"
    assert ascending.context["sort_links"]["city"].query == "ordering=-city"
    assert descending.context["sort_links"]["city"].query == "ordering=city"


def test_cursor_pages_with_a_next_link_keep_the_filters(agent_client):
    for index in range(30):
        CustomerFactory(first_name="Cliente", last_name=f"{index:02d}", city="Roma")

    first = agent_client.get(LIST_URL, {"city": "Roma"})
    next_query = first.context["next_query"]
    second = agent_client.get(f"{LIST_URL}?{next_query}")

    assert len(first.context["page"].items) == 25
    assert 'id="next-page"' in first.content.decode()
    assert next_query.startswith("city=Roma&cursor=")
    assert [c.last_name for c in second.context["page"].items] == ["25", "26", "27", "28", "29"]
    assert second.context["next_query"] == ""
    assert 'id="next-page"' not in second.content.decode()


def test_htmx_requests_for_the_table_get_only_the_table(agent_client):
    CustomerFactory(first_name="Anna", last_name="Verdi")

    response = agent_client.get(LIST_URL, headers={"HX-Request": "true", "HX-Target": "customer-results"})

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="customer-table"' in body
    assert "<html" not in body
    assert "Anna Verdi" in body
    assert "HX-Request" in response["Vary"]


def test_a_history_restore_gets_the_whole_page(agent_client):
    response = agent_client.get(
        LIST_URL,
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true", "HX-Target": "customer-results"},
    )

    assert "<html" in response.content.decode()


def test_the_list_query_count_does_not_grow_with_the_rows(agent_client, django_assert_max_num_queries):
    CustomerFactory.create_batch(3)
    # Session, user, permissions, page, stats, unread notifications, and the role look-ups of the
    # navigation (User.role_names is not cached: see the report to the lead).
    with django_assert_max_num_queries(16) as small_queries:
        small = agent_client.get(LIST_URL)
    CustomerFactory.create_batch(40)
    with django_assert_max_num_queries(16) as large_queries:
        large = agent_client.get(LIST_URL)

    assert small.status_code == large.status_code == 200
    assert len(large.context["page"].items) == 25
    assert len(large_queries) == len(small_queries)


def test_creating_a_person_normalises_codes_and_phone_and_opens_the_detail(agent_client):
    response = agent_client.post(CREATE_URL, VALID_PERSON)

    customer = Customer.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("customers:detail", args=[customer.public_id])
    assert (customer.kind, customer.display_name) == ("person", "Mario Rossi")
    assert customer.phone == "+390612345678"
    assert customer.fiscal_code == "RSSMRA85T10A562S"
    assert customer.company_name == ""
    detail = agent_client.get(response["Location"]).content.decode()
    assert "+390612345678" in detail
    assert customer.number in detail
    assert f"Customer {customer.number} has been created." in detail


def test_company_fields_are_dropped_when_a_person_is_saved(agent_client):
    agent_client.post(CREATE_URL, {**VALID_PERSON, "company_name": "Hidden S.r.l.", "sdi_code": "ABC1234"})

    customer = Customer.objects.get()
    assert (customer.company_name, customer.sdi_code) == ("", "")


def test_creating_a_company(agent_client):
    data = {
        "kind": "company",
        "company_name": "Acme S.p.A.",
        "vat_number": "IT00743110157",
        "pec": "acme@pec.it",
        "sdi_code": "ABC1234",
        "segment": "enterprise",
        "language": "it",
        "country": "IT",
        "first_name": "Ignored",
    }

    response = agent_client.post(CREATE_URL, data)

    assert response.status_code == 302
    customer = Customer.objects.get()
    assert (customer.kind, customer.display_name, customer.vat_number) == (
        "company",
        "Acme S.p.A.",
        "IT00743110157",
    )
    assert customer.first_name == ""


def test_invalid_fields_return_422_with_each_error_under_its_field_and_create_nothing(agent_client):
    data = {
        **VALID_PERSON,
        "fiscal_code": "RSSMRA85T10A562X",
        "phone": "12",
        "postal_code": "123",
        "last_name": "",
    }
    data["first_name"] = ""

    response = agent_client.post(CREATE_URL, data)

    assert response.status_code == 422
    assert Customer.objects.count() == 0
    assert AuditLog.objects.filter(action="customer.created").count() == 0
    form = response.context["form"]
    assert form.errors["fiscal_code"] == ["'RSSMRA85T10A562X' is not a valid Italian fiscal code."]
    assert form.errors["phone"] == ["'12' is not a valid phone number."]
    assert form.errors["postal_code"] == ["An Italian postal code (CAP) has five digits."]
    assert form.errors["last_name"] == ["A person needs a first or last name."]
    assert response.context["error_count"] == 4
    body = response.content.decode()
    assert 'id="id_fiscal_code_errors"' in body
    assert 'aria-invalid="true"' in body
    assert "Please correct the 4 errors below." in body
    assert 'value="RSSMRA85T10A562X"' in body


def test_a_form_level_error_also_returns_422(agent_client):
    response = agent_client.post(CREATE_URL, {**VALID_PERSON, "segment": "galactic"})

    assert response.status_code == 422
    assert Customer.objects.count() == 0
    assert list(response.context["form"].errors) == ["segment"]


def test_a_duplicate_email_is_shown_under_the_email_field(agent_client):
    CustomerFactory(email="mario.rossi@example.it")

    response = agent_client.post(CREATE_URL, VALID_PERSON)

    assert response.status_code == 422
    assert Customer.objects.count() == 1
    assert response.context["form"].errors["email"] == ["Already used by another customer."]


def test_read_only_roles_cannot_open_the_create_form(client):
    client.force_login(user_with_roles("analyst"))

    assert client.get(CREATE_URL).status_code == 403
    assert client.post(CREATE_URL, VALID_PERSON).status_code == 403
    assert Customer.objects.count() == 0


def test_the_detail_shows_identifiers_contacts_consent_and_timeline(agent_client):
    customer = CompanyFactory(company_name="Acme S.p.A.", city="Milano", province="MI", postal_code="20121")
    ContactFactory(customer=customer, first_name="Luca", last_name="Verdi", is_primary=True)
    from django.utils import timezone

    ConsentRecord.objects.create(
        customer=customer,
        channel="email",
        purpose="marketing",
        granted=True,
        source="web",
        recorded_at=timezone.now(),
    )
    ConsentRecord.objects.create(
        customer=customer,
        channel="email",
        purpose="marketing",
        granted=False,
        source="call",
        recorded_at=timezone.now(),
    )
    TimelineEntry.objects.create(
        customer=customer,
        occurred_at=timezone.now(),
        module="billing",
        kind="invoice",
        title="Invoice INV-1 paid",
    )

    response = agent_client.get(reverse("customers:detail", args=[customer.public_id]))

    assert response.status_code == 200
    body = response.content.decode()
    assert customer.number in body
    assert customer.vat_number in body
    assert "20121 Milano (MI)" in body
    assert "Luca Verdi" in body
    assert "Invoice INV-1 paid" in body
    rows = response.context["consent_rows"]
    assert [
        (row.channel, [(c.purpose, c.record.granted if c.record else None) for c in row.cells])
        for row in rows
    ] == [("email", [("service", None), ("marketing", False), ("profiling", None), ("third_party", None)])]
    assert (
        AuditLog.objects.filter(action="customer.pii_viewed", object_id=str(customer.public_id)).count() == 1
    )


def test_agents_get_no_erase_merge_or_export_buttons(agent_client):
    customer = CustomerFactory()

    response = agent_client.get(reverse("customers:detail", args=[customer.public_id]))

    assert response.status_code == 200
    body = response.content.decode()
    assert 'id="action-erase"' not in body
    assert 'id="action-duplicates"' not in body
    assert 'id="action-export"' not in body


def _route_exists(name: str, public_id: object) -> bool:
    try:
        reverse(name, args=[public_id])
    except NoReverseMatch:
        return False
    return True


def test_supervisors_get_each_gdpr_button_whose_route_exists(client):
    client.force_login(user_with_roles("supervisor"))
    customer = CustomerFactory()

    response = client.get(reverse("customers:detail", args=[customer.public_id]))

    assert response.status_code == 200
    body = response.content.decode()
    for name, element in [
        ("customers:gdpr_export", 'id="action-export"'),
        ("customers:duplicates", 'id="action-duplicates"'),
        ("customers:erase", 'id="action-erase"'),
    ]:
        assert (element in body) is _route_exists(name, customer.public_id), name


def test_a_portal_customer_sees_only_their_own_customer(client):
    portal_user = user_with_roles("portal_customer")
    own = CustomerFactory()
    ContactFactory(customer=own, portal_user=portal_user)
    other = CustomerFactory()
    client.force_login(portal_user)

    assert client.get(reverse("customers:detail", args=[own.public_id])).status_code == 200
    refused = client.get(reverse("customers:detail", args=[other.public_id]))
    assert refused.status_code == 404
    assert other.display_name not in refused.content.decode()
    assert client.get(LIST_URL).status_code == 403


def test_a_missing_customer_is_a_404_page(agent_client):
    response = agent_client.get("/customers/00000000-0000-0000-0000-000000000000/")

    assert response.status_code == 404
    assert "Customer not found." in response.content.decode()


def test_customer_count_by_segment_counts_active_customers_per_segment():
    actor_user = user_with_roles("agent")
    from fedele.accounts.facade import actor_for

    CustomerFactory.create_batch(3, segment="consumer")
    CompanyFactory.create_batch(2, segment="enterprise")
    CustomerFactory(segment="consumer", status="erased")

    counts = selectors.customer_count_by_segment(actor_for(actor_user))

    assert counts == {"consumer": 3, "small_business": 0, "enterprise": 2, "public_administration": 0}


def test_the_home_dashboard_shows_counts_and_the_segment_chart(agent_client):
    CustomerFactory.create_batch(3, segment="consumer")
    CompanyFactory.create_batch(2, segment="small_business")

    response = agent_client.get("/")

    assert response.status_code == 200
    body = response.content.decode()
    assert 'data-stat="total">5<' in body
    assert 'data-stat="persons">3<' in body
    assert 'data-stat="companies">2<' in body
    assert 'data-chart="bar"' in body
    assert "vendor/echarts/echarts.min.js" in body
    chart = response.context["widgets"][0].context["segment_chart"]
    assert chart == {
        "labels": ["Consumer", "Small business", "Enterprise", "Public administration"],
        "values": [3, 2, 0, 0],
    }
    start = body.index('<script id="segment-chart-data" type="application/json">') + len(
        '<script id="segment-chart-data" type="application/json">'
    )
    assert json.loads(body[start : body.index("</script>", start)]) == chart


def test_global_search_finds_customers_as_a_partial_for_htmx(agent_client):
    CustomerFactory(first_name="Anna", last_name="Verdi", city="Milano")
    CustomerFactory(first_name="Bruno", last_name="Neri")

    partial = agent_client.get("/search/", {"q": "verdi"}, headers={"HX-Request": "true"})
    page = agent_client.get("/search/", {"q": "verdi"})
    short = agent_client.get("/search/", {"q": "v"}, headers={"HX-Request": "true"})

    assert partial.status_code == 200
    assert "<html" not in partial.content.decode()
    assert "Anna Verdi" in partial.content.decode()
    assert "Bruno Neri" not in partial.content.decode()
    assert [hit.title for hit in page.context["results"]] == ["Anna Verdi"]
    assert "<html" in page.content.decode()
    assert "Type at least 2 characters." in short.content.decode()
