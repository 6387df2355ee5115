from __future__ import annotations

import socket
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from ops.models import Heartbeat, SchedulerLease


def heartbeat_record(*, process: str) -> Heartbeat:
    beat, _ = Heartbeat.objects.update_or_create(
        process=process,
        defaults={"seen_at": timezone.now(), "hostname": socket.gethostname()[:255]},
    )
    return beat


def scheduler_lease_take(*, holder: str, seconds: float, name: str = "beat") -> bool:
    """Take or renew the lease `name` for `holder`; False while another holder's lease runs.

    One UPDATE decides: it matches the row only if the lease is ours or has run out, and the
    row lock makes a second beat asking at the same moment re-check that against the winner's
    row, so two can never both win. The first beat ever creates the row (the unique name
    refuses a second creator)."""
    at = timezone.now()
    expires = at + timedelta(seconds=seconds)
    renewed = (
        SchedulerLease.objects.filter(name=name)
        .filter(Q(holder=holder) | Q(expires_at__lt=at))
        .update(holder=holder, expires_at=expires)
    )
    if renewed:
        return True
    try:
        with transaction.atomic():
            SchedulerLease.objects.create(name=name, holder=holder, expires_at=expires)
    except IntegrityError:
        return False  # held by another beat
    return True


def scheduler_lease_release(*, holder: str, name: str = "beat") -> None:
    """A beat stopping cleanly hands its lease on at once (a restarted beat, a standby) rather
    than leaving it to run out."""
    SchedulerLease.objects.filter(name=name, holder=holder).update(expires_at=timezone.now())
