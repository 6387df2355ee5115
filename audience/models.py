"""Contacts (one profile per person, joining anonymous browsing to the known customer), the
identities that point to them, and the events they did."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from django.contrib.postgres.indexes import OpClass
from django.db import models
from django.db.models import F
from django.db.models.functions import Cast, Upper
from django.utils.timezone import now

from tenants.models import Tenant


class PrefixSearchIndex(models.Index):
    """`(tenant, UPPER(field) text_pattern_ops)`, as migration 0005 made it. Replaced by
    UpperPrefixIndex (0010): row-level security keeps PostgreSQL from using an index on
    UPPER(field) for a search (UPPER is not leakproof). Kept for the migrations that name it."""

    def __init__(self, field: str, *, name: str) -> None:
        self.field = field
        super().__init__("tenant", OpClass(Upper(field), name="text_pattern_ops"), name=name)

    def deconstruct(self) -> tuple[str, tuple[str, ...], dict[str, str]]:
        return ("audience.models.PrefixSearchIndex", (self.field,), {"name": self.name})

    def create_sql(self, model, schema_editor, using="", **kwargs):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            plain = models.Index("tenant", Upper(self.field), name=self.name)
            return plain.create_sql(model, schema_editor, using=using, **kwargs)
        return super().create_sql(model, schema_editor, using=using, **kwargs)


class UpperPrefixIndex(models.Index):
    """`(tenant, <field>_upper text_pattern_ops)` on the upper-cased copy of `field` (a stored
    generated column): answers `<field>_upper__prefix=Upper(term)` (core/lookups.py) within a
    tenant from the index. A plain column and the leakproof `^@` (not UPPER(field) LIKE …) let
    the planner use the index under row-level security, which otherwise holds back every
    condition built on a function that is not leakproof. The pattern operator class makes
    prefixes indexable under any collation. SQLite has no operator classes: `(tenant, column)`."""

    def __init__(self, field: str, *, name: str) -> None:
        self.field = field
        column = f"{field}_upper"
        super().__init__("tenant", OpClass(models.F(column), name="text_pattern_ops"), name=name)

    def deconstruct(self) -> tuple[str, tuple[str, ...], dict[str, str]]:
        return ("audience.models.UpperPrefixIndex", (self.field,), {"name": self.name})

    def create_sql(self, model, schema_editor, using="", **kwargs):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor != "postgresql":
            plain = models.Index(fields=["tenant", f"{self.field}_upper"], name=self.name)
            return plain.create_sql(model, schema_editor, using=using, **kwargs)
        return super().create_sql(model, schema_editor, using=using, **kwargs)


def _upper(field: str) -> models.GeneratedField:
    return models.GeneratedField(
        expression=Upper(field), output_field=models.TextField(), db_persist=True
    )


class CoveringIndex(models.Index):
    """An index on `fields` whose entries also carry the `include` columns (PostgreSQL's
    INCLUDE), so a query that needs only those columns is answered from the index alone (an
    index-only scan) without visiting the table's rows. Declared without Django's own `include`,
    which SQLite lacks (it would warn, models.W040): SQLite gets the index on `fields`."""

    def __init__(
        self,
        *,
        fields: list[str],
        include: list[str],
        name: str,
        condition: models.Q | None = None,
    ) -> None:
        self.covering = list(include)
        super().__init__(fields=fields, name=name, condition=condition)

    def deconstruct(self) -> tuple[str, Sequence[Any], dict[str, object]]:
        _, args, kwargs = super().deconstruct()
        return ("audience.models.CoveringIndex", args, {**kwargs, "include": self.covering})

    def create_sql(self, model, schema_editor, using="", **kwargs):  # type: ignore[no-untyped-def]
        if schema_editor.connection.vendor == "postgresql":
            covering = models.Index(
                fields=self.fields, include=self.covering, name=self.name, condition=self.condition
            )
            return covering.create_sql(model, schema_editor, using=using, **kwargs)
        return super().create_sql(model, schema_editor, using=using, **kwargs)


class Consent(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"
    GRANTED = "granted", "Granted"
    REVOKED = "revoked", "Revoked"


class LifecycleStage(models.TextChoices):
    """Where a contact is in the customer journey, computed from behaviour by the team's rules
    (audience/stages.py, docs/lifecycle.md). In journey order: the map shows them so."""

    AWARENESS = "awareness", "Awareness"  # anonymous: browsing, not known yet
    ACQUISITION = "acquisition", "Acquisition"  # identified (user id or email), not a customer
    ONBOARDING = "onboarding", "Onboarding"  # first order or sign-up within the last N days
    ENGAGEMENT = "engagement", "Engagement"  # a customer who keeps buying / coming back
    RETENTION = "retention", "Retention risk"  # a customer drifting away
    ADVOCACY = "advocacy", "Advocacy"  # a promoter, reviewer or referrer, lately


# The longest userId / anonymousId accepted at any edge: the width of the column that stores them.
MAX_ID_LENGTH = 255
MAX_QUANTITY = 1_000_000  # a cart line's quantity (Segment's e-commerce `quantity`)


class Contact(models.Model):
    # No index of its own: every index of this table starts with tenant already.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    user_id = models.CharField(max_length=255, blank=True)  # the integrator's id, when known
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    first_name = models.CharField(max_length=120, blank=True)
    last_name = models.CharField(max_length=120, blank=True)
    timezone = models.CharField(max_length=64, blank=True)  # IANA; empty: the tenant's
    locale = models.CharField(max_length=35, blank=True)
    # A birthday needs no year: month and day drive birthday flows; the year is kept if given.
    birthday_month = models.PositiveSmallIntegerField(null=True, blank=True)
    birthday_day = models.PositiveSmallIntegerField(null=True, blank=True)
    birth_year = models.PositiveSmallIntegerField(null=True, blank=True)
    attributes = models.JSONField(default=dict, blank=True)
    email_consent = models.CharField(max_length=8, choices=Consent.choices, default=Consent.UNKNOWN)
    email_consent_at = models.DateTimeField(null=True, blank=True)
    email_consent_source = models.CharField(max_length=100, blank=True)
    push_consent = models.CharField(max_length=8, choices=Consent.choices, default=Consent.UNKNOWN)
    push_consent_at = models.DateTimeField(null=True, blank=True)
    push_consent_source = models.CharField(max_length=100, blank=True)
    # Computed by audience/stages.py (never edited by hand): indexed with the tenant, so the
    # journey map's counts are an index-only scan. Ingestion never writes it, so the index does
    # not cost ingestion's in-place (HOT) updates of the row.
    lifecycle_stage = models.CharField(
        max_length=16, choices=LifecycleStage.choices, default=LifecycleStage.AWARENESS
    )
    # Kept current from events so templates and triggers read them without scanning events.
    cart = models.JSONField(default=list, blank=True)  # [{"sku", "quantity", "price", …}]
    wishlist = models.JSONField(default=list, blank=True)  # [sku, …]
    recently_viewed = models.JSONField(default=list, blank=True)  # [sku, …], newest first
    created_at = models.DateTimeField(default=now, editable=False)
    # Deliberately not indexed: ingestion rewrites it (and the cart, the recently viewed…) on
    # every event, and with no indexed column changing PostgreSQL updates the row in place (a
    # HOT update) instead of adding an entry to each of this table's indexes.
    last_seen_at = models.DateTimeField(null=True, blank=True)
    # Upper-cased copies for contact search (UpperPrefixIndex says why), kept by the database.
    email_upper = _upper("email")
    first_name_upper = _upper("first_name")
    last_name_upper = _upper("last_name")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="contact_tenant_public_id"
            ),
        ]
        indexes = [
            models.Index(fields=["tenant", "email"], name="contact_tenant_email_idx"),
            models.Index(fields=["tenant", "user_id"], name="contact_tenant_user_id_idx"),
            models.Index(fields=["tenant", "-created_at"], name="contact_tenant_created_idx"),
            models.Index(fields=["tenant", "lifecycle_stage"], name="contact_tenant_stage_idx"),
            # Contact search (selectors.contact_list): prefixes of email and names.
            UpperPrefixIndex("email", name="contact_tenant_email_pfx_idx"),
            UpperPrefixIndex("first_name", name="contact_tenant_first_pfx_idx"),
            UpperPrefixIndex("last_name", name="contact_tenant_last_pfx_idx"),
        ]

    def __str__(self) -> str:
        return self.email or self.user_id or f"anonymous {self.public_id}"


class Identity(models.Model):
    """One id that leads to a contact: the integrator's user id or a browser's anonymous id.
    Unique per tenant, so one id can never point at two people."""

    class Kind(models.TextChoices):
        USER_ID = "user_id", "User id"
        ANONYMOUS_ID = "anonymous_id", "Anonymous id"

    # No index of its own: every index of this table starts with tenant already.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    # No database constraint: a composite (tenant_id, contact_id) one replaces it where the
    # schema is made Citus-ready (tenants/keys.py); Django still cascades deletes.
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="identities", db_constraint=False
    )
    kind = models.CharField(max_length=12, choices=Kind.choices)
    value = models.CharField(max_length=MAX_ID_LENGTH)
    created_at = models.DateTimeField(default=now, editable=False)

    class Meta:
        verbose_name_plural = "identities"
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "kind", "value"], name="identity_tenant_kind_value"
            ),
        ]
        indexes = [models.Index(fields=["tenant", "contact"], name="identity_tenant_contact_idx")]

    def __str__(self) -> str:
        return f"{self.kind}={self.value}"


class Event(models.Model):
    """Something a contact did. On PostgreSQL the table is partitioned by month of
    `occurred_at` (migration 0012, audience/partitions.py): its primary key there is
    (tenant_id, id, occurred_at), and retention drops whole months. No other table holds a
    foreign key into it; the message id's uniqueness lives in EventKey."""

    class Type(models.TextChoices):
        TRACK = "track", "Track"
        PAGE = "page", "Page"
        SCREEN = "screen", "Screen"
        IDENTIFY = "identify", "Identify"
        ALIAS = "alias", "Alias"
        GROUP = "group", "Group"

    # No index of its own: every index of this table starts with tenant already.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    # No database constraint (Django still cascades deletes): a composite (tenant_id, contact_id)
    # one replaces it where the schema is made Citus-ready (tenants/keys.py).
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="events", db_constraint=False
    )
    type = models.CharField(max_length=8, choices=Type.choices, default=Type.TRACK)
    name = models.CharField(max_length=200)
    properties = models.JSONField(default=dict, blank=True)
    context = models.JSONField(default=dict, blank=True)
    occurred_at = models.DateTimeField()  # client time, corrected by sentAt clock skew
    received_at = models.DateTimeField(default=now)
    # The idempotency key, unique per tenant: EventKey holds it (a partitioned table cannot).
    message_id = models.CharField(max_length=100)
    source = models.CharField(max_length=40, default="api")

    class Meta:
        indexes = [
            models.Index(
                fields=["tenant", "contact", "occurred_at"], name="event_contact_time_idx"
            ),
            # Segment conditions on events (segments/compiler.py) read who did an event in a
            # time window and how often: with the contact (and id, for COUNT) in the index, that
            # is an index-only scan instead of a visit to every matching event row, which are
            # spread over the whole table (a 3-condition count on 10M events: 2.1 s → ~0.5 s).
            CoveringIndex(
                fields=["tenant", "name", "occurred_at"],
                include=["contact", "id"],
                name="event_name_time_cover_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} at {self.occurred_at:%Y-%m-%d %H:%M}"


class EventKey(models.Model):
    """A stored event's message id: the ingestion dedupe key, kept for exactly as long as its
    event (retention deletes both). A table of its own because a partitioned events table
    cannot hold a unique constraint without the partition key in it, and (tenant, message_id)
    must stay unique across every month, not within one."""

    pk = models.CompositePrimaryKey("tenant_id", "message_id")
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    message_id = models.CharField(max_length=100)
    occurred_at = models.DateTimeField()  # its event's, so retention finds the keys to go

    class Meta:
        indexes = [models.Index(fields=["tenant", "occurred_at"], name="eventkey_tenant_time_idx")]

    def __str__(self) -> str:
        return self.message_id


class Order(models.Model):
    """A completed order (an "Order Completed" event's facts), kept beyond event retention: order
    metrics in segments and "bought together" recommendations read it (audience/orders.py)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="orders", db_constraint=False
    )
    message_id = models.CharField(max_length=100)  # its event's
    occurred_at = models.DateTimeField()
    # The first of total / revenue / value that is a number (segments/conditions/orders.py).
    value = models.DecimalField(max_digits=20, decimal_places=6, null=True)
    currency = models.CharField(max_length=3, blank=True)
    properties = models.JSONField(default=dict)  # the event's, for recommendations

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "message_id"], name="order_tenant_message_id"
            ),
        ]
        indexes = [
            models.Index(
                fields=["tenant", "contact", "occurred_at"], name="order_tenant_contact_time_idx"
            ),
            # Order conditions over a window ("2+ orders in 365 days") read who ordered when,
            # and how often: with the contact (and id, for COUNT) in the index that is an
            # index-only scan, as the events' covering index gave them (bench/segments.py: the
            # 3-condition count at 1M contacts, 0.64 s → 0.30 s).
            CoveringIndex(
                fields=["tenant", "occurred_at"],
                include=["contact", "id"],
                name="order_tenant_time_cover_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"order {self.message_id} at {self.occurred_at:%Y-%m-%d %H:%M}"


class EventRollup(models.Model):
    """Per tenant, UTC day and event name: how many events, by how many contacts, and the orders'
    value that day. Kept beyond event retention (analytics reads it)."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField()  # UTC
    name = models.CharField(max_length=200)
    events = models.PositiveBigIntegerField()
    contacts = models.PositiveIntegerField()  # distinct that day
    revenue = models.DecimalField(max_digits=20, decimal_places=6, default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "day", "name"], name="eventrollup_tenant_day_name"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} on {self.day}: {self.events}"


class Product(models.Model):
    """The tenant's catalog, kept current through the products API."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    sku = models.CharField(max_length=100)
    name = models.CharField(max_length=300)
    url = models.URLField(max_length=1000, blank=True)
    image_url = models.URLField(max_length=1000, blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    currency = models.CharField(max_length=3, default="EUR")
    in_stock = models.BooleanField(default=True)
    category = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=now, editable=False)
    updated_at = models.DateTimeField(default=now)
    # The price in cents as a bigint, kept by the database. Row-level security lets PostgreSQL
    # use only leakproof operators in an index condition (tenants/rls.py): numeric comparisons
    # are not, bigint ones are, so "similar" reads a category's nearest prices on this column
    # as an index range (docs/personalisation/recommendations.md).
    price_cents = models.GeneratedField(
        expression=Cast(F("price") * 100, models.BigIntegerField()),
        output_field=models.BigIntegerField(),
        db_persist=True,
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "sku"], name="product_tenant_sku"),
            models.UniqueConstraint(
                fields=["tenant", "public_id"], name="product_tenant_public_id"
            ),
        ]
        indexes = [
            # A category's products (recommendations' candidates), and its nearest prices
            # ("similar": category = … AND price_cents >= … ORDER BY price_cents) as one range.
            models.Index(
                fields=["tenant", "category", "price_cents"], name="product_tenant_cat_cents_idx"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class TrendingProduct(models.Model):
    """What sells and draws views lately, precomputed by a periodic task
    (audience/recommendation_stats.py) so that a "trending" recommendation reads a few indexed
    rows instead of a week of events: the top products of each category (`overall` False) and
    of the whole catalog (`overall` True, category empty), ranked from 1."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    overall = models.BooleanField(default=False)
    category = models.CharField(max_length=200, blank=True)
    rank = models.PositiveSmallIntegerField()
    sku = models.CharField(max_length=100)
    score = models.PositiveIntegerField()  # weighted views, carts and units ordered
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "overall", "category", "rank"], name="trending_tenant_cat_rank"
            ),
        ]

    def __str__(self) -> str:
        return f"#{self.rank} {self.sku} in {self.category or 'the catalog'}"


class ProductPair(models.Model):
    """How many recent orders held both `sku` and `other_sku` (co-purchase counts), the most
    frequent partners of each sku only, precomputed with the trending products: "frequently
    bought together" reads one sku's partners by index."""

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    sku = models.CharField(max_length=100)
    other_sku = models.CharField(max_length=100)
    orders = models.PositiveIntegerField()
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "sku", "other_sku"], name="productpair_tenant_sku_other"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} + {self.other_sku}: {self.orders}"


class ContactImport(models.Model):
    """A CSV upload turned into contacts by a background task, with its progress and the rows it
    could not take."""

    class Status(models.TextChoices):
        MAPPING = "mapping", "Waiting for column mapping"
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+")
    public_id = models.UUIDField(default=uuid.uuid4, editable=False)
    created_by = models.ForeignKey(
        "accounts.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    filename = models.CharField(max_length=255)
    # Kept in the database, not on a local disk, so any worker on any host can read it.
    content = models.TextField()
    columns = models.JSONField(default=list)  # the CSV's header row
    mapping = models.JSONField(default=dict)  # column -> contact field, "attributes.<name>" or ""
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.MAPPING)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    failed_count = models.PositiveIntegerField(default=0)
    errors = models.JSONField(default=list)  # [{"row": n, "message": "…"}], the first 1,000
    # How dates in the file are written, chosen on the start page (audience.csv_io.DATE_FORMATS).
    date_format = models.CharField(max_length=10, default="iso")
    warning_count = models.PositiveIntegerField(default=0)  # cells left out, their rows kept
    created_at = models.DateTimeField(default=now, editable=False)
    started_at = models.DateTimeField(null=True, blank=True)  # the first slice: rows/s, time left
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "public_id"], name="import_tenant_public_id"),
        ]

    def __str__(self) -> str:
        return f"{self.filename} ({self.status})"

    @property
    def percent(self) -> int:
        return int(100 * self.processed_rows / self.total_rows) if self.total_rows else 0

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)


class InboxBatch(models.Model):
    """One accepted /v1/* request, waiting for the ingest worker (audience/inbox.py).

    The HTTP endpoints validate, write this row and answer 200, as Segment's own API does; the
    worker records the messages in large chunks and deletes the row in the same transaction. A
    row the worker cannot record is kept, marked failed with the reason, for an operator to
    retry from the admin: an accepted message is never dropped silently.
    """

    # No index on tenant: rows live for a moment, and the worker reads them in id order.
    tenant = models.ForeignKey(Tenant, on_delete=models.CASCADE, related_name="+", db_index=False)
    source = models.CharField(max_length=40)
    received_at = models.DateTimeField()
    size = models.PositiveIntegerField()  # how many messages
    # The validated, normalised messages as JSON text (audience/inbox.py documents the shape).
    # Text, not jsonb: PostgreSQL never looks inside, so it should not pay to parse it.
    messages = models.TextField()
    attempts = models.PositiveSmallIntegerField(default=0)
    failed_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        verbose_name = "inbox batch"
        verbose_name_plural = "inbox batches"
        indexes = [
            # The worker's queue: rows not failed, oldest first.
            models.Index(
                fields=["id"], name="inbox_pending_idx", condition=models.Q(failed_at=None)
            ),
        ]

    def __str__(self) -> str:
        return f"{self.size} message(s) from {self.source} at {self.received_at:%Y-%m-%d %H:%M:%S}"


def _nps_events_default() -> list[str]:
    return list(StageRules.DEFAULT_NPS_EVENTS)


def _advocacy_events_default() -> list[str]:
    return list(StageRules.DEFAULT_ADVOCACY_EVENTS)


class StageRules(models.Model):
    """A team's lifecycle stage rules (audience/stages.py applies them, docs/lifecycle.md says
    them in plain words). One row per team, made when an admin first changes them: a team
    without one has the defaults (`StageRules.defaults`)."""

    DEFAULT_NPS_EVENTS = ("NPS Submitted", "Survey Answered")
    DEFAULT_ADVOCACY_EVENTS = ("Product Reviewed", "Product Shared", "Referral Sent")
    MAX_DAYS = 3650  # ten years: longer windows mean nothing for a stage
    MAX_EVENT_NAMES = 20
    MAX_SCORE = 10  # NPS answers 0-10

    tenant = models.OneToOneField(Tenant, on_delete=models.CASCADE, related_name="+")
    onboarding_days = models.PositiveSmallIntegerField(
        default=30, help_text="A first order or sign-up this recent puts a contact in onboarding."
    )
    active_days = models.PositiveSmallIntegerField(
        default=90, help_text="A customer who ordered this recently is an active buyer."
    )
    drifting_days = models.PositiveSmallIntegerField(
        default=60, help_text="A customer not seen for this long is a retention risk."
    )
    advocacy_days = models.PositiveSmallIntegerField(
        default=180, help_text="How long a promoter score, review or referral counts."
    )
    promoter_min_score = models.PositiveSmallIntegerField(
        default=9, help_text="The lowest NPS score (0-10) that makes a promoter."
    )
    nps_events = models.JSONField(default=_nps_events_default)  # names; numeric `score`
    advocacy_events = models.JSONField(default=_advocacy_events_default)  # names
    updated_at = models.DateTimeField(default=now)

    class Meta:
        verbose_name = "lifecycle stage rules"
        verbose_name_plural = "lifecycle stage rules"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    onboarding_days__gte=1,
                    onboarding_days__lte=3650,
                    active_days__gte=1,
                    active_days__lte=3650,
                    drifting_days__gte=1,
                    drifting_days__lte=3650,
                    advocacy_days__gte=1,
                    advocacy_days__lte=3650,
                ),
                name="tenant_stagerules_days_range",
            ),
            models.CheckConstraint(
                condition=models.Q(promoter_min_score__gte=0, promoter_min_score__lte=10),
                name="tenant_stagerules_score_range",
            ),
        ]

    def __str__(self) -> str:
        return f"lifecycle stage rules of {self.tenant_id}"

    @classmethod
    def defaults(cls, tenant: Tenant) -> StageRules:
        """The rules a team has before anyone changed them (not saved)."""
        return cls(tenant=tenant)

    def clean(self) -> None:
        from django.core.exceptions import ValidationError

        errors: dict[str, str] = {}
        for name in ("onboarding_days", "active_days", "drifting_days", "advocacy_days"):
            value = getattr(self, name)
            if value is None or not 1 <= value <= self.MAX_DAYS:
                errors[name] = f"Give a number of days from 1 to {self.MAX_DAYS}."
        if self.promoter_min_score is None or not 0 <= self.promoter_min_score <= self.MAX_SCORE:
            errors["promoter_min_score"] = f"Give a score from 0 to {self.MAX_SCORE}."
        for name in ("nps_events", "advocacy_events"):
            names = getattr(self, name)
            ok = (
                isinstance(names, list)
                and len(names) <= self.MAX_EVENT_NAMES
                and all(isinstance(n, str) and 0 < len(n) <= 200 and n == n.strip() for n in names)
            )
            if not ok:
                errors[name] = (
                    f"List up to {self.MAX_EVENT_NAMES} event names, one per line,"
                    " each at most 200 characters."
                )
        if errors:
            raise ValidationError(errors)
