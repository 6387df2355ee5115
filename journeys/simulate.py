"""The editor's test run (issue 13 item 5): the path one contact would take through a journey if
they entered now, step by step, without writing anything — and "send me these messages".

Public interface (the editor's Test run panel and the API call these; keep them stable):

    simulate(*, tenant, journey, contact, now=None, version=None) -> list[SimStep]
        walks `version` (default: the draft, else the published version) from its trigger,
        running each kind's `execute` with `dry_run=True` on an unsaved Enrollment. The
        triggering event is the contact's latest event of the trigger's name, if any. Waits are
        skipped forward in simulated time; a wait for an event (and a goal) assumes the event
        does NOT happen and goes on by its timeout, and says so. Stops at an exit, a finish, a
        failure, the end of a path, or after MAX_STEPS steps.
    test_messages_send(*, tenant, journey, contact, to_user, now=None, version=None) -> int
        the emails that path would send, rendered for `contact` with the triggering event and
        the journey's data (as the step would render them) and sent at once to `to_user`'s
        own (confirmed) address through messaging's "send test" (its limits apply, one test per
        message); returns how many went. Push steps are not sent (a push goes to browsers, not
        to an address). Raises TestSendRefused (with `.sent`) when messaging refuses one.

    SimStep(node_key, kind, kind_label, label, text, at, port="", port_label="",
            outcome="follow"|"wait"|"finish"|"fail"|"end"|"stop", skipped="",
            template_id="", channel="")
        `text` is the sentence to show ("Would email “Cart abandonment: …” to ann@example.com");
        `at` the simulated moment; `skipped` why a message would not go (no consent, suppressed,
        no subscription: messaging's reachability reasons); `template_id`/`channel` name the
        message of an action step.

Nothing here writes: no Enrollment, Step or Delivery (the kinds promise that for dry runs, and
the tests count rows to hold them to it).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils.timezone import now as clock

from audience.models import Contact, Event
from journeys import graph as graph_rules
from journeys import node_kinds
from journeys.kinds.waits import zone_of
from journeys.models import Edge, Enrollment, Journey, JourneyVersion, Node
from journeys.node_kinds import Fail, Finish, Follow, StepContext, Wait
from tenants.models import Tenant

MAX_STEPS = 50
MESSAGE_KINDS = {"action_email": "email", "action_push": "push"}


@dataclass(frozen=True)
class SimStep:
    node_key: str
    kind: str
    kind_label: str
    label: str  # the step's own name (its label, else what its kind says it does)
    text: str  # what would happen, in words
    at: datetime  # when, in simulated time
    port: str = ""  # the port it would leave by ("" when it doesn't)
    port_label: str = ""
    outcome: str = "follow"  # follow | wait | finish | fail | end | stop
    skipped: str = ""  # why a message would not be sent
    template_id: str = ""  # an action's message template (public id)
    channel: str = ""


class TestSendRefused(Exception):
    """messaging refused a test send (unconfirmed address, a limit reached, …); `sent` went
    before it."""

    __test__ = False  # not a pytest class

    def __init__(self, message: str, *, sent: int = 0) -> None:
        super().__init__(message)
        self.message, self.sent = message, sent


# --- the walk --------------------------------------------------------------------------------


def _version(journey: Journey, version: JourneyVersion | None) -> JourneyVersion | None:
    if version is not None:
        if version.journey_id != journey.pk:
            raise ValueError("the version is not this journey's")
        return version
    versions = JourneyVersion.objects.filter(journey=journey, tenant_id=journey.tenant_id)
    return (
        versions.filter(state=JourneyVersion.State.DRAFT).first()
        or versions.filter(state=JourneyVersion.State.PUBLISHED).first()
    )


def _trigger_event_name(node: Node) -> str:
    if node.kind == "trigger_event":
        return str(node.settings.get("event") or "")
    if node.kind == "trigger_signup":
        return graph_rules.SIGNUP_EVENT
    return ""


def _entry_context(tenant: Tenant, contact: Contact, trigger: Node) -> tuple[dict[str, Any], str]:
    """The enrollment's context as if they entered now, and how it was made up."""
    name = _trigger_event_name(trigger)
    if not name:
        return {"data": {}}, ""
    event = (
        Event.objects.filter(tenant=tenant, contact_id=contact.pk, name=name)
        .order_by("-occurred_at", "-pk")
        .first()
    )
    if event is None:
        return (
            {"event": {"name": name, "properties": {}}, "data": {}},
            f" No “{name}” of theirs on record: entering without its details.",
        )
    context = {
        "event": {
            "name": event.name,
            "properties": event.properties if isinstance(event.properties, dict) else {},
            "occurred_at": event.occurred_at.isoformat(),
            "id": event.pk,
        },
        "data": {},
    }
    return context, f" With their latest “{name}” ({_when(event.occurred_at, contact, tenant)})."


def _when(at: datetime, contact: Contact, tenant: Tenant) -> str:
    zone = zone_of(contact, tenant)
    return f"{at.astimezone(zone):%a %d %b %Y, %H:%M} {zone.key}"


def _span(start: datetime, end: datetime) -> str:
    seconds = int((end - start).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'' if n == 1 else 's'}"
    minutes = max(1, round(seconds / 60))
    return f"{minutes} minute{'' if minutes == 1 else 's'}"


def _unreachable(tenant: Tenant, contact: Contact, channel: str, category: str) -> str:
    from messaging.selectors import contact_unreachable_reason

    return (
        contact_unreachable_reason(
            tenant=tenant, contact=contact, channel=channel, category=category
        )
        or ""
    )


def simulate(
    *,
    tenant: Tenant,
    journey: Journey,
    contact: Contact,
    now: datetime | None = None,
    version: JourneyVersion | None = None,
) -> list[SimStep]:
    """The path `contact` would take through `journey` entering at `now` (see the module)."""
    return _walk(tenant=tenant, journey=journey, contact=contact, now=now, version=version)[0]


def _walk(
    *,
    tenant: Tenant,
    journey: Journey,
    contact: Contact,
    now: datetime | None,
    version: JourneyVersion | None,
) -> tuple[list[SimStep], dict[str, Any]]:
    """The path, and the enrollment's context it was walked with."""
    if journey.tenant_id != tenant.pk or contact.tenant_id != tenant.pk:
        raise ValueError("the journey and the contact must be the tenant's")
    start = now or clock()
    found = _version(journey, version)
    if found is None:
        return [_stop("", start, "This journey has no version to test.")], {}
    nodes = {n.key: n for n in Node.objects.filter(tenant=tenant, version=found)}
    edges = {
        (e.source, e.port): e.target for e in Edge.objects.filter(tenant=tenant, version=found)
    }
    trigger = next(
        (n for n in nodes.values() if _category(n.kind) == node_kinds.Category.TRIGGER), None
    )
    if trigger is None:
        return [_stop("", start, "The journey has no trigger yet: nothing to test.")], {}
    context, how = _entry_context(tenant, contact, trigger)
    found.journey = journey  # the kinds read enrollment.journey / .version
    enrollment = Enrollment(
        tenant=tenant,
        journey=journey,
        version=found,
        contact=contact,
        node_key=trigger.key,
        arrived_at=start,
        entered_at=start,
        due_at=start,
        context=context,
        # The same contact takes the same random split each test run.
        public_id=uuid.uuid5(journey.public_id, str(contact.public_id)),
    )
    steps: list[SimStep] = []
    at, node = start, trigger
    entered_note = how
    while True:
        if len(steps) >= MAX_STEPS:
            steps.append(
                _stop(node.key, at, f"Stopped after {MAX_STEPS} steps: the path goes round.")
            )
            return steps, context
        step = _run(tenant, enrollment, contact, node, at, entered_note)
        entered_note = ""
        steps.extend(step.lines)
        if step.port is None:
            return steps, context
        at = step.at
        target = edges.get((node.key, step.port))
        if target is None or target not in nodes:
            steps.append(
                SimStep(
                    node_key=node.key,
                    kind="",
                    kind_label="",
                    label="End",
                    text="The path ends here: they would complete the journey.",
                    at=at,
                    outcome="end",
                )
            )
            return steps, context
        node = nodes[target]
        enrollment.node_key, enrollment.arrived_at = node.key, at
        enrollment.steps_taken += 1


def _category(kind: str) -> str:
    return node_kinds.get(kind).category if node_kinds.is_registered(kind) else ""


def _stop(key: str, at: datetime, text: str) -> SimStep:
    return SimStep(node_key=key, kind="", kind_label="", label="", text=text, at=at, outcome="stop")


@dataclass
class _Ran:
    lines: list[SimStep]
    port: str | None  # None: the walk stops here
    at: datetime


def _run(
    tenant: Tenant,
    enrollment: Enrollment,
    contact: Contact,
    node: Node,
    at: datetime,
    note: str,
) -> _Ran:
    """One node: its kind's dry run, then, for a wait, the same again at the wait's end."""
    if not node_kinds.is_registered(node.kind):
        return _Ran([_stop(node.key, at, f"Unknown kind of step “{node.kind}”.")], None, at)
    kind = node_kinds.get(node.kind)
    base = {"node_key": node.key, "kind": node.kind, "kind_label": kind.label}
    try:
        settings = kind.validate(dict(node.settings or {}))
    except node_kinds.NodeSettingsError as exc:
        text = f"This step isn't finished: {exc}"
        return _Ran(
            [SimStep(**base, label=node.label or kind.label, text=text, at=at, outcome="stop")],
            None,
            at,
        )
    describe = kind.describe(settings)
    label = node.label or describe
    # The kinds read node.settings: give them the normalised ones, on a copy.
    node = Node(
        tenant=tenant,
        version=enrollment.version,
        key=node.key,
        kind=node.kind,
        label=node.label,
        settings=settings,
    )
    lines: list[SimStep] = []
    waited = False
    for _ in range(MAX_STEPS):  # a wait re-run at its end may wait again (a window)
        outcome = kind.execute(
            StepContext(
                tenant=tenant,
                enrollment=enrollment,
                contact=contact,
                node=node,
                now=at,
                dry_run=True,
            )
        )
        if isinstance(outcome, Wait):
            if outcome.until is None:
                text = f"Would wait for “{outcome.event}” with no time limit; the test stops here."
                lines.append(SimStep(**base, label=label, text=text, at=at, outcome="wait"))
                return _Ran(lines, None, at)
            lines.append(
                SimStep(
                    **base,
                    label=label,
                    text=_wait_text(node, settings, outcome, at, contact, tenant),
                    at=at,
                    outcome="wait",
                )
            )
            at = max(outcome.until, at)
            waited = True
            continue
        if isinstance(outcome, Fail):
            text = f"Would fail: {outcome.reason}"
            lines.append(SimStep(**base, label=label, text=text, at=at, outcome="fail"))
            return _Ran(lines, None, at)
        if isinstance(outcome, Finish):
            lines.append(
                SimStep(**base, label=label, text=_finish_text(outcome), at=at, outcome="finish")
            )
            return _Ran(lines, None, at)
        assert isinstance(outcome, Follow)
        port_label = kind.port_label(outcome.port, settings)
        if waited:
            # The wait's own line said where it leads; no second line for the same node.
            return _Ran(lines, outcome.port, at)
        text, extra = _follow_text(tenant, contact, enrollment, node, kind, settings, outcome)
        lines.append(
            SimStep(
                **base,
                label=label,
                text=text + note,
                at=at,
                port=outcome.port,
                port_label=port_label,
                **extra,
            )
        )
        return _Ran(lines, outcome.port, at)
    lines.append(_stop(node.key, at, "This step keeps waiting; the test stops here."))
    return _Ran(lines, None, at)


def _wait_text(
    node: Node,
    settings: dict[str, Any],
    outcome: Wait,
    at: datetime,
    contact: Contact,
    tenant: Tenant,
) -> str:
    until = max(outcome.until or at, at)
    when = _when(until, contact, tenant)
    kind = node_kinds.get(node.kind)
    span = _span(at, until)
    if node.kind in ("wait_delay", "wait_event") and settings.get("amount"):
        # In the marketer's own words ("24 hours", not "1 day"): these count from arriving.
        amount, unit = int(settings["amount"]), str(settings.get("unit") or "days")
        span = f"{amount} {unit[:-1] if amount == 1 else unit}"
    if outcome.event:
        same = ""
        if node.kind == "wait_event" and settings.get("match"):
            same = f" (the same {settings['match']})"
        timeout = kind.port_label(outcome.timeout_port or "timeout", settings)
        what = "Goal: would wait" if node.kind == "goal" else "Would wait"
        return (
            f"{what} up to {span} for “{outcome.event}”{same}. Assuming it doesn't "
            f"happen, goes on by “{timeout}” at {when}."
        )
    if node.kind == "wait_window":
        return f"Would wait for the window ({kind.describe(settings)}) until {when}."
    return f"Would wait {span} (until {when})."


def _finish_text(outcome: Finish) -> str:
    return {
        "completed": "Exit: they would leave the journey here (completed).",
        "converted": "They would convert here and leave the journey.",
        "exited": "They would exit the journey here.",
    }.get(outcome.state, f"The journey would end here ({outcome.state}).")


def _follow_text(
    tenant: Tenant,
    contact: Contact,
    enrollment: Enrollment,
    node: Node,
    kind: node_kinds.NodeKind,
    settings: dict[str, Any],
    outcome: Follow,
) -> tuple[str, dict[str, str]]:
    detail = outcome.detail or {}
    port_label = kind.port_label(outcome.port, settings)
    category = kind.category
    if category == node_kinds.Category.TRIGGER:
        return f"Enters: {kind.describe(settings)}.", {}
    if node.kind in MESSAGE_KINDS:
        channel = MESSAGE_KINDS[node.kind]
        name = str(detail.get("would_send") or "")
        to = contact.email if channel == "email" else "their browsers"
        verb = "email" if channel == "email" else "send the push"
        skipped = _unreachable(tenant, contact, channel, settings.get("category") or "marketing")
        text = f"Would {verb} “{name}” to {to or 'them'}."
        if skipped:
            text = f"{text} It would be skipped: {skipped}."
        return text, {
            "skipped": skipped,
            "template_id": str(settings.get("template") or ""),
            "channel": channel,
        }
    if "would_set" in detail:
        (field, value), *_ = detail["would_set"].items()
        return f"Would set {field} to “{value}”.", {}
    for operation, word in (("would_add", "add"), ("would_remove", "remove")):
        if operation in detail:
            (attribute, value), *_ = detail[operation].items()
            where = "to" if word == "add" else "from"
            return f"Would {word} “{value}” {where} {attribute}.", {}
    if "would_post" in detail:
        return f"Would POST the contact and the journey's data to {detail['would_post']}.", {}
    if category == node_kinds.Category.BRANCH:
        return f"Branch: {port_label} — {_branch_reason(node, settings, outcome.port)}", {}
    if category == node_kinds.Category.GOAL:
        return f"Goal: goes on by “{port_label}”.", {}
    return f"{kind.describe(settings)}: goes on by “{port_label}”.", {}


def _branch_reason(node: Node, settings: dict[str, Any], port: str) -> str:
    if node.kind == "branch_condition":
        return "they match the condition." if port == "yes" else "they don't match the condition."
    if node.kind == "branch_event":
        since = (
            f"in the last {settings.get('days', 7)} days"
            if settings.get("since") == "days"
            else "since entering"
        )
        filtered = " (meeting its conditions)" if settings.get("filters") else ""
        did = "did" if port == "yes" else "didn't do"
        return f"they {did} “{settings['event']}”{filtered} {since}."
    if node.kind == "branch_split":
        return "the random split picks this path (for this contact, every test run)."
    return f"goes on by {port}."


# --- "send me these messages" ----------------------------------------------------------------


def test_messages_send(
    *,
    tenant: Tenant,
    journey: Journey,
    contact: Contact,
    to_user: Any,
    now: datetime | None = None,
    version: JourneyVersion | None = None,
) -> int:
    """Send the emails of `contact`'s test-run path to `to_user` now (see the module)."""
    from accounts.services import user_email_verified
    from journeys.kinds.actions import message_data
    from messaging.models import Template
    from messaging.services import template_send_test

    if not user_email_verified(to_user):
        raise TestSendRefused(
            f"Nothing was sent: confirm your email address first (follow the link we sent to "
            f"{to_user.email})."
        )
    path, context = _walk(tenant=tenant, journey=journey, contact=contact, now=now, version=version)
    wanted = [s for s in path if s.channel == "email" and s.template_id]
    templates = {
        str(t.public_id): t
        for t in Template.objects.filter(
            tenant=tenant, public_id__in=[s.template_id for s in wanted], channel="email"
        )
    }
    sent = 0
    for step in wanted:
        template = templates.get(step.template_id)
        if template is None:
            continue
        # Rendered as the step would render it: the triggering event, the journey's data.
        result = template_send_test(
            tenant=tenant,
            template=template,
            contact=contact,
            actor=to_user,
            to=to_user.email,
            event=context.get("event"),
            data=message_data(context),
        )
        if not result.ok:
            raise TestSendRefused(result.text, sent=sent)
        sent += 1
    return sent


test_messages_send.__test__ = False  # type: ignore[attr-defined]  # a service, not a pytest test
