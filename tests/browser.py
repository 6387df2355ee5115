"""The real browser for UI tests: Debian's Chromium driven by Playwright (see STACK-NOTES).
Loaded as a pytest plugin by the root conftest, so any test can take the `browser` fixture."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Request, sync_playwright

CHROMIUM = Path("/usr/lib/chromium/chromium")
# Without the networking flags Chromium keeps trying to reach Google, which this machine refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread, so Django would refuse the ORM
    # calls the tests make; they are not async code, so allow them while the browser is up.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@contextmanager
def live_context(
    browser: Browser, base_url: str | None = None, *, timeout_ms: int = 10_000
) -> Iterator[BrowserContext]:
    """A browser context on the live server that, when the test is done, waits for the
    requests its pages already sent before closing. A request the live server is still
    handling holds row locks, and the test database's flush (TRUNCATE) then deadlocks with it
    (seen once in CI after a tracker call the test did not wait for)."""
    context = browser.new_context(base_url=base_url)
    context.set_default_timeout(timeout_ms)
    in_flight: set[Request] = set()
    context.on("request", lambda request: in_flight.add(request))
    context.on("requestfinished", lambda request: in_flight.discard(request))
    context.on("requestfailed", lambda request: in_flight.discard(request))
    try:
        yield context
    finally:
        deadline = time.monotonic() + 15
        while in_flight and context.pages and time.monotonic() < deadline:
            context.pages[0].wait_for_timeout(100)  # lets Playwright deliver the events
        context.close()
