"""Segments' own condition kinds, one class each (see segments/registry.py); importing this
package registers them (segments' AppConfig.ready() does)."""

from __future__ import annotations

from segments.conditions import attribute, event, orders, profile  # noqa: F401
