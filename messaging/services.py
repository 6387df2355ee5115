"""Writes for messaging: templates, deciding deliveries, consent and suppression.

Journeys and campaigns decide sends through `delivery_create` / `deliveries_create`, inside
their own transaction, so that the decision and their state change commit together.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError
from django.db.models.constants import OnConflict
from django.utils.timezone import now

from audience.models import Consent, Contact
from audience.services import Fact, contact_consent_set, contacts_changed_announce, events_record
from core.storable import single_line
from messaging import outcomes
from messaging.models import (
    TEMPLATE_FIELDS,
    Category,
    Channel,
    Delivery,
    SenderIdentity,
    SendingPolicy,
    Suppression,
    Template,
)
from messaging.selectors import sender_identity_get
from messaging.vapid import vapid_key_pair
from tenants.models import Tenant

if TYPE_CHECKING:
    from messaging.previews import SendResult

log = logging.getLogger(__name__)


class DeliveryConflict(Exception):
    """An idempotency key reused for a different message."""


class TemplateInUse(Exception):
    """A template that a campaign or a journey names: deleting it is refused."""


def template_users(*, tenant: Tenant, template: Template) -> list[str]:
    """Where `template` is used, in words (messaging.registry: the apps above register)."""
    from messaging.registry import TEMPLATE_USERS

    return sorted(
        {use for finder in TEMPLATE_USERS for use in finder(tenant=tenant, template=template)}
    )


def template_delete(*, tenant: Tenant, template: Template) -> None:
    """Delete a template no campaign or journey uses; raises TemplateInUse naming the users.
    Deliveries keep their own snapshot of it, so history is not lost."""
    uses = template_users(tenant=tenant, template=template)
    if uses:
        raise TemplateInUse("This template is used by " + "; ".join(uses) + ".")
    try:
        Template.objects.filter(tenant=tenant, pk=template.pk).delete()
    except ProtectedError:  # a campaign variant made it its own between the check and now
        raise TemplateInUse("This template is used by a campaign.") from None


def template_save(*, tenant: Tenant, template: Template | None = None, **fields: Any) -> Template:
    """Create or update a template. Raises ValidationError (by field) for a bad template,
    including Liquid that does not parse or breaks the sandbox's limits on a sample contact:
    a template is refused in the editor so that it can never fail at send time."""
    from messaging.rendering import template_errors

    was_channel = template.channel if template is not None and template.pk else None
    template = template or Template(tenant=tenant)
    for name, value in fields.items():
        if name not in TEMPLATE_FIELDS:
            raise TypeError(f"unknown template field {name}")
        setattr(template, name, value)
    if was_channel is not None and template.channel != was_channel:
        # A campaign or journey step that sends it would fail at its next send.
        uses = template_users(tenant=tenant, template=template)
        if uses:
            raise ValidationError(
                {
                    "channel": f"Used by {'; '.join(uses)}: make a new template for the"
                    " other channel instead."
                }
            )
    template.updated_at = now()
    template.full_clean()
    errors = template_errors(template)
    if errors:
        raise ValidationError(errors)
    template.save()
    return template


@dataclass(frozen=True)
class Decision:
    """One message decided for one contact (see deliveries_create)."""

    contact: Contact
    idempotency_key: str
    data: dict[str, Any] | None = None
    event: dict[str, Any] | None = None


def delivery_create(
    *,
    tenant: Tenant,
    contact: Contact,
    template: Template,
    source: str,
    idempotency_key: str,
    category: str = Category.MARKETING,
    data: dict[str, Any] | None = None,
    event: dict[str, Any] | None = None,
) -> tuple[Delivery, bool]:
    """Decide one message; returns (delivery, created). The same key returns the delivery already
    decided and sends nothing more; the same key for another message raises DeliveryConflict."""
    fields = {
        "contact": contact,
        "channel": template.channel,
        "category": category,
        "template": template,
        "content": template.snapshot(),
        "data": data or {},
        "event": event,
        "source": source,
    }
    try:
        with transaction.atomic():
            delivery = Delivery.objects.create(
                tenant=tenant, idempotency_key=idempotency_key, **fields
            )
    except IntegrityError:
        delivery = Delivery.objects.select_related("contact").get(
            tenant=tenant, idempotency_key=idempotency_key
        )
        same = (
            delivery.contact_id == contact.pk
            and delivery.template_id == template.pk
            and delivery.channel == template.channel
            and delivery.category == category
            and delivery.data == (data or {})
        )
        if not same:
            raise DeliveryConflict(
                "This idempotency key was used for a different message."
            ) from None
        return delivery, False
    _wake(template.channel)
    return delivery, True


def deliveries_create(
    *,
    tenant: Tenant,
    template: Template,
    source: str,
    decisions: Sequence[Decision],
    category: str = Category.MARKETING,
) -> int:
    """Decide many messages of one template at once (a campaign, a journey step for a batch of
    enrollments); keys already decided are left alone. Returns how many were new."""
    if not decisions:
        return 0
    snapshot = template.snapshot()
    rows = [
        Delivery(
            tenant=tenant,
            contact=d.contact,
            channel=template.channel,
            category=category,
            template=template,
            content=snapshot,
            data=d.data or {},
            event=d.event,
            source=source,
            idempotency_key=d.idempotency_key,
        )
        for d in decisions
    ]
    fields = [f for f in Delivery._meta.concrete_fields if not f.primary_key]
    created = 0
    with transaction.atomic():
        for start in range(0, len(rows), 2000):
            # INSERT … ON CONFLICT DO NOTHING RETURNING id: the rows returned are the new ones.
            # (Counting the keys decided before and after instead read every delivery of a
            # tenant whose statistics were stale — the planner took its (tenant, created) index
            # and filtered: 75 ms per 500 keys at 20,000 deliveries, growing with the outbox,
            # in bench/engine.py's second phase.) QuerySet._insert is what bulk_create runs;
            # bulk_create itself returns no rows with ignore_conflicts.
            created += len(
                Delivery.objects.all()._insert(  # type: ignore[attr-defined]
                    rows[start : start + 2000],
                    fields=fields,
                    returning_fields=[Delivery._meta.pk],
                    on_conflict=OnConflict.IGNORE,
                )
            )
    if created:
        # One sender run per claimed batch's worth, up to a few: every idle worker on the queue
        # joins in at once instead of waiting for the beat (extra runs find nothing and return).
        _wake(template.channel, runs=min(-(-created // 200), 8))
    return created


def _wake(channel: str, runs: int = 1) -> None:
    """Ask senders to look at the outbox once this transaction commits. The beat's periodic
    run covers a wake-up lost to a broker outage."""
    from messaging import tasks

    task = tasks.send_email_due if channel == Channel.EMAIL else tasks.send_push_due
    transaction.on_commit(lambda: _publish(task, runs), robust=True)


def _publish(task: Any, runs: int) -> None:
    try:
        for _ in range(runs):
            task.apply_async(retry=False)
    except Exception:  # the broker is down: the beat entry sends what is due within seconds
        log.warning("could not wake the %s sender", task.name, exc_info=True)


def consent_set(
    *, tenant: Tenant, contact: Contact, channel: str, consent: str, source: str
) -> bool:
    """A contact's choice about messages on `channel` (an unsubscribe link, the preference
    centre, a browser allowing notifications): audience sets the consent and announces it;
    a revocation is also recorded as `Unsubscribed`. Returns whether it changed. Takes effect
    for the very next message: senders read consent when they send, not when they decided."""
    with transaction.atomic():
        changed = contact_consent_set(
            tenant=tenant, contact=contact, channel=channel, consent=consent, source=source
        )
        if changed and consent == Consent.REVOKED:
            stamp = getattr(contact, f"{channel}_consent_at")
            events_record(
                tenant=tenant,
                facts=[
                    Fact(
                        contact_id=contact.pk,
                        name=outcomes.UNSUBSCRIBED,
                        key=f"{outcomes.UNSUBSCRIBED}:{channel}:{stamp.isoformat()}",
                        source=outcomes.SOURCE,
                        properties={"channel": channel, "source": source},
                    )
                ],
            )
    return changed


def suppression_add(
    *, tenant: Tenant, address: str, reason: str, detail: str = ""
) -> tuple[Suppression, bool]:
    """Suppress an email address for the tenant (idempotent). Its contacts' reachability
    changed: audience announces it."""
    with transaction.atomic():
        suppression, created = Suppression.objects.get_or_create(
            tenant=tenant,
            address=address.strip().lower(),
            defaults={"reason": reason, "detail": detail[:500]},
        )
        if created:
            contacts_changed_announce(tenant=tenant, emails=[suppression.address])
    return suppression, created


def deliveries_retry(*, deliveries: Iterable[Delivery]) -> int:
    """Queue failed deliveries again (an operator fixed the mail server, the template…). Only
    failed ones: a sent message is never sent again, a skipped one was skipped for a reason."""
    failed = [d for d in deliveries if d.status == Delivery.Status.FAILED]
    ids = [d.pk for d in failed]
    tenants = {d.tenant_id for d in failed}
    changed = Delivery.objects.filter(
        tenant_id__in=tenants, pk__in=ids, status=Delivery.Status.FAILED
    ).update(
        status=Delivery.Status.QUEUED,
        attempts=0,
        reason="retried by an operator",
        not_before=now(),
        updated_at=now(),
    )
    for channel in Channel:
        if Delivery.objects.filter(pk__in=ids, channel=channel).exists():
            _wake(channel)
    return changed


def suppression_remove(*, tenant: Tenant, suppression: Suppression) -> None:
    """Let messages go to a suppressed address again (an operator's decision)."""
    with transaction.atomic():
        deleted, _ = Suppression.objects.filter(tenant=tenant, pk=suppression.pk).delete()
        if deleted:
            contacts_changed_announce(tenant=tenant, emails=[suppression.address])


SENDER_IDENTITY_FIELDS = ("sender_name", "sender_email", "reply_to_email")


def sender_identity_create(*, tenant: Tenant, sender_name: str = "") -> SenderIdentity:
    """The tenant's sender identity with a new VAPID key pair (on `tenant_created`); the one it
    has if it has one, so a second call, or two at once, never replaces keys browsers use."""
    public, private = vapid_key_pair()
    identity, _ = SenderIdentity.objects.get_or_create(
        tenant=tenant,
        defaults={
            "sender_name": single_line(sender_name)[:120],  # a tenant name may hold a line break
            "vapid_public_key": public,
            "vapid_private_key": private,
        },
    )
    return identity


def sender_identity_update(
    *, tenant: Tenant, verified: bool = False, **fields: str
) -> SenderIdentity:
    """Change who the tenant's messages come from. The name and Reply-To apply to the very next
    message. A new From address (`sender_email`) only once someone at it follows the link this
    emails to it (messaging/sender_verification.py): until then it is pending and messages keep
    their From. Clearing it, or going back to the current one, applies at once (the site's own
    address needs no confirming). `verified`: the caller knows the address is the team's (the
    demo seed)."""
    from messaging import sender_verification

    unknown = set(fields) - set(SENDER_IDENTITY_FIELDS)
    if unknown:
        raise ValueError(f"Not editable: {', '.join(sorted(unknown))}")
    new_email = fields.pop("sender_email", None)
    send_link = False
    with transaction.atomic():
        identity = SenderIdentity.objects.select_for_update().get(
            pk=sender_identity_get(tenant=tenant).pk
        )
        for name, value in fields.items():
            setattr(identity, name, value)
        changed = list(fields)
        if new_email is not None:
            new_email = new_email.strip()
            pending = identity.pending_sender_email
            if verified or not new_email or new_email.lower() == identity.sender_email.lower():
                identity.sender_email, identity.pending_sender_email = new_email, ""
                identity.pending_sender_requested_at = None
            elif new_email.lower() != pending.lower():
                # A new request: a link for an address asked before no longer confirms it.
                identity.pending_sender_email = new_email
                identity.pending_sender_requested_at = now()
                send_link = True
            changed += ["sender_email", "pending_sender_email", "pending_sender_requested_at"]
        try:
            identity.full_clean()
        except ValidationError as exc:
            # The pending address is the one typed into the sender_email field.
            errors = exc.message_dict
            if "pending_sender_email" in errors:
                errors.setdefault("sender_email", []).extend(errors.pop("pending_sender_email"))
            raise ValidationError(errors) from None
        identity.save(update_fields=changed)
    if send_link:
        sender_verification.sender_email_verification_send(tenant=tenant, identity=identity)
    return identity


def sender_email_change_cancel(*, tenant: Tenant) -> SenderIdentity:
    """Forget a pending From address: its link stops working, the From stays as it is."""
    identity = sender_identity_get(tenant=tenant)
    identity.pending_sender_email, identity.pending_sender_requested_at = "", None
    identity.save(update_fields=["pending_sender_email", "pending_sender_requested_at"])
    return identity


def sending_policy_save(*, tenant: Tenant, policy: SendingPolicy, **fields: Any) -> SendingPolicy:
    """Change the tenant's sending rules; they apply to the very next message sent."""
    if policy.tenant_id != tenant.pk:
        raise ValueError("policy of another tenant")
    for name, value in fields.items():
        setattr(policy, name, value)
    policy.full_clean()
    policy.save()
    return policy


def template_send_test(
    *,
    tenant: Tenant,
    template: Template,
    contact: Contact | None,
    actor: Any,
    to: str = "",
    event: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> SendResult:
    """A test send of `template` rendered for `contact` (messaging.previews.template_send_test
    says who may send what to whom, how often); a `SendResult` with `ok` and `text`. Journeys'
    test run sends a path's messages with the step's triggering `event` and `data`."""
    from messaging.previews import template_send_test as send_test

    return send_test(
        tenant=tenant,
        template=template,
        contact=contact,
        actor=actor,
        to=to,
        event=event,
        data=data,
    )


def deliveries_insert(
    *,
    tenant: Tenant,
    template: Template,
    source: str,
    rows: Sequence[tuple[int, str, datetime]],
    category: str = Category.MARKETING,
) -> dict[str, int]:
    """Decide many messages of one template for contacts known by id (a campaign's release):
    `rows` are (contact_id, idempotency_key, not_before). Keys already decided are left alone.
    Returns {idempotency_key: delivery id} for every row, new or not. The caller vouches that
    the contacts are the tenant's (they come from its own frozen audience).

    PostgreSQL: one `INSERT … SELECT FROM unnest(arrays) ON CONFLICT DO NOTHING RETURNING` per
    chunk — no model instances, the snapshot sent once per chunk (bench/campaign.py freezes a
    million). SQLite: bulk_create."""
    if not rows:
        return {}
    at = now()
    snapshot = template.snapshot()
    ids: dict[str, int] = {}
    with transaction.atomic():
        for start in range(0, len(rows), 10_000):
            chunk = rows[start : start + 10_000]
            if connection.vendor == "postgresql":
                ids.update(_deliveries_insert_pg(tenant, template, source, category, chunk, at))
            else:
                Delivery.objects.bulk_create(
                    [
                        Delivery(
                            tenant=tenant,
                            contact_id=contact_id,
                            channel=template.channel,
                            category=category,
                            template=template,
                            content=snapshot,
                            source=source,
                            idempotency_key=key,
                            not_before=not_before,
                            created_at=at,
                            updated_at=at,
                        )
                        for contact_id, key, not_before in chunk
                    ],
                    ignore_conflicts=True,
                )
            missing = [key for _, key, _ in chunk if key not in ids]
            for part in range(0, len(missing), 5000):
                ids.update(
                    Delivery.objects.filter(
                        tenant=tenant, idempotency_key__in=missing[part : part + 5000]
                    ).values_list("idempotency_key", "pk")
                )
    if ids:
        _wake(template.channel, runs=min(-(-len(rows) // 200), 8))
    return ids


def _deliveries_insert_pg(
    tenant: Tenant,
    template: Template,
    source: str,
    category: str,
    rows: Sequence[tuple[int, str, datetime]],
    at: datetime,
) -> dict[str, int]:
    table = Delivery._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (tenant_id, public_id, contact_id, channel, category,"
            " template_id, content, data, event, source, idempotency_key, status, reason,"
            " attempts, last_error, provider_id, not_before, created_at, updated_at)"
            " SELECT %s, gen_random_uuid(), v.contact_id, %s, %s, %s, %s::jsonb, '{}'::jsonb,"
            " NULL, %s, v.key, %s, '', 0, '', '', v.not_before, %s, %s"
            " FROM unnest(%s::bigint[], %s::text[], %s::timestamptz[])"
            " AS v(contact_id, key, not_before)"
            " ON CONFLICT (tenant_id, idempotency_key) DO NOTHING"
            " RETURNING idempotency_key, id",
            [
                tenant.pk,
                template.channel,
                category,
                template.pk,
                orjson.dumps(template.snapshot()).decode(),
                source,
                Delivery.Status.QUEUED,
                at,
                at,
                [r[0] for r in rows],
                [r[1] for r in rows],
                [r[2] for r in rows],
            ],
        )
        return dict(cursor.fetchall())


def deliveries_skip_queued(*, tenant: Tenant, source: str, reason: str) -> int:
    """Skip the queued (not yet claimed) deliveries of `source` with `reason` (a cancelled
    campaign). Rows a sender already claimed go out: they may be on the wire."""
    at = now()
    return Delivery.objects.filter(
        tenant=tenant, source=source, status=Delivery.Status.QUEUED
    ).update(status=Delivery.Status.SKIPPED, reason=reason[:200], updated_at=at)


def deliveries_withdraw_queued(*, tenant: Tenant, source: str, channel: str) -> list[int]:
    """Take back the queued deliveries of `source` that no sender has claimed (a paused
    campaign): they are deleted — never sent, so nothing refers to them but the caller's own
    rows, which it must let go of in the same transaction. Returns their ids. Rows a sender
    holds are skipped (SKIP LOCKED) and go out."""
    withdrawn: list[int] = []
    with transaction.atomic():
        while True:
            ids = list(
                Delivery.objects.select_for_update(skip_locked=True)
                .filter(
                    tenant=tenant, channel=channel, source=source, status=Delivery.Status.QUEUED
                )
                .values_list("pk", flat=True)[:10_000]
            )
            if not ids:
                return withdrawn
            # A raw delete: the only reference (a campaign recipient) is the caller's to clear.
            Delivery.objects.filter(pk__in=ids)._raw_delete(Delivery.objects.db)
            withdrawn += ids


def deliveries_insert_sql(
    *,
    tenant: Tenant,
    templates: dict[int, Template],
    source: str,
    rows_sql: str,
    rows_params: Sequence[Any],
    category: str = Category.MARKETING,
) -> tuple[str, list[Any]]:
    """PostgreSQL only: the statement that decides a message for each row of `rows_sql` (a
    relation with columns contact_id, key, not_before, pick: `pick` is a key of `templates`),
    `ON CONFLICT DO NOTHING RETURNING id, contact_id` — for a caller's data-modifying `WITH`
    (a campaign freezing its audience and deciding its due messages in one statement, no row
    through Python). The contacts must be the tenant's. Wake the senders after it ran
    (`deliveries_wake`)."""
    at = now()
    picks = list(templates.items())
    template_case = " ".join(f"WHEN {int(k)} THEN {int(t.pk)}" for k, t in picks)
    content_case = " ".join(f"WHEN {int(k)} THEN %s::jsonb" for k, _ in picks)
    channels = {t.channel for t in templates.values()}
    if len(channels) != 1 or any(t.tenant_id != tenant.pk for t in templates.values()):
        raise ValueError("templates of one channel and of the tenant")
    sql = (
        f"INSERT INTO {Delivery._meta.db_table} (tenant_id, public_id, contact_id, channel,"
        " category, template_id, content, data, event, source, idempotency_key, status, reason,"
        " attempts, last_error, provider_id, not_before, created_at, updated_at)"
        f" SELECT %s, gen_random_uuid(), v.contact_id, %s, %s, CASE v.pick {template_case} END,"
        f" CASE v.pick {content_case} END, '{{}}'::jsonb, NULL, %s, v.key, %s, '', 0, '', '',"
        f" v.not_before, %s, %s FROM ({rows_sql}) AS v"
        " ON CONFLICT (tenant_id, idempotency_key) DO NOTHING RETURNING id, contact_id"
    )
    params: list[Any] = [
        tenant.pk,
        channels.pop(),
        category,
        *[orjson.dumps(t.snapshot()).decode() for _, t in picks],
        source,
        Delivery.Status.QUEUED,
        at,
        at,
        *rows_params,
    ]
    return sql, params


def deliveries_wake(*, channel: str, count: int) -> None:
    """Wake the senders of `channel` once the caller's transaction commits (after
    `deliveries_insert_sql` decided `count` messages)."""
    if count:
        _wake(channel, runs=min(-(-count // 200), 8))
