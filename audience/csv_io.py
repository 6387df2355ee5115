"""CSV import and export of contacts.

Import: upload (with how the file writes its dates) → columns guessed and shown with a preview →
the person confirms the mapping → a background task upserts the rows (by user id, else email)
slice by slice, each slice a few set-based statements in one transaction, recording progress (rows
per second, time left) and a report: every row it could not take, and every cell it left out of a
row it took (an unreadable birthday loses the birthday, not the contact), with the reason.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import partial
from typing import Any, cast

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import CharField, F, Field, Q, QuerySet
from django.utils.timezone import now

from audience.bulk import contacts_update
from audience.identity import lock_identities
from audience.models import MAX_ID_LENGTH, Consent, Contact, ContactImport, Identity
from audience.services import (
    CONSENT_CHANNELS,
    CONTACT_EDITABLE,
    contact_apply_fields,
    contacts_changed_announce,
)
from core.db import json_text
from core.sqlite import give_writers_a_turn
from core.storable import EARLIEST, LATEST, text_problem
from tenants.models import Tenant, known_timezones

logger = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
MAX_ROWS = 200_000
# A slice's rows: the first few, then as many as the measured speed writes in WRITE_SLICE_SECONDS
# (SQLite's one writer lock is held about that long), at most MAX_SLICE_ROWS (a slice's contacts
# are announced together, and segments re-evaluate them in tasks of 500).
FIRST_SLICE_ROWS = 100
MAX_SLICE_ROWS = 2000
WRITE_SLICE_SECONDS = 0.5
# PostgreSQL has no single writer: a slice there locks only its own contacts, and longer slices
# spread the fixed cost of each (its look-ups, the progress, the announcement) over more rows.
WRITE_SLICE_SECONDS_POSTGRESQL = 2.0
_CONSENT_SUFFIXES = ("_consent", "_consent_at", "_consent_source")
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


# --- dates --------------------------------------------------------------------------------------
# How the birthday column writes its dates, chosen per import on the start page (or worked out
# from the file). ISO dates (1985-12-31, --12-31) are read whatever the choice: they cannot be
# mistaken for anything else. A year is optional (31/12), as a birthday needs none.
DATE_FORMATS = {
    "iso": "YYYY-MM-DD",
    "dmy": "DD/MM/YYYY",
    "mdy": "MM/DD/YYYY",
    "dmy_dot": "DD.MM.YYYY",
}
DATE_EXAMPLES = {
    "iso": "1985-12-31",
    "dmy": "31/12/1985",
    "mdy": "12/31/1985",
    "dmy_dot": "31.12.1985",
}
AUTO = "auto"  # the start page's default: work the format out from the file's birthdays
_TIME = r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"  # Excel adds 0:00
_ISO = re.compile(rf"^(?:(\d{{4}})-|--?)(\d{{1,2}})-(\d{{1,2}}){_TIME}$")
_PATTERNS = {
    "dmy": re.compile(rf"^(\d{{1,2}})[/-](\d{{1,2}})(?:[/-](\d{{4}}))?{_TIME}$"),
    "mdy": re.compile(rf"^(\d{{1,2}})[/-](\d{{1,2}})(?:[/-](\d{{4}}))?{_TIME}$"),
    "dmy_dot": re.compile(rf"^(\d{{1,2}})\.(\d{{1,2}})\.(?:(\d{{4}}))?{_TIME}$"),
}


def date_parse(value: str, date_format: str) -> tuple[int, int, int | None] | None:
    """(month, day, year or None) of a birthday written in `date_format` (or ISO), or None."""
    iso = _ISO.match(value)
    if iso is not None:
        year, month, day = iso.groups()
    else:
        pattern = _PATTERNS.get(date_format)
        found = pattern.match(value) if pattern is not None else None
        if found is None:
            return None
        first, second, year = found.groups()
        month, day = (first, second) if date_format == "mdy" else (second, first)
    if year and not EARLIEST.year <= int(year) <= LATEST.year:
        return None
    try:
        date(int(year or 2000), int(month), int(day))  # 2000 is a leap year: 29 Feb is fine
    except ValueError:
        return None
    return int(month), int(day), int(year) if year else None


def date_format_detect(values: Iterable[str]) -> str:
    """The format that reads the most of `values` (ties: ISO, then day first)."""
    sample = [v for v in values if v][:5000]
    if not sample:
        return "iso"
    fits = {fmt: sum(date_parse(v, fmt) is not None for v in sample) for fmt in DATE_FORMATS}
    return max(DATE_FORMATS, key=lambda fmt: fits[fmt])  # max keeps the first of equals


def import_create(
    *, tenant: Tenant, filename: str, data: bytes, actor: Any, date_format: str = AUTO
) -> ContactImport:
    """Read the header, count the rows and guess a mapping; nothing is imported yet.
    `date_format` is a key of DATE_FORMATS, or AUTO to work it out from the birthdays."""
    if date_format != AUTO and date_format not in DATE_FORMATS:
        raise CsvRejected("Choose how the file writes its dates.")
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
    mapping = {column: guess_target(column) for column in header}
    birthdays = [i for i, column in enumerate(header) if mapping[column] == "birthday"]
    dates: list[str] = []
    total = 0
    try:
        for row in rows:
            if any(cell.strip() for cell in row):
                total += 1
                if birthdays and len(dates) < 5000:
                    dates += [row[i].strip() for i in birthdays if i < len(row)]
    except csv.Error as exc:
        raise CsvRejected(f"This is not a readable CSV file: {exc}.") from None
    if total == 0:
        raise CsvRejected("The file has a header but no rows.")
    if total > MAX_ROWS:
        raise CsvRejected(f"The file has {total} rows; import at most {MAX_ROWS} at a time.")
    chosen = date_format_detect(dates) if date_format == AUTO else date_format
    return ContactImport.objects.create(
        tenant=tenant,
        created_by=actor,
        filename=filename[:255],
        content=content,
        columns=header,
        mapping=mapping,
        date_format=chosen,
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


def import_confirm(
    *,
    tenant: Tenant,
    job: ContactImport,
    mapping: dict[str, str],
    date_format: str | None = None,
) -> ContactImport:
    """Fix the mapping (and the date format, None: keep the one chosen at upload) and queue the
    job. Raises ValidationError naming what is wrong."""
    unknown = {t for t in mapping.values() if t not in TARGETS}
    if unknown or set(mapping) != set(job.columns):
        raise ValidationError("Choose what every column becomes.")
    if date_format is not None and date_format not in DATE_FORMATS:
        raise ValidationError("Choose how the file writes its dates.")
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
    ).update(
        mapping=mapping,
        date_format=date_format or job.date_format,
        status=ContactImport.Status.QUEUED,
    )
    if not updated:
        raise ValidationError("This import has already started.")
    job.refresh_from_db()
    return job


# --- rows -----------------------------------------------------------------------------------------
class RowRefused(ValueError):
    """The row names no contact (or cannot be read): none of it is imported."""


@dataclass
class ParsedRow:
    line: int
    user_id: str
    email: str
    fields: dict[str, Any]
    # (column, why) of each cell left out: the rest of the row is imported.
    warnings: list[tuple[str, str]] = field(default_factory=list)


def _consent(value: str) -> str | None:
    lowered = value.strip().lower()
    if lowered in YES:
        return Consent.GRANTED
    if lowered in NO:
        return Consent.REVOKED
    return None


def row_parse(
    *, columns: list[str], mapping: dict[str, str], date_format: str, row: list[str], line: int
) -> ParsedRow:
    """The row's user id, email and profile fields. A cell that cannot be stored (not an email,
    an unknown time zone, a date not in `date_format`, too long…) is left out with a warning and
    the rest of the row kept; RowRefused when nothing is left that names a contact."""
    if len(row) > len(columns):
        raise RowRefused(f"has {len(row)} cells but the header names {len(columns)} columns")
    values = dict(zip(columns, [c.strip() for c in row], strict=False))
    parsed = ParsedRow(line=line, user_id="", email="", fields={})
    attributes: dict[str, str] = {}
    warn = parsed.warnings
    refused_key: list[str] = []  # why a user id or email cell was left out
    for column in columns:  # in the file's order (a jsonb mapping keeps none)
        target, value = mapping.get(column, ""), values.get(column, "")
        if not target or not value:
            continue
        problem = text_problem(value)
        limit = CELL_LIMITS.get(target)
        if problem is not None:
            why = f"the cell {problem}"
        elif limit is not None and len(value) > limit:
            why = f"{len(value)} characters, but {TARGETS[target]} holds at most {limit}"
        else:
            why = _cell(target, column, value, date_format, parsed, attributes)
        if why:
            warn.append((column, why))
            if target in ("user_id", "email"):
                refused_key.append(f"{column}: {why}")
    if not parsed.user_id and not parsed.email:
        if refused_key:
            raise RowRefused("; ".join(refused_key) + ", and nothing else names its contact")
        raise RowRefused("has neither a user id nor an email")
    if attributes:
        parsed.fields["attributes"] = attributes
    return parsed


def _cell(
    target: str,
    column: str,
    value: str,
    date_format: str,
    parsed: ParsedRow,
    attributes: dict[str, str],
) -> str:
    """Record one non-empty cell on `parsed`; returns why it was left out ("" when kept)."""
    if target == "attribute":
        attributes[column] = value
    elif target == "user_id":
        parsed.user_id = value
    elif target == "email":
        try:
            validate_email(value)
        except ValidationError:
            return f"“{value}” is not an email address"
        parsed.email = parsed.fields["email"] = value.lower()
    elif target == "timezone":
        if value not in known_timezones():
            return f"“{value}” is not a time zone such as Europe/Paris"
        parsed.fields["timezone"] = value
    elif target == "birthday":
        found = date_parse(value, date_format)
        if found is None:
            return (
                f"“{value}” is not a date written {DATE_FORMATS[date_format]}"
                f" (like {DATE_EXAMPLES[date_format]})"
            )
        month, day, year = found
        parsed.fields.update(birthday_month=month, birthday_day=day, birth_year=year)
    elif target in ("email_consent", "push_consent"):
        consent = _consent(value)
        if consent is None:
            return f"“{value}” is neither yes nor no"
        parsed.fields[target] = consent
    else:
        parsed.fields[target] = value
    return ""


# --- running ------------------------------------------------------------------------------------
@dataclass
class SliceResult:
    created: int = 0
    updated: int = 0
    contact_ids: list[int] = field(default_factory=list)


def contacts_store(*, tenant: Tenant, rows: Sequence[ParsedRow], source: str) -> SliceResult:
    """Upsert the contacts of `rows`, in file order, with a few set-based statements: each row
    finds its contact by user id, else by email (the oldest with it), else creates one; a row
    naming a contact an earlier row of the slice made updates it. Must run in a transaction.

    On PostgreSQL the ids are locked first (the advisory locks ingestion takes for the same
    ids), then the contacts found, in primary-key order: a concurrent import or ingested call
    never writes the same profile at the same time."""
    result = SliceResult()
    user_ids = sorted({r.user_id for r in rows if r.user_id})
    emails = sorted({r.email for r in rows if r.email})
    lock_identities(tenant, [("user_id", u) for u in user_ids] + [("email", e) for e in emails])
    by_user: dict[str, int] = dict(
        Identity.objects.filter(
            tenant=tenant, kind=Identity.Kind.USER_ID, value__in=user_ids
        ).values_list("value", "contact_id")
    )
    by_email_id: dict[str, int] = {}
    for email, pk in (
        Contact.objects.filter(tenant=tenant, email__in=emails)
        .order_by("created_at", "pk")
        .values_list("email", "pk")
    ):
        by_email_id.setdefault(email, pk)
    stored = {
        c.pk: c
        for c in Contact.objects.filter(
            tenant=tenant, pk__in=sorted({*by_user.values(), *by_email_id.values()})
        )
        .only("tenant_id", "public_id", *_WRITTEN)  # not the cart and the other lists
        .order_by("pk")
        .select_for_update()
    }
    before = {pk: [getattr(c, n) for n in _WRITTEN] for pk, c in stored.items()}
    users: dict[str, Contact] = {u: stored[pk] for u, pk in by_user.items() if pk in stored}
    mails: dict[str, Contact] = {e: stored[pk] for e, pk in by_email_id.items() if pk in stored}
    new: list[Contact] = []
    new_ids: list[tuple[str, Contact]] = []
    touched: dict[int, Contact] = {}
    for row in rows:
        contact = (users.get(row.user_id) if row.user_id else None) or (
            mails.get(row.email) if row.email else None
        )
        if contact is None:
            contact = Contact(tenant=tenant, email=row.email, user_id=row.user_id)
            new.append(contact)
            result.created += 1
            if row.user_id:
                users[row.user_id] = contact
                new_ids.append((row.user_id, contact))
        else:
            result.updated += 1
            if row.user_id and not contact.user_id and row.user_id not in users:
                contact.user_id = row.user_id
                users[row.user_id] = contact
                new_ids.append((row.user_id, contact))
        contact_apply_fields(contact=contact, fields=row.fields, source=source)
        if contact.email:
            mails.setdefault(contact.email, contact)
        touched[id(contact)] = contact
    _insert(Contact, new, returning=True)
    changed = [c for pk, c in stored.items() if [getattr(c, n) for n in _WRITTEN] != before[pk]]
    changed_fields = {
        n
        for c in changed
        for n, old in zip(_WRITTEN, before[c.pk], strict=True)
        if getattr(c, n) != old
    }
    fields = [n for n in _WRITTEN if n in changed_fields]
    if connection.vendor == "postgresql":
        contacts_update(tenant_id=tenant.pk, contacts=changed, fields=fields)
    else:
        _update_sqlite(tenant_id=tenant.pk, contacts=changed, fields=fields)
    _insert(
        Identity,
        [
            Identity(tenant=tenant, contact_id=c.pk, kind=Identity.Kind.USER_ID, value=value)
            for value, c in new_ids
        ],
        returning=False,
    )
    result.contact_ids = sorted(c.pk for c in touched.values())
    return result


def _insert(model: type[Contact] | type[Identity], objs: list[Any], *, returning: bool) -> None:
    """Insert `objs` with one statement (PostgreSQL: their values as one JSON document, as
    audience/bulk.py writes events) or one executemany (SQLite): the ORM's bulk_create spends
    about a millisecond of Python per contact compiling its thirty columns. With `returning`, each
    object gets its primary key (found by its public id)."""
    if not objs:
        return
    fields = [f for f in model._meta.concrete_fields if not f.primary_key and not f.generated]
    columns = ", ".join(f'"{f.column}"' for f in fields)
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            record = ", ".join(
                f'"{f.column}" {str(f.db_type(connection)).split("(")[0]}' for f in fields
            )
            names = [f.attname for f in fields]
            document = json_text([{n: getattr(o, n) for n in names} for o in objs])
            cursor.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns}"
                f" FROM jsonb_to_recordset(%s::jsonb) AS v({record})"
                + (" RETURNING public_id, id" if returning else ""),
                [document],
            )
            found = dict(cursor.fetchall()) if returning else {}
        else:
            marks = ", ".join("%s" for _ in fields)
            cursor.executemany(
                f"INSERT INTO {table} ({columns}) VALUES ({marks})",
                [
                    [f.get_db_prep_save(getattr(o, f.attname), connection) for f in fields]
                    for o in objs
                ],
            )
            found = {}
            if returning:
                ids = [o.public_id.hex for o in objs]
                for start in range(0, len(ids), 900):
                    part = ids[start : start + 900]
                    cursor.execute(
                        f"SELECT public_id, id FROM {table} WHERE tenant_id = %s"
                        f" AND public_id IN ({', '.join('%s' for _ in part)})",
                        [objs[0].tenant_id, *part],
                    )
                    found.update((uuid.UUID(hex=str(k)), pk) for k, pk in cursor.fetchall())
    for o in objs:
        if returning:
            o.pk = found[o.public_id]
        o._state.adding = False


def _update_sqlite(*, tenant_id: int, contacts: list[Contact], fields: list[str]) -> None:
    """`fields` of the tenant's stored `contacts`, with one executemany (the ORM's bulk_update
    builds a CASE of every contact for every field, in Python)."""
    if not contacts or not fields:
        return
    model_fields = [cast("Field[Any, Any]", Contact._meta.get_field(n)) for n in fields]
    assignments = ", ".join(f'"{f.column}" = %s' for f in model_fields)
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE audience_contact SET {assignments} WHERE tenant_id = %s AND id = %s",
            [
                [
                    *(f.get_db_prep_save(getattr(c, f.attname), connection) for f in model_fields),
                    tenant_id,
                    c.pk,
                ]
                for c in contacts
            ],
        )


# What an import may change on a stored contact (contact_apply_fields' fields and the user id).
_WRITTEN = [
    "user_id",
    *CONTACT_EDITABLE,
    "attributes",
    *(f"{channel}{suffix}" for channel in CONSENT_CHANNELS for suffix in _CONSENT_SUFFIXES),
]


def import_run(
    *, tenant: Tenant, job: ContactImport, seconds: float | None = None
) -> ContactImport:
    """Import the rows after `processed_rows` (so a restarted task resumes), slice by slice.

    A slice is one transaction: its contacts, identities and the progress counters commit
    together, so an import that stops anywhere (a crash, a killed worker) has every row up to
    `processed_rows` stored and none after it, and the next run carries on from there. Rows are
    read and checked before the transaction opens; the transaction writes the whole slice with
    a few set-based statements (`contacts_store`). The slice's size follows the measured speed
    so that a transaction lasts about WRITE_SLICE_SECONDS: SQLite has one writer at a time, and
    a page that saves something waits for the slice in progress. After `seconds` the run stops
    between slices and returns the job still running, for the caller to continue."""
    rows = _reader(job.content)
    next(rows)
    numbered = ((n, r) for n, r in enumerate(rows, start=2) if any(c.strip() for c in r))
    for _ in range(job.processed_rows):
        next(numbered, None)
    deadline = None if seconds is None else time.monotonic() + seconds
    size = FIRST_SLICE_ROWS
    mapping, columns = dict(job.mapping), list(job.columns)
    date_format = job.date_format if job.date_format in DATE_FORMATS else "iso"
    source = f"import:{job.filename}"[:100]
    if job.started_at is None:
        job.started_at = now()
        ContactImport.objects.filter(pk=job.pk, started_at=None).update(started_at=job.started_at)
    while True:
        batch = list(itertools.islice(numbered, size))
        if not batch:
            break
        took, fixed = _import_slice(
            tenant=tenant,
            job=job,
            batch=batch,
            source=source,
            parse=partial(row_parse, columns=columns, mapping=mapping, date_format=date_format),
        )
        # The next slice: as many rows as this speed writes in WRITE_SLICE_SECONDS, growing at
        # most fourfold at a time (the first slices also warm the caches up). Reading the rows
        # and what runs after the commit are not part of the transaction, nor of its time.
        budget = (
            WRITE_SLICE_SECONDS_POSTGRESQL
            if connection.vendor == "postgresql"
            else WRITE_SLICE_SECONDS
        )
        # The progress update costs the same for any slice (on SQLite it rewrites the import's
        # row, the uploaded file with it): the rows get the rest of the budget, and at least as
        # long as that update takes, so that it never costs more than the rows themselves.
        # A budget of 0 means one row per transaction.
        rows_budget = max(budget - fixed, fixed) if budget > 0 else 0.0
        fit = int(len(batch) * rows_budget / max(took - fixed, 1e-3))
        size = max(1, min(MAX_SLICE_ROWS, 4 * len(batch), fit))
        if deadline is not None and time.monotonic() > deadline:
            job.refresh_from_db()
            return job
        give_writers_a_turn()
    ContactImport.objects.filter(pk=job.pk).update(
        status=ContactImport.Status.DONE, finished_at=now()
    )
    job.refresh_from_db()
    return job


def _import_slice(
    *,
    tenant: Tenant,
    job: ContactImport,
    batch: list[tuple[int, list[str]]],
    source: str,
    parse: Callable[..., ParsedRow],
) -> tuple[float, float]:
    """Import one slice of rows in one transaction, with the progress it makes; returns how long
    the transaction took until its commit, and how long of that its progress update took."""
    parsed: list[ParsedRow] = []
    report: list[dict[str, Any]] = []
    failed = 0
    for line, row in batch:
        try:
            parsed.append(parse(row=row, line=line))
        except RowRefused as exc:
            failed += 1
            report.append(_entry(line, "", f"Row {line} {exc}", ROW_NOT_IMPORTED))
    began = time.monotonic()
    with transaction.atomic():
        stored = SliceResult()
        try:
            with transaction.atomic():  # a savepoint: on a surprise, the rows one by one
                stored = contacts_store(tenant=tenant, rows=parsed, source=source)
        except (DataError, IntegrityError):
            # Something row_parse did not foresee: each row alone, so only the culprit fails.
            # Not a lost connection or a lock (OperationalError): that stops the slice, which
            # rolls back whole and is taken again when the import resumes.
            logger.exception("import %s: a slice could not be stored at once", job.pk)
            kept: list[ParsedRow] = []
            for one_row in parsed:
                try:
                    with transaction.atomic():
                        one = contacts_store(tenant=tenant, rows=[one_row], source=source)
                except (DataError, IntegrityError):
                    failed += 1
                    message = f"Row {one_row.line} could not be stored"
                    report.append(_entry(one_row.line, "", message, ROW_NOT_IMPORTED))
                else:
                    kept.append(one_row)
                    stored.created += one.created
                    stored.updated += one.updated
                    stored.contact_ids += one.contact_ids
            parsed = kept
        warnings = 0
        for done in parsed:
            for column, why in done.warnings:
                warnings += 1
                message = f"Row {done.line} {column}: {why}"
                report.append(_entry(done.line, column, message, CELL_LEFT_OUT))
        report.sort(key=lambda e: e["row"])
        contacts_changed_announce(tenant=tenant, contact_ids=stored.contact_ids)  # once a slice
        # One UPDATE a slice: on SQLite it rewrites the whole row, the uploaded file included.
        # The report grows in memory: one run at a time imports a job (contact_import_run claims
        # it), and a run loads the job, its report with it, when it starts.
        room = MAX_REPORTED_ERRORS - len(job.errors)
        errors = job.errors + report[:room] if report and room > 0 else None
        updating = time.monotonic()
        ContactImport.objects.filter(pk=job.pk).update(
            processed_rows=F("processed_rows") + len(batch),
            created_count=F("created_count") + stored.created,
            updated_count=F("updated_count") + stored.updated,
            failed_count=F("failed_count") + failed,
            warning_count=F("warning_count") + warnings,
            **({"errors": errors} if errors is not None else {}),
        )
        if errors is not None:
            job.errors = errors
        ended = time.monotonic()
    return ended - began, ended - updating


ROW_NOT_IMPORTED = "row not imported"
CELL_LEFT_OUT = "cell left out"


def _entry(line: int, column: str, message: str, outcome: str) -> dict[str, Any]:
    return {"row": line, "column": column, "message": message, "outcome": outcome}


def report_entries(job: ContactImport) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(rows not imported, cells left out) of the job's report; older reports held rows only."""
    rows = [e for e in job.errors if e.get("outcome", ROW_NOT_IMPORTED) == ROW_NOT_IMPORTED]
    cells = [e for e in job.errors if e.get("outcome") == CELL_LEFT_OUT]
    return rows, cells


@dataclass
class Progress:
    """What the import page says about a running or finished import."""

    percent: int
    processed: str
    total: str
    created: str
    updated: str
    failed: str
    warnings: str
    rate: str  # "1,234 rows/s", or "" before the first slice
    left: str  # "about 2 min left", or ""
    took: str  # "50,000 rows in 21 s", when done


def progress(job: ContactImport, *, at: datetime | None = None) -> Progress:
    at = at or now()
    started = job.started_at
    rate = left = took = ""
    if started is not None:
        end = job.finished_at if job.is_finished and job.finished_at else at
        seconds = max((end - started).total_seconds(), 0.001)
        speed = job.processed_rows / seconds
        if job.processed_rows and (job.is_finished or seconds >= 1):
            rate = f"{speed:,.0f} rows/s"
        if job.status == ContactImport.Status.RUNNING and job.processed_rows and seconds >= 1:
            left = f"about {_duration((job.total_rows - job.processed_rows) / speed)} left"
        if job.status == ContactImport.Status.DONE:
            took = f"{job.processed_rows:,} rows in {_duration(seconds)}"
    return Progress(
        percent=job.percent,
        processed=f"{job.processed_rows:,}",
        total=f"{job.total_rows:,}",
        created=f"{job.created_count:,}",
        updated=f"{job.updated_count:,}",
        failed=f"{job.failed_count:,}",
        warnings=f"{job.warning_count:,}",
        rate=rate,
        left=left,
        took=took,
    )


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{max(seconds, 1)} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s" if minutes < 10 else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


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
