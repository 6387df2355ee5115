"""Shared fixtures: two tenants in every suite.

acme: alice (admin), bob (viewer), dave (marketer), olivia (owner). globex: charlie (owner).

With WAYFARER_REQUIRE_SERVICES=1 (CI sets it) the run stops at once, loudly, unless the database
is PostgreSQL and the broker is a reachable Redis: CI must never fall back to SQLite.

`make test` runs the suite in pytest-xdist worker processes (`-n 2 --dist loadgroup`). Each worker
gets a test database of its own (pytest-django adds `_gw0`, `_gw1` to the name), and, from
`pytest_xdist_setupnodes` below, a var dir and a Redis database of its own, so that the Celery
workers, web servers and file broker folders its end-to-end tests start never meet another
worker's. Tests that must not run beside each other share an `xdist_group` (SERIAL_GROUPS).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest_plugins = ["tests.browser"]


def pytest_configure(config: pytest.Config) -> None:
    from django.conf import settings

    # Templates render {% static %}: give tests plain storage instead of the manifest one,
    # which needs collectstatic first.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    # WhiteNoise indexes every static file when a test client builds its middleware; look files
    # up per request instead.
    settings.WHITENOISE_AUTOREFRESH = True
    settings.WHITENOISE_USE_FINDERS = True  # serve from the apps' static folders, no collectstatic
    # No persistent connections: live-server threads would keep the test database open and
    # PostgreSQL would refuse to drop it at the end.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0
    # Password hashing is deliberately slow; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    # Rate-limit counters of this test process apart from any other run's (xdist workers, other
    # checkouts sharing a Redis database): keys under a prefix of its own, files in a folder of
    # its own. `_fresh_rate_limits` empties them before each test.
    cache = settings.CACHES["default"]
    cache["KEY_PREFIX"] = f"test{os.getpid()}"
    if cache["BACKEND"].endswith("FileBasedCache"):
        cache["LOCATION"] = f"{cache['LOCATION']}-test-{os.getpid()}"
    if os.environ.get("WAYFARER_REQUIRE_SERVICES") == "1":
        _require_services(settings)
    # Tests are trusted code that spans tenants, like a management command (and their threads
    # play workers): the system scope of row-level security, core/rls.py. Requests they make
    # start with no scope and get their tenant from the edge, as in production.
    from core import rls

    rls.process_default_set(rls.SYSTEM)


# Tests that must run one after the other, on one xdist worker (`--dist loadgroup` sends a group
# to a single worker), by the start of their node id.
SERIAL_GROUPS = {
    # Both run `make run` in the checkout, whose `install` step may run pip in the shared .venv
    # (a clean clone has only installed the dev requirements): two at once would race.
    "tests/e2e/test_make_run.py": "make-run",
    "tests/e2e/test_embedded_soak.py": "make-run",
    # Its module fixture runs `npm ci` in tests/e2e/sdk when the SDKs are missing (a fresh
    # clone that skipped .ci/run's `npm ci`): once, in one folder, not twice at once.
    "tests/e2e/test_browser_sdks.py": "browser-sdks",
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # "browser" means: drives Chromium. Decided by the fixture closure rather than by hand, so a
    # new test that asks for the `browser` fixture (directly or through a `page` fixture) is
    # marked without anyone remembering to.
    for item in items:
        if "browser" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.browser)
        for prefix, group in SERIAL_GROUPS.items():
            if item.nodeid.startswith(prefix):
                item.add_marker(pytest.mark.xdist_group(group))
    _longest_first(items)


def _longest_first(items: list[pytest.Item]) -> None:
    """Within the order pytest-django has already put the tests in (its hook runs first, and
    does as Django does: tests inside a rolled-back transaction, then the ones that commit, then
    the ones without a database), the ones that start real processes (e2e) and drive Chromium
    go first of their kind, and the e2e tests without a database (`make run`, the soak: minutes
    each) first of all, since they never touch the test database. Under xdist a test that
    starts last ends last: a five-minute soak scheduled at the end kept one worker busy for five
    minutes while the other had nothing left to do.

    Left as it is when this module's reading of pytest-django's order does not match the order
    found (a pytest-django that orders differently)."""
    blocks = [_django_block(item) for item in items]
    if blocks != sorted(blocks):
        return
    rank = {}
    for item, block in zip(items, blocks, strict=True):
        long = item.get_closest_marker("e2e") is not None
        if block == 2:
            rank[item.nodeid] = 0 if long else 4
        elif block == 1:
            long = long or item.get_closest_marker("browser") is not None
            rank[item.nodeid] = 2 if long else 3
        else:
            rank[item.nodeid] = 1
    items.sort(key=lambda item: rank[item.nodeid])  # stable: the order within a rank stays


def _django_block(item: pytest.Item) -> int:
    """pytest-django's order of `item`: 0 rolled back, 1 committing (transactional), 2 no
    database (pytest_django.plugin.pytest_collection_modifyitems)."""
    from django.test import TestCase, TransactionTestCase
    from pytest_django.fixtures import validate_django_db

    cls = getattr(item, "cls", None)
    if cls is not None and issubclass(cls, TransactionTestCase):
        return 0 if issubclass(cls, TestCase) else 1
    marker = item.get_closest_marker("django_db")
    fixtures = getattr(item, "fixturenames", ())
    transactional = "transactional_db" in fixtures or "live_server" in fixtures
    if marker is not None:
        transaction, reset_sequences, *_ = validate_django_db(marker)
        transactional = transactional or transaction or reset_sequences
    if transactional:
        return 1
    return 0 if marker is not None or "db" in fixtures else 2


REDIS_DATABASES = 16  # Redis's default `databases`


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_setupnodes(config: pytest.Config, specs: list[Any]) -> None:
    """Before the xdist workers start (in the controlling process): the environment each one
    starts with. Settings read it when the worker loads them, and the processes its e2e tests
    start inherit it (tests/e2e/test_celery_worker.py's `celery_env`).

    - WAYFARER_VAR_DIR: <var dir>/xdist-gwN, so the file broker's folders, the SQLite test
      database, mail files and the cache folder are the worker's own.
    - CELERY_BROKER_URL: with Redis, database D+N for worker N (D, the configured one, for the
      first), or D-N where D+N would pass the last database, so one worker's Celery worker never
      takes a task another worker's test published. (The cache follows the broker's Redis.)
    """
    from django.conf import settings

    var_dir = Path(settings.VAR_DIR)
    broker = str(settings.CELERY_BROKER_URL)
    for index, spec in enumerate(specs):
        worker = spec.id or f"gw{index}"
        spec.env["WAYFARER_VAR_DIR"] = str(var_dir / f"xdist-{worker}")
        if broker.startswith(("redis://", "rediss://")):
            spec.env["CELERY_BROKER_URL"] = _redis_url_for_worker(broker, index, len(specs))


def _redis_url_for_worker(url: str, index: int, workers: int) -> str:
    from urllib.parse import urlsplit, urlunsplit

    import redis

    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    step = 1 if base + workers - 1 < REDIS_DATABASES else -1
    number = base + step * index
    worker_url = urlunsplit(parts._replace(path=f"/{number}"))
    try:
        redis.Redis.from_url(worker_url, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        raise pytest.UsageError(
            f"xdist worker {index} would use Redis database {number} ({worker_url}) as its broker, "
            f"which does not answer: {exc}. Point CELERY_BROKER_URL at another database or run "
            "fewer workers (make test PYTEST_WORKERS=0 runs in one process)."
        ) from None
    return worker_url


def _require_services(settings: object) -> None:
    import psycopg
    import redis

    db = settings.DATABASES["default"]  # type: ignore[attr-defined]
    if "postgresql" not in db["ENGINE"]:
        raise pytest.UsageError(
            f"WAYFARER_REQUIRE_SERVICES=1 but DATABASE_URL is {db['ENGINE']}, not PostgreSQL."
        )
    try:
        psycopg.connect(
            host=db["HOST"],
            port=db["PORT"] or 5432,
            user=db["USER"],
            dbname="postgres",
            password=db["PASSWORD"],
            connect_timeout=5,
        ).close()
    except psycopg.Error as exc:
        raise pytest.UsageError(f"PostgreSQL is unreachable at {db['HOST']}: {exc}") from None
    broker = settings.CELERY_BROKER_URL  # type: ignore[attr-defined]
    if not broker.startswith("redis://"):
        raise pytest.UsageError(f"WAYFARER_REQUIRE_SERVICES=1 but the broker is {broker}.")
    try:
        redis.Redis.from_url(broker, socket_connect_timeout=5).ping()
    except redis.RedisError as exc:
        raise pytest.UsageError(f"Redis is unreachable at {broker}: {exc}") from None


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Every test starts with no requests counted (the limits themselves stay on), and with
    nothing else of this process in the cache (Send test's counts, resend intervals)."""
    clear_rate_limits()


_redis_clients: dict[str, object] = {}


def clear_rate_limits() -> None:
    from django.conf import settings
    from django.core.cache import cache

    from core import throttle

    for limit in throttle.ALL:
        limit.reset()
    throttle._cache_down_until = 0.0
    config = settings.CACHES["default"]
    if config["BACKEND"].endswith("RedisCache"):
        # Only this process's keys: clearing the whole database would empty the broker too.
        import redis

        location = config["LOCATION"]
        client = _redis_clients.get(location)
        if client is None:
            client = _redis_clients[location] = redis.Redis.from_url(location)
        keys = list(client.scan_iter(f"{config['KEY_PREFIX']}:*", count=1000))  # type: ignore[attr-defined]
        if keys:
            client.delete(*keys)  # type: ignore[attr-defined]
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def rls_scope_reset() -> object:
    """Every test starts in the process's scope (the system one, see pytest_configure), and
    trusts nothing about what the last test's connection was sent: that test's transaction
    rolled it back (core/rls.py)."""
    from core import rls

    rls.restore_default()
    rls.connection_state_forget()
    yield
    rls.restore_default()


@dataclass
class World:
    acme: object
    globex: object
    alice: object  # acme admin
    bob: object  # acme viewer
    dave: object  # acme marketer
    olivia: object  # acme owner
    charlie: object  # globex owner


@pytest.fixture
def world(db: None) -> World:
    from tenants.models import Role
    from tests.factories import MembershipFactory, TenantFactory, UserFactory

    acme = TenantFactory(name="Acme", slug="acme")
    globex = TenantFactory(name="Globex", slug="globex")
    people = {
        name: UserFactory(email=f"{name}@example.com", first_name=name.title())
        for name in ("alice", "bob", "dave", "olivia", "charlie")
    }
    MembershipFactory(tenant=acme, user=people["olivia"], role=Role.OWNER)
    MembershipFactory(tenant=acme, user=people["alice"], role=Role.ADMIN)
    MembershipFactory(tenant=acme, user=people["bob"], role=Role.VIEWER)
    MembershipFactory(tenant=acme, user=people["dave"], role=Role.MARKETER)
    MembershipFactory(tenant=globex, user=people["charlie"], role=Role.OWNER)
    return World(acme=acme, globex=globex, **people)


@pytest.fixture
def login(client):  # type: ignore[no-untyped-def]
    """login(user) signs the test client in as that user and returns the client."""

    def _login(user):  # type: ignore[no-untyped-def]
        client.force_login(user)
        return client

    return _login


@pytest.fixture
def api(client, world):  # type: ignore[no-untyped-def]
    """api(method, path, body=None, tenant=world.acme): the REST API with that tenant's secret
    key."""
    import json

    from tenants import services

    keys = {
        t.pk: services.api_key_create(tenant=t, kind="secret", name="t")[1]
        for t in (world.acme, world.globex)
    }

    def _call(method: str, path: str, body: object = None, tenant=None):  # type: ignore[no-untyped-def]
        tenant = tenant or world.acme
        kwargs = {"HTTP_AUTHORIZATION": f"Bearer {keys[tenant.pk]}"}
        if body is not None:
            kwargs.update(data=json.dumps(body), content_type="application/json")
        return getattr(client, method)(f"/api/v1/{path}", **kwargs)

    return _call


@pytest.fixture
def eager_tasks() -> object:
    """Celery tasks run in-process when queued: the worker's code without the broker (the
    worker itself is proven by the e2e tests)."""
    from config.celery import app

    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False


@pytest.fixture
def ingest_inline(eager_tasks: None) -> None:
    """The ingest worker's job done right after each accepted /v1/* request commits, in the web
    process, for tests that talk to a live server and then look for what it stored.
    tests/e2e has the same journey through a real Celery worker."""
