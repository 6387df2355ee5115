"""Condition kinds: one registered class per kind of segment condition.

A rule tree (segments/rules.py) is groups of conditions; each condition's `type` names a kind.
A kind is one class that does everything the product does with such a condition:

    validate(raw, path) -> node        normalise the raw JSON, or RuleError naming the condition
    describe(node, segment_names)      the condition in words ("did “Order Completed” …")
    q(node, ctx) -> Q                  the condition as SQL: a filter over audience.Contact
    evaluate(node, contact, ctx)       the condition for one contact, in Python (a few small
                                       queries for kinds that read events): equal to `q`
    new() / from_form(fields)          the builder: a fresh condition, and one parsed back from
    form_values(node) / form_node(…)   the posted fields; what its template partial renders
    template, builder_choices(…)       (`template`#fields, and #rows when `template_rows`)
    schema / example                   its fragment of the API's schema

`register` adds a kind (a class decorator); the compiler, the builder, the API schema and the
validator look kinds up here (`get`, `kinds()` in builder order), so adding a kind is adding one
class and its template partial, registered from its app's `AppConfig.ready()`. Segments' own
kinds are in `segments/conditions/`; messaging registers "reachable"
(messaging/segment_conditions.py), since reachability is messaging's to define.

`matches(tree, contact, ctx)` evaluates a whole tree for one contact (journeys branch one
contact at a time); `segments.compiler.Compiler` compiles a whole tree to one query.

`SEGMENT_USERS` are what the apps above segments add to deleting one, without segments importing
them: each registers (`segment_users_register`, from its AppConfig.ready()) a finder
`finder(tenant=…, segment=…) -> [str]` naming what uses the segment in words a marketer knows
('campaign “Spring sale”', 'journey “Welcome” (step “Entered VIPs”)'); `segment_delete`
refuses while any names one.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Any, ClassVar
from zoneinfo import ZoneInfo

from django.db.models import Q
from django.utils import timezone

if TYPE_CHECKING:
    from django.http import QueryDict

    from audience.models import Contact
    from tenants.models import Tenant


class RuleError(ValueError):
    """A rule tree that cannot be used. `path` locates the node ("1.0" = second child's first)."""

    def __init__(self, message: str, *, path: str = "") -> None:
        where = f"Condition {display_path(path)}: " if path else ""
        super().__init__(f"{where}{message}")
        self.message = message
        self.path = path


def display_path(path: str) -> str:
    """'0.2' → '1.3': the numbering a person sees in the builder."""
    return ".".join(str(int(part) + 1) for part in path.split(".") if part != "")


def require(condition: bool, message: str, path: str) -> None:
    """RuleError(message) at `path` unless `condition` holds."""
    if not condition:
        raise RuleError(message, path=path)


class Context:
    """What compiling or evaluating a condition depends on beside the node: the tenant, the
    moment ("the last 30 days" end now; days count in the tenant's zone) and, when compiling,
    the contacts the query is narrowed to (`scope`, None for all). `segments.compiler.Compiler`
    is a Context; evaluation makes a plain one."""

    def __init__(
        self, *, tenant: Tenant, scope: Sequence[int] | None = None, now: datetime | None = None
    ) -> None:
        self.tenant = tenant
        self.scope: list[int] | None = list(scope) if scope is not None else None
        self.now = now or timezone.now()
        self.zone = ZoneInfo(tenant.timezone or "UTC")
        self.today = self.now.astimezone(self.zone).date()

    def start_of(self, day: date) -> datetime:
        """The moment `day` begins in the tenant's zone."""
        return datetime.combine(day, time.min, tzinfo=self.zone)


class FormFields:
    """One node's fields in the builder's posted data: `node-<path>-<key>`."""

    def __init__(self, data: QueryDict, path: str) -> None:
        self.data, self.path = data, path

    def name(self, key: str) -> str:
        return f"node-{self.path}-{key}"

    def text(self, key: str, default: str = "") -> str:
        value = self.data.get(self.name(key))
        return default if value is None else value.strip()

    def texts(self, key: str) -> list[str]:
        return [v.strip() for v in self.data.getlist(self.name(key)) if v.strip()]

    def indexes(self, pattern: str, *, limit: int = 51) -> list[int]:
        """Indexes n for which a key matching `pattern` (with (\\d+) for n) was posted."""
        regex = re.compile(re.escape(self.name("")) + pattern)
        found = {int(m[1]) for key in self.data if (m := regex.fullmatch(key))}
        return sorted(found)[:limit]


class ConditionKind:
    """The base of every condition kind. Subclasses set the class attributes and implement
    `validate`, `describe`, `q`, `evaluate`, `new` and `from_form`; the rest has defaults.

    `name` is the node's "type"; `label` what the builder calls it; `order` its place in the
    builder's "New condition" list; `template` the template holding its `fields` partial
    (the controls beside its Remove button) and, when `template_rows`, its `rows` partial
    (rows under them); `required_choices` the (key, message) pairs the builder asks for before
    the kind's own checks make sense; `schema` and `example` its part of the API schema."""

    name: ClassVar[str]
    label: ClassVar[str]
    order: ClassVar[int] = 1000
    template: ClassVar[str]
    template_rows: ClassVar[bool] = False
    required_choices: ClassVar[tuple[tuple[str, str], ...]] = ()
    schema: ClassVar[dict[str, Any]] = {"type": "object"}
    example: ClassVar[dict[str, Any]] = {}

    # --- the rule ------------------------------------------------------------------------------
    def validate(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        """The normalised condition (with its "type"), or RuleError(…, path=path)."""
        raise NotImplementedError

    def describe(self, node: dict[str, Any], segment_names: dict[str, str]) -> str:
        """A sentence fragment for the summary; `segment_names` maps public ids to names."""
        raise NotImplementedError

    def references(self, node: dict[str, Any]) -> set[str]:
        """Public ids of the segments this condition refers to."""
        return set()

    def time_relative(self, node: dict[str, Any]) -> bool:
        """Whether the clock alone can change the answer (so a scheduled refresh is needed)."""
        window = node.get("window")
        if isinstance(window, dict) and "last_days" in window:
            return True
        return node.get("operator") in (
            "within_last_days",
            "more_than_days_ago",
            "in_next_days",
            "this_month",
        )

    # --- answering -----------------------------------------------------------------------------
    def q(self, node: dict[str, Any], ctx: Context) -> Q:
        """The (validated) condition as a filter over the tenant's contacts. Tests that read
        other tables narrow them to `ctx.scope` when it is set. A condition that compiles to
        exactly `Q(pk__in=<subquery of contact ids>)` lets the compiler count an "all" group
        set-wise."""
        raise NotImplementedError

    def evaluate(self, node: dict[str, Any], contact: Contact, ctx: Context) -> bool:
        """Whether one contact meets the (validated) condition: the same answer as `q`."""
        raise NotImplementedError

    # --- the builder ---------------------------------------------------------------------------
    def new(self) -> dict[str, Any]:
        """The condition as "Add condition" starts it: sensible defaults, the rest to choose."""
        raise NotImplementedError

    def from_form(self, fields: FormFields) -> dict[str, Any]:
        """The raw (unchecked) condition the posted fields describe."""
        raise NotImplementedError

    def form_check(self, node: dict[str, Any], path: str) -> None:
        """Plain messages for what the builder has not chosen yet, before `validate`."""
        for key, message in self.required_choices:
            if not node.get(key):
                raise RuleError(message, path=path)

    def form_values(self, node: dict[str, Any]) -> dict[str, Any]:
        """Values for the template beyond the node's own scalars (as text)."""
        return {}

    def form_node(self, node: dict[str, Any], built: Any) -> None:
        """Fill the builder's node (`segments.forms.BuilderNode`): `built.values` holds the
        node's scalars as text already."""
        built.values.update(self.form_values(node))

    def form_action(self, node: dict[str, Any], verb: str, extra: str) -> str | None:
        """A builder button of this kind's own (`<verb>:<path>:<extra>`): change `node` and
        return the key of the field to focus, or None when the verb is not the kind's."""
        return None

    def builder_choices(self, *, segments: list[tuple[str, str]]) -> dict[str, Any]:
        """Options the template offers (the same for every condition of one page), merged into
        the builder's `choices`; `segments` are (public id, name) of the segments a condition
        may refer to."""
        return {}

    # --- the API -------------------------------------------------------------------------------
    def api_schema(self) -> dict[str, Any]:
        """This kind's fragment of the rule tree's schema."""
        schema = {**self.schema, "description": self.label}
        props = schema.setdefault("properties", {})
        schema["properties"] = {"type": {"type": "string", "enum": [self.name]}, **props}
        schema["required"] = sorted({"type", *schema.get("required", [])})
        if self.example:
            schema["example"] = self.example
        return schema


_kinds: dict[str, ConditionKind] = {}


def register[K: type[ConditionKind]](kind: K) -> K:
    """Register a kind (usable as a class decorator). Registering the same class again is a
    no-op; another class under a taken name is an error."""
    existing = _kinds.get(kind.name)
    if existing is not None:
        same = (type(existing).__module__, type(existing).__qualname__) == (
            kind.__module__,
            kind.__qualname__,
        )
        if not same:
            raise ValueError(f"condition kind “{kind.name}” is registered already")
        if type(existing) is kind:
            return kind
    _kinds[kind.name] = kind()  # new, or its module imported again (a reload)
    return kind


def unregister(name: str) -> None:
    """Remove a kind (for tests that register one of their own)."""
    _kinds.pop(name, None)


def get(name: object) -> ConditionKind:
    """The kind named `name`; KeyError for anything else."""
    if not isinstance(name, str) or name not in _kinds:
        raise KeyError(name)
    return _kinds[name]


def kinds() -> list[ConditionKind]:
    """Every registered kind, in builder order."""
    return sorted(_kinds.values(), key=lambda kind: (kind.order, kind.name))


def names() -> list[str]:
    return [kind.name for kind in kinds()]


class KindView(Mapping[str, Any]):
    """A live, read-only mapping of name → something of each kind, in builder order."""

    def __init__(self, project: Callable[[ConditionKind], Any] = lambda kind: kind) -> None:
        self.project = project

    def __getitem__(self, name: str) -> Any:
        return self.project(get(name))

    def __iter__(self) -> Iterator[str]:
        return iter(names())

    def __len__(self) -> int:
        return len(_kinds)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in _kinds


def matches(tree: dict[str, Any], contact: Contact, ctx: Context) -> bool:
    """Whether one contact matches a validated tree, condition by condition (stopping as soon
    as a group's answer is known). The same answer as the compiled query."""
    if tree["type"] != "group":
        return get(tree["type"]).evaluate(tree, contact, ctx)
    if not tree["children"]:
        return True  # the builder's empty root: everyone
    results = (matches(child, contact, ctx) for child in tree["children"])
    found = all(results) if tree["match"] == "all" else any(results)
    return not found if tree["negate"] else found


def contact_matches(
    *, tenant: Tenant, rules: dict[str, Any], contact: Contact, now: datetime | None = None
) -> bool:
    """Whether `contact` (one of `tenant`'s) matches a validated rule tree now (or at `now`)."""
    if contact.tenant_id != tenant.pk:  # kinds read by contact id: never another tenant's
        raise ValueError("the contact is not the tenant's")
    return matches(rules, contact, Context(tenant=tenant, now=now))


# segment_users(tenant=…, segment=…) -> what uses the segment, in words (see the docstring above).
SEGMENT_USERS: list[Callable[..., Iterable[str]]] = []


def segment_users_register(finder: Callable[..., Iterable[str]]) -> None:
    if finder not in SEGMENT_USERS:  # ready() may run twice (tests, management commands)
        SEGMENT_USERS.append(finder)
