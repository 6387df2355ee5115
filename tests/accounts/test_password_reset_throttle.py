"""Password reset requests are limited per email address and per client address, the same way
whether an account uses the address or not."""

from __future__ import annotations

import pytest
from django.core import mail

pytestmark = pytest.mark.django_db

RESET = "/accounts/password-reset/"


def ask(client, email: str, ip: str = "192.0.2.10"):  # type: ignore[no-untyped-def]
    return client.post(RESET, {"email": email}, REMOTE_ADDR=ip)


def test_it_sends_at_most_five_links_an_hour_to_one_address(client, world) -> None:
    answers = [ask(client, "alice@example.com", ip=f"192.0.2.{n}") for n in range(6)]
    assert [a.status_code for a in answers] == [302] * 5 + [429]
    assert int(answers[-1]["Retry-After"]) > 0
    assert "Too many requests" in answers[-1].content.decode()
    assert len(mail.outbox) == 5
    # Whatever the case the address is typed in.
    assert ask(client, "ALICE@example.com", ip="192.0.2.99").status_code == 429


def test_it_limits_an_address_without_an_account_the_same_way(client, world) -> None:
    answers = [ask(client, "nobody@example.com", ip=f"192.0.2.{n}") for n in range(6)]
    assert [a.status_code for a in answers] == [302] * 5 + [429]


def test_it_limits_one_client_asking_for_many_addresses(client, world) -> None:
    answers = [ask(client, f"someone{n}@example.com") for n in range(21)]
    assert [a.status_code for a in answers] == [302] * 20 + [429]
    assert ask(client, "alice@example.com", ip="198.51.100.7").status_code == 302


def test_it_still_shows_the_form(client) -> None:
    assert all(client.get(RESET).status_code == 200 for _ in range(30))
