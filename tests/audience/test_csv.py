"""CSV import and export, through the UI as a marketer does it."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from audience import csv_io
from audience.models import Contact, ContactImport

pytestmark = pytest.mark.django_db


def upload(client, text: str, name: str = "people.csv"):  # type: ignore[no-untyped-def]
    return client.post(
        "/t/acme/contacts/import/",
        {"file": SimpleUploadedFile(name, text.encode(), content_type="text/csv")},
    )


PEOPLE = (
    "Email,First Name,Customer ID,Newsletter,Birthday,Shoe size\n"
    "ann@example.com,Ann,c-1,yes,1990-05-17,38\n"
    "bob@example.com,Bob,c-2,no,,44\n"
    "not-an-email,Eve,c-3,yes,,\n"
    "dan@example.com,Dan,c-4,maybe,,\n"
    ",,,,,\n"
    "cara@example.com,Cara,c-5,yes,31/02/1990,\n"
    ",Zed,,yes,,\n"
)


def test_it_imports_a_csv_with_a_mapping_preview_and_a_report(
    login, world, eager_tasks, django_capture_on_commit_callbacks
) -> None:
    Contact.objects.create(tenant=world.acme, email="bob@example.com", first_name="Robert")
    client = login(world.dave)
    response = upload(client, PEOPLE)
    job = ContactImport.objects.get()
    assert response["Location"] == f"/t/acme/contacts/import/{job.public_id}/?dates=detected"
    assert job.total_rows == 6  # the blank row does not count
    assert job.mapping == {
        "Email": "email",
        "First Name": "first_name",
        "Customer ID": "user_id",
        "Newsletter": "email_consent",
        "Birthday": "birthday",
        "Shoe size": "attribute",
    }
    page = client.get(response["Location"]).content.decode()
    assert "ann@example.com" in page  # the preview

    with django_capture_on_commit_callbacks(execute=True):
        confirm = client.post(
            response["Location"],
            # The form's fields follow the file's column order (a jsonb mapping keeps no order).
            {f"map-{i}": job.mapping[column] for i, column in enumerate(job.columns)},
        )
    assert confirm.status_code == 302
    job.refresh_from_db()
    assert (job.status, job.processed_rows, job.created_count, job.updated_count) == (
        "done",
        6,
        4,
        1,
    )
    # Only the row that names no contact is refused; a bad cell loses that cell, not the row.
    assert job.failed_count == 1
    assert [(e["row"], e["outcome"]) for e in job.errors] == [
        (4, "cell left out"),
        (5, "cell left out"),
        (7, "cell left out"),
        (8, "row not imported"),
    ]
    assert "not-an-email" in job.errors[0]["message"]
    assert "maybe" in job.errors[1]["message"]
    assert "31/02/1990" in job.errors[2]["message"]
    assert job.errors[3]["message"] == "Row 8 has neither a user id nor an email"
    assert job.warning_count == 3

    ann = Contact.objects.get(email="ann@example.com")
    assert (ann.user_id, ann.first_name, ann.email_consent) == ("c-1", "Ann", "granted")
    assert (ann.birthday_month, ann.birthday_day, ann.birth_year) == (5, 17, 1990)
    assert ann.attributes == {"Shoe size": "38"}
    assert ann.email_consent_source == "import:people.csv"
    bob = Contact.objects.get(email="bob@example.com")
    assert (bob.first_name, bob.user_id, bob.email_consent) == ("Bob", "c-2", "revoked")
    eve = Contact.objects.get(tenant=world.acme, user_id="c-3")
    assert (eve.email, eve.first_name, eve.email_consent) == ("", "Eve", "granted")
    dan = Contact.objects.get(email="dan@example.com")
    assert (dan.first_name, dan.email_consent) == ("Dan", "unknown")
    cara = Contact.objects.get(email="cara@example.com")
    assert (cara.first_name, cara.birthday_month, cara.email_consent) == ("Cara", None, "granted")
    assert not Contact.objects.filter(first_name="Zed").exists()

    report = client.get(f"/t/acme/contacts/import/{job.public_id}/errors.csv")
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode())))
    assert rows[0] == ["row", "problem", "outcome"] and len(rows) == 5
    assert rows[3] == [
        "7",
        "Row 7 Birthday: “31/02/1990” is not a date written YYYY-MM-DD (like 1985-12-31)",
        "cell left out",
    ]
    done = client.get(response["Location"]).content.decode()
    assert "Cells left out" in done and "Rows that were not imported" in done


def test_it_shows_progress_that_refreshes_itself(login, world) -> None:
    job = ContactImport.objects.create(
        tenant=world.acme,
        filename="big.csv",
        content="email\n",
        columns=["email"],
        mapping={"email": "email"},
        total_rows=200,
        processed_rows=50,
        status=ContactImport.Status.RUNNING,
    )
    client = login(world.bob)
    partial = client.get(
        f"/t/acme/contacts/import/{job.public_id}/",
        HTTP_HX_REQUEST="true",
        HTTP_HX_TARGET="import-progress",
    ).content.decode()
    assert 'value="25"' in partial and 'hx-trigger="every 1s"' in partial
    assert "<html" not in partial
    ContactImport.objects.filter(pk=job.pk).update(status="done", processed_rows=200)
    done = client.get(f"/t/acme/contacts/import/{job.public_id}/").content.decode()
    assert "every 1s" not in done  # polling stops when finished


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The file is empty."),
        ("email\n", "The file has a header but no rows."),
        ("email,email\na,b\n", "Two columns have the same name"),
    ],
)
def test_it_refuses_an_unusable_file(login, world, text, message) -> None:
    response = upload(login(world.alice), text)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not ContactImport.objects.exists()


def test_it_insists_on_a_column_that_finds_contacts(login, world) -> None:
    client = login(world.alice)
    location = upload(client, "Name,Email\nAnn,ann@example.com\n")["Location"]
    response = client.post(location, {"map-0": "first_name", "map-1": ""})
    assert response.status_code == 400
    assert "Map a column to User id or Email" in response.content.decode()
    assert ContactImport.objects.get().status == "mapping"
    twice = client.post(location, {"map-0": "email", "map-1": "email"})
    assert "Only one column can be Email" in twice.content.decode()


def test_it_does_not_let_viewers_import(login, world) -> None:
    assert upload(login(world.bob), PEOPLE).status_code == 403
    assert not ContactImport.objects.exists()


def test_it_exports_the_filtered_contacts_safely(login, world) -> None:
    Contact.objects.create(
        tenant=world.acme,
        email="ann@example.com",
        first_name="=HYPERLINK(1)",
        lifecycle_stage="engagement",
        birthday_month=2,
        birthday_day=29,
    )
    Contact.objects.create(
        tenant=world.acme, email="lead@example.com", lifecycle_stage="acquisition"
    )
    Contact.objects.create(
        tenant=world.globex, email="other@globex.example", lifecycle_stage="engagement"
    )
    response = login(world.dave).get("/t/acme/contacts/export.csv?stage=engagement")
    assert response["Content-Disposition"] == 'attachment; filename="acme-contacts.csv"'
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["email"] for r in rows] == ["ann@example.com"]
    assert rows[0]["first_name"] == "'=HYPERLINK(1)"  # no formula reaches a spreadsheet
    assert rows[0]["birthday"] == "02-29"
    assert login(world.bob).get("/t/acme/contacts/export.csv").status_code == 403


def test_an_over_long_cell_is_left_out_of_its_row_and_says_why(
    login, world, eager_tasks, django_capture_on_commit_callbacks
) -> None:
    text = (
        "Email,Phone,Customer ID,Locale,Note\n"
        "ann@example.com,+1 555,c-1,en,fine\n"
        f"bob@example.com,{'5' * 41},c-2,en,\n"
        f"cara@example.com,,{'c' * 256},en,\n"
        f"{'d' * 250}@example.com,,c-4,en,\n"
        "eve@example.com,,c-5,en-GB-x-very-long-private-use-tag-here,\n"
        "fay@example.com,,c-6,en,ok\n"
        f"{'g' * 250}@example.com,,{'g' * 256},en,\n"
    )
    client = login(world.dave)
    response = upload(client, text)
    job = ContactImport.objects.get()
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            response["Location"],
            {f"map-{i}": job.mapping[column] for i, column in enumerate(job.columns)},
        )
    job.refresh_from_db()
    assert (job.status, job.created_count, job.failed_count) == ("done", 6, 1)
    messages = {e["row"]: e["message"] for e in job.errors}
    assert messages[3] == "Row 3 Phone: 41 characters, but Phone holds at most 40"
    assert "Customer ID: 256 characters, but User id holds at most 255" in messages[4]
    assert "Email: 262 characters" in messages[5]
    assert "Locale:" in messages[6] and "at most 35" in messages[6]
    # Neither of its ids can be stored: nothing names its contact, the row is not imported.
    assert messages[8].startswith("Row 8 Email: 262 characters")
    assert messages[8].endswith("and nothing else names its contact")
    stored = {c.user_id: c for c in Contact.objects.filter(tenant=world.acme)}
    assert sorted(stored) == ["", "c-1", "c-2", "c-4", "c-5", "c-6"]
    assert (stored["c-2"].email, stored["c-2"].phone) == ("bob@example.com", "")
    assert stored[""].email == "cara@example.com"  # found by email; the long id left out
    assert stored["c-4"].email == ""
    assert (stored["c-5"].email, stored["c-5"].locale) == ("eve@example.com", "")


def test_it_refuses_a_file_with_a_nul_character_saying_where(login, world) -> None:
    response = upload(login(world.alice), "email\nann@example.com\nb\x00b@example.com\n")
    assert response.status_code == 400
    assert "Line 3 contains the NUL character" in response.content.decode()
    assert not ContactImport.objects.exists()


def test_an_export_longer_than_a_page_has_every_contact_once_oldest_first(
    login, world, monkeypatch
) -> None:
    # Pages of 2 over 5 contacts, two of them created at the same instant (the keyset's tie).
    monkeypatch.setattr(csv_io, "EXPORT_PAGE", 2)
    base = timezone.now()
    made = [
        Contact.objects.create(tenant=world.acme, email=f"c{n}@example.com", created_at=at)
        for n, at in enumerate([base, base, base + timedelta(seconds=1), base, base])
    ]
    response = login(world.dave).get("/t/acme/contacts/export.csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    expected = sorted(made, key=lambda c: (c.created_at, c.pk))
    assert [r["email"] for r in rows] == [c.email for c in expected]
