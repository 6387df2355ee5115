"""What the apps above tenants add to its pages, without tenants importing them:
they register here in their AppConfig.ready()."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SetupStep:
    """One line of the dashboard's "Getting started" list: `text`, then a link to `url_name`
    (a tenant page, reversed with its slug), ticked when `done(tenant=…)` (a selector)."""

    text: str
    link_text: str
    url_name: str
    done: Callable[..., bool]


SETUP_STEPS: list[SetupStep] = []


def setup_step_register(step: SetupStep) -> None:
    if step not in SETUP_STEPS:  # ready() may run twice (tests, management commands)
        SETUP_STEPS.append(step)


# The settings page's "Data retention" preview: audience registers
# audience.retention.retention_preview(tenant, months, *, now=None) here.
RETENTION_PREVIEWS: list[Callable[..., object]] = []


def retention_preview_register(preview: Callable[..., object]) -> None:
    if preview not in RETENTION_PREVIEWS:  # ready() may run twice
        RETENTION_PREVIEWS.append(preview)
