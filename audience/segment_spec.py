"""Reading Segment HTTP Tracking API calls: validation with precise errors, and normalisation
into `Call` values that the ingestion service stores. Pure functions, no database.

https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any, cast

import orjson
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import CharField

from audience.models import MAX_ID_LENGTH, MAX_QUANTITY, Contact
from core.bad_request import BadRequest
from core.storable import EARLIEST, LATEST, WINDOW, parse_iso_datetime
from tenants.models import known_timezones

MAX_CALL_BYTES = 32 * 1024
MAX_BATCH_BYTES = 500 * 1024
TYPES = ("identify", "track", "page", "screen", "alias", "group")
MAX_MESSAGE_ID_LENGTH = 100
MAX_EVENT_NAME_LENGTH = 200


class SpecError(BadRequest):
    """A message that breaks the spec. `index` is its place in a batch (None for single calls)."""


@dataclass(frozen=True)
class Call:
    """One Segment API call (identify, track, page, screen, alias, group), validated. Segment's docs
    name it a "message" (hence `messageId`, kept on the wire and in `Event.message_id`); here it
    is a call, so that "message" names only what messaging sends."""

    type: str
    message_id: str
    user_id: str | None
    anonymous_id: str | None
    event: str | None  # track: the event name; page/screen: the page name
    properties: dict[str, Any] = field(default_factory=dict)
    traits: dict[str, Any] = field(default_factory=dict)
    context: dict[str, Any] = field(default_factory=dict)
    previous_id: str | None = None  # alias
    group_id: str | None = None  # group: the contact's company or account
    timestamp: datetime | None = None
    sent_at: datetime | None = None
    profile: dict[str, Any] = field(default_factory=dict)  # identify: contact fields from traits
    # When the server took the call, if not the time of the recording (the inbox records calls
    # received by several requests at once).
    received_at: datetime | None = None


def _id(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise SpecError(f"{key} must be a string.", field=key)
    value = str(value).strip()
    if len(value) > MAX_ID_LENGTH:
        raise SpecError(f"{key} is longer than {MAX_ID_LENGTH} characters.", field=key)
    return value or None


def _object(raw: dict[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SpecError(f"{key} must be a JSON object.", field=key)
    return value


def _time(raw: dict[str, Any], key: str) -> datetime | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SpecError(f"{key} must be an ISO-8601 string.", field=key)
    try:
        return parse_iso_datetime(value, field=key)
    except BadRequest as exc:  # outside the window the database reads back, or not a time
        raise SpecError(exc.message, field=key) from None


def parse_call(raw: object, *, type_: str | None = None, check_size: bool = True) -> Call:
    """Validate one call. `type_` is the type implied by the endpoint (/v1/track → "track");
    batch items carry their own. `check_size=False` when the caller knows it is small enough."""
    if not isinstance(raw, dict):
        raise SpecError("A message must be a JSON object.")
    if check_size:
        size = len(orjson.dumps(raw))
        if size > MAX_CALL_BYTES:
            raise SpecError(f"The message is {size} bytes; the limit is {MAX_CALL_BYTES}.")
    kind = type_ or raw.get("type")
    if kind not in TYPES:
        shown = "missing" if kind is None else f"“{kind}”"
        raise SpecError(f"type is {shown}; use one of {', '.join(TYPES)}.", field="type")

    message_id = raw.get("messageId")
    if message_id is None:
        message_id = str(uuid.uuid4())  # no idempotency without one, as with Segment
    elif not isinstance(message_id, str) or not message_id.strip():
        raise SpecError("messageId must be a non-empty string.", field="messageId")
    elif len(message_id) > MAX_MESSAGE_ID_LENGTH:
        raise SpecError(
            f"messageId is longer than {MAX_MESSAGE_ID_LENGTH} characters.", field="messageId"
        )

    user_id, anonymous_id = _id(raw, "userId"), _id(raw, "anonymousId")
    previous_id = None
    if kind == "alias":
        previous_id = _id(raw, "previousId")
        if previous_id is None or user_id is None:
            raise SpecError("alias needs both previousId and userId.", field="previousId")
    elif user_id is None and anonymous_id is None:
        raise SpecError("Every message needs a userId or an anonymousId.", field="userId")

    properties = _object(raw, "properties")
    event = None
    if kind == "track":
        event = raw.get("event")
        if not isinstance(event, str) or not event.strip():
            raise SpecError("track needs an event name.", field="event")
        event = event.strip()
        if len(event) > MAX_EVENT_NAME_LENGTH:
            raise SpecError(
                f"event is longer than {MAX_EVENT_NAME_LENGTH} characters.", field="event"
            )
        quantity = properties.get("quantity")
        if isinstance(quantity, (int, float)) and abs(quantity) > MAX_QUANTITY:
            raise SpecError(
                f"properties.quantity is beyond {MAX_QUANTITY:,}.", field="properties.quantity"
            )
    elif kind in ("page", "screen"):
        name = raw.get("name")
        if name is not None and not isinstance(name, str):
            raise SpecError("name must be a string.", field="name")
        event = (name or "").strip()[:MAX_EVENT_NAME_LENGTH] or None
        category = raw.get("category")
        if isinstance(category, str) and category.strip():
            # SDKs send a page's category beside its name; keep it with the properties.
            properties = {"category": category.strip(), **properties}

    group_id = None
    if kind == "group":
        group_id = _id(raw, "groupId")
        if group_id is None:
            raise SpecError("group needs a groupId.", field="groupId")
        # A group's traits describe the group, never the user (context.traits would).
        traits = _object(raw, "traits")
    else:
        traits = _object(raw, "traits") or _object(_object(raw, "context"), "traits")
    return Call(
        type=kind,
        message_id=message_id.strip(),
        user_id=user_id,
        anonymous_id=anonymous_id,
        event=event,
        properties=properties,
        traits=traits,
        context=_object(raw, "context"),
        previous_id=previous_id,
        group_id=group_id,
        timestamp=_time(raw, "timestamp") or _time(raw, "originalTimestamp"),
        sent_at=_time(raw, "sentAt"),
        profile=(
            profile_from_traits(traits)
            if kind == "identify"
            else group_profile(group_id, traits)
            if group_id is not None
            else {}
        ),
    )


GROUP_PREFIX = "group_"


def group_profile(group_id: str, traits: dict[str, Any]) -> dict[str, Any]:
    """A group call's contact attributes: the group (the contact's company or account) flat
    under `group_`: `group_id` and `group_<trait>` (`group_name`, `group_plan`…). Flat, so the
    segment builder's attribute condition (`attributes.group_plan`) and templates
    (`{{ contact.attributes.group_name }}`) reach them like any custom attribute. Grouping the
    contact with another group replaces the previous group's attributes."""
    attributes: dict[str, Any] = {"group_id": group_id}
    for key, value in traits.items():
        if key in ("id", "groupId"):
            continue  # the groupId is the id
        if not isinstance(key, str) or not key.strip():
            continue
        attributes[GROUP_PREFIX + key.strip()] = value
    return {"attributes": attributes}


# Traits that are contact fields; every other trait is kept in Contact.attributes.
NAME_TRAITS = {
    "email": "email",
    "phone": "phone",
    "firstName": "first_name",
    "first_name": "first_name",
    "lastName": "last_name",
    "last_name": "last_name",
    "timezone": "timezone",
    "locale": "locale",
}
BIRTHDAY_RE = re.compile(r"^(?:(\d{4})|-)?-?(\d{2})-(\d{2})(?:T.*)?$")


def profile_from_traits(traits: dict[str, Any]) -> dict[str, Any]:
    """Contact fields from identify traits, validated; `attributes` holds the other traits."""
    profile: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for key, value in traits.items():
        target = NAME_TRAITS.get(key)
        if target is None:
            if key == "birthday":
                profile.update(parse_birthday(value))
            elif key not in ("name", "id"):
                attributes[key] = value
            continue
        if value is None:
            profile[target] = ""
            continue
        if not isinstance(value, str):
            raise SpecError(f"traits.{key} must be a string.", field=f"traits.{key}")
        value = value.strip()
        limit = _max_length(target)
        if len(value) > limit:
            raise SpecError(
                f"traits.{key} is longer than {limit} characters.", field=f"traits.{key}"
            )
        if target == "email" and value:
            try:
                validate_email(value)
            except ValidationError:
                raise SpecError(
                    f"traits.email “{value[:60]}” is not an email address.", field="traits.email"
                ) from None
            value = value.lower()
        if target == "timezone" and value and value not in known_timezones():
            raise SpecError(
                f"traits.timezone “{value[:60]}” is not an IANA time zone.",
                field="traits.timezone",
            )
        profile[target] = value
    name = traits.get("name")
    if isinstance(name, str) and name.strip() and "first_name" not in profile:
        first, _, last = name.strip().partition(" ")
        profile["first_name"], profile["last_name"] = first[:120], last[:120]
    if attributes:
        profile["attributes"] = attributes
    return profile


@cache
def _max_length(field: str) -> int:
    """The contact column's length: refused here with a 400, not by the database later."""
    return int(cast("CharField[Any, Any]", Contact._meta.get_field(field)).max_length or 255)


def parse_birthday(value: object) -> dict[str, Any]:
    if value in (None, ""):
        return {"birthday_month": None, "birthday_day": None, "birth_year": None}
    match = BIRTHDAY_RE.match(value) if isinstance(value, str) else None
    if match is None:
        raise SpecError(
            "traits.birthday must look like 1990-05-17 or --05-17.", field="traits.birthday"
        )
    year, month, day = match.groups()
    if year and not EARLIEST.year <= int(year) <= LATEST.year:
        raise SpecError(
            f"traits.birthday “{value}” is outside the {WINDOW}.", field="traits.birthday"
        )
    try:
        date(int(year or 2000), int(month), int(day))  # 2000 is a leap year: 29 Feb is fine
    except ValueError:
        raise SpecError(
            f"traits.birthday “{value}” is not a real date.", field="traits.birthday"
        ) from None
    return {
        "birthday_month": int(month),
        "birthday_day": int(day),
        "birth_year": int(year) if year else None,
    }


def parse_batch(raw: object, *, body_bytes: int | None = None) -> list[Call]:
    """Validate a whole batch; the first bad call is reported with its index. When the body
    was `body_bytes` long and that is within one call's limit, no call can exceed it, so
    the per-call size check (a serialisation each) is skipped."""
    check_size = body_bytes is None or body_bytes > MAX_CALL_BYTES
    if not isinstance(raw, dict):
        raise SpecError("The body must be a JSON object with a batch list.")
    items = raw.get("batch")
    if not isinstance(items, list):
        raise SpecError("batch must be a list of messages.", field="batch")
    if not items:
        raise SpecError("batch is empty.", field="batch")
    # Batch-level context and sentAt apply to every call, as Segment's libraries send them.
    shared_context = _object(raw, "context")
    shared_sent_at = raw.get("sentAt")
    calls = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            if shared_context and "context" not in item:
                item = {**item, "context": shared_context}
            if shared_sent_at is not None and "sentAt" not in item:
                item = {**item, "sentAt": shared_sent_at}
        try:
            calls.append(parse_call(item, check_size=check_size))
        except SpecError as exc:
            exc.index = index
            raise
    return calls
