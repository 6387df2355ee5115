"""The segment condition "can / cannot receive <channel>": a kind of segments' registry,
defined here because reachability is messaging's (messaging/reachability.py), registered from
messaging's AppConfig.ready().

    {"type": "reachable", "channel": "email" | "push", "reachable": true}
"""

from __future__ import annotations

from typing import Any

from django.db.models import Q

from audience.models import Contact
from messaging.reachability import contact_reachable, reachable_q
from segments.registry import ConditionKind, Context, FormFields, register, require

CHANNELS = ("email", "push")


@register
class Reachable(ConditionKind):
    name = "reachable"
    label = "Can receive"
    order = 50
    template = "messaging/segment_conditions/reachable.html"
    required_choices = (("channel", "choose a channel."),)
    schema = {
        "type": "object",
        "required": ["channel"],
        "properties": {
            "channel": {"type": "string", "enum": list(CHANNELS)},
            "reachable": {"type": "boolean", "default": True},
        },
    }
    example = {"type": "reachable", "channel": "email", "reachable": True}

    def validate(self, raw: dict[str, Any], path: str) -> dict[str, Any]:
        channel = raw.get("channel")
        require(channel in CHANNELS, "channel must be email or push.", path)
        reachable = raw.get("reachable", True)
        require(isinstance(reachable, bool), "reachable must be true or false.", path)
        return {"type": "reachable", "channel": channel, "reachable": reachable}

    def describe(self, node: dict[str, Any], segment_names: dict[str, str]) -> str:
        can = "can" if node["reachable"] else "cannot"
        return f"{can} receive {node['channel']}"

    def q(self, node: dict[str, Any], ctx: Context) -> Q:
        q = reachable_q(tenant=ctx.tenant, channel=node["channel"])
        return q if node["reachable"] else ~q

    def evaluate(self, node: dict[str, Any], contact: Contact, ctx: Context) -> bool:
        can = contact_reachable(tenant=ctx.tenant, contact=contact, channel=node["channel"])
        return can == node["reachable"]

    def new(self) -> dict[str, Any]:
        return {"type": "reachable", "channel": "email", "reachable": True}

    def from_form(self, fields: FormFields) -> dict[str, Any]:
        return {
            "type": "reachable",
            "channel": fields.text("channel"),
            "reachable": fields.text("reachable") != "no",
        }

    def form_values(self, node: dict[str, Any]) -> dict[str, Any]:
        return {"reachable": "yes" if node.get("reachable", True) else "no"}
