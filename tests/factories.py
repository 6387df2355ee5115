from __future__ import annotations

import base64
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.utils.timezone import now

from tenants import services
from tenants.models import Membership, Role, Tenant

PASSWORD = "correct horse battery staple"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    first_name = factory.Faker("first_name")
    # Confirmed, as most accounts are; tests of the unconfirmed ones say so.
    email_verified_at = factory.LazyFunction(now)
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            obj.save()


class TenantFactory(factory.django.DjangoModelFactory):
    """Tenants go through the service, so they get their VAPID keys like real ones."""

    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Team {n}")
    slug = factory.Sequence(lambda n: f"team-{n}")

    @classmethod
    def _create(cls, model_class: type[Tenant], *args: object, **kwargs: object) -> Tenant:
        return services.tenant_create(
            name=str(kwargs["name"]),
            slug=str(kwargs["slug"]),
            timezone_name=str(kwargs.get("timezone", "UTC")),
        )


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    tenant = factory.SubFactory(TenantFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.MARKETER


def api_key(tenant: Tenant, kind: str = "secret", name: str = "Test key") -> tuple[object, str]:
    return services.api_key_create(tenant=tenant, kind=kind, name=name)


def basic(raw_key: str) -> str:
    """An Authorization header with a write key as HTTP Basic user name, as the SDKs send it."""
    return "Basic " + base64.b64encode(f"{raw_key}:".encode()).decode()


def sent_delivery(
    tenant: Tenant, template: Any, email: str = "ann@example.com", *, source: str, **extra: Any
) -> Any:
    """A contact and a message already sent to them, written directly (deciding would wake a
    sender through the broker on commit), for tests of what happens after sending."""
    from audience.models import Contact
    from messaging.models import Category, Delivery

    contact = Contact.objects.create(tenant=tenant, email=email, first_name="Ann")
    return Delivery.objects.create(
        tenant=tenant,
        contact=contact,
        channel=template.channel,
        category=Category.MARKETING,
        template=template,
        content=template.snapshot(),
        source=source,
        idempotency_key=f"k-{contact.pk}-{template.pk}",
        status=Delivery.Status.SENT,
        **extra,
    )
