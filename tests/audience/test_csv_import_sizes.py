"""CSV import at real sizes (issue 18, item 6): set-based slices, a bad cell that loses only
itself, the date format chosen per import, progress with rows per second and time left, and
the same file imported twice updating rather than duplicating. Through the UI where a marketer
would, with two teams."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audience import csv_io
from audience.models import Contact, ContactImport, Identity

pytestmark = pytest.mark.django_db


def upload(client, text: str, date_format: str | None = None, name: str = "people.csv"):  # type: ignore[no-untyped-def]
    data = {"file": SimpleUploadedFile(name, text.encode(), content_type="text/csv")}
    if date_format is not None:
        data["date_format"] = date_format
    return client.post("/t/acme/contacts/import/", data)


def confirm(client, location: str, job: ContactImport, **extra: str):  # type: ignore[no-untyped-def]
    mapping = job.mapping
    return client.post(
        location, {**{f"map-{i}": mapping[c] for i, c in enumerate(job.columns)}, **extra}
    )


def run_import(client, text: str, captured, date_format: str | None = None) -> ContactImport:  # type: ignore[no-untyped-def]
    location = upload(client, text, date_format)["Location"]
    job = ContactImport.objects.order_by("-pk").first()
    assert job is not None
    with captured(execute=True):
        assert confirm(client, location, job).status_code == 302
    job.refresh_from_db()
    return job


def birthday(email: str) -> tuple[int | None, int | None, int | None]:
    c = Contact.objects.get(email=email)
    return (c.birth_year, c.birthday_month, c.birthday_day)


@pytest.mark.parametrize(
    ("date_format", "cell"),
    [
        ("iso", "1985-12-31"),
        ("dmy", "31/12/1985"),
        ("mdy", "12/31/1985"),
        ("dmy_dot", "31.12.1985"),
    ],
)
def test_the_date_format_chosen_on_the_start_page_reads_the_birthdays(
    login, world, eager_tasks, django_capture_on_commit_callbacks, date_format, cell
) -> None:
    text = f"Email,Birthday\nann@example.com,{cell}\nbob@example.com,03/04/1990\n"
    job = run_import(login(world.dave), text, django_capture_on_commit_callbacks, date_format)
    assert job.date_format == date_format
    assert birthday("ann@example.com") == (1985, 12, 31)
    # 03/04/1990 is the 3rd of April or the 4th of March, as the import was told.
    expected = {"dmy": (1990, 4, 3), "mdy": (1990, 3, 4)}.get(date_format, (None, None, None))
    assert birthday("bob@example.com") == expected
    assert job.created_count == 2 and job.failed_count == 0


def test_a_birthday_in_another_format_keeps_its_row_and_the_stored_birthday(
    login, world, eager_tasks, django_capture_on_commit_callbacks
) -> None:
    Contact.objects.create(
        tenant=world.acme, email="ann@example.com", birthday_month=5, birthday_day=17
    )
    text = "Email,First name,Birthday,Plan\nann@example.com,Ann,12/31/1985,pro\n"
    client = login(world.dave)
    job = run_import(client, text, django_capture_on_commit_callbacks, "dmy")
    ann = Contact.objects.get(email="ann@example.com")
    # The row went in (name, attribute); the unreadable birthday did not replace the known one.
    assert (ann.first_name, ann.attributes, ann.birthday_month, ann.birthday_day) == (
        "Ann",
        {"Plan": "pro"},
        5,
        17,
    )
    assert (job.updated_count, job.failed_count, job.warning_count) == (1, 0, 1)
    assert job.errors == [
        {
            "row": 2,
            "column": "Birthday",
            "message": "Row 2 Birthday: “12/31/1985” is not a date written DD/MM/YYYY"
            " (like 31/12/1985)",
            "outcome": "cell left out",
        }
    ]
    page = client.get(f"/t/acme/contacts/import/{job.public_id}/").content.decode()
    assert "Cells left out" in page and "12/31/1985" in page
    report = client.get(f"/t/acme/contacts/import/{job.public_id}/errors.csv")
    rows = list(csv.reader(io.StringIO(b"".join(report.streaming_content).decode())))
    assert rows[1][0] == "2" and rows[1][2] == "cell left out"


@pytest.mark.parametrize(
    ("cells", "detected"),
    [
        (["12/31/1985", "01/02/1990"], "mdy"),
        (["31/12/1985", "01/02/1990"], "dmy"),
        (["31.12.1985", "1.2.1990"], "dmy_dot"),
        (["1985-12-31", "--02-29"], "iso"),
    ],
)
def test_the_format_is_worked_out_from_the_file_and_shown_on_the_mapping_page(
    login, world, cells, detected
) -> None:
    text = "Email,Date of birth\n" + "".join(f"p{i}@example.com,{c}\n" for i, c in enumerate(cells))
    client = login(world.dave)
    location = upload(client, text)["Location"]  # the start page's default: work it out
    job = ContactImport.objects.get()
    assert job.date_format == detected
    page = client.get(location).content.decode()
    assert f'<option value="{detected}" selected>' in page
    assert "Worked out from the file" in page
    chosen = upload(client, text, "dmy")["Location"]
    assert "Worked out from the file" not in client.get(chosen).content.decode()


def test_the_mapping_page_can_change_the_date_format_and_refuses_an_unknown_one(
    login, world, eager_tasks, django_capture_on_commit_callbacks
) -> None:
    client = login(world.dave)
    location = upload(client, "Email,Birthday\nann@example.com,03/04/1990\n", "dmy")["Location"]
    job = ContactImport.objects.get()
    refused = confirm(client, location, job, date_format="yyyy")
    assert refused.status_code == 400
    assert "Choose how the file writes its dates." in refused.content.decode()
    assert ContactImport.objects.get().status == "mapping"
    with django_capture_on_commit_callbacks(execute=True):
        assert confirm(client, location, job, date_format="mdy").status_code == 302
    assert birthday("ann@example.com") == (1990, 3, 4)
    bad_upload = upload(client, "Email\nann@example.com\n", "yyyy")
    assert bad_upload.status_code == 400
    assert "Choose how the file writes its dates." in bad_upload.content.decode()


def test_every_bad_cell_loses_only_itself(
    login, world, eager_tasks, django_capture_on_commit_callbacks
) -> None:
    text = (
        "Customer ID,Email,Time zone,Newsletter,Birthday,Phone\n"
        f"c-1,not-an-email,Mars/Olympus,maybe,yesterday,{'5' * 41}\n"
    )
    job = run_import(login(world.dave), text, django_capture_on_commit_callbacks, "iso")
    contact = Contact.objects.get(tenant=world.acme, user_id="c-1")
    assert (contact.email, contact.timezone, contact.email_consent, contact.phone) == (
        "",
        "",
        "unknown",
        "",
    )
    assert [e["column"] for e in job.errors] == [
        "Email",
        "Time zone",
        "Newsletter",
        "Birthday",
        "Phone",
    ]
    assert {e["outcome"] for e in job.errors} == {"cell left out"}
    assert (job.created_count, job.failed_count, job.warning_count) == (1, 0, 5)


def test_re_importing_the_same_file_updates_instead_of_duplicating(
    login, world, eager_tasks, django_capture_on_commit_callbacks
) -> None:
    text = "Customer ID,Email,First name\n" + "".join(
        f"c-{i},p{i}@example.com,P{i}\n" for i in range(30)
    )
    client = login(world.dave)
    first = run_import(client, text, django_capture_on_commit_callbacks)
    second = run_import(client, text.replace(",P", ",Q"), django_capture_on_commit_callbacks)
    assert (first.created_count, first.updated_count) == (30, 0)
    assert (second.created_count, second.updated_count) == (0, 30)
    assert Contact.objects.filter(tenant=world.acme).count() == 30
    assert Identity.objects.filter(tenant=world.acme, kind="user_id").count() == 30
    assert Contact.objects.get(user_id="c-7").first_name == "Q7"


def test_rows_naming_one_person_in_one_slice_make_one_contact(
    login, world, eager_tasks, django_capture_on_commit_callbacks
) -> None:
    # By user id, then by the email an earlier row gave; case does not matter for emails.
    Contact.objects.create(tenant=world.globex, email="ann@example.com")  # another team's
    text = (
        "Customer ID,Email,First name,Last name\n"
        "c-1,ann@example.com,Ann,\n"
        "c-1,,,Smith\n"
        ",ANN@example.com,Annie,\n"
        "c-2,bob@example.com,Bob,\n"
    )
    job = run_import(login(world.dave), text, django_capture_on_commit_callbacks)
    assert (job.created_count, job.updated_count) == (2, 2)
    ann = Contact.objects.get(tenant=world.acme, user_id="c-1")
    assert (ann.email, ann.first_name, ann.last_name) == ("ann@example.com", "Annie", "Smith")
    assert Contact.objects.filter(tenant=world.globex).get().first_name == ""


def test_a_contact_found_by_email_gets_the_user_id_and_its_identity(world) -> None:
    Contact.objects.create(tenant=world.acme, email="ann@example.com")
    text = "Customer ID,Email\nc-9,ann@example.com\n"
    job = csv_io.import_create(tenant=world.acme, filename="a.csv", data=text.encode(), actor=None)
    job = csv_io.import_confirm(
        tenant=world.acme, job=job, mapping={"Customer ID": "user_id", "Email": "email"}
    )
    csv_io.import_run(tenant=world.acme, job=job)
    ann = Contact.objects.get(tenant=world.acme)
    assert ann.user_id == "c-9"
    assert Identity.objects.get(tenant=world.acme, value="c-9").contact_id == ann.pk


def test_a_slice_costs_the_same_statements_for_ten_rows_as_for_a_thousand(
    world, monkeypatch
) -> None:
    monkeypatch.setattr(csv_io, "FIRST_SLICE_ROWS", 2000)  # the whole file in one slice

    def statements(rows: int, prefix: str) -> int:
        Contact.objects.bulk_create(
            Contact(tenant=world.acme, email=f"{prefix}{i}@example.com") for i in range(0, rows, 2)
        )  # half of them known already: updates and inserts both
        text = "Customer ID,Email,Plan\n" + "".join(
            f"{prefix}-{i},{prefix}{i}@example.com,pro\n" for i in range(rows)
        )
        job = csv_io.import_create(
            tenant=world.acme, filename="a.csv", data=text.encode(), actor=None
        )
        job = csv_io.import_confirm(
            tenant=world.acme,
            job=job,
            mapping={"Customer ID": "user_id", "Email": "email", "Plan": "attribute"},
        )
        with CaptureQueriesContext(connection) as queries:
            job = csv_io.import_run(tenant=world.acme, job=job)
        assert (job.created_count, job.updated_count) == (rows // 2, rows // 2)
        return len(queries)

    assert statements(10, "a") == statements(1000, "b")


def test_contacts_are_announced_once_per_slice(
    world, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    from audience.signals import contacts_changed

    announced: list[list[int]] = []

    def listener(sender: object, contact_ids: list[int], **_: object) -> None:
        announced.append(list(contact_ids))

    contacts_changed.connect(listener, dispatch_uid="tests.csv_import_sizes")
    monkeypatch.setattr(csv_io, "FIRST_SLICE_ROWS", 4)
    monkeypatch.setattr(csv_io, "MAX_SLICE_ROWS", 4)
    try:
        text = "Email,Newsletter\n" + "".join(f"p{i}@example.com,yes\n" for i in range(10))
        job = csv_io.import_create(
            tenant=world.acme, filename="news.csv", data=text.encode(), actor=None
        )
        job = csv_io.import_confirm(
            tenant=world.acme, job=job, mapping={"Email": "email", "Newsletter": "email_consent"}
        )
        with django_capture_on_commit_callbacks(execute=True):
            csv_io.import_run(tenant=world.acme, job=job)
    finally:
        contacts_changed.disconnect(dispatch_uid="tests.csv_import_sizes")
    assert [len(ids) for ids in announced] == [4, 4, 2]
    contact = Contact.objects.get(email="p9@example.com")
    assert (contact.email_consent, contact.email_consent_source) == ("granted", "import:news.csv")
    assert contact.email_consent_at is not None


def test_progress_shows_rows_per_second_and_the_time_left(login, world) -> None:
    with time_machine.travel(timezone.now(), tick=False):
        progress_at_a_fixed_time(login, world)


def progress_at_a_fixed_time(login, world) -> None:  # type: ignore[no-untyped-def]
    started = timezone.now() - timedelta(seconds=10)
    job = ContactImport.objects.create(
        tenant=world.acme,
        filename="big.csv",
        content="email\n",
        columns=["email"],
        mapping={"email": "email"},
        started_at=started,
        total_rows=12_000,
        processed_rows=2_000,
        created_count=1_990,
        status=ContactImport.Status.RUNNING,
    )
    client = login(world.bob)  # viewers see imports too
    url = f"/t/acme/contacts/import/{job.public_id}/"
    partial = client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="import-progress")
    text = partial.content.decode()
    assert "2,000 of 12,000 rows" in text
    assert "200 rows/s" in text  # 2,000 rows in 10 s
    assert "about 50 s left" in text  # 10,000 rows to go at that speed
    assert 'hx-trigger="every 1s"' in text and "<html" not in text

    ContactImport.objects.filter(pk=job.pk).update(
        status="done", processed_rows=12_000, finished_at=started + timedelta(seconds=40)
    )
    done = client.get(url, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="import-progress")
    text = done.content.decode()
    assert "12,000 rows in 40 s (300 rows/s)" in text
    assert " left" not in text.replace("Cells left out", "")
    assert "hx-trigger" not in text  # polling stops when done
    assert "Importing" not in client.get(url).content.decode()


def test_the_page_says_how_long_when_it_has_been_minutes() -> None:
    assert csv_io._duration(0.2) == "1 s"
    assert csv_io._duration(59) == "59 s"
    assert csv_io._duration(125) == "2 min 05 s"
    assert csv_io._duration(1800) == "30 min"
    assert csv_io._duration(7500) == "2 h 05 min"


def test_another_teams_import_is_not_found(login, world) -> None:
    theirs = ContactImport.objects.create(
        tenant=world.globex,
        filename="globex.csv",
        content="email\nx@globex.example\n",
        columns=["email"],
        mapping={"email": "email"},
        total_rows=1,
    )
    client = login(world.dave)
    base = f"/t/acme/contacts/import/{theirs.public_id}/"
    assert client.get(base).status_code == 404
    assert client.post(base, {"map-0": "email"}).status_code == 404
    assert client.get(base + "errors.csv").status_code == 404
    assert ContactImport.objects.get(pk=theirs.pk).status == "mapping"
    # Nor under their own team's address, for someone who is not a member.
    assert client.get(f"/t/globex/contacts/import/{theirs.public_id}/").status_code in (403, 404)
    page = client.get("/t/acme/contacts/import/").content.decode()
    assert "globex.csv" not in page
