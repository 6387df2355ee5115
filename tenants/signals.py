"""What tenants announces to the apps above it (a lower app never imports a higher one;
the higher app connects a receiver in its AppConfig.ready())."""

from __future__ import annotations

from django.dispatch import Signal

# A tenant was created. Sent by tenants.services.tenant_create inside the creating transaction,
# once the row and its first owner (if any) are saved, with `sender=Tenant` and
# `tenant=` the new Tenant. Receivers make what the tenant needs from their app (messaging: the
# sender identity with its VAPID key pair); a receiver that raises rolls the creation back, so
# a tenant never exists without it. Other ways to make a tenant must go through tenant_create.
tenant_created = Signal()
