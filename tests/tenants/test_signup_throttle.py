"""Sign-up is limited per client address: one machine cannot create teams by the thousand."""

from __future__ import annotations

import pytest

from tenants.models import Tenant

pytestmark = pytest.mark.django_db


def sign_up(client, n: int, ip: str = "192.0.2.10"):  # type: ignore[no-untyped-def]
    data = {
        "email": f"owner{n}@example.com",
        "password1": "a long enough passphrase",
        "password2": "a long enough passphrase",
        "name": f"Team {n}",
        "slug": f"team-{n}",
        "timezone": "UTC",
    }
    answer = client.post("/signup/", data, REMOTE_ADDR=ip)
    client.logout()
    return answer


def test_it_refuses_the_twenty_first_sign_up_an_hour_from_one_address(client, db) -> None:
    answers = [sign_up(client, n) for n in range(21)]
    assert [a.status_code for a in answers] == [302] * 20 + [429]
    assert int(answers[-1]["Retry-After"]) > 0
    assert Tenant.objects.count() == 20
    assert sign_up(client, 99, ip="198.51.100.7").status_code == 302  # others sign up


def test_it_counts_an_ipv6_client_by_its_network(client, db, settings) -> None:
    settings.WAYFARER_THROTTLE_RATES = {**settings.WAYFARER_THROTTLE_RATES, "signup": "2/h"}
    sign_up(client, 1, ip="2001:db8:5:6::1")
    sign_up(client, 2, ip="2001:db8:5:6::2")
    assert sign_up(client, 3, ip="2001:db8:5:6:ffff::3").status_code == 429
