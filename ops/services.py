from __future__ import annotations

import socket

from django.utils import timezone

from ops.models import Heartbeat


def heartbeat_record(*, process: str) -> Heartbeat:
    beat, _ = Heartbeat.objects.update_or_create(
        process=process,
        defaults={"seen_at": timezone.now(), "hostname": socket.gethostname()[:255]},
    )
    return beat
