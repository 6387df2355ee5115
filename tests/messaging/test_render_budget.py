"""What one template field may cost (issue 19, item 6): parsing and the static checks are inside
the render budget and the part limit, not before them, and the cache of parsed templates keeps
at most its byte bound however many large templates pass through it."""

from __future__ import annotations

import gc
import re
import time
import tracemalloc
from html import unescape
from typing import Any

import pytest

from messaging import rendering
from messaging.models import Channel, Template
from messaging.rendering import PART_LIMIT, ParseCache, TemplateError, render_email
from tenants.models import Tenant

PREVIEW = "/t/acme/messages/templates/preview/"


@pytest.fixture(autouse=True)
def empty_cache() -> None:
    rendering.PARSE_CACHE.clear()


def _template(**fields: str) -> Template:
    tenant = Tenant(name="Acme", slug="acme", timezone="UTC")
    return Template(tenant=tenant, channel=Channel.EMAIL, name="Big", **fields)


def _render_error(html: str) -> TemplateError:
    with pytest.raises(TemplateError) as raised:
        render_email({"subject": "Hi", "html": html}, {"contact": {"first_name": "Ann"}})
    return raised.value


@pytest.mark.django_db
def test_it_refuses_to_preview_a_huge_template_without_parsing_it(login: Any, world: Any) -> None:
    # ~480 KB of outputs: under the source limit, and what cost ~6 s of CPU and ~40 MB kept.
    huge = "<p>{{ contact.first_name }}</p>\n" * 15_000

    response = login(world.dave).post(
        PREVIEW,
        {"channel": "email", "name": "Huge", "subject": "Hi", "preheader": "", "html": huge},
        HTTP_HX_REQUEST="true",
    )

    assert response.status_code == 200
    beside = re.search(r'id="errors-html"[^>]*>(.*?)</ul>', response.content.decode(), re.S)
    assert beside is not None
    assert f"more than {PART_LIMIT:,} Liquid tags, outputs and texts" in unescape(beside.group(1))
    # Refused by counting its delimiters: nothing was parsed, nothing kept.
    assert rendering.PARSE_CACHE.misses >= 1
    assert len(rendering.PARSE_CACHE) == 0
    assert rendering.PARSE_CACHE.bytes == 0


def test_it_counts_the_parts_it_parses_and_stops_at_the_limit() -> None:
    # One {% liquid %} tag: a single delimiter that holds thousands of statements.
    lines = "\n".join(f"echo '{i}'" for i in range(PART_LIMIT + 1000))

    error = _render_error("{% liquid\n" + lines + "\n%}")

    assert error.field == "html"
    assert f"more than {PART_LIMIT:,} Liquid tags" in error.message
    assert len(rendering.PARSE_CACHE) == 0


class _Clock:
    """A clock that advances by `step` each time it is read: the deadline is then
    reached after a known amount of work, not after a wall-clock time."""

    def __init__(self, step: float) -> None:
        self.now = 1000.0
        self.step = step
        self.reads = 0

    def thread_time(self) -> float:  # what the parse budget reads
        self.reads += 1
        self.now += self.step
        return self.now

    monotonic = thread_time


def test_it_parses_inside_the_render_budget(monkeypatch: Any) -> None:
    # Each part parsed reads the clock once; a read costs a tenth of the budget.
    clock = _Clock(step=rendering.PARSE_SECONDS / 10)
    monkeypatch.setattr(rendering, "time", clock)

    error = _render_error("<p>{{ contact.first_name }}</p>\n" * 100)

    assert error.field == "html"
    assert error.message.endswith(f"took longer than {rendering.PARSE_SECONDS:g} s to parse")
    assert clock.reads < 20  # stopped after ~10 parts of 200, by the budget
    assert len(rendering.PARSE_CACHE) == 0


def test_it_checks_a_template_inside_the_budget_too(monkeypatch: Any) -> None:
    # template_errors() parses and analyses before it renders the sample: both are budgeted.
    clock = _Clock(step=rendering.PARSE_SECONDS / 10)
    monkeypatch.setattr(rendering, "time", clock)

    errors = rendering.template_errors(_template(subject="Hi", html="<p>{{ a }}</p>\n" * 100))

    [message] = errors["html"]
    assert re.fullmatch(
        rf"html, line \d+: took longer than {rendering.PARSE_SECONDS:g} s to parse", message
    )
    assert list(errors) == ["html"]  # the subject has no Liquid to parse


def test_it_still_renders_a_large_real_template_within_the_budget() -> None:
    rows = "".join(
        f"<tr><td>{{{{ contact.first_name }}}} #{i}</td>"
        f"<td>{{% if contact.first_name %}}yes{{% endif %}}</td></tr>\n"
        for i in range(300)
    )

    html = render_email({"subject": "Hi", "html": f"<table>{rows}</table>"}, {"contact": {}}).html

    assert html.count("<tr>") == 300


def _large_template(i: int) -> str:
    # ~800 parts and ~20 KB: a big newsletter, each one different.
    return f"<h1>Issue {i}</h1>\n" + "<p>{{ contact.first_name }} {{ contact.city }}</p>\n" * 200


def test_it_keeps_the_parse_cache_under_its_byte_bound(monkeypatch: Any) -> None:
    bound = 4 * 1024 * 1024
    cache = ParseCache(bound)
    monkeypatch.setattr(rendering, "PARSE_CACHE", cache)
    # tracemalloc slows everything down: this test is about memory, not time.
    monkeypatch.setattr(rendering, "PARSE_SECONDS", 60.0)
    monkeypatch.setattr(rendering, "RENDER_SECONDS", 60.0)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(30):  # 30 times ~0.5 MB parsed: an lru_cache of 1,024 entries kept them all
            render_email({"subject": "Hi", "html": _large_template(i)}, {"contact": {}})
            assert cache.bytes <= bound
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()

    assert 4 < len(cache) < 30
    assert cache.bytes <= bound
    # The cache's own accounting matches what the process really keeps (within a quarter).
    assert kept <= bound * 1.25
    assert kept <= cache.bytes * 1.25


def test_it_keeps_the_templates_it_uses_most_recently() -> None:
    cache = ParseCache(1000)
    for name in "abcd":
        cache.put((name, True), object(), 250)  # type: ignore[arg-type]
    assert cache.get(("a", True)) is not None  # used: now the most recent

    cache.put(("e", True), object(), 250)  # type: ignore[arg-type]

    assert cache.get(("b", True)) is None  # the least recently used went first
    assert cache.get(("a", True)) is not None
    assert cache.bytes == 1000
    cache.put(("huge", True), object(), 251)  # type: ignore[arg-type]  # > a quarter: not kept
    assert cache.get(("huge", True)) is None


def test_the_budgets_leave_out_the_garbage_collectors_time() -> None:
    # A long-lived worker's full collection walks its whole heap; one that starts while a
    # template parses is not the template's cost (CI once refused a 20 ms template for it).
    heap = [{"n": [i]} for i in range(1_500_000)]
    cpu, wall = rendering._cpu_clock(), rendering._wall_clock()
    spent = time.thread_time()

    gc.collect()

    spent = time.thread_time() - spent
    assert spent > 0.05  # the collection really had work to do
    assert rendering._cpu_clock() - cpu < spent / 10
    assert rendering._wall_clock() - wall < spent / 10
    del heap
