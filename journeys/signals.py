"""What journeys announce to the apps above them (they connect in their AppConfig.ready()).

`conversion_recorded(tenant_id=…, enrollment_id=…, enrollment_public_id=…, journey_id=…,
contact_id=…, converted_at=…, revenue=…, event=…)` is sent once the transaction that recorded a
journey goal's conversion commits (journeys/kinds/goals.py `conversion_record`), once per
enrollment: `revenue` is a Decimal or None, `event` the name of the event that met the goal.
A receiver that fails does not fail the journey (robust on-commit callback).
"""

from __future__ import annotations

from django.dispatch import Signal

conversion_recorded = Signal()
