"""Login lockout (django-axes): wrong passwords are counted per account and per address; past
the limit even the right password is refused until the wait is over or an operator unlocks."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a long enough passphrase"
LOGIN = "/accounts/login/"


@pytest.fixture
def alice(world):  # type: ignore[no-untyped-def]
    world.alice.set_password(PASSWORD)
    world.alice.save()
    return world.alice


def sign_in(client, email: str, password: str, *, ip: str = "192.0.2.10", path: str = LOGIN):  # type: ignore[no-untyped-def]
    return client.post(path, {"username": email, "password": password}, REMOTE_ADDR=ip)


def signed_in(client) -> bool:  # type: ignore[no-untyped-def]
    return "_auth_user_id" in client.session


def test_it_refuses_even_the_right_password_after_ten_wrong_ones(client, alice) -> None:
    for _ in range(9):
        assert sign_in(client, alice.email, "guess").status_code == 200  # the form again
    assert sign_in(client, alice.email, "guess").status_code == 429  # the tenth locks
    answer = sign_in(client, alice.email, PASSWORD)

    assert answer.status_code == 429
    assert answer["Retry-After"] == "900"
    page = answer.content.decode()
    assert "Sign-in is locked for now" in page and "Try again in\n    15 minutes" in page
    assert not signed_in(client)


def test_it_lets_the_right_password_in_below_the_limit(client, alice) -> None:
    for _ in range(9):
        sign_in(client, alice.email, "guess")
    assert sign_in(client, alice.email, PASSWORD).status_code == 302
    assert signed_in(client)


def test_it_counts_one_account_whatever_the_case_of_its_address(client, alice) -> None:
    for n in range(10):  # from ten addresses, so only the account's count can lock
        sign_in(client, "ALICE@example.com" if n % 2 else alice.email, "guess", ip=f"192.0.2.{n}")
    assert sign_in(client, alice.email, PASSWORD, ip="198.51.100.7").status_code == 429


def test_it_locks_an_address_that_tries_many_accounts(client, alice) -> None:
    for n in range(10):
        sign_in(client, f"someone{n}@example.com", "guess", ip="203.0.113.5")
    assert sign_in(client, alice.email, PASSWORD, ip="203.0.113.5").status_code == 429
    # From elsewhere Alice's own account is not locked.
    assert sign_in(client, alice.email, PASSWORD, ip="198.51.100.7").status_code == 302


def test_it_lets_the_owner_in_once_the_wait_is_over(client, alice) -> None:
    for _ in range(10):
        sign_in(client, alice.email, "guess")
    with time_machine.travel(timezone.now() + timedelta(minutes=16)):
        assert sign_in(client, alice.email, PASSWORD).status_code == 302


def test_it_locks_the_admins_sign_in_too(client) -> None:
    operator = UserFactory(email="root@example.com", is_staff=True, is_superuser=True)
    operator.set_password(PASSWORD)
    operator.save()
    for _ in range(10):
        sign_in(client, operator.email, "guess", path="/admin/login/")
    answer = sign_in(client, operator.email, PASSWORD, path="/admin/login/")
    assert answer.status_code == 429
    assert not signed_in(client)


def test_an_operator_unlocks_with_axes_reset(client, alice) -> None:
    for _ in range(10):
        sign_in(client, alice.email, "guess")
    call_command("axes_reset_username", alice.email)
    assert sign_in(client, alice.email, PASSWORD).status_code == 302


def test_an_operator_sees_and_clears_lockouts_in_the_admin(client, alice) -> None:
    from axes.models import AccessAttempt

    for _ in range(10):
        sign_in(client, alice.email, "guess")
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    listing = client.get("/admin/axes/accessattempt/")
    assert alice.email in listing.content.decode()
    attempt = AccessAttempt.objects.get(username=alice.email)
    client.post(f"/admin/axes/accessattempt/{attempt.pk}/delete/", {"post": "yes"})
    client.logout()
    assert sign_in(client, alice.email, PASSWORD).status_code == 302
