"""Connects the engine to the announcements of the apps below (journeys.engine does the work)."""

from __future__ import annotations
