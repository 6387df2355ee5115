"""Facts the segments app announces to the apps above it (journeys, campaigns).

segment_membership_changed(sender=None, tenant=Tenant, segment=Segment, entered=list[int],
                           exited=list[int])
    Sent after the transaction that changed the segment's membership has committed, once per
    refresh that changed something. `entered` / `exited` are contact primary keys; each entry and
    exit is also stored as a `Segment Entered` / `Segment Exited` event on the contact.
"""

from __future__ import annotations

from django.dispatch import Signal

segment_membership_changed = Signal()
