"""What the apps above messaging add to it without messaging importing them: they register in
their AppConfig.ready()."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from audience.models import Contact
    from messaging.models import Delivery

# template_users(tenant=…, template=…) -> what names the template, in words a marketer knows:
# 'campaign “Spring sale” (variant A)', 'journey “Welcome” (step “Send welcome”)'.
TEMPLATE_USERS: list[Callable[..., Iterable[str]]] = []


def template_users_register(finder: Callable[..., Iterable[str]]) -> None:
    if finder not in TEMPLATE_USERS:  # ready() may run twice (tests, management commands)
        TEMPLATE_USERS.append(finder)


# context_extend(tenant=…, items=[ContextItem, …]) -> {item.key: {name: value}}: more names for a
# message's Liquid (surveys' links, say), built once per send batch of one tenant. An item whose
# contact is None is the editor's made-up sample (messaging.context.sample_context): answer
# something that shows what the name holds, reading no database.
CONTEXT_EXTENDERS: list[Callable[..., Mapping[int, Mapping[str, Any]]]] = []


@dataclass(frozen=True)
class ContextItem:
    key: int
    contact: Contact | None
    delivery: Delivery | None


def context_extender_register(extender: Callable[..., Mapping[int, Mapping[str, Any]]]) -> None:
    if extender not in CONTEXT_EXTENDERS:
        CONTEXT_EXTENDERS.append(extender)
