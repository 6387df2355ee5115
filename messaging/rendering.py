"""Liquid for messages: a sandboxed python-liquid environment, parsed templates
cached by their source, and errors that name the field and line for the editor.

The sandbox. Liquid resolves `a.b` as `a["b"]` on the plain dicts and lists of the context
(messaging/context.py), never as a Python attribute, so `{{ contact.__class__ }}` is simply
undefined; there are no partials (`include`/`render` are removed) and filters are plain
functions. What remains is resource use, bounded by:

- python-liquid's own limits: loop iterations (nested loops multiply), output size, the size of
  assigned variables, context depth and block nesting;
- a guard around every filter: no array longer than the loop limit and no string longer than
  the output limit goes in or comes out, and `replace`/`join` are refused before they would
  build such a string (one `replace` can square its input);
- time budgets per field: one to parse and check it (PARSE_SECONDS of CPU), one to render it
  (RENDER_SECONDS). python-liquid has no timeout option, so the parser checks the deadline for
  each part it parses, the render context each time a node renders (loop bodies included, empty
  ones too) and each filter as it runs. Anything slow must loop or filter, so a template stops
  within a few milliseconds of the deadline;
- a limit on the parts of one field (Liquid tags, outputs, the text between them), counted
  before parsing and while parsing: parsing and the static analysis cost time and memory in
  proportion to them (~40 µs and ~600 bytes each, measured), so together with the source size
  limit it bounds what one field can cost before a deadline is even needed;
- parsed templates are cached by their source in an LRU bounded by the bytes its entries keep
  (estimated from their parts and size), not only by their number.

`template_errors()` runs all of this on a rich sample contact when a template is saved, so a
template that fails at send time is one whose contact's data broke it, not a bad template.
"""

from __future__ import annotations

import contextvars
import gc
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any

from liquid import Environment
from liquid.context import RenderContext
from liquid.exceptions import (
    ContextDepthError,
    LiquidError,
    LocalNamespaceLimitError,
    LoopIterationLimitError,
    OutputStreamLimitError,
)
from liquid.output import LimitedStringIO
from liquid.stream import TokenStream
from liquid.template import BoundTemplate

from messaging.models import EMAIL_FIELDS, Channel
from messaging.plaintext import html_to_text

if TYPE_CHECKING:
    from messaging.models import Template

LOOP_ITERATION_LIMIT = 10_000  # per loop, nested loops multiplied
HTML_OUTPUT_LIMIT = 1_000_000  # bytes of an email's HTML (mail clients clip far earlier)
SHORT_OUTPUT_LIMIT = 10_000  # bytes of a subject, preheader or push field
LOCAL_NAMESPACE_LIMIT = 1_000_000  # bytes held by {% assign %} and {% capture %} variables
CONTEXT_DEPTH_LIMIT = 10
BLOCK_NESTING_LIMIT = 20
SOURCE_LIMIT = 500_000  # characters of one field's source; parsing is linear
PART_LIMIT = 5_000  # Liquid tags, outputs and text runs of one field (a newsletter has ~500)
RENDER_SECONDS = 0.25  # per field; a real template takes well under a millisecond
# CPU time to parse and check a field before it renders (once per source: the result is
# cached). A real template takes a few ms; PART_LIMIT parts take ~0.1 s.
PARSE_SECONDS = 0.5
PARSE_CACHE_BYTES = 32 * 1024 * 1024  # what the parsed templates of one process may keep
PART_BYTES = 600  # what a parsed part keeps, measured with tracemalloc (460 to 590 bytes)

PUSH_TEXT_FIELDS = ("title", "body", "icon_url", "image_url", "target_url")
PUSH_URL_FIELDS = ("icon_url", "image_url", "target_url")
MAX_PUSH_ACTIONS = 2  # what browsers show


class TemplateError(Exception):
    """A template that cannot be rendered: `field` ("subject", "html", "actions"…) and a
    `message` for the editor that names the field and, when known, the line."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    preheader: str
    html: str
    text: str


@dataclass(frozen=True)
class RenderedPush:
    title: str
    body: str
    icon_url: str
    image_url: str
    target_url: str
    actions: list[dict[str, str]]


# --- The sandbox -------------------------------------------------------------------------------


class _Limit(LiquidError):
    """A sandbox limit of ours (time, a filter's input or output), with a plain message."""

    def __init__(self, message: str) -> None:
        super().__init__(message, token=None)


class _GcTime(threading.local):
    """What the garbage collector has taken in this thread so far, on both clocks."""

    started_cpu = 0.0
    started_wall = 0.0
    cpu = 0.0
    wall = 0.0


_GC_TIME = _GcTime()
_real_thread_time, _real_monotonic = time.thread_time, time.monotonic


def _gc_timer(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _GC_TIME.started_cpu, _GC_TIME.started_wall = _real_thread_time(), _real_monotonic()
    else:
        _GC_TIME.cpu += _real_thread_time() - _GC_TIME.started_cpu
        _GC_TIME.wall += _real_monotonic() - _GC_TIME.started_wall


if _gc_timer not in gc.callbacks:
    gc.callbacks.append(_gc_timer)


# The budgets' clocks leave out the garbage collector: a collection that happens to start while
# a template parses walks the whole process's heap (most of a second in a long-lived worker),
# which is not the template's cost, and a real template must not be refused for it.
def _cpu_clock() -> float:
    return time.thread_time() - _GC_TIME.cpu


def _wall_clock() -> float:
    return time.monotonic() - _GC_TIME.wall


# The deadline in force: (clock, the time it ends, what is being done).
_deadline: contextvars.ContextVar[tuple[Callable[[], float], float, str]] = contextvars.ContextVar(
    "deadline", default=(_wall_clock, math.inf, "render")
)


def _check_clock() -> None:
    clock, deadline, doing = _deadline.get()
    if clock() > deadline:
        seconds = RENDER_SECONDS if doing == "render" else PARSE_SECONDS
        raise _Limit(f"took longer than {seconds:g} s to {doing}")


class _Budget:
    """A deadline for what runs inside. Rendering, on every send, reads the cheap wall clock
    (0.2 µs); parsing, once per source, reads this thread's CPU time (0.7 µs), which a loaded
    machine does not stretch: a template is refused for its cost, never for a busy neighbour."""

    def __init__(self, doing: str) -> None:
        self.doing = doing

    def __enter__(self) -> None:
        if self.doing == "render":
            clock, seconds = _wall_clock, RENDER_SECONDS
        else:
            clock, seconds = _cpu_clock, PARSE_SECONDS
        self._token = _deadline.set((clock, clock() + seconds, self.doing))

    def __exit__(self, *exc: object) -> None:
        _deadline.reset(self._token)


# The parts parsed so far by the parse running in this context (a one-item list: a counter).
_parts: contextvars.ContextVar[list[int]] = contextvars.ContextVar("parts")


class _SandboxContext(RenderContext):
    """A render context that checks the render deadline. Every node reads `disabled_tags`
    before it renders (liquid.ast.Node.render), so that read is the one hook that sees loop
    bodies, empty ones included, without patching python-liquid."""

    __slots__ = ("_disabled",)

    @property
    def disabled_tags(self) -> list[str]:
        _check_clock()
        return self._disabled

    @disabled_tags.setter
    def disabled_tags(self, value: list[str]) -> None:
        self._disabled = value


def _size_check(value: object) -> None:
    if isinstance(value, str):
        if len(value) > HTML_OUTPUT_LIMIT:
            raise _Limit(f"a text longer than {HTML_OUTPUT_LIMIT:,} characters")
    elif isinstance(value, (list, tuple, range)) and len(value) > LOOP_ITERATION_LIMIT:
        raise _Limit(f"a list of more than {LOOP_ITERATION_LIMIT:,} items")


def _replace_check(value: object, *args: object) -> None:
    if len(args) >= 2 and isinstance(value, str):
        old, new = str(args[0]), str(args[1])
        # str.count("") is len + 1: replacing "" inserts between every character.
        if len(value) + value.count(old) * max(0, len(new) - len(old)) > HTML_OUTPUT_LIMIT:
            raise _Limit(f"replace would make a text longer than {HTML_OUTPUT_LIMIT:,} characters")


def _join_check(value: object, *args: object) -> None:
    if isinstance(value, (list, tuple)) and args:
        pieces = sum(len(v) for v in value if isinstance(v, str)) + 20 * len(value)
        if pieces + len(str(args[0])) * len(value) > HTML_OUTPUT_LIMIT:
            raise _Limit(f"join would make a text longer than {HTML_OUTPUT_LIMIT:,} characters")


_PRE_CHECKS: dict[str, Callable[..., None]] = {
    "replace": _replace_check,
    "join": _join_check,
}


def _guarded(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` behind the sandbox's checks: the deadline, the size of what goes in and what
    comes out. Keeps the markers python-liquid reads to pass the environment or context."""
    pre_check = _PRE_CHECKS.get(name)

    @wraps(func)
    def guarded(value: object, *args: object, **kwargs: object) -> object:
        _check_clock()
        _size_check(value)
        for arg in args:
            _size_check(arg)
        if pre_check is not None:
            pre_check(value, *args)
        result = func(value, *args, **kwargs)
        _size_check(result)
        return result

    for marker in ("with_context", "with_environment"):
        if getattr(func, marker, False):
            setattr(guarded, marker, True)
    return guarded


_CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£", "CHF": "CHF ", "JPY": "¥"}


def money(value: object, currency: object = "") -> str:
    """`{{ item.price | money: item.currency }}` → "€19.90"; "" for a missing price."""
    try:
        amount = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return ""
    code = str(currency or "").upper()
    if code in _CURRENCY_SYMBOLS:
        return f"{_CURRENCY_SYMBOLS[code]}{amount:,.2f}"
    return f"{amount:,.2f} {code}".rstrip()


def _too_many_parts() -> _Limit:
    return _Limit(
        f"more than {PART_LIMIT:,} Liquid tags, outputs and texts between them: "
        "split it into smaller templates"
    )


def _counted(get_node: Callable[[TokenStream], Any]) -> Callable[[TokenStream], Any]:
    """A tag's `get_node` that counts the part against PART_LIMIT and checks the deadline.
    Every node python-liquid parses goes through one (the lines of a `{% liquid %}` tag too),
    so this is the one hook that sees all of parsing without patching python-liquid."""

    def counted(stream: TokenStream) -> Any:
        parts = _parts.get(None)
        if parts is not None:
            parts[0] += 1
            if parts[0] > PART_LIMIT:
                raise _too_many_parts()
        _check_clock()
        return get_node(stream)

    return counted


class SandboxEnvironment(Environment):
    """The one Liquid configuration for messages. It exists twice (see below) only because
    python-liquid's filters read `autoescape` from the environment itself."""

    loop_iteration_limit = LOOP_ITERATION_LIMIT
    output_stream_limit = HTML_OUTPUT_LIMIT
    local_namespace_limit = LOCAL_NAMESPACE_LIMIT
    context_depth_limit = CONTEXT_DEPTH_LIMIT
    block_nesting_limit = BLOCK_NESTING_LIMIT

    def setup_tags_and_filters(self, *, extra: bool = False) -> None:
        super().setup_tags_and_filters(extra=False)
        # No partials exist, and each would be a way around the limits of the one template.
        for name in ("include", "render"):
            self.tags.pop(name, None)
        self.add_filter("money", money)
        self.filters = {name: _guarded(name, f) for name, f in self.filters.items()}
        for tag in {id(t): t for t in self.tags.values()}.values():
            tag.get_node = _counted(tag.get_node)  # type: ignore[method-assign,assignment]


# Email HTML escapes every value it outputs; subjects, preheaders and push fields are text.
HTML_ENV = SandboxEnvironment(autoescape=True)
TEXT_ENV = SandboxEnvironment(autoescape=False)


class ParseCache:
    """Parsed templates by (source, is_html), least recently used dropped first once what they
    keep passes `max_bytes`. What an entry keeps is estimated as it is parsed: its source plus
    PART_BYTES for each part (both measured with tracemalloc; tests/messaging/
    test_render_budget.py holds the estimate to what a process really keeps)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.hits = self.misses = 0
        self._entries: OrderedDict[tuple[str, bool], tuple[BoundTemplate, int]] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: tuple[str, bool]) -> BoundTemplate | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self.hits += 1
            self._entries.move_to_end(key)
            return found[0]

    def put(self, key: tuple[str, bool], template: BoundTemplate, size: int) -> None:
        if size > self.max_bytes // 4:
            return  # one template may not push out everything the sender uses
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = (template, size)
            self.bytes += size
            while self.bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self.bytes -= dropped

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = self.hits = self.misses = 0


PARSE_CACHE = ParseCache(PARSE_CACHE_BYTES)


def _parse(source: str, html: bool) -> BoundTemplate:
    """A parsed template, cached by its source: the sender renders the same few templates
    thousands of times. Parsing counts against the caller's budget (`_Budget`) and PART_LIMIT.
    Raises LiquidError (not cached) for a template that does not parse or is too big."""
    key = (source, html)
    template = PARSE_CACHE.get(key)
    if template is not None:
        return template
    # Every part opens with a delimiter: count them before parsing anything.
    if source.count("{{") + source.count("{%") > PART_LIMIT:
        raise _too_many_parts()
    parts = _parts.set([0])
    try:
        template = (HTML_ENV if html else TEXT_ENV).from_string(source)
    except LiquidError as exc:
        # from_string wraps what is not a syntax error: a limit of ours is the real reason.
        if isinstance(exc.__cause__, _Limit):
            raise exc.__cause__ from None
        raise
    finally:
        count = _parts.get()[0]
        _parts.reset(parts)
    PARSE_CACHE.put(key, template, len(source) + PART_BYTES * count)
    return template


# --- Rendering ---------------------------------------------------------------------------------


def _line(exc: LiquidError) -> int | None:
    token = exc.token
    if token is None or token.start_index < 0:
        return None
    return token.source.count("\n", 0, token.start_index) + 1


def _describe(field: str, exc: BaseException, *, limit: int = HTML_OUTPUT_LIMIT) -> str:
    """'html, line 3: unexpected tag 'endfor'' — what the editor shows under the field."""
    if isinstance(exc, LoopIterationLimitError):
        text = f"loops would repeat more than {LOOP_ITERATION_LIMIT:,} times"
    elif isinstance(exc, OutputStreamLimitError):
        text = f"the result would be longer than {limit:,} bytes"
    elif isinstance(exc, LocalNamespaceLimitError):
        text = f"assigned variables would hold more than {LOCAL_NAMESPACE_LIMIT:,} bytes"
    elif isinstance(exc, ContextDepthError):
        text = "blocks are nested too deeply"
    elif isinstance(exc, LiquidError):
        text = str(exc.message)
    else:  # e.g. a number too large to print
        text = str(exc) or type(exc).__name__
    line = _line(exc) if isinstance(exc, LiquidError) else None
    return f"{field}, line {line}: {text}" if line else f"{field}: {text}"


def _render_field(
    field: str, source: str, context: Mapping[str, Any], *, html: bool, limit: int
) -> str:
    if not source:
        return ""
    if len(source) > SOURCE_LIMIT:
        raise TemplateError(field, f"{field}: longer than {SOURCE_LIMIT:,} characters")
    if "{" not in source:
        return source  # nothing to personalise: no parse, no render
    with _Budget("parse"):
        try:
            template = _parse(source, html)
        except LiquidError as exc:
            raise TemplateError(field, _describe(field, exc)) from None
    buffer = LimitedStringIO(limit=limit)
    # The context dict is the render's read-only globals as it is: no copy per field.
    render_context = _SandboxContext(template, globals=context)
    with _Budget("render"):
        try:
            template.render_with_context(render_context, buffer)
        except LiquidError as exc:
            raise TemplateError(field, _describe(field, exc, limit=limit)) from None
        except (ValueError, TypeError, ArithmeticError, RecursionError, MemoryError) as exc:
            raise TemplateError(field, _describe(field, exc)) from None
    return buffer.getvalue()


def _one_line(text: str) -> str:
    # Headers and notification titles are one line; contact data may hold newlines.
    return " ".join(text.split())


def render_email(content: dict[str, Any], context: dict[str, Any]) -> RenderedEmail:
    """Render an email content snapshot (Template.snapshot(), Delivery.content) for one
    context. Undefined variables render empty. Raises TemplateError."""
    subject = _render_field(
        "subject", content.get("subject", ""), context, html=False, limit=SHORT_OUTPUT_LIMIT
    )
    preheader = _render_field(
        "preheader", content.get("preheader", ""), context, html=False, limit=SHORT_OUTPUT_LIMIT
    )
    html = _render_field(
        "html", content.get("html", ""), context, html=True, limit=HTML_OUTPUT_LIMIT
    )
    return RenderedEmail(
        subject=_one_line(subject),
        preheader=_one_line(preheader),
        html=html,
        text=html_to_text(html),
    )


def _push_actions(content: dict[str, Any], context: dict[str, Any]) -> list[dict[str, str]]:
    actions = content.get("actions") or []
    if not isinstance(actions, list):
        raise TemplateError("actions", "actions: must be a list of {title, url}")
    rendered = []
    for i, action in enumerate(actions[:MAX_PUSH_ACTIONS], start=1):
        if not isinstance(action, dict):
            raise TemplateError("actions", f"actions[{i}]: must be an object with title and url")
        title, url = (
            _render_field(
                "actions",
                str(action.get(key) or ""),
                context,
                html=False,
                limit=SHORT_OUTPUT_LIMIT,
            )
            for key in ("title", "url")
        )
        rendered.append(
            {
                "action": str(action.get("action") or f"action-{i}"),
                "title": _one_line(title),
                "url": url.strip(),
            }
        )
    return rendered


def render_push(content: dict[str, Any], context: dict[str, Any]) -> RenderedPush:
    """Render a push content snapshot for one context (all fields are text). Raises
    TemplateError."""
    values = {
        name: _render_field(
            name, str(content.get(name) or ""), context, html=False, limit=SHORT_OUTPUT_LIMIT
        )
        for name in PUSH_TEXT_FIELDS
    }
    return RenderedPush(
        title=_one_line(values["title"]),
        body=values["body"].strip(),
        icon_url=values["icon_url"].strip(),
        image_url=values["image_url"].strip(),
        target_url=values["target_url"].strip(),
        actions=_push_actions(content, context),
    )


def render(content: dict[str, Any], context: dict[str, Any]) -> RenderedEmail | RenderedPush:
    """Render a content snapshot of either channel (by content["channel"])."""
    if content.get("channel") == Channel.PUSH:
        return render_push(content, context)
    return render_email(content, context)


# --- Validation --------------------------------------------------------------------------------


def _liquid_sources(template: Template) -> Iterator[tuple[str, str, bool]]:
    """(field, source, is_html) for every Liquid field of the template's channel."""
    if template.channel == Channel.EMAIL:
        for name in EMAIL_FIELDS:
            yield name, getattr(template, name) or "", name == "html"
        return
    for name in PUSH_TEXT_FIELDS:
        yield name, getattr(template, name) or "", False
    if isinstance(template.actions, list):
        for action in template.actions:
            if isinstance(action, dict):
                for key in ("title", "url"):
                    yield "actions", str(action.get(key) or ""), False


def _private_names(segments: list[Any]) -> Iterator[str]:
    for segment in segments:
        if isinstance(segment, list):
            yield from _private_names(segment)
        elif isinstance(segment, str) and segment.startswith("_"):
            yield segment


def _static_errors(field: str, source: str, html: bool) -> list[str]:
    """What is wrong without rendering: syntax, unknown tags and filters (also in branches the
    sample would not take), and reaching for names that start with "_" (Python internals)."""
    if len(source) > SOURCE_LIMIT:
        return [f"{field}: longer than {SOURCE_LIMIT:,} characters"]
    with _Budget("parse"):
        try:
            template = _parse(source, html)
            # python-liquid's analysis cannot be interrupted, but it is linear in the parts
            # (~20 µs each, measured), which PART_LIMIT bounds; overrunning counts as one.
            analysis = template.analyze(include_partials=False)
            _check_clock()
        except LiquidError as exc:
            return [_describe(field, exc)]
    env = HTML_ENV if html else TEXT_ENV
    errors = []
    for name, spans in analysis.filters.items():
        if name not in env.filters:
            line = source.count("\n", 0, spans[0].index) + 1
            errors.append(f"{field}, line {line}: unknown filter '{name}'")
    for variables in analysis.variables.values():
        for variable in variables:
            if any(True for _ in _private_names(variable.segments)):
                line = source.count("\n", 0, variable.span.index) + 1
                errors.append(
                    f"{field}, line {line}: '{variable}' is not available "
                    "(names starting with _ are private)"
                )
    return errors


def _is_web_url(url: str) -> bool:
    scheme, _, rest = url.partition("://")
    return scheme.lower() in ("http", "https") and bool(rest) and " " not in url


def _push_url_errors(rendered: RenderedPush) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for name in PUSH_URL_FIELDS:
        url = getattr(rendered, name)
        if url and not _is_web_url(url):
            errors.setdefault(name, []).append(
                f"{name}: must give an http(s) URL; on the sample contact it gives “{url[:100]}”"
            )
    for i, action in enumerate(rendered.actions, start=1):
        if not action["title"]:
            errors.setdefault("actions", []).append(f"actions[{i}]: needs a title")
        if not _is_web_url(action["url"]):
            errors.setdefault("actions", []).append(
                f"actions[{i}]: the url must give an http(s) URL; on the sample contact it "
                f"gives “{action['url'][:100]}”"
            )
    return errors


def template_errors(template: Template) -> dict[str, list[str]]:
    """Everything wrong with a template's Liquid, by field ({} if nothing): syntax, unknown
    tags and filters, private names, and — rendered for a rich sample contact — the sandbox's
    limits, runtime errors and, for push, URLs that are not http(s)."""
    from messaging.context import sample_context
    from tenants.models import Tenant

    errors: dict[str, list[str]] = {}
    for field, source, html in _liquid_sources(template):
        if source and "{" in source:
            found = _static_errors(field, source, html)
            if found:
                errors.setdefault(field, []).extend(found)
    if template.channel == Channel.PUSH:
        actions = template.actions
        if not isinstance(actions, list) or not all(isinstance(a, dict) for a in actions):
            errors.setdefault("actions", []).append(
                "actions: must be a list of objects with a title and a url"
            )
        elif len(actions) > MAX_PUSH_ACTIONS:
            errors.setdefault("actions", []).append(
                f"actions: at most {MAX_PUSH_ACTIONS} (what browsers show)"
            )
    if errors:
        return errors
    # A template being created may have no tenant yet: any tenant's sample has the same shape.
    tenant = template.tenant if template.tenant_id else Tenant(name="Your shop", timezone="UTC")
    context = sample_context(tenant)
    for field, source, html in _liquid_sources(template):
        limit = HTML_OUTPUT_LIMIT if html else SHORT_OUTPUT_LIMIT
        try:
            _render_field(field, source, context, html=html, limit=limit)
        except TemplateError as exc:
            errors.setdefault(field, []).append(exc.message)
    if errors or template.channel != Channel.PUSH:
        return errors
    return _push_url_errors(render_push(template.snapshot(), context))
