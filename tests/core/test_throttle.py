"""Rate limits shared by web processes (core/throttle.py), on the project's real cache: Redis
when the run has one (CI), files under var/ on the embedded default."""

from __future__ import annotations

import pytest
import time_machine
from django.test import RequestFactory

from core import throttle
from core.throttle import Rate, RateLimit, client_ip, client_network, parse_rate

START = 1_800_000_000.0  # a window boundary for every window length used here (÷ 60)


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("1000/s", Rate(1000, 1)),
        ("500/10s", Rate(500, 10)),
        ("5/h", Rate(5, 3600)),
        ("20/15m", Rate(20, 900)),
        ("3/day", Rate(3, 86400)),
        (" 7 / min ", Rate(7, 60)),
        ("off", None),
    ],
)
def test_it_reads_rates(text, rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["1000", "0/s", "-1/s", "5/w", "many/s", "5/1.5s"])
def test_it_refuses_rates_it_cannot_read(text) -> None:
    with pytest.raises(ValueError, match="is not a rate"):
        parse_rate(text)


def _limit(settings, rate: str, scope: str = "api") -> RateLimit:
    settings.WAYFARER_THROTTLE_RATES = {**settings.WAYFARER_THROTTLE_RATES, scope: rate}
    return RateLimit(scope)


def test_it_lets_a_small_limit_through_then_says_when_the_window_ends(settings) -> None:
    limit = _limit(settings, "3/m")
    with time_machine.travel(START + 15, tick=False):
        assert [limit.hit("a") for _ in range(3)] == [None, None, None]
        assert limit.hit("a") == 45  # the rest of the minute
        assert limit.hit("b") is None  # another identity has its own count
    with time_machine.travel(START + 60, tick=False):
        assert limit.hit("a") is None  # a new window


def test_it_shares_counts_between_processes(settings) -> None:
    # Two RateLimit objects of one scope are two web processes: each counts locally and adds to
    # the shared counter every limit/50 hits, so together they stop near the limit.
    first, second = _limit(settings, "1000/m"), RateLimit("api")
    admitted = 0
    with time_machine.travel(START, tick=False):
        for _ in range(1500):
            admitted += first.hit("key") is None
            admitted += second.hit("key") is None
        # Each process may let its last batch through before it learns the total.
        assert 1000 <= admitted <= 1000 + 2 * (1000 // 50)
        assert first.hit("key") == second.hit("key") == 60


def test_it_is_exact_within_one_process(settings) -> None:
    limit = _limit(settings, "500/m")
    with time_machine.travel(START, tick=False):
        results = [limit.hit("key") for _ in range(501)]
    assert results.count(None) == 500 and results[-1] == 60


def test_it_lets_requests_through_when_the_cache_fails(settings) -> None:
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",  # nothing listens there
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }
    limit = _limit(settings, "2/m")
    assert [limit.hit("a") for _ in range(5)] == [None] * 5
    assert throttle._cache_down_until > 0  # and it stops asking for a while


def test_it_can_be_switched_off(settings) -> None:
    limit = _limit(settings, "off")
    assert all(limit.hit("a") is None for _ in range(100))


def test_it_takes_the_client_address_from_trusted_proxies_only(settings) -> None:
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.5", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9"
    )
    assert client_ip(request) == "10.0.0.5"  # no proxy trusted: the header is anyone's
    settings.TRUSTED_PROXY_COUNT = 1
    assert client_ip(request) == "203.0.113.9"  # what our proxy saw, not what the client wrote


def test_it_counts_an_ipv6_client_by_its_network() -> None:
    one = RequestFactory().get("/", REMOTE_ADDR="2001:db8:1:2::1")
    other = RequestFactory().get("/", REMOTE_ADDR="2001:db8:1:2:ffff::9")
    assert client_network(one) == client_network(other) == "2001:db8:1:2::/64"
    assert client_network(RequestFactory().get("/", REMOTE_ADDR="::ffff:192.0.2.1")) == (
        "192.0.2.1"
    )
