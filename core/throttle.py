"""Request limits shared by every web process: counters in Django's cache (config/settings.py,
`CACHES`: Redis in a deployment, files under var/ in the embedded demo).

A limit is a rate such as "10000/10s": at most that many requests per fixed window of that
length, per identity (a write key, an API key, an address, a user). Fixed windows let a client
spend its whole allowance in a burst, which is what SDKs flushing a queue do.

`RateLimit.hit()` counts one request. Where a limit is small (a few sign-ups an hour) every hit
goes to the shared counter. Where it is large (tracking, the REST API) each process counts
locally and adds its count to the shared counter only every few hundred hits or every twentieth
of the window, so the hot path costs well under one cache round trip per request; the limit can
then be overshot by at most that batch per process, which is why those limits are sized far
above normal traffic. A cache that fails lets requests through: limits are a guard, not a
dependency of ingestion.

`rate_limited()` applies a limit to an HTML view (sign-up, password reset, template preview);
the REST API uses DRF's throttling with `tenants.authentication.ApiKeyThrottle`, and the tracking
doors call `RateLimit.hit()` after authenticating the write key.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render

logger = logging.getLogger(__name__)

_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(s|sec|m|min|h|hour|d|day)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# A shared counter is updated at least this often (in hits) for large limits: a fiftieth of
# the limit, so N processes overshoot by at most N/50 of it.
_SYNC_FRACTION = 50
# … and at least every this fraction of the window, so other processes see the count soon.
_SYNC_WINDOW_FRACTION = 20
# After the cache fails, requests pass without asking it for this long (no timeout per request).
_CACHE_BACKOFF_SECONDS = 5.0


@dataclass(frozen=True)
class Rate:
    limit: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.limit}/{self.seconds}s"


def parse_rate(text: str) -> Rate | None:
    """ "1000/s", "50/10s", "5/h", "20/15m", "3/d"; "off" (or empty) means no limit.

    Raises ValueError for anything else, so a mistyped setting stops start-up."""
    if text.strip().lower() in {"off", ""}:
        return None
    match = _RATE_RE.match(text.lower())
    if match is None or int(match.group(1)) < 1:
        raise ValueError(f"{text!r} is not a rate such as 1000/s, 500/10s, 5/h or off.")
    count, multiple, unit = match.groups()
    return Rate(int(count), int(multiple or 1) * _UNIT_SECONDS[unit[0]])


@dataclass
class _Local:
    """What one process knows of one identity's current window."""

    window: int
    shared: int = 0  # the shared count at our last sync (including our own hits until then)
    pending: int = 0  # our hits since then
    synced_at: float = 0.0


@dataclass
class RateLimit:
    """One named limit (`scope`); its rate is settings.WAYFARER_THROTTLE_RATES[scope]."""

    scope: str
    _local: dict[str, _Local] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def rate(self) -> Rate | None:
        return _rate(settings.WAYFARER_THROTTLE_RATES[self.scope])

    def hit(self, ident: str) -> float | None:
        """Count one request of `ident`: None if it may go on, else the seconds to wait."""
        rate = self.rate
        if rate is None:
            return None
        now = time.time()
        window = int(now // rate.seconds)
        retry_after = max(1.0, math.ceil((window + 1) * rate.seconds - now))
        sync_every = rate.limit // _SYNC_FRACTION
        if sync_every <= 1:  # small limits: every hit is counted where all processes see it
            count = _shared_add(self._key(ident, rate, window), 1, rate)
            return retry_after if count is not None and count > rate.limit else None
        with self._lock:
            state = self._local.get(ident)
            if state is None or state.window != window:
                if len(self._local) > 10_000:  # a bound, not an LRU: identities are few
                    self._local.clear()
                state = self._local[ident] = _Local(window=window)
            if state.shared + state.pending >= rate.limit:
                return retry_after  # counts only grow within a window: no need to ask again
            state.pending += 1
            due = state.synced_at + rate.seconds / _SYNC_WINDOW_FRACTION
            if state.pending < sync_every and now < due and state.synced_at:
                return None
            pending, state.pending, state.synced_at = state.pending, 0, now
        # Outside the lock: other threads go on counting locally while this one asks the cache.
        count = _shared_add(self._key(ident, rate, window), pending, rate)
        with self._lock:
            if count is None:  # the cache failed: keep the hits for the next sync
                state.pending += pending
            else:
                state.shared = max(state.shared, count)
        return None

    def reset(self) -> None:
        """Forget this process's counts (tests; the shared counters are the cache's)."""
        with self._lock:
            self._local.clear()

    def _key(self, ident: str, rate: Rate, window: int) -> str:
        # Hashed: identities may be email addresses, which have no business in cache keys.
        digest = hashlib.sha256(ident.encode()).hexdigest()[:32]
        return f"throttle:{self.scope}:{rate}:{digest}:{window}"


@functools.cache
def _rate(text: str) -> Rate | None:
    return parse_rate(text)


_cache_down_until = 0.0


def _shared_add(key: str, delta: int, rate: Rate) -> int | None:
    """Add `delta` to the shared counter `key` and return its new value; None if the cache
    failed (the request is then let through)."""
    global _cache_down_until
    if time.monotonic() < _cache_down_until:
        return None
    from django.core.cache import cache

    try:
        try:
            return cache.incr(key, delta)
        except ValueError:  # the first hit of the window: create the counter, with its expiry
            if cache.add(key, delta, timeout=rate.seconds + 5):
                return delta
            return cache.incr(key, delta)  # another process created it meanwhile
    except ValueError:  # expired meanwhile: the window is over anyway
        return None
    except Exception:
        _cache_down_until = time.monotonic() + _CACHE_BACKOFF_SECONDS
        logger.warning("Rate limits are off for %ss: the cache failed.", _CACHE_BACKOFF_SECONDS)
        logger.debug("Cache failure", exc_info=True)
        return None


def once_per(key: str, seconds: int) -> bool:
    """True at most once every `seconds` for `key` (a "send the link again" button): the time
    of the last yes is kept in the shared cache and compared with this process's clock, so the
    interval is exact rather than a clock-aligned window. Two clicks racing may both pass: fine
    for what it guards. A failing cache says yes."""
    from django.core.cache import cache

    now = time.time()
    try:
        last = cache.get(key)
        if last is not None and now - float(last) < seconds:
            return False
        cache.set(key, now, timeout=seconds * 2)
    except Exception:
        logger.warning("once_per(%s): the cache failed; allowed.", key, exc_info=True)
    return True


# The limits of the product, one object each (their rates: settings.WAYFARER_THROTTLE_RATES).
TRACKING = RateLimit("tracking")  # /v1/* per write key
API = RateLimit("api")  # /api/v1/* per secret key
SIGNUP = RateLimit("signup")  # sign-up form posts per client address
PASSWORD_RESET = RateLimit("password_reset")  # reset requests per email address
PASSWORD_RESET_IP = RateLimit("password_reset_ip")  # reset requests per client address
TEMPLATE_PREVIEW = RateLimit("template_preview")  # template previews per signed-in user
ALL = (TRACKING, API, SIGNUP, PASSWORD_RESET, PASSWORD_RESET_IP, TEMPLATE_PREVIEW)


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT proxies the address the
    outermost of them saw (X-Forwarded-For, counted from the right: the part a client cannot
    forge). Also used by django-axes for its per-address lockout."""
    remote = request.META.get("REMOTE_ADDR", "") or ""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= proxies:
            return forwarded[-proxies]
    return remote


def client_network(request: HttpRequest) -> str:
    """The client's address for per-address limits: an IPv6 client holds a whole /64."""
    address = client_ip(request)
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address):
        if parsed.ipv4_mapped is not None:
            return str(parsed.ipv4_mapped)
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)


def too_many_requests(request: HttpRequest, retry_after: float) -> HttpResponse:
    """The HTML answer of a limited page: 429 with Retry-After and when to try again."""
    seconds = math.ceil(retry_after)
    minutes = math.ceil(seconds / 60)
    response = render(
        request,
        "429.html",
        {"retry_after": seconds, "retry_minutes": minutes},
        status=429,
    )
    response["Retry-After"] = str(seconds)
    return response


def rate_limited(
    limit: RateLimit,
    *,
    key: Callable[[HttpRequest], str | None],
    methods: tuple[str, ...] = ("POST",),
) -> Callable[[Callable[..., HttpResponseBase]], Callable[..., HttpResponseBase]]:
    """Decorate a view: requests with one of `methods` count against `limit` under `key(request)`
    (no key: not counted); over the limit they get `too_many_requests` instead of the view."""

    def decorate(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponseBase:
            if request.method in methods and (ident := key(request)):
                retry_after = limit.hit(ident)
                if retry_after is not None:
                    return too_many_requests(request, retry_after)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate
