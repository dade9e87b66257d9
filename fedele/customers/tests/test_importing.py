"""Customer import: CSV (; and , and BOM), XLSX, Italian headers, line numbers, modes, limits, web flow."""

from __future__ import annotations

import io
from datetime import date

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from openpyxl import Workbook

from fedele.accounts.facade import actor_for
from fedele.accounts.tests.factories import user_with_roles
from fedele.customers.models import Customer, CustomerImport
from fedele.customers.services import importing
from fedele.customers.services.importing import customer_import_commit, customer_import_preview
from fedele.customers.tests.factories import CustomerFactory, valid_italian_vat
from fedele.shared.errors import Conflict, PayloadTooLarge, PermissionDenied, ValidationFailed
from fedele.shared.models import AuditLog, OutboxEvent

pytestmark = pytest.mark.django_db

VAT = valid_italian_vat(4242)
ITALIAN_CSV = (
    "Tipo;Nome;Cognome;Ragione sociale;Codice fiscale;Partita IVA;E-mail;Telefono;CAP;Città;Provincia\n"
    "persona;Mario;Rossi;;RSSMRA85T10A562S;;Mario.Rossi@Example.it;06 1234 5678;00184;Roma;RM\n"
    f"azienda;;;Acme S.r.l.;;{VAT};info@acme.it;;20121;Milano;MI\n"
    "persona;Anna;;;;;not-an-email;;1234;Torino;TO\n"
)


@pytest.fixture
def admin():
    return actor_for(user_with_roles("admin"))


def counts() -> tuple[int, int, int]:
    return Customer.objects.count(), AuditLog.objects.count(), OutboxEvent.objects.count()


def test_italian_csv_with_semicolons_and_bom_is_previewed_with_line_numbers_and_errors(admin):
    content = "\ufeff".encode() + ITALIAN_CSV.encode()

    preview = customer_import_preview(actor=admin, filename="clienti.csv", content=content)

    assert preview.status == "previewed"
    assert preview.filename == "clienti.csv"
    assert (preview.total_rows, preview.valid_rows, preview.created_count) == (3, 2, 0)
    assert [row["line"] for row in preview.rows] == [2, 3, 4]
    assert [row["valid"] for row in preview.rows] == [True, True, False]
    assert preview.rows[0]["values"] == {
        "kind": "persona",
        "first_name": "Mario",
        "last_name": "Rossi",
        "company_name": "",
        "fiscal_code": "RSSMRA85T10A562S",
        "vat_number": "",
        "email": "Mario.Rossi@Example.it",
        "phone": "06 1234 5678",
        "postal_code": "00184",
        "city": "Roma",
        "province": "RM",
    }
    assert preview.rows[0]["errors"] == {}
    assert preview.rows[2]["errors"] == {
        "email": ["'not-an-email' is not a valid e-mail address."],
        "postal_code": ["An Italian postal code (CAP) has five digits."],
    }
    assert Customer.objects.count() == 0
    audit = AuditLog.objects.get(action="customer_import.previewed")
    assert audit.object_id == str(preview.public_id)
    assert audit.after == {
        "filename": "clienti.csv",
        "columns": sorted(
            [
                "kind",
                "first_name",
                "last_name",
                "company_name",
                "fiscal_code",
                "vat_number",
                "email",
                "phone",
                "postal_code",
                "city",
                "province",
            ]
        ),
        "total_rows": 3,
        "valid_rows": 2,
    }


def test_csv_with_commas_and_english_headers_and_no_bom(admin):
    content = (
        b"kind,first_name,last_name,email,phone,city,language,segment\n"
        b"person,Luca,Bianchi,luca@example.it,+39 347 1234567,Bologna,en,consumer\n"
        b'person,"Maria, detta Mary",Neri,maria@example.it,,Bologna,italiano,Consumatore\n'
    )

    preview = customer_import_preview(actor=admin, filename="customers.csv", content=content)

    assert (preview.total_rows, preview.valid_rows) == (2, 2)
    assert preview.rows[1]["values"]["first_name"] == "Maria, detta Mary"
    created = customer_import_commit(actor=admin, import_public_id=str(preview.public_id), mode="valid_rows")
    assert created.created_count == 2
    maria = Customer.objects.get(email="maria@example.it")
    assert (maria.first_name, maria.language, maria.segment) == ("Maria, detta Mary", "it", "consumer")
    luca = Customer.objects.get(email="luca@example.it")
    assert (luca.phone, luca.language) == ("+393471234567", "en")


def test_xlsx_first_sheet_with_numbers_and_dates_from_the_spreadsheet(admin):
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["Nome", "Cognome", "Email", "CAP", "Città", "Data di nascita", "Ragione sociale"])
    sheet.append(["Giulia", "Verdi", "giulia@example.it", 184, "Roma", date(1990, 5, 17).isoformat(), None])
    sheet.append([None, None, None, None, None, None, None])  # blank rows are skipped, numbering goes on
    sheet.append(["Paolo", "Gialli", "paolo@example.it", "00185", "Roma", "17/05/1991", None])
    workbook.create_sheet("Ignored").append(["colore"])
    buffer = io.BytesIO()
    workbook.save(buffer)

    preview = customer_import_preview(actor=admin, filename="clienti.xlsx", content=buffer.getvalue())

    assert [row["line"] for row in preview.rows] == [2, 4]
    assert preview.rows[0]["values"]["postal_code"] == "00184"
    assert preview.valid_rows == 2
    customer_import_commit(actor=admin, import_public_id=str(preview.public_id), mode="all_or_nothing")
    giulia = Customer.objects.get(email="giulia@example.it")
    assert (giulia.postal_code, giulia.birth_date, giulia.kind) == ("00184", date(1990, 5, 17), "person")
    assert Customer.objects.get(email="paolo@example.it").birth_date == date(1991, 5, 17)


def test_all_or_nothing_writes_nothing_when_one_row_is_bad(admin):
    preview = customer_import_preview(actor=admin, filename="clienti.csv", content=ITALIAN_CSV.encode())
    before = counts()

    with pytest.raises(ValidationFailed) as failure:
        customer_import_commit(actor=admin, import_public_id=str(preview.public_id), mode="all_or_nothing")

    assert failure.value.code == "invalid_rows"
    assert failure.value.message == "1 row is not valid (line 4); nothing was imported."
    assert failure.value.fields == {
        "line_4.email": ["'not-an-email' is not a valid e-mail address."],
        "line_4.postal_code": ["An Italian postal code (CAP) has five digits."],
    }
    assert counts() == before
    preview.refresh_from_db()
    assert (preview.status, preview.committed_at, preview.created_count) == ("previewed", None, 0)


def test_valid_rows_creates_exactly_the_good_rows_with_numbers_audit_and_events(admin):
    preview = customer_import_preview(actor=admin, filename="clienti.csv", content=ITALIAN_CSV.encode())
    customers, audits, events = counts()

    result = customer_import_commit(actor=admin, import_public_id=str(preview.public_id), mode="valid_rows")

    assert (result.status, result.created_count, result.valid_rows) == ("committed", 2, 2)
    assert result.committed_at is not None
    created = list(Customer.objects.order_by("number"))
    assert [(c.number, c.display_name, c.kind) for c in created] == [
        ("C-000001", "Mario Rossi", "person"),
        ("C-000002", "Acme S.r.l.", "company"),
    ]
    mario, acme = created
    assert (mario.email, mario.phone, mario.fiscal_code) == (
        "mario.rossi@example.it",
        "+390612345678",
        "RSSMRA85T10A562S",
    )
    assert acme.vat_number == VAT
    assert [row.get("customer_number") for row in result.rows] == ["C-000001", "C-000002", None]
    assert Customer.objects.count() == customers + 2
    assert AuditLog.objects.count() == audits + 3  # two customer.created and the commit
    assert list(
        AuditLog.objects.filter(action="customer.created").values_list("after__source", flat=True)
    ) == ["import", "import"]
    commit_audit = AuditLog.objects.get(action="customer_import.committed")
    assert commit_audit.after == {
        "status": "committed",
        "mode": "valid_rows",
        "created_count": 2,
        "skipped_lines": [4],
    }
    assert OutboxEvent.objects.count() == events + 2
    assert sorted(OutboxEvent.objects.values_list("event_type", flat=True)) == [
        "customers.CustomerCreated",
        "customers.CustomerCreated",
    ]


def test_committing_twice_is_refused_and_changes_nothing(admin):
    preview = customer_import_preview(actor=admin, filename="clienti.csv", content=ITALIAN_CSV.encode())
    customer_import_commit(actor=admin, import_public_id=str(preview.public_id), mode="valid_rows")
    before = counts()

    with pytest.raises(Conflict) as failure:
        customer_import_commit(actor=admin, import_public_id=str(preview.public_id), mode="valid_rows")

    assert failure.value.code == "import_already_committed"
    assert counts() == before


def test_duplicate_emails_inside_the_file_and_against_active_customers(admin):
    CustomerFactory(email="taken@example.it")
    CustomerFactory(email="former@example.it", status="merged")
    content = (
        b"nome,cognome,email\n"
        b"Uno,Primo,same@example.it\n"
        b"Due,Secondo,SAME@example.it\n"
        b"Tre,Terzo,taken@example.it\n"
        b"Quattro,Quarto,former@example.it\n"
    )

    preview = customer_import_preview(actor=admin, filename="x.csv", content=content)

    assert [(row["line"], row["errors"]) for row in preview.rows] == [
        (2, {}),
        (3, {"email": ["The e-mail address same@example.it is also on line 2."]}),
        (4, {"email": ["The e-mail address taken@example.it is already used by another customer."]}),
        (5, {}),
    ]
    result = customer_import_commit(actor=admin, import_public_id=str(preview.public_id), mode="valid_rows")
    assert result.created_count == 2
    assert Customer.objects.filter(email="same@example.it").count() == 1


def test_commit_validates_again_against_customers_created_since_the_preview(admin):
    preview = customer_import_preview(
        actor=admin, filename="x.csv", content=b"nome,cognome,email\nUno,Primo,late@example.it\n"
    )
    assert preview.valid_rows == 1
    CustomerFactory(email="late@example.it")
    before = counts()

    with pytest.raises(ValidationFailed) as failure:
        customer_import_commit(actor=admin, import_public_id=str(preview.public_id), mode="all_or_nothing")

    assert failure.value.fields == {
        "line_2.email": ["The e-mail address late@example.it is already used by another customer."]
    }
    assert counts() == before


@pytest.mark.parametrize(
    ("content", "code", "fields"),
    [
        (b"", "empty_file", {"file": ["The file is empty."]}),
        (b"\xef\xbb\xbf\r\n", "empty_file", {"file": ["The file is empty."]}),
        (b";;\nMario;Rossi;\n", "missing_header", {"file": ["No header line."]}),
        (b"nome;cognome\n", "no_rows", {"file": ["No rows."]}),
        (
            b"nome;cognome;colore;email;e-mail\nMario;Rossi;blu;a@b.it;a@b.it\n",
            "unknown_columns",
            {
                "columns": [
                    "Unknown column 'colore' (column C).",
                    "Columns 'email' and 'e-mail' both mean email.",
                ]
            },
        ),
        (b"nome;cognome\nMario;Ross\xe0\n", "invalid_encoding", {"file": ["Not UTF-8 text."]}),
        (b"PK\x03\x04broken", "invalid_spreadsheet", {"file": ["Not a readable .xlsx file."]}),
    ],
)
def test_unreadable_files_get_a_clear_error_and_nothing_is_stored(admin, content, code, fields):
    before = (CustomerImport.objects.count(), *counts())

    with pytest.raises(ValidationFailed) as failure:
        customer_import_preview(actor=admin, filename="file.csv", content=content)

    assert failure.value.code == code
    assert failure.value.fields == fields
    assert (CustomerImport.objects.count(), *counts()) == before


def test_oversize_file_is_refused(admin):
    with override_settings(FEDELE_MAX_UPLOAD_BYTES=100), pytest.raises(PayloadTooLarge) as failure:
        customer_import_preview(actor=admin, filename="big.csv", content=b"nome;cognome\n" + b"a;b\n" * 30)

    assert failure.value.status_code == 413
    assert failure.value.code == "file_too_large"
    assert CustomerImport.objects.count() == 0


def test_too_many_rows_is_refused(admin, monkeypatch):
    monkeypatch.setattr(importing, "MAX_ROWS", 2)

    with pytest.raises(ValidationFailed) as failure:
        customer_import_preview(actor=admin, filename="x.csv", content=b"nome\na\nb\nc\n")

    assert failure.value.code == "too_many_rows"
    assert CustomerImport.objects.count() == 0


def test_import_needs_the_import_permission(admin):
    agent = actor_for(user_with_roles("agent"))
    with pytest.raises(PermissionDenied):
        customer_import_preview(actor=agent, filename="x.csv", content=b"nome\nMario\n")
    preview = customer_import_preview(actor=admin, filename="x.csv", content=b"nome\nMario\n")
    with pytest.raises(PermissionDenied):
        customer_import_commit(actor=agent, import_public_id=str(preview.public_id), mode="valid_rows")
    assert Customer.objects.count() == 0


def test_unknown_mode_and_nothing_valid_are_refused(admin):
    preview = customer_import_preview(actor=admin, filename="x.csv", content=b"email\nnot-an-email\n")
    with pytest.raises(ValidationFailed) as failure:
        customer_import_commit(actor=admin, import_public_id=str(preview.public_id), mode="some")
    assert failure.value.fields == {"mode": ["Choose one of: all_or_nothing, valid_rows."]}
    with pytest.raises(ValidationFailed) as failure:
        customer_import_commit(actor=admin, import_public_id=str(preview.public_id), mode="valid_rows")
    assert failure.value.code == "nothing_to_import"
    assert CustomerImport.objects.get().status == "previewed"


def test_the_import_page_uploads_previews_and_commits(client):
    client.force_login(user_with_roles("admin"))
    assert client.get("/customers/import/").status_code == 200

    upload = SimpleUploadedFile("clienti.csv", ITALIAN_CSV.encode(), content_type="text/csv")
    response = client.post("/customers/import/", {"action": "upload", "file": upload})

    assert response.status_code == 302
    preview = CustomerImport.objects.get()
    assert response["Location"] == f"/customers/import/?import={preview.public_id}"
    page = client.get(response["Location"])
    body = page.content.decode()
    assert page.status_code == 200
    assert 'id="line-4"' in body
    assert "An Italian postal code (CAP) has five digits." in body
    assert 'id="import-commit-form"' in body

    failed = client.post(
        "/customers/import/",
        {"action": "commit", "import_id": str(preview.public_id), "mode": "all_or_nothing"},
    )
    assert failed.status_code == 422
    assert "1 row is not valid (line 4); nothing was imported." in failed.content.decode()
    assert Customer.objects.count() == 0

    done = client.post(
        "/customers/import/",
        {"action": "commit", "import_id": str(preview.public_id), "mode": "valid_rows"},
    )
    assert done.status_code == 302
    assert Customer.objects.count() == 2
    assert 'id="import-created">2<' in client.get(done["Location"]).content.decode()


def test_the_import_page_shows_file_errors_and_refuses_agents(client):
    client.force_login(user_with_roles("admin"))
    upload = SimpleUploadedFile("clienti.csv", b"colore\nblu\n", content_type="text/csv")
    response = client.post("/customers/import/", {"action": "upload", "file": upload})
    assert response.status_code == 422
    assert "Unknown column &#x27;colore&#x27; (column A)." in response.content.decode()
    assert CustomerImport.objects.count() == 0

    client.force_login(user_with_roles("agent"))
    assert client.get("/customers/import/").status_code == 403
