"""CSV import and export of contacts.

Import: upload → columns guessed and shown with a preview → the person confirms the mapping →
a background task upserts the rows (by user id, else email), chunk by chunk, recording progress
and every row it could not take with the reason.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Iterator
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DataError, IntegrityError, transaction
from django.db.models import CharField, F, Q, QuerySet
from django.utils.timezone import now

from audience.models import MAX_ID_LENGTH, Consent, Contact, ContactImport
from audience.segment_spec import SpecError, parse_birthday
from audience.services import contact_upsert, contacts_changed_announce
from core.sqlite import give_writers_a_turn
from core.storable import text_problem
from tenants.models import Tenant, known_timezones

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000
CHUNK_ROWS = 500
# The longest a chunk's transaction runs: SQLite's one writer lock is held that long at most.
WRITE_SLICE_SECONDS = 0.5
MAX_REPORTED_ERRORS = 1000
# The longest cell each target stores: a longer one fails its row with this reason (the
# database would refuse it, and the whole chunk with it).
CELL_LIMITS = {
    "user_id": MAX_ID_LENGTH,
    **{
        name: int(cast("CharField[Any, Any]", Contact._meta.get_field(name)).max_length or 0)
        for name in ("email", "first_name", "last_name", "phone", "timezone", "locale")
    },
}
PREVIEW_ROWS = 5

# What a column can become. "attributes.<column>" keeps any other column on the profile.
TARGETS = {
    "": "— skip this column —",
    "user_id": "User id",
    "email": "Email",
    "first_name": "First name",
    "last_name": "Last name",
    "phone": "Phone",
    "timezone": "Time zone",
    "locale": "Locale",
    "birthday": "Birthday",
    "email_consent": "Email consent",
    "push_consent": "Push consent",
    "attribute": "Custom attribute (named after the column)",
}
# Header spellings we recognise without asking.
ALIASES = {
    "user_id": {"user_id", "userid", "user id", "customer_id", "customer id", "id", "external_id"},
    "email": {"email", "e-mail", "email address", "mail"},
    "first_name": {"first_name", "firstname", "first name", "given name"},
    "last_name": {"last_name", "lastname", "last name", "surname", "family name"},
    "phone": {"phone", "phone number", "mobile", "telephone"},
    "timezone": {"timezone", "time zone", "tz"},
    "locale": {"locale", "language"},
    "birthday": {"birthday", "birth date", "birthdate", "date of birth", "dob"},
    "email_consent": {"email_consent", "email consent", "newsletter", "email opt-in", "opt_in"},
    "push_consent": {"push_consent", "push consent"},
}
YES = {"yes", "y", "true", "1", "granted", "opt-in", "opted in", "subscribed"}
NO = {"no", "n", "false", "0", "revoked", "opt-out", "opted out", "unsubscribed"}
EXPORT_COLUMNS = [
    "id",
    "user_id",
    "email",
    "first_name",
    "last_name",
    "phone",
    "timezone",
    "locale",
    "birthday",
    "lifecycle_stage",
    "email_consent",
    "push_consent",
    "created_at",
    "last_seen_at",
    "attributes",
]


class CsvRejected(ValueError):
    """The upload cannot be imported at all; the message says why."""


def decode_upload(data: bytes) -> str:
    if len(data) > MAX_UPLOAD_BYTES:
        raise CsvRejected(f"The file is larger than {MAX_UPLOAD_BYTES // (1024 * 1024)} MB.")
    if b"\x00" in data:
        # The file is kept in the database until it is imported, and no text column holds NUL.
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise CsvRejected(
            f"Line {line} contains the NUL character, which cannot be stored: this looks like a "
            "binary file (or UTF-16 text; save it as UTF-8 CSV)."
        )
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise CsvRejected("The file is neither UTF-8 nor Windows-1252 text.")


def _reader(content: str) -> Iterator[list[str]]:
    sample = content[:4096]
    try:
        dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    return csv.reader(io.StringIO(content), dialect)


def import_create(*, tenant: Tenant, filename: str, data: bytes, actor: Any) -> ContactImport:
    """Read the header, count the rows and guess a mapping; nothing is imported yet."""
    content = decode_upload(data)
    rows = _reader(content)
    try:
        header = [h.strip() for h in next(rows)]
    except StopIteration:
        raise CsvRejected("The file is empty.") from None
    except csv.Error as exc:
        raise CsvRejected(f"This is not a readable CSV file: {exc}.") from None
    if not any(header):
        raise CsvRejected("The first row must name the columns.")
    if len(set(header)) != len(header):
        raise CsvRejected("Two columns have the same name; rename one.")
    try:
        total = sum(1 for row in rows if any(cell.strip() for cell in row))
    except csv.Error as exc:
        raise CsvRejected(f"This is not a readable CSV file: {exc}.") from None
    if total == 0:
        raise CsvRejected("The file has a header but no rows.")
    if total > MAX_ROWS:
        raise CsvRejected(f"The file has {total} rows; import at most {MAX_ROWS} at a time.")
    return ContactImport.objects.create(
        tenant=tenant,
        created_by=actor,
        filename=filename[:255],
        content=content,
        columns=header,
        mapping={column: guess_target(column) for column in header},
        total_rows=total,
    )


def guess_target(column: str) -> str:
    name = column.strip().lower()
    for target, names in ALIASES.items():
        if name in names:
            return target
    return "attribute"


def preview(job: ContactImport) -> list[list[str]]:
    rows = _reader(job.content)
    next(rows)
    out = []
    for row in rows:
        if any(cell.strip() for cell in row):
            out.append(row)
        if len(out) == PREVIEW_ROWS:
            break
    return out


def import_confirm(*, tenant: Tenant, job: ContactImport, mapping: dict[str, str]) -> ContactImport:
    """Fix the mapping and queue the job. Raises ValidationError naming what is wrong."""
    unknown = {t for t in mapping.values() if t not in TARGETS}
    if unknown or set(mapping) != set(job.columns):
        raise ValidationError("Choose what every column becomes.")
    chosen = [t for t in mapping.values() if t and t != "attribute"]
    duplicates = {t for t in chosen if chosen.count(t) > 1}
    if duplicates:
        raise ValidationError(
            f"Only one column can be {', '.join(TARGETS[t] for t in sorted(duplicates))}."
        )
    if "user_id" not in chosen and "email" not in chosen:
        raise ValidationError("Map a column to User id or Email: that is how rows find contacts.")
    updated = ContactImport.objects.filter(
        tenant=tenant, pk=job.pk, status=ContactImport.Status.MAPPING
    ).update(mapping=mapping, status=ContactImport.Status.QUEUED)
    if not updated:
        raise ValidationError("This import has already started.")
    job.refresh_from_db()
    return job


def _consent(value: str, column: str) -> str | None:
    lowered = value.strip().lower()
    if not lowered:
        return None
    if lowered in YES:
        return Consent.GRANTED
    if lowered in NO:
        return Consent.REVOKED
    raise ValueError(f"{column}: “{value}” is neither yes nor no.")


def row_fields(job: ContactImport, row: list[str]) -> tuple[str, str, dict[str, Any]]:
    """(user_id, email, fields) of one row, or ValueError with a message for the report."""
    if len(row) > len(job.columns):
        raise ValueError(f"has {len(row)} cells but the header names {len(job.columns)} columns")
    values = dict(zip(job.columns, [c.strip() for c in row], strict=False))
    for column, value in values.items():
        target = job.mapping.get(column)
        if not target:
            continue
        problem = text_problem(value)
        if problem is not None:
            raise ValueError(f"{column}: the cell {problem}")
        limit = CELL_LIMITS.get(target)
        if limit is not None and len(value) > limit:
            raise ValueError(
                f"{column}: {len(value)} characters, but {TARGETS[target]} holds at most {limit}"
            )
    fields: dict[str, Any] = {}
    attributes: dict[str, str] = {}
    user_id = email = ""
    for column, target in job.mapping.items():
        value = values.get(column, "")
        if not target:
            continue
        if target == "attribute":
            if value:
                attributes[column] = value
        elif target == "user_id":
            user_id = value
        elif target == "email":
            if value:
                try:
                    validate_email(value)
                except ValidationError:
                    raise ValueError(f"{column}: “{value}” is not an email address") from None
            email = value.lower()
            fields["email"] = email
        elif target == "timezone":
            if value and value not in known_timezones():
                raise ValueError(f"{column}: “{value}” is not a time zone such as Europe/Paris")
            if value:
                fields["timezone"] = value
        elif target == "birthday":
            if value:
                try:
                    fields.update(parse_birthday(value))
                except SpecError:
                    raise ValueError(f"{column}: “{value}” is not a date like 1990-05-17") from None
        elif target in ("email_consent", "push_consent"):
            consent = _consent(value, column)
            if consent:
                fields[target] = consent
        elif value:
            fields[target] = value
    if not user_id and not email:
        raise ValueError("has neither a user id nor an email")
    if attributes:
        fields["attributes"] = attributes
    return user_id, email, fields


def import_run(
    *, tenant: Tenant, job: ContactImport, seconds: float | None = None
) -> ContactImport:
    """Import the rows after `processed_rows` (so a restarted task resumes), chunk by chunk.

    A chunk is one transaction: its rows and the progress counters commit together, so an
    import that stops anywhere (a crash, a killed worker) has every row up to `processed_rows`
    stored and none after it, and the next run carries on from there. A chunk ends after
    CHUNK_ROWS rows or WRITE_SLICE_SECONDS, whichever comes first: SQLite has one writer at a
    time, and a page that saves something waits for the chunk in progress. After `seconds` the
    run stops between chunks and returns the job still running, for the caller to continue."""
    rows = _reader(job.content)
    next(rows)
    numbered = ((n, r) for n, r in enumerate(rows, start=2) if any(c.strip() for c in r))
    source = f"import:{job.filename}"[:100]
    for _ in range(job.processed_rows):
        next(numbered, None)
    deadline = None if seconds is None else time.monotonic() + seconds
    while _import_chunk(tenant=tenant, job=job, numbered=numbered, source=source):
        if deadline is not None and time.monotonic() > deadline:
            job.refresh_from_db()
            return job
        give_writers_a_turn()
    ContactImport.objects.filter(pk=job.pk).update(
        status=ContactImport.Status.DONE, finished_at=now()
    )
    job.refresh_from_db()
    return job


def _import_chunk(
    *, tenant: Tenant, job: ContactImport, numbered: Iterator[tuple[int, list[str]]], source: str
) -> int:
    """Import the next chunk of rows in one transaction; returns how many rows it took."""
    taken = created = updated = failed = 0
    errors = []
    touched: list[int] = []
    with transaction.atomic():
        started = time.monotonic()
        for line, row in numbered:
            taken += 1
            try:
                user_id, email, fields = row_fields(job, row)
                with transaction.atomic():
                    contact, was_created = contact_upsert(
                        tenant=tenant,
                        user_id=user_id,
                        email=email,
                        fields=fields,
                        source=source,
                        announce=False,
                    )
            except (ValueError, ValidationError) as exc:
                failed += 1
                errors.append({"row": line, "message": f"Row {line} {exc}"})
            except (DataError, IntegrityError):
                # The row's data, not foreseen by row_fields: its savepoint rolled back, the others
                # go on. Not a lost connection or a lock (OperationalError): that stops the chunk,
                # which rolls back whole and is taken again when the import resumes.
                logger.exception("import %s: row %s could not be stored", job.pk, line)
                failed += 1
                errors.append({"row": line, "message": f"Row {line} could not be stored"})
            else:
                created += was_created
                updated += not was_created
                touched.append(contact.pk)
            if taken == CHUNK_ROWS or time.monotonic() - started > WRITE_SLICE_SECONDS:
                break
        if not taken:
            return 0
        contacts_changed_announce(tenant=tenant, contact_ids=touched)  # once per chunk
        ContactImport.objects.filter(pk=job.pk).update(
            processed_rows=F("processed_rows") + taken,
            created_count=F("created_count") + created,
            updated_count=F("updated_count") + updated,
            failed_count=F("failed_count") + failed,
        )
        if errors:
            job.refresh_from_db(fields=["errors"])
            room = MAX_REPORTED_ERRORS - len(job.errors)
            if room > 0:
                ContactImport.objects.filter(pk=job.pk).update(errors=job.errors + errors[:room])
    return taken


EXPORT_PAGE = 2000


def _pages(contacts: QuerySet[Contact]) -> Iterator[Contact]:
    """`contacts` oldest first, a page at a time by keyset (created_at, pk): memory stays flat
    without a server-side cursor, which transaction pooling (PgBouncer) cannot keep open
    across the pages."""
    ordered = contacts.order_by("created_at", "pk")
    page = list(ordered[:EXPORT_PAGE])
    while page:
        yield from page
        last = page[-1]
        after = Q(created_at__gt=last.created_at) | Q(created_at=last.created_at, pk__gt=last.pk)
        page = list(ordered.filter(after)[:EXPORT_PAGE])


def export_rows(contacts: QuerySet[Contact]) -> Iterator[list[str]]:
    yield EXPORT_COLUMNS
    for c in _pages(contacts):
        birthday = ""
        if c.birthday_month:
            birthday = f"{c.birthday_month:02d}-{c.birthday_day:02d}"  # MM-DD when no year
            if c.birth_year:
                birthday = f"{c.birth_year:04d}-{birthday}"
        yield [
            csv_safe(cell)
            for cell in (
                str(c.public_id),
                c.user_id,
                c.email,
                c.first_name,
                c.last_name,
                c.phone,
                c.timezone,
                c.locale,
                birthday,
                c.lifecycle_stage,
                c.email_consent,
                c.push_consent,
                c.created_at.isoformat(),
                c.last_seen_at.isoformat() if c.last_seen_at else "",
                _json(c.attributes),
            )
        ]


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False) if value else ""


def csv_safe(cell: str) -> str:
    """Defuse spreadsheet formulas in exported cells (CSV injection)."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell
