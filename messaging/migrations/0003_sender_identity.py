"""Sender identity (From, Reply-To, VAPID keys) moves from tenants.Tenant to messaging's own row.

The copy runs while Tenant still has the columns; tenants 0002 removes them after it. The keys
are copied as they are: browsers subscribed with the public key, and a new pair would cut every
one of them off."""

import base64

import django.db.models.deletion
from django.db import migrations, models


def _new_vapid_key_pair():
    # For a tenant made without keys (a raw fixture): the same format as messaging.vapid, frozen
    # here so that later changes to the app's code cannot change what this migration does.
    from cryptography.hazmat.primitives import serialization
    from py_vapid import Vapid

    def b64url(data):
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    vapid = Vapid()
    vapid.generate_keys()
    public = vapid.public_key.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    private = vapid.private_key.private_numbers().private_value.to_bytes(32, "big")
    return b64url(public), b64url(private)


def copy_from_tenants(apps, schema_editor):
    Tenant = apps.get_model("tenants", "Tenant")
    SenderIdentity = apps.get_model("messaging", "SenderIdentity")
    rows = []
    for tenant in Tenant.objects.order_by("pk").iterator():
        public, private = tenant.vapid_public_key, tenant.vapid_private_key
        if not (public and private):
            public, private = _new_vapid_key_pair()
        rows.append(
            SenderIdentity(
                tenant_id=tenant.pk,
                sender_name=tenant.sender_name,
                sender_email=tenant.sender_email,
                reply_to_email=tenant.reply_to_email,
                vapid_public_key=public,
                vapid_private_key=private,
            )
        )
    SenderIdentity.objects.bulk_create(rows, batch_size=1000)


def copy_back_to_tenants(apps, schema_editor):
    Tenant = apps.get_model("tenants", "Tenant")
    SenderIdentity = apps.get_model("messaging", "SenderIdentity")
    for identity in SenderIdentity.objects.order_by("pk").iterator():
        Tenant.objects.filter(pk=identity.tenant_id).update(
            sender_name=identity.sender_name,
            sender_email=identity.sender_email,
            reply_to_email=identity.reply_to_email,
            vapid_public_key=identity.vapid_public_key,
            vapid_private_key=identity.vapid_private_key,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("messaging", "0002_delivery_token_while_sending"),
        # The state in which Tenant still has the columns to copy.
        ("tenants", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="SenderIdentity",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("sender_name", models.CharField(blank=True, max_length=120)),
                (
                    "sender_email",
                    models.EmailField(
                        blank=True, help_text="Default From address of messages.", max_length=254
                    ),
                ),
                ("reply_to_email", models.EmailField(blank=True, max_length=254)),
                ("vapid_public_key", models.CharField(editable=False, max_length=100)),
                ("vapid_private_key", models.CharField(editable=False, max_length=100)),
                (
                    "tenant",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="tenants.tenant",
                    ),
                ),
            ],
            options={"verbose_name_plural": "sender identities"},
        ),
        migrations.RunPython(copy_from_tenants, copy_back_to_tenants),
    ]
