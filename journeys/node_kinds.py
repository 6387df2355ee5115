"""Node kinds: one registered class per kind of journey step (DESIGN §6).

A kind is one object that does everything the product does with such a node:

    fields                   its settings, described for the editor's form, the API and the admin
    ports(settings)          the named ports it can leave by ("next", "yes"/"no", "a"/"b"/…)
    validate(settings)       normalised settings, or NodeSettingsError {field: message}
    describe(settings)       the card's one-line summary ("Wait 30 minutes")
    execute(step)            run it for one enrollment: an Outcome (follow a port, wait, finish,
                             fail) — with `step.dry_run` it must not write anything (test runs)

`register` adds a kind; `get(key)` and `kinds()` look them up. Categories order the editor's
palette; `waits` marks kinds that hold an enrollment over time (a cycle must pass one).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from audience.models import Contact
    from journeys.models import Enrollment, Node
    from tenants.models import Tenant


class NodeSettingsError(ValueError):
    """Settings a kind refuses: `errors` maps a field key ("" for the node as a whole) to a
    message a marketer can act on."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" if k else v for k, v in errors.items()))
        self.errors = errors


class Category:
    TRIGGER = "trigger"
    WAIT = "wait"
    BRANCH = "branch"
    ACTION = "action"
    GOAL = "goal"
    EXIT = "exit"

    ORDER = (TRIGGER, WAIT, BRANCH, ACTION, GOAL, EXIT)
    LABELS = {
        TRIGGER: "Triggers",
        WAIT: "Waits",
        BRANCH: "Branches",
        ACTION: "Actions",
        GOAL: "Goals",
        EXIT: "Exit",
    }


@dataclass(frozen=True)
class Field:
    """One setting. `type` tells the editor which control to draw:

    text, url, int, time ("09:00"), choice (`choices`), multichoice (`choices`, a list),
    event (an event name; the editor suggests the tenant's), template_email, template_push
    (a messaging.Template public id of that channel), segment (a segments.Segment public id),
    rules (a segments rule tree, segments.rules), filters ([{"property", "operator", "value"}]),
    percentages (a list of ints summing to 100), json (an object)."""

    key: str
    label: str
    type: str = "text"
    required: bool = False
    default: Any = None
    choices: tuple[tuple[str, str], ...] = ()
    help: str = ""
    minimum: int | None = None
    maximum: int | None = None


# --- what executing a node returns -----------------------------------------------------------


@dataclass(frozen=True)
class Follow:
    """Go on by this port now (no edge on it: the enrollment has completed its path)."""

    port: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Wait:
    """Stay at this node. Run it again at `until` (a delay's end, a timeout); with `event`, an
    event of that name (whose properties contain `match`) wakes it earlier and it leaves by
    `event_port`; at `until` it leaves by `timeout_port` ("" = run the node again)."""

    until: datetime | None
    event: str = ""
    match: dict[str, Any] = field(default_factory=dict)
    event_port: str = ""
    timeout_port: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Finish:
    """End the enrollment here: "completed", "converted" or "exited"."""

    state: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fail:
    """The step failed. With `retry_at` it is tried again then (a webhook's 503); without, the
    enrollment stops as failed, with `reason`, until someone retries it."""

    reason: str
    retry_at: datetime | None = None


Outcome = Follow | Wait | Finish | Fail


@dataclass
class StepContext:
    """What a node's `execute` sees: one enrollment at one node, at `now`. With `dry_run`
    (a test run in the editor) nothing is written: actions say what they would do in
    `Follow.detail` and follow their port."""

    tenant: Tenant
    enrollment: Enrollment
    contact: Contact
    node: Node
    now: datetime
    dry_run: bool = False
    # Set by the engine when an event woke a waiting enrollment: {"name", "properties", …}
    woken_by: dict[str, Any] | None = None


# --- the registry ----------------------------------------------------------------------------


class NodeKind:
    """The base of every node kind. Subclasses set the class attributes and implement
    `execute` (and `validate`/`describe` where the defaults don't do)."""

    key: ClassVar[str]
    label: ClassVar[str]
    category: ClassVar[str]
    description: ClassVar[str] = ""
    fields: ClassVar[Sequence[Field]] = ()
    static_ports: ClassVar[tuple[str, ...]] = ("next",)
    port_labels: ClassVar[dict[str, str]] = {}
    waits: ClassVar[bool] = False

    def ports(self, settings: dict[str, Any]) -> list[str]:
        return list(self.static_ports)

    def port_label(self, port: str, settings: dict[str, Any]) -> str:
        return self.port_labels.get(port, port.replace("_", " ").capitalize())

    def defaults(self) -> dict[str, Any]:
        return {f.key: f.default for f in self.fields if f.default is not None}

    def validate(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Normalised settings; NodeSettingsError names every field at fault."""
        errors: dict[str, str] = {}
        clean: dict[str, Any] = {}
        for f in self.fields:
            value = settings.get(f.key, f.default)
            if value in (None, "", []):
                if f.required:
                    errors[f.key] = f"{f.label} is required."
                continue
            clean[f.key] = value
        if errors:
            raise NodeSettingsError(errors)
        return clean

    def describe(self, settings: dict[str, Any]) -> str:
        return self.label

    def execute(self, step: StepContext) -> Outcome:
        raise NotImplementedError


_KINDS: dict[str, NodeKind] = {}


def register[K: type[NodeKind]](kind: K) -> K:
    if kind.key in _KINDS:
        raise ValueError(f"node kind {kind.key!r} is registered already")
    _KINDS[kind.key] = kind()
    return kind


def get(key: str) -> NodeKind:
    try:
        return _KINDS[key]
    except KeyError:
        raise NodeSettingsError({"": f"Unknown step kind {key!r}."}) from None


def kinds() -> list[NodeKind]:
    """Every kind in palette order."""
    return sorted(_KINDS.values(), key=lambda k: Category.ORDER.index(k.category))


def is_registered(key: str) -> bool:
    return key in _KINDS


# The kinds themselves: journeys/kinds/ (one module per category), imported here so that
# importing this module registers them all.
from journeys.kinds import actions, branches, goals, triggers, waits  # noqa: E402, F401
