"""The segments UI through the Django test client: the list and its ready-made segments, a
segment's page, the builder (each change re-renders it with the live count and summary) and
saving, as a marketer of acme; what a viewer and another team may do.

The builder tests drive it the way the page does: every step posts the fields of the previous
answer back (read out of its HTML by `form_fields`) plus what the user changed and the button
they pressed, so the form ↔ tree round trip is tested, not just the parser.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from typing import Any
from urllib.parse import unquote

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audience.models import Contact
from audience.segment_spec import parse_call
from audience.services import calls_record
from segments import forms, rules, services
from segments.models import Segment
from segments.presets import PRESETS

pytestmark = pytest.mark.django_db

LIST = "/t/acme/segments/"
NEW = "/t/acme/segments/new/"
BUILDER = "/t/acme/segments/builder/"
PRESETS_URL = "/t/acme/segments/presets/"


def detail(segment: Segment) -> str:
    return f"/t/{segment.tenant.slug}/segments/{segment.public_id}/"


def send(tenant: Any, *messages: dict[str, Any]) -> None:
    calls_record(tenant=tenant, calls=[parse_call(m) for m in messages])


def person(tenant: Any, user_id: str, email: str, **traits: Any) -> None:
    traits = {"email": email, **traits}
    send(tenant, {"type": "identify", "userId": user_id, "messageId": user_id, "traits": traits})


def did(tenant: Any, user_id: str, event: str, n: str, **properties: Any) -> None:
    send(
        tenant,
        {
            "type": "track",
            "userId": user_id,
            "event": event,
            "messageId": n,
            "properties": properties,
        },
    )


@pytest.fixture
def shop(world: Any) -> Any:
    """acme: Ann (2 orders), Ben (browses, gmail), Cat (1 big order, gmail). globex: Zed."""
    person(world.acme, "ann", "ann@example.com", firstName="Ann")
    person(world.acme, "ben", "ben@gmail.com", firstName="Ben")
    person(world.acme, "cat", "cat@gmail.com", firstName="Cat")
    did(world.acme, "ann", "Order Completed", "o1", total=20)
    did(world.acme, "ann", "Order Completed", "o2", total=50)
    did(world.acme, "ben", "Product Viewed", "v1", sku="tent")
    did(world.acme, "cat", "Order Completed", "o3", total=300)
    person(world.globex, "zed", "zed@gmail.com")
    did(world.globex, "zed", "Order Completed", "g1", total=5)
    return world


def buyers() -> dict[str, Any]:
    return {
        "type": "group",
        "match": "all",
        "negate": False,
        "children": [{"type": "event", "event": "Order Completed"}],
    }


# --- reading form fields out of the rendered HTML -------------------------------------------------


class _FormFields(HTMLParser):
    """The values a browser would submit for the form controls in an HTML fragment (without
    buttons, which only send their own value when pressed)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind not in ("submit", "button"):
                self.fields.append((a["name"], a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select":
            self._select, self._options = a.get("name"), []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))
        elif tag == "textarea":
            self._textarea, self._text = a.get("name"), ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select:
            chosen = [v for v, selected in self._options if selected] or [
                v for v, _ in self._options[:1]
            ]
            self.fields += [(self._select, v) for v in chosen]
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.fields.append((self._textarea, self._text.strip()))
            self._textarea = None


def form_fields(html: str) -> list[tuple[str, str]]:
    parser = _FormFields()
    parser.feed(html)
    return parser.fields


def post_data(fields: list[tuple[str, str]], **changes: str) -> dict[str, list[str]]:
    """The fields as the test client posts them, with `changes` (field name → value)."""
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    for key, value in changes.items():
        data[key] = [value]
    return data


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def summary_in(html: str) -> str:
    return unescape(re.search(r'id="segment-summary">([^<]*)<', html)[1])


def count_in(html: str) -> int | None:
    found = re.search(r'id="match-count"><strong>(\d+)</strong>', html)
    return int(found[1]) if found else None


class Builder:
    """A builder session: each step posts the previous answer's fields back, changed."""

    def __init__(self, client: Any, url: str = BUILDER, html: str = "") -> None:
        self.client, self.url = client, url
        self.html = html or client.get(NEW).content.decode()

    def step(self, action: str = "", **changes: str) -> str:
        data = post_data(form_fields(self.html), **changes)
        if action:
            data["action"] = [action]
        response = self.client.post(self.url, data, HTTP_HX_REQUEST="true")
        assert response.status_code == 200, response.content.decode()[:500]
        self.html = response.content.decode()
        return self.html

    @property
    def count(self) -> int | None:
        return count_in(self.html)

    def error(self, path: str) -> str:
        found = re.search(rf'id="node-{re.escape(path)}-error">([^<]*)<', self.html)
        return found[1] if found else ""


# --- the list and ready-made segments -------------------------------------------------------------


def test_it_lists_segments_with_their_members_and_last_refresh(login, shop) -> None:
    services.segment_create(
        tenant=shop.acme, name="Buyers", rules=buyers(), description="Anyone who ordered"
    )
    services.segment_create(tenant=shop.globex, name="Globex buyers", rules=buyers())

    page = login(shop.dave).get(LIST).content.decode()

    assert "Buyers" in page and "Anyone who ordered" in page
    assert "Globex buyers" not in page
    row = re.search(r"<tr>.*?Buyers.*?</tr>", page, re.S)[0]
    assert "<td>2</td>" in row and " ago</time>" in row
    assert "New segment" in page
    for preset in PRESETS.values():
        assert preset.name in page
    assert page.count(f'action="{PRESETS_URL}"') == len(PRESETS)


def test_it_lists_segments_in_the_same_number_of_queries_however_many(login, world) -> None:
    client = login(world.dave)
    services.segment_create(tenant=world.acme, name="S0", rules=buyers())
    client.get(LIST)
    with CaptureQueriesContext(connection) as one:
        client.get(LIST)
    for n in range(1, 6):
        services.segment_create(tenant=world.acme, name=f"S{n}", rules=buyers())
    with CaptureQueriesContext(connection) as six:
        page = client.get(LIST).content.decode()
    assert "S5" in page
    assert len(six) == len(one)


def test_it_adds_a_ready_made_segment_with_one_click(login, shop) -> None:
    client = login(shop.dave)
    response = client.post(PRESETS_URL, {"key": "browsers-not-buyers"})

    segment = Segment.objects.get(tenant=shop.acme)
    assert response.status_code == 302 and response["Location"] == detail(segment)
    assert segment.name == "Browsers, not buyers"
    assert segment.rules == rules.validate(PRESETS["browsers-not-buyers"].rules)
    page = client.get(response["Location"]).content.decode()
    assert "Ben" in page and "Ann" not in page  # Ben browsed and never ordered
    assert "You have it" in client.get(LIST).content.decode()

    client.post(PRESETS_URL, {"key": "browsers-not-buyers"})  # again: a second copy
    assert Segment.objects.filter(name="Browsers, not buyers (2)").exists()


def test_it_answers_404_to_an_unknown_ready_made_segment(login, world) -> None:
    response = login(world.dave).post(PRESETS_URL, {"key": "nope"})
    assert response.status_code == 404
    assert not Segment.objects.exists()


# --- a segment's page -----------------------------------------------------------------------------


def test_it_shows_a_segment_with_its_summary_and_members(login, shop) -> None:
    segment = services.segment_create(tenant=shop.acme, name="Buyers", rules=buyers())

    page = login(shop.bob).get(detail(segment)).content.decode()  # a viewer may look

    assert "did “Order Completed”" in page
    assert '<dd id="member-count">2</dd>' in page
    ann = Contact.objects.get(tenant=shop.acme, user_id="ann")
    assert f'href="/t/acme/contacts/{ann.public_id}/"' in page
    assert "Ben" not in page
    assert "Edit" not in page and "Delete" not in page  # not for a viewer


def test_it_pages_through_members_newest_first(login, shop, monkeypatch) -> None:
    from segments import views

    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    everyone = {"type": "group", "match": "all", "negate": False, "children": []}
    everyone["children"] = [{"type": "attribute", "field": "email", "operator": "exists"}]
    segment = services.segment_create(tenant=shop.acme, name="All", rules=everyone)
    client = login(shop.dave)

    first = client.get(detail(segment)).content.decode()
    after = unquote(unescape(re.search(r'href="\?after=([^"]+)"', first)[1]))
    second = client.get(
        detail(segment), {"after": after}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="segment-members"
    ).content.decode()

    assert "Cat" in first and "Ben" in first and "Ann" not in first
    assert "Ann" in second and "Cat" not in second and "<html" not in second


def test_it_deletes_a_segment(login, world) -> None:
    segment = services.segment_create(tenant=world.acme, name="Buyers", rules=buyers())
    client = login(world.dave)
    response = client.post(detail(segment) + "delete/")
    assert response.status_code == 302 and response["Location"] == LIST
    assert not Segment.objects.exists()
    assert "Deleted “Buyers”" in client.get(LIST).content.decode()


def test_it_refuses_to_delete_a_segment_another_one_uses(login, world) -> None:
    used = services.segment_create(tenant=world.acme, name="Buyers", rules=buyers())
    services.segment_create(
        tenant=world.acme,
        name="Loyal",
        rules={
            "type": "group",
            "match": "all",
            "children": [{"type": "segment", "segment": str(used.public_id)}],
        },
    )
    client = login(world.dave)
    response = client.post(detail(used) + "delete/", follow=True)
    assert Segment.objects.filter(pk=used.pk).exists()
    assert "Other segments use this one: Loyal." in response.content.decode()


# --- the builder ----------------------------------------------------------------------------------


def test_it_shows_everyone_before_the_first_condition(login, shop) -> None:
    page = login(shop.dave).get(NEW).content.decode()
    assert count_in(page) == 3  # acme's contacts, not globex's
    assert "Everyone: no conditions yet." in page


def test_it_builds_a_tree_step_by_step_with_a_live_count_and_summary(login, shop) -> None:
    b = Builder(login(shop.dave))
    assert b.count == 3

    b.step("add::event")
    assert b.count is None and "Event must be text" in b.error("0")
    b.step(**{"node-0-event": "Order Completed"})
    assert b.count == 2  # Ann, Cat
    assert "did “Order Completed”" in text_of(b.html)

    b.step("add_group:")
    assert b.count is None and "empty group" in b.error("1")
    assert 'name="node-1-match"' in b.html
    b.step("add:1", **{"node-1-add_kind": "attribute"})
    b.step(**{"node-1.0-field": "email"})
    b.step(**{"node-1.0-operator": "contains", "node-1.0-value": "gmail"})
    assert b.count == 1  # Cat: a buyer with gmail
    b.step("add:1:metric", **{"node-1.1-value": ""})
    b.step(**{"node-1.1-operator": "gte", "node-1.1-value": "2"})
    assert b.count == 2  # Ann has 2 orders, Cat gmail
    assert text_of(b.html).count("any of:") == 1
    built = {
        "type": "group",
        "match": "all",
        "children": [
            {"type": "event", "event": "Order Completed"},
            {
                "type": "group",
                "match": "any",
                "children": [
                    {
                        "type": "attribute",
                        "field": "email",
                        "operator": "contains",
                        "value": "gmail",
                    },
                    {"type": "metric", "metric": "orders_count", "operator": "gte", "value": 2},
                ],
            },
        ],
    }
    assert summary_in(b.html) == rules.describe(rules.validate(built))
    assert summary_in(b.html).startswith("all of: did “Order Completed”; (any of: email contains")

    b.step(**{"node--negate": "1"})  # not (…): Ben only
    assert b.count == 1
    b.step("remove:1")
    assert 'name="node-1-match"' not in b.html
    assert "autofocus" in re.search(r'<select id="node--add_kind"[^>]*>', b.html)[0]
    b.step(**{"node--negate": ""})
    assert b.count == 2


def test_it_renders_the_summary_the_rules_module_writes(login, shop) -> None:
    b = Builder(login(shop.dave))
    b.step("add::event")
    b.step(**{"node-0-event": "Order Completed", "node-0-count_value": "2"})
    assert summary_in(b.html) == rules.describe(
        rules.validate(
            {
                "type": "group",
                "children": [
                    {
                        "type": "event",
                        "event": "Order Completed",
                        "count": {"operator": "at_least", "value": 2},
                    }
                ],
            }
        )
    )
    assert b.count == 1


def test_it_asks_again_for_a_comparison_when_the_field_changes(login, world) -> None:
    b = Builder(login(world.dave))
    b.step("add::attribute")
    assert b.error("0") == "Choose a field."
    b.step(**{"node-0-field": "email"})
    b.step(**{"node-0-operator": "contains", "node-0-value": "x"})
    assert b.count == 0 and not b.error("0")
    b.step(**{"node-0-field": "created_at"})  # "contains" does not apply to a date
    assert b.error("0") == "Choose a comparison."
    b.step(**{"node-0-operator": "within_last_days", "node-0-value": "7"})
    assert b.count == 0 and "days" in b.html


def test_it_keeps_what_was_typed_and_says_what_is_wrong(login, world) -> None:
    b = Builder(login(world.dave))
    b.step("add::metric")
    b.step(**{"node-0-value": "NaN"})
    assert b.error("0") == "Value must be a number."
    assert 'value="NaN"' in b.html
    b.step("add::event")
    b.step(**{"node-1-event": "Order Completed", "node-1-window": "last_days"})
    # In the builder's words (its field labels), not the API's JSON keys.
    assert b.error("1") == "Days must be a whole number from 1 to 3650."
    assert b.error("0") == "Value must be a number."  # every bad condition at once


def test_it_edits_event_filters_and_windows(login, shop) -> None:
    b = Builder(login(shop.dave))
    b.step("add::event")
    b.step(**{"node-0-event": "Order Completed"})
    b.step("add_where:0")
    b.step(**{"node-0-where-0-property": "total", "node-0-where-0-operator": "gt"})
    b.step(**{"node-0-where-0-value": "100"})
    assert b.count == 1  # Cat's 300
    b.step(**{"node-0-window": "between"})
    assert b.error("0") == "From must be a date like 2026-01-31."
    b.step(**{"node-0-window_after": "2030-01-01", "node-0-window_before": "2029-01-01"})
    assert b.error("0") == "From must be before Until."
    b.step(**{"node-0-window_after": "2000-01-01", "node-0-window_before": ""})
    assert b.count == 1
    b.step("remove_where:0:0")
    assert b.count == 2 and "node-0-where-0-property" not in b.html


def test_it_offers_only_this_teams_other_segments(login, world) -> None:
    mine = services.segment_create(tenant=world.acme, name="Acme buyers", rules=buyers())
    services.segment_create(tenant=world.globex, name="Globex buyers", rules=buyers())
    client = login(world.dave)

    b = Builder(client)
    b.step("add::segment")
    assert "Acme buyers" in b.html and "Globex buyers" not in b.html

    edit = Builder(
        client,
        url=detail(mine) + "builder/",
        html=client.get(detail(mine) + "edit/").content.decode(),
    )
    edit.step("add::segment")
    options = re.search(r'<select id="node-1-segment".*?</select>', edit.html, re.S)[0]
    assert "Acme buyers" not in options  # not itself either


def test_it_refuses_another_teams_segment_in_a_posted_tree(login, world) -> None:
    theirs = services.segment_create(tenant=world.globex, name="Globex buyers", rules=buyers())
    client = login(world.dave)
    data = {
        "name": "Sneaky",
        "node-0-type": "segment",
        "node-0-segment": str(theirs.public_id),
        "action": "save",
    }
    response = client.post(NEW, data)
    assert response.status_code == 400
    assert "refers to a segment that does not exist" in response.content.decode()
    assert not Segment.objects.filter(tenant=world.acme).exists()


def test_it_works_without_javascript(login, world) -> None:
    client = login(world.dave)
    response = client.post(NEW, {"name": "Half done", "action": "add::reachable"})
    page = response.content.decode()
    assert response.status_code == 200 and "<html" in page
    assert 'name="node-0-channel"' in page and 'value="Half done"' in page
    assert count_in(page) == 0
    assert not Segment.objects.exists()


# --- saving ---------------------------------------------------------------------------------------


def test_it_saves_a_new_segment_and_shows_its_members(login, shop) -> None:
    client = login(shop.dave)
    b = Builder(client)
    b.step("add::event")
    b.step(**{"node-0-event": "Order Completed"})
    data = post_data(form_fields(b.html), name="Buyers", description="Anyone who ordered")
    response = client.post(NEW, {**data, "action": "save"})

    segment = Segment.objects.get(tenant=shop.acme)
    assert response.status_code == 302 and response["Location"] == detail(segment)
    assert segment.rules == rules.validate(buyers())
    assert segment.description == "Anyone who ordered" and segment.member_count == 2
    page = client.get(detail(segment)).content.decode()
    assert "Saved “Buyers”: 2 contacts now in it." in page
    assert "Ann" in page and "Cat" in page


def test_it_shows_a_bad_conditions_message_beside_it_and_saves_nothing(login, world) -> None:
    data = {
        "name": "Bad",
        "node-0-type": "reachable",
        "node-0-channel": "email",
        "node-1-type": "event",
        "node-1-event": "",
        "action": "save",
    }
    response = login(world.dave).post(NEW, data)

    page = response.content.decode()
    assert response.status_code == 400
    assert (
        '<p class="errorlist" id="node-1-error">Event must be text of 1 to 200 characters.</p>'
        in page
    )
    assert 'aria-describedby="node-1-error"' in page
    assert 'id="node-0-error"' not in page
    assert 'value="Bad"' in page
    assert not Segment.objects.exists()


def test_it_asks_for_a_condition_before_saving(login, world) -> None:
    response = login(world.dave).post(NEW, {"name": "Empty", "action": "save"})
    assert response.status_code == 400
    assert 'id="node--error">Add at least one condition.' in response.content.decode()
    assert not Segment.objects.exists()


def test_it_puts_a_taken_name_on_the_name_field(login, world) -> None:
    services.segment_create(tenant=world.acme, name="Buyers", rules=buyers())
    data = {"name": "Buyers", "node-0-type": "event", "node-0-event": "Order Completed"}
    response = login(world.dave).post(NEW, {**data, "action": "save"})
    page = response.content.decode()
    assert response.status_code == 400
    assert re.search(r'id="id_name_errors"><li>A segment with this name exists already.</li>', page)
    assert Segment.objects.count() == 1


@pytest.mark.parametrize("key", list(PRESETS))
def test_it_saves_an_unchanged_segment_as_it_was(login, world, key) -> None:
    """Every ready-made tree survives tree → form fields → tree."""
    client = login(world.dave)
    segment = services.segment_create(
        tenant=world.acme, name="S", rules=PRESETS[key].rules, description="d"
    )
    page = client.get(detail(segment) + "edit/").content.decode()
    response = client.post(
        detail(segment) + "edit/", {**post_data(form_fields(page)), "action": "save"}
    )
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.rules == rules.validate(PRESETS[key].rules)
    assert (segment.name, segment.description) == ("S", "d")


def test_it_edits_a_segment(login, shop) -> None:
    segment = services.segment_create(tenant=shop.acme, name="Buyers", rules=buyers())
    client = login(shop.dave)
    page = client.get(detail(segment) + "edit/").content.decode()
    assert 'value="Order Completed"' in page and count_in(page) == 2
    data = post_data(form_fields(page), **{"node-0-count_value": "2", "name": "Repeat buyers"})
    response = client.post(detail(segment) + "edit/", {**data, "action": "save"})
    assert response.status_code == 302
    segment.refresh_from_db()
    assert segment.name == "Repeat buyers" and segment.member_count == 1
    assert segment.rules["children"][0]["count"] == {"operator": "at_least", "value": 2}


# --- who may do what ------------------------------------------------------------------------------


def test_it_lets_a_viewer_look_but_not_save(login, world) -> None:
    segment = services.segment_create(tenant=world.acme, name="Buyers", rules=buyers())
    client = login(world.bob)
    for url in (LIST, NEW, detail(segment), detail(segment) + "edit/"):
        assert client.get(url).status_code == 200, url
    page = client.get(detail(segment) + "edit/").content.decode()
    assert '<fieldset class="plain" disabled>' in page
    assert "New segment" not in client.get(LIST).content.decode()
    data = {"name": "Hijacked", "node-0-type": "reachable", "node-0-channel": "email"}
    for url in (NEW, detail(segment) + "edit/", BUILDER, PRESETS_URL, detail(segment) + "delete/"):
        assert client.post(url, {**data, "action": "save", "key": "new-signups"}).status_code == 403
    assert list(Segment.objects.values_list("name", flat=True)) == ["Buyers"]


@pytest.mark.parametrize("suffix", ["", "edit/", "builder/", "delete/"])
def test_it_answers_404_for_another_teams_segment(login, world, suffix) -> None:
    theirs = services.segment_create(tenant=world.globex, name="Theirs", rules=buyers())
    client = login(world.dave)
    url = f"/t/acme/segments/{theirs.public_id}/{suffix}"
    method = client.get if suffix in ("", "edit/") else client.post
    assert method(url).status_code == 404
    assert Segment.objects.filter(pk=theirs.pk).exists()


# --- the form module ------------------------------------------------------------------------------


def test_its_operator_lists_cover_the_rules_operators() -> None:
    assert set(forms.TEXT_OPERATORS) == rules.TEXT_OPERATORS
    assert set(forms.NUMBER_OPERATORS) == rules.NUMBER_OPERATORS
    assert set(forms.DATE_OPERATORS) == rules.DATE_OPERATORS
    assert set(forms.BIRTHDAY_OPERATORS) == rules.BIRTHDAY_OPERATORS
    assert set(forms.LIST_OPERATORS) == rules.LIST_OPERATORS
    assert set(forms.PROPERTY_OPERATORS) == rules.PROPERTY_OPERATORS
    assert set(forms.COUNT_LABELS) == rules.COUNT_OPERATORS
    assert set(forms.METRIC_LABELS) == rules.METRICS
    assert set(forms.PARSERS) == set(rules.KINDS)


def test_it_starts_every_kind_of_condition() -> None:
    for kind in rules.KINDS:
        assert forms.new_condition(kind)["type"] == kind


@pytest.mark.parametrize(
    "data",
    [
        {"node-0-type": "nonsense"},
        {"node-0-type": "group", "node-0.0-type": "group", "action": "remove:"},
        {"node-" + ".".join(["0"] * 12) + "-type": "reachable", "action": "add:0.0.0:event"},
        {"node-99999999999-type": "event", "action": "remove_where:99999999999:5"},
        {"node-0-type": "event", "node-0-where-7-operator": "gt", "node-0-count_value": "1e999"},
        {"node-0-type": "lifecycle", "node-0-value": "alien", "action": "add_where:0"},
        {"node-0-type": "attribute", "node-0-field": "attributes", "node-0-operator": "gt"},
        {"node-0-type": "metric", "node-0-metric": "x", "node--match": "neither"},
        {"node-0-type": "segment", "node-0-segment": "not-a-uuid", "action": "add:0:rfm"},
        {"node-0-type": "rfm", "node-0-recency": "9", "action": "add_group:0"},
    ],
)
def test_it_answers_odd_posts_with_messages_not_errors(login, world, data) -> None:
    client = login(world.dave)
    assert client.post(BUILDER, data).status_code == 200
    assert client.post(NEW, {**data, "name": "Odd", "action": "save"}).status_code == 400
    assert not Segment.objects.exists()
