"""What the apps above messaging add to it without messaging importing them: they register in
their AppConfig.ready()."""

from __future__ import annotations

from collections.abc import Callable, Iterable

# template_users(tenant=…, template=…) -> what names the template, in words a marketer knows:
# 'campaign “Spring sale” (variant A)', 'journey “Welcome” (step “Send welcome”)'.
TEMPLATE_USERS: list[Callable[..., Iterable[str]]] = []


def template_users_register(finder: Callable[..., Iterable[str]]) -> None:
    if finder not in TEMPLATE_USERS:  # ready() may run twice (tests, management commands)
        TEMPLATE_USERS.append(finder)
