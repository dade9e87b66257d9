"""Campaign set-up, contact-list imports (CSV and XLSX, line-numbered errors, all-or-none or good
rows), the internal do-not-call list, the RPO import and the consent override."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

import pytest
from openpyxl import Workbook

from fedele.contact_center.models import (
    Campaign,
    CampaignContact,
    CampaignWindow,
    ContactList,
    ContactState,
    DoNotCallEntry,
    RetryRule,
    RpoImportBatch,
)
from fedele.contact_center.services import dialer as services
from fedele.contact_center.services import dialer_lists
from fedele.contact_center.services.dialer_lists import block_reasons
from fedele.contact_center.tests.dialer_support import (
    TUESDAY_NOON,
    agent_actor,
    campaign,
    import_numbers,
    queue_with_agents,
    supervisor,
)
from fedele.customers.tests.factories import ConsentRecordFactory, CustomerFactory
from fedele.shared.errors import Conflict, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog

pytestmark = pytest.mark.django_db


def test_a_new_campaign_has_the_default_windows_and_retry_rules() -> None:
    actor = supervisor()
    queue, _agents = queue_with_agents(0)
    created = campaign(actor, queue, caller_id="06 1234 5678")
    assert (created.state, created.mode, created.caller_id) == ("draft", "progressive", "+390612345678")
    assert created.target_abandon_rate == Decimal("0.0150")
    windows = [(w.weekday, w.start_time, w.end_time) for w in CampaignWindow.objects.filter(campaign=created)]
    assert windows == [*((d, time(9), time(20)) for d in range(5)), (5, time(10), time(14))]
    rules = {
        r.outcome: (r.delay_minutes, r.next_day, r.max_attempts)
        for r in RetryRule.objects.filter(campaign=created)
    }
    assert rules == {
        "busy": (30, False, 0),
        "no_answer": (120, False, 0),
        "machine": (0, True, 3),
        "abandoned": (0, False, 0),
        "failed": (60, False, 2),
    }
    assert AuditLog.objects.filter(action="contact_center.campaign_created").count() == 1


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"code": "bad code!"}, "code"),
        ({"queue_code": "nowhere"}, "queue"),
        ({"target_abandon_rate": "0.05"}, "target_abandon_rate"),
        ({"target_abandon_rate": "0"}, "target_abandon_rate"),
        ({"target_abandon_rate": "lots"}, "target_abandon_rate"),
        ({"mode": "turbo"}, "mode"),
        ({"max_attempts": 0}, "max_attempts"),
        ({"caller_id": "12"}, "caller_id"),
        ({"windows": [(0, time(9), time(12)), (0, time(11), time(13))]}, "windows.day0"),
        ({"windows": [(7, time(9), time(12))]}, "windows.0"),
        ({"windows": [(1, time(12), time(9))]}, "windows.0"),
    ],
)
def test_bad_campaign_settings_write_nothing(options: dict[str, object], field: str) -> None:
    actor = supervisor()
    queue, _agents = queue_with_agents(0)
    with pytest.raises(ValidationFailed) as error:
        campaign(actor, queue, **options)
    assert field in error.value.fields
    assert (Campaign.objects.count(), CampaignWindow.objects.count(), RetryRule.objects.count()) == (0, 0, 0)


def test_agents_cannot_create_campaigns_and_codes_are_unique() -> None:
    queue, _agents = queue_with_agents(0)
    with pytest.raises(PermissionDenied):
        campaign(agent_actor(), queue)
    campaign(supervisor(), queue)
    with pytest.raises(ValidationFailed) as error:
        campaign(supervisor(), queue)
    assert "code" in error.value.fields


def test_state_changes_follow_the_rules() -> None:
    actor = supervisor()
    queue, _agents = queue_with_agents(0)
    target = campaign(actor, queue)
    assert services.campaign_state_set(actor=actor, campaign=target, state="running").state == "running"
    assert services.campaign_state_set(actor=actor, campaign=target, state="paused").state == "paused"
    assert services.campaign_state_set(actor=actor, campaign=target, state="finished").state == "finished"
    with pytest.raises(Conflict):
        services.campaign_state_set(actor=actor, campaign=target, state="running")
    empty = campaign(actor, queue, code="nowin", windows=[])
    with pytest.raises(ValidationFailed):
        services.campaign_state_set(actor=actor, campaign=empty, state="running")
    assert Campaign.objects.get(pk=empty.pk).state == "draft"


# -- contact lists ---------------------------------------------------------------------------------

BAD_CSV = (
    "Telefono;Nome;Codice;Città\n"  # line 1: header (semicolons, Italian names)
    "333 123 4567;Anna;A1;Roma\n"  # 2
    "12;Bruno;B2;Milano\n"  # 3: not a number
    "+39 333 1234567;Anna again;A1;Roma\n"  # 4: duplicate of line 2
    ";Carla;C3;Napoli\n"  # 5: empty number
    "+44 20 7946 0018;David;D4;London\n"  # 6
    "\n"  # 7: blank, ignored
)


def test_all_or_none_reports_every_bad_line_and_writes_nothing() -> None:
    actor = supervisor()
    queue, _agents = queue_with_agents(0)
    target = campaign(actor, queue)
    with pytest.raises(ValidationFailed) as error:
        dialer_lists.contact_list_import(actor=actor, campaign=target, name="a.csv", content=BAD_CSV.encode())
    assert error.value.code == "import_rows_invalid"
    assert sorted(error.value.fields) == ["line 3", "line 5"]
    assert error.value.fields["line 3"] == ["'12' is not a valid phone number."]
    assert error.value.fields["line 5"] == ["The phone number is empty."]
    assert (ContactList.objects.count(), CampaignContact.objects.count()) == (0, 0)


def test_good_rows_imports_the_rest_normalised_with_time_zones() -> None:
    actor = supervisor()
    queue, _agents = queue_with_agents(0)
    target = campaign(actor, queue)
    report = dialer_lists.contact_list_import(
        actor=actor,
        campaign=target,
        name="a.csv",
        content=BAD_CSV.encode(),
        mode="good_rows",
        at=TUESDAY_NOON,
    )
    assert (report.rows_total, report.imported, report.duplicates, report.blocked) == (5, 2, 1, 0)
    assert report.errors == [(3, "'12' is not a valid phone number."), (5, "The phone number is empty.")]
    rows = list(
        CampaignContact.objects.order_by("id").values_list(
            "phone", "region", "time_zone", "name", "external_ref", "data", "state"
        )
    )
    assert rows == [
        ("+393331234567", "IT", "Europe/Rome", "Anna", "A1", {"Città": "Roma"}, "pending"),
        ("+442079460018", "GB", "Europe/London", "David", "D4", {"Città": "London"}, "pending"),
    ]
    stored = ContactList.objects.get()
    assert (stored.rows_imported, stored.rows_invalid, stored.errors) == (
        2,
        2,
        [[3, "'12' is not a valid phone number."], [5, "The phone number is empty."]],
    )
    # The same file again: everything is a duplicate now.
    again = dialer_lists.contact_list_import(
        actor=actor, campaign=target, name="a.csv", content=BAD_CSV.encode(), mode="good_rows"
    )
    assert (again.imported, again.duplicates) == (0, 3)
    assert CampaignContact.objects.count() == 2


def test_xlsx_import_reads_numbers_typed_as_numbers() -> None:
    actor = supervisor()
    queue, _agents = queue_with_agents(0)
    target = campaign(actor, queue)
    book = Workbook()
    sheet = book.active
    sheet.append(["Numero", "Nome"])
    sheet.append([3331234567, "Anna"])  # Excel keeps it as a number
    sheet.append(["+39 02 1234 5678", "Bruno"])
    sheet.append(["nope", "Carla"])
    buffer = io.BytesIO()
    book.save(buffer)
    report = dialer_lists.contact_list_import(
        actor=actor,
        campaign=target,
        name="a.xlsx",
        content=buffer.getvalue(),
        file_format="xlsx",
        mode="good_rows",
    )
    assert (report.imported, report.errors) == (2, [(4, "'nope' is not a phone number.")])
    assert sorted(CampaignContact.objects.values_list("phone", flat=True)) == [
        "+390212345678",
        "+393331234567",
    ]


@pytest.mark.parametrize(
    ("content", "file_format", "code"),
    [
        (b"", "csv", "invalid_import"),
        (b"name,city\nAnna,Roma\n", "csv", "missing_phone_column"),
        (b"not a zip", "xlsx", "invalid_xlsx"),
        (b"phone\n", "csv", "empty_import"),
        (b"", "xlsx", "invalid_import"),
        (b"phone\n" + b"3" * 140_000, "csv", "invalid_csv"),  # a field over the CSV limit
        (b"phone\n3331234567\n", "pdf", "invalid_import"),
    ],
)
def test_unreadable_files_are_refused(content: bytes, file_format: str, code: str) -> None:
    actor = supervisor()
    queue, _agents = queue_with_agents(0)
    target = campaign(actor, queue)
    with pytest.raises(ValidationFailed) as error:
        dialer_lists.contact_list_import(
            actor=actor, campaign=target, name="x", content=content, file_format=file_format
        )
    assert error.value.code == code
    assert CampaignContact.objects.count() == 0


# -- do-not-call -----------------------------------------------------------------------------------


def test_internal_list_blocks_at_import_and_blocks_waiting_contacts() -> None:
    actor = supervisor()
    queue, _agents = queue_with_agents(0)
    target = campaign(actor, queue)
    dialer_lists.dnc_add(actor=actor, phone="333 000 0001", reason="asked on a call")
    report = import_numbers(actor, target, ["3330000001", "3330000002"])
    assert (report.imported, report.blocked) == (1, 1)
    blocked = CampaignContact.objects.get(phone="+393330000001")
    assert (blocked.state, blocked.blocked_reason) == ("blocked", "internal_dnc")
    # Added later: the waiting contact is blocked at once; adding twice changes nothing.
    dialer_lists.dnc_add(actor=actor, phone="+393330000002")
    dialer_lists.dnc_add(actor=actor, phone="+39 333 000 0002")
    assert DoNotCallEntry.objects.filter(source="internal").count() == 2
    assert CampaignContact.objects.get(phone="+393330000002").state == "blocked"
    dialer_lists.dnc_remove(actor=actor, phone="3330000002")
    assert CampaignContact.objects.get(phone="+393330000002").state == "blocked"  # re-opening is deliberate
    with pytest.raises(ValidationFailed):
        dialer_lists.dnc_add(actor=actor, phone="12")
    with pytest.raises(PermissionDenied):
        dialer_lists.dnc_add(actor=agent_actor(), phone="3330000009")
    assert DoNotCallEntry.objects.filter(source="internal").count() == 1


RPO_FILE = (
    "numero,iscritto,data iscrizione\n"  # 1
    "+393331110001,1,2025-06-01\n"  # 2
    "3331110002,no,\n"  # 3
    "3331110003,sì,15/01/2026\n"  # 4
    "3331110004,forse,\n"  # 5: bad flag
    "3331110005,1,2027-01-01\n"  # 6: registered after the check date
    "33,1,\n"  # 7: not a number
)


def test_rpo_import_reports_lines_and_keeps_good_rows() -> None:
    actor = supervisor()
    with pytest.raises(ValidationFailed) as error:
        dialer_lists.rpo_import(
            actor=actor, name="rpo.csv", content=RPO_FILE.encode(), checked_on=date(2026, 3, 30)
        )
    assert sorted(error.value.fields) == ["line 5", "line 6", "line 7"]
    assert RpoImportBatch.objects.count() == 0
    batch = dialer_lists.rpo_import(
        actor=actor, name="rpo.csv", content=RPO_FILE.encode(), checked_on=date(2026, 3, 30), mode="good_rows"
    )
    assert (batch.rows_total, batch.registered, batch.not_registered) == (6, 2, 1)
    assert [line for line, _message in batch.errors] == [5, 6, 7]
    entries = {e.phone: (e.registered, e.registered_on) for e in batch.entries.all()}
    assert entries == {
        "+393331110001": (True, date(2025, 6, 1)),
        "+393331110002": (False, None),
        "+393331110003": (True, date(2026, 1, 15)),
    }
    with pytest.raises(ValidationFailed):
        dialer_lists.rpo_import(actor=actor, name="x", content=b"3331110001\n", checked_on=date(2099, 1, 1))


def test_rpo_registered_numbers_are_blocked_unless_consent_came_after_registration() -> None:
    actor = supervisor()
    # One number per line: every listed number is registered, as of the check date.
    dialer_lists.rpo_import(
        actor=actor,
        name="rpo.txt",
        content=b"3331110001\n3331110002\n3331110003\n",
        checked_on=date(2026, 3, 1),
    )
    after = CustomerFactory(phone="+393331110002")
    ConsentRecordFactory(
        customer=after,
        channel="phone",
        purpose="marketing",
        granted=True,
        recorded_at=datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    )
    before = CustomerFactory(phone="+393331110003")
    ConsentRecordFactory(
        customer=before,
        channel="phone",
        purpose="marketing",
        granted=True,
        recorded_at=datetime(2026, 2, 28, 9, 0, tzinfo=UTC),
    )
    withdrawn = CustomerFactory(phone="+393331110004")
    ConsentRecordFactory(customer=withdrawn, channel="phone", purpose="marketing", granted=False)
    reasons = block_reasons(
        ["+393331110001", "+393331110002", "+393331110003", "+393331110004", "+393331110005"],
        purpose="marketing",
        check_rpo=True,
    )
    assert reasons == {
        "+393331110001": "rpo_registered",  # no known customer, no consent
        "+393331110003": "rpo_registered",  # consent before the registration (check) date
        "+393331110004": "consent_withdrawn",
    }
    # A campaign that does not use the RPO (e.g. service calls to customers) only sees withdrawals.
    assert block_reasons(["+393331110001", "+393331110004"], purpose="marketing", check_rpo=False) == {
        "+393331110004": "consent_withdrawn"
    }
    # A later batch saying the number is free wins.
    dialer_lists.rpo_import(
        actor=actor, name="rpo2.csv", content=b"3331110001,0\n", checked_on=date(2026, 3, 20)
    )
    assert "+393331110001" not in block_reasons(["+393331110001"], purpose="marketing", check_rpo=True)


def test_rpo_block_applies_at_import() -> None:
    actor = supervisor()
    queue, _agents = queue_with_agents(0)
    target = campaign(actor, queue)
    dialer_lists.rpo_import(actor=actor, name="rpo.txt", content=b"3331110001\n", checked_on=date(2026, 3, 1))
    report = import_numbers(actor, target, ["3331110001", "3331110009"])
    assert (report.imported, report.blocked) == (1, 1)
    assert CampaignContact.objects.get(phone="+393331110001").blocked_reason == "rpo_registered"


def test_callback_schedule_validates() -> None:
    actor = supervisor()
    queue, agents = queue_with_agents(1)
    target = campaign(actor, queue)
    import_numbers(actor, target, ["3330000001"])
    contact = CampaignContact.objects.get()
    with pytest.raises(ValidationFailed):
        services.callback_schedule(
            actor=actor, contact=contact, when=TUESDAY_NOON - timedelta(minutes=1), at=TUESDAY_NOON
        )
    with pytest.raises(ValidationFailed):
        services.callback_schedule(
            actor=actor, contact=contact, when=TUESDAY_NOON + timedelta(days=91), at=TUESDAY_NOON
        )
    assert CampaignContact.objects.get().state == ContactState.PENDING
    scheduled = services.callback_schedule(
        actor=actor, contact=contact, when=TUESDAY_NOON + timedelta(hours=1), agent=agents[0], at=TUESDAY_NOON
    )
    assert (scheduled.state, scheduled.next_attempt_at, scheduled.agent_id) == (
        "callback",
        TUESDAY_NOON + timedelta(hours=1),
        agents[0].pk,
    )


def test_a_big_list_passes_the_database_parameter_limits() -> None:
    """33,000 rows: more numbers than SQLite takes as parameters of one statement (32,766)."""
    actor = supervisor()
    queue, _agents = queue_with_agents(0)
    target = campaign(actor, queue)
    dialer_lists.dnc_add(actor=actor, phone="+393400032999")
    content = "phone\n" + "".join(f"+3934000{index:05d}\n" for index in range(33_000)) + "+393400000001\n"
    report = dialer_lists.contact_list_import(
        actor=actor, campaign=target, name="big.csv", content=content.encode()
    )
    assert (report.rows_total, report.imported, report.duplicates, report.blocked) == (33_001, 32_999, 1, 1)
    assert CampaignContact.objects.filter(campaign=target).count() == 33_000
    again = dialer_lists.contact_list_import(
        actor=actor, campaign=target, name="big.csv", content=content.encode()
    )
    assert (again.imported, again.duplicates) == (0, 33_001)
