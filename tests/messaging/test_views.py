"""The messaging UI through the Django test client: the template editor (saving, Liquid errors
beside the fields with nothing saved, the live preview for a chosen or sample contact, the
contact picker, "send test" to a real SMTP server and a real push service), the outbox, sending
settings and suppressions; what each role may do, and another team's objects answering 404.

acme's people: dave (marketer) edits, bob (viewer) reads, alice (admin) changes the settings.
"""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils.timezone import now

from audience.models import Contact
from messaging import views
from messaging.models import Channel, Delivery, SendingPolicy, Suppression, Template
from messaging.push import push_subscription_save
from messaging.selectors import sender_identity_get
from tests.mail_sink import MailSink
from tests.messaging.push_receiver import PushReceiver
from tests.statements import rls_statements

pytestmark = pytest.mark.django_db

TEMPLATES = "/t/acme/messages/templates/"
NEW = "/t/acme/messages/templates/new/"
PREVIEW = "/t/acme/messages/templates/preview/"
SEND_TEST = "/t/acme/messages/templates/send-test/"
CONTACTS = "/t/acme/messages/templates/contacts/"
OUTBOX = "/t/acme/messages/outbox/"
SETTINGS = "/t/acme/messages/settings/"
SUPPRESSIONS = "/t/acme/messages/suppressions/"

HTMX = {"HTTP_HX_REQUEST": "true"}
BROKEN = "Hello {{ contact.first_name "


def edit(template: Template) -> str:
    return f"/t/{template.tenant.slug}/messages/templates/{template.public_id}/"


def errors_beside(html: str, field: str) -> str:
    """The text of the error list beside a field (empty when there are none)."""
    match = re.search(rf'<ul class="errorlist" id="errors-{field}"[^>]*>(.*?)</ul>', html, re.S)
    assert match, f"no error list beside {field}"
    return unescape(re.sub(r"<[^>]+>", " ", match.group(1))).strip()


def srcdoc(html: str) -> str:
    match = re.search(r'<iframe class="email-frame"[^>]*srcdoc="([^"]*)"', html)
    assert match, "no email preview"
    return unescape(match.group(1))


def text_of(html: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', html, re.S)
    assert match, f"no #{element_id}"
    return unescape(match.group(1)).strip()


def email_fields(**overrides: str) -> dict[str, str]:
    return {
        "channel": "email",
        "name": "Spring sale",
        "subject": "{{ contact.first_name | default: 'Hi' }}, spring is here",
        "preheader": "Up to 30% off tents",
        "html": "<p>Dear {{ contact.first_name }},</p><p>Our spring sale starts today.</p>",
        **overrides,
    }


@pytest.fixture
def ann(world: Any) -> Contact:
    return Contact.objects.create(
        tenant=world.acme, email="ann@example.com", first_name="Ann", last_name="Lee"
    )


@pytest.fixture
def zed(world: Any) -> Contact:
    """globex's contact: never in acme's picker or preview."""
    return Contact.objects.create(tenant=world.globex, email="ann.z@example.com", first_name="Zed")


# --- The list ------------------------------------------------------------------------------------


def test_it_lists_the_teams_templates_with_their_channel_in_a_fixed_number_of_queries(
    login: Any, world: Any, email_template: Template, django_assert_num_queries: Any
) -> None:
    Template.objects.create(
        tenant=world.acme, name="Back in stock", channel=Channel.PUSH, title="Back", body="In"
    )
    Template.objects.create(tenant=world.globex, name="Globex news", subject="x", html="x")
    client = login(world.bob)
    client.get(TEMPLATES)  # warm up: the session and the site's caches

    # session, user, membership + tenant, templates, the team switcher; + the scope: the
    # tenant's, the system's for the switcher, the tenant's again (core/rls.py)
    with django_assert_num_queries(5 + rls_statements(3)):
        response = client.get(TEMPLATES)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.index("Back in stock") < html.index("Welcome")
    assert "Web push" in html and "Email" in html
    assert "Globex news" not in html
    assert "New email" not in html  # a viewer reads, nothing more


# --- Saving --------------------------------------------------------------------------------------


def test_it_creates_an_email_template_and_opens_it_again(login: Any, world: Any) -> None:
    client = login(world.dave)

    response = client.post(NEW, email_fields())

    template = Template.objects.get(tenant=world.acme, name="Spring sale")
    assert response.status_code == 302
    assert response["Location"] == edit(template)
    assert (template.channel, template.preheader) == (Channel.EMAIL, "Up to 30% off tents")
    page = client.get(response["Location"]).content.decode()
    assert "Saved “Spring sale”." in page
    assert "{{ contact.first_name | default: &#x27;Hi&#x27; }}, spring is here" in page


def test_it_creates_a_push_template_with_its_buttons(login: Any, world: Any) -> None:
    response = login(world.dave).post(
        NEW,
        {
            "channel": "push",
            "name": "Back in stock",
            "title": "{{ contact.first_name }}, it is back",
            "body": "The Trail Tent 2P is in stock again.",
            "icon_url": "https://shop.example/icon.png",
            "target_url": "https://shop.example/tents",
            "action1_title": "Buy now",
            "action1_url": "https://shop.example/cart/add/TEN-01",
            "action2_title": "",
            "action2_url": "",
        },
    )

    template = Template.objects.get(tenant=world.acme, name="Back in stock")
    assert response.status_code == 302
    assert template.channel == Channel.PUSH
    assert template.actions == [
        {"action": "action1", "title": "Buy now", "url": "https://shop.example/cart/add/TEN-01"}
    ]


def test_it_asks_for_a_buttons_url_and_saves_nothing(login: Any, world: Any) -> None:
    response = login(world.dave).post(
        NEW,
        {
            "channel": "push",
            "name": "Half a button",
            "title": "T",
            "body": "B",
            "action1_title": "Go",
        },
    )

    assert response.status_code == 400
    assert (
        errors_beside(response.content.decode(), "action1_url") == "Give the button a URL to open."
    )
    assert not Template.objects.filter(name="Half a button").exists()


def test_it_saves_changes_to_a_template_but_never_its_channel(
    login: Any, world: Any, email_template: Template
) -> None:
    response = login(world.dave).post(
        edit(email_template), email_fields(name="Welcome", channel="push", subject="New subject")
    )

    email_template.refresh_from_db()
    assert response.status_code == 302
    assert (email_template.subject, email_template.channel) == ("New subject", Channel.EMAIL)


def test_it_refuses_broken_liquid_beside_the_field_and_saves_nothing(
    login: Any, world: Any, email_template: Template
) -> None:
    before = sorted(Template.objects.values_list("name", "subject", "html", "updated_at"))
    client = login(world.dave)

    created = client.post(NEW, email_fields(subject=BROKEN))
    edited = client.post(edit(email_template), email_fields(name="Welcome", subject=BROKEN))

    for response in (created, edited):
        html = response.content.decode()
        assert response.status_code == 400
        beside = errors_beside(html, "subject")
        assert beside.startswith("subject")
        assert beside in unescape(re.sub(r"<[^>]+>", " ", html.split('id="preview-errors"')[1]))
        assert errors_beside(html, "html") == ""
        assert BROKEN.strip() in unescape(html)  # what was typed stays in the form
    assert sorted(Template.objects.values_list("name", "subject", "html", "updated_at")) == before
    assert "Edit “Welcome”" in edited.content.decode()


def test_it_refuses_an_email_without_a_subject_or_a_name_already_taken(
    login: Any, world: Any, email_template: Template
) -> None:
    response = login(world.dave).post(NEW, email_fields(name="Welcome", subject=""))

    html = response.content.decode()
    assert response.status_code == 400
    assert errors_beside(html, "name") == "A template with this name already exists."
    assert Template.objects.filter(tenant=world.acme).count() == 1
    # With a free name, the model's own rule speaks beside the subject.
    response = login(world.dave).post(NEW, email_fields(name="Other", subject=""))
    assert errors_beside(response.content.decode(), "subject") == "An email needs this."
    assert Template.objects.filter(tenant=world.acme).count() == 1


def test_it_lets_another_team_use_the_same_name(
    login: Any, world: Any, email_template: Template
) -> None:
    response = login(world.charlie).post(
        "/t/globex/messages/templates/new/", email_fields(name="Welcome")
    )

    assert response.status_code == 302
    assert Template.objects.filter(name="Welcome").count() == 2


# --- The live preview ---------------------------------------------------------------------------


def test_it_previews_the_email_for_the_chosen_contact(login: Any, world: Any, ann: Contact) -> None:
    response = login(world.dave).post(
        PREVIEW, {**email_fields(), "contact": str(ann.public_id)}, **HTMX
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert text_of(html, "preview-contact") == "As Ann Lee <ann@example.com>"
    assert text_of(html, "preview-subject") == "Ann, spring is here"
    assert text_of(html, "preview-preheader") == "Up to 30% off tents"
    assert "<p>Dear Ann,</p>" in srcdoc(html)
    assert "Dear Ann," in text_of(html, "preview-text")  # the plain-text part
    # The tenant's HTML runs in a sandbox with no scripts, and never inline in the page.
    assert re.search(r'<iframe class="email-frame"[^>]* sandbox=""', html)
    assert "<p>Dear Ann,</p>" not in html
    # Each field's errors come along out of band, emptied.
    assert 'id="errors-subject" hx-swap-oob="true"' in html
    assert errors_beside(html, "subject") == ""


def test_it_previews_with_a_sample_contact_until_one_is_chosen(login: Any, world: Any) -> None:
    from messaging.context import sample_context

    sample = sample_context(world.acme)["contact"]["first_name"]

    response = login(world.dave).post(PREVIEW, email_fields(), **HTMX)

    html = response.content.decode()
    assert text_of(html, "preview-contact") == "As a sample contact"
    assert text_of(html, "preview-subject") == f"{sample}, spring is here"


def test_it_shows_liquid_errors_in_the_preview_and_beside_the_field(login: Any, world: Any) -> None:
    response = login(world.dave).post(PREVIEW, email_fields(html="{% if %}<p>x</p>"), **HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    beside = errors_beside(html, "html")
    assert beside.startswith("html")
    assert beside in unescape(re.sub(r"<[^>]+>", " ", html.split('id="preview-errors"')[1]))
    assert errors_beside(html, "subject") == ""
    assert "email-frame" not in html


def test_it_previews_a_push_as_a_notification(login: Any, world: Any, ann: Contact) -> None:
    response = login(world.dave).post(
        PREVIEW,
        {
            "channel": "push",
            "title": "{{ contact.first_name }}, it is back",
            "body": "In stock again.",
            "image_url": "https://shop.example/tent.jpg",
            "action1_title": "Buy now",
            "action1_url": "https://shop.example/buy",
            "contact": str(ann.public_id),
        },
        **HTMX,
    )

    html = response.content.decode()
    assert text_of(html, "preview-push-title") == "Ann, it is back"
    assert text_of(html, "preview-push-body") == "In stock again."
    assert 'src="https://shop.example/tent.jpg"' in html
    assert '<span class="push-action">Buy now</span>' in html


def test_it_shows_the_saved_templates_preview_on_its_page(
    login: Any, world: Any, email_template: Template
) -> None:
    from messaging.context import sample_context

    sample = sample_context(world.acme)["contact"]["first_name"]

    html = login(world.bob).get(edit(email_template)).content.decode()

    assert text_of(html, "preview-subject") == f"Hello {sample}"
    assert "Visit the shop" in srcdoc(html)


def test_it_finds_contacts_to_preview_with_among_the_teams_own(
    login: Any, world: Any, ann: Contact, zed: Contact
) -> None:
    Contact.objects.create(tenant=world.acme, email="bo@example.com", first_name="Annabel")
    client = login(world.dave)

    found = client.get(CONTACTS, {"contact_q": "an"}, **HTMX).content.decode()
    chosen = client.get(CONTACTS, {"contact_q": "nobody", "contact": str(ann.public_id)})

    assert "Ann Lee &lt;ann@example.com&gt;" in found
    assert "Annabel &lt;bo@example.com&gt;" in found
    assert "Zed" not in found and "ann.z@example.com" not in found
    chosen_html = chosen.content.decode()
    assert re.search(rf'value="{ann.public_id}" checked', chosen_html)  # stays chosen
    assert "No contact’s email or name starts with “nobody”." in chosen_html  # noqa: RUF001


def test_it_updates_the_preview_and_finds_contacts_without_javascript(
    login: Any, world: Any, email_template: Template, ann: Contact
) -> None:
    # Without JavaScript, "Update the preview" posts the form to the page itself.
    fields = {**email_fields(name="Welcome"), "action": "preview", "contact_q": "ann"}
    client = login(world.dave)

    searched = client.post(edit(email_template), fields).content.decode()
    chosen = client.post(edit(email_template), {**fields, "contact": str(ann.public_id)})

    assert "Ann Lee &lt;ann@example.com&gt;" in searched  # found, to choose
    assert text_of(searched, "preview-contact") == "As a sample contact"
    html = chosen.content.decode()
    assert chosen.status_code == 200
    assert text_of(html, "preview-subject") == "Ann, spring is here"
    assert 'value="Spring sale"' not in html and 'value="Welcome"' in html  # what was typed
    email_template.refresh_from_db()
    assert email_template.subject.startswith("Hello")  # previewing saves nothing


def test_it_answers_404_for_another_teams_contact_in_the_preview(
    login: Any, world: Any, zed: Contact
) -> None:
    client = login(world.dave)

    preview = client.post(PREVIEW, {**email_fields(), "contact": str(zed.public_id)}, **HTMX)
    picker = client.get(CONTACTS, {"contact": str(zed.public_id)})
    send = client.post(SEND_TEST, {**email_fields(), "contact": str(zed.public_id)})

    assert (preview.status_code, picker.status_code, send.status_code) == (404, 404, 404)


def test_it_answers_404_for_another_teams_template(
    login: Any, world: Any, email_template: Template
) -> None:
    client = login(world.charlie)
    globex_url = f"/t/globex/messages/templates/{email_template.public_id}/"

    assert client.get(globex_url).status_code == 404
    assert client.post(globex_url, email_fields(name="Stolen")).status_code == 404
    posted = {**email_fields(), "template": str(email_template.public_id)}
    assert client.post("/t/globex/messages/templates/preview/", posted).status_code == 404
    assert client.get(edit(email_template)).status_code == 404  # acme's URL: not a member
    email_template.refresh_from_db()
    assert email_template.name == "Welcome"


# --- Send test ---------------------------------------------------------------------------------


def test_it_sends_a_test_email_rendered_for_the_chosen_contact(
    login: Any, world: Any, ann: Contact, mail_sink: MailSink
) -> None:
    response = login(world.dave).post(
        SEND_TEST,
        {**email_fields(), "contact": str(ann.public_id), "test_to": "alice@example.com"},
        **HTMX,
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "Sent a test “Ann, spring is here” to alice@example.com, as Ann Lee" in unescape(html)
    [received] = mail_sink.wait_for(1)
    assert received.rcpt_tos == ["alice@example.com"]
    message = received.message
    assert message["Subject"] == "[Test] Ann, spring is here"  # marked as a test
    assert "Dear Ann," in message.get_body(("html",)).get_content()
    assert "Dear Ann," in message.get_body(("plain",)).get_content()
    assert not Delivery.objects.exists()  # a test is not a message of the outbox


def test_it_offers_to_send_the_test_to_the_signed_in_user(
    login: Any, world: Any, email_template: Template
) -> None:
    html = login(world.dave).get(edit(email_template)).content.decode()

    assert re.search(
        r'<option value="dave@example.com" selected>Dave &lt;dave@example.com&gt;', html
    )
    assert "Send test" in html


def test_it_sends_no_test_of_a_broken_template_or_to_no_address(
    login: Any, world: Any, mail_sink: MailSink
) -> None:
    client = login(world.dave)

    broken = client.post(
        SEND_TEST, {**email_fields(subject=BROKEN), "test_to": "alice@example.com"}
    )
    nowhere = client.post(SEND_TEST, {**email_fields(), "test_to": "not an address"}, **HTMX)

    assert broken.status_code == 400
    assert "Nothing was sent: fix the errors in the template first." in broken.content.decode()
    assert errors_beside(broken.content.decode(), "subject").startswith("subject")
    assert "choose a member of your team to send the test to." in nowhere.content.decode()
    assert mail_sink.received() == []


def test_it_sends_a_test_push_to_the_chosen_contacts_browsers(
    login: Any, world: Any, ann: Contact, settings: Any
) -> None:
    settings.WAYFARER_OUTBOUND_ALLOW_PRIVATE = True  # the push receiver is on loopback
    fields = {
        "channel": "push",
        "name": "Back",
        "title": "{{ contact.first_name }}, it is back",
        "body": "In stock again.",
        "target_url": "https://shop.example/tents",
    }
    client = login(world.dave)
    with PushReceiver() as receiver:
        public_key = sender_identity_get(tenant=world.acme).vapid_public_key
        browser = receiver.subscribe(application_server_key=public_key)
        push_subscription_save(
            tenant=world.acme,
            contact=ann,
            endpoint=browser.endpoint,
            p256dh=browser.p256dh,
            auth=browser.auth,
            user_agent="Mozilla/5.0 (test)",
        )
        sample = client.post(SEND_TEST, fields, **HTMX).content.decode()
        sent = client.post(SEND_TEST, {**fields, "contact": str(ann.public_id)}, **HTMX)

        [message] = receiver.messages(browser)
    assert "Choose a contact to send the test push to." in sample
    assert "Sent a test push “Ann, it is back” to Ann Lee" in unescape(sent.content.decode())
    assert message["title"] == "Ann, it is back"
    assert not Delivery.objects.exists()


# --- Roles ---------------------------------------------------------------------------------------


def test_it_shows_a_viewer_the_editor_read_only_and_refuses_their_changes(
    login: Any, world: Any, email_template: Template, mail_sink: MailSink
) -> None:
    client = login(world.bob)

    page = client.get(edit(email_template)).content.decode()
    saved = client.post(edit(email_template), email_fields(name="Hijacked"))
    created = client.post(NEW, email_fields())
    preview = client.post(PREVIEW, email_fields())
    sent = client.post(SEND_TEST, {**email_fields(), "test_to": "bob@example.com"})

    assert "viewers cannot change it or send tests" in page
    assert '<fieldset class="plain" disabled>' in page
    assert "Save template" not in page and "Send test" not in page
    assert [r.status_code for r in (saved, created, preview, sent)] == [403, 403, 403, 403]
    assert list(Template.objects.values_list("name", flat=True)) == ["Welcome"]
    assert mail_sink.received() == []


# --- The outbox ----------------------------------------------------------------------------------


def deliver(
    contact: Contact,
    template: Template,
    key: str,
    *,
    status: str = Delivery.Status.SENT,
    minutes_ago: int = 0,
    **fields: Any,
) -> Delivery:
    at = now() - timedelta(minutes=minutes_ago)
    return Delivery.objects.create(
        tenant=contact.tenant,
        contact=contact,
        channel=template.channel,
        template=template,
        content=template.snapshot(),
        source=fields.pop("source", "journey:1"),
        idempotency_key=key,
        status=status,
        created_at=at,
        sent_at=at if status == Delivery.Status.SENT else None,
        **fields,
    )


@pytest.fixture
def outbox(world: Any, ann: Contact, zed: Contact, email_template: Template) -> dict[str, Any]:
    push = Template.objects.create(
        tenant=world.acme, name="Back in stock", channel=Channel.PUSH, title="Back", body="In"
    )
    globex = Template.objects.create(tenant=world.globex, name="Globex news", subject="x", html="x")
    return {
        "sent": deliver(ann, email_template, "a", minutes_ago=30),
        "skipped": deliver(
            ann,
            email_template,
            "b",
            status=Delivery.Status.SKIPPED,
            reason="no consent",
            minutes_ago=20,
        ),
        "failed": deliver(
            ann,
            push,
            "c",
            status=Delivery.Status.FAILED,
            reason="push service said 400",
            last_error="400 Bad Request: payload too large",
            attempts=1,
            minutes_ago=10,
        ),
        "globex": deliver(zed, globex, "z"),
    }


def test_it_lists_the_outbox_newest_first_with_what_happened_to_each(
    login: Any, world: Any, outbox: dict[str, Any]
) -> None:
    html = login(world.bob).get(OUTBOX).content.decode()

    rows = re.findall(r"<tr>\s*<td>.*?</tr>", html, re.S)
    assert len(rows) == 3  # not globex's
    failed, skipped, sent = (unescape(re.sub(r"<[^>]+>|\s+", " ", r)).split() for r in rows)
    assert " ".join(failed) == (
        "ann@example.com Web push Back in stock journey:1 Failed push service said 400 1 —"
    )
    assert " ".join(skipped) == "ann@example.com Email Welcome journey:1 Skipped no consent 0 —"
    assert sent[:5] == ["ann@example.com", "Email", "Welcome", "journey:1", "Sent"]
    assert "Globex news" not in html


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"status": "failed"}, ["Back in stock"]),
        ({"channel": "email"}, ["Welcome", "Welcome"]),
        ({"status": "sent", "channel": "email"}, ["Welcome"]),
        ({"status": "sent", "channel": "push"}, []),
        ({"status": "bogus"}, ["Back in stock", "Welcome", "Welcome"]),  # ignored, not an error
    ],
)
def test_it_filters_the_outbox_by_status_and_channel(
    login: Any, world: Any, outbox: dict[str, Any], query: dict[str, str], expected: list[str]
) -> None:
    response = login(world.bob).get(
        OUTBOX, query, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="delivery-results"
    )

    html = response.content.decode()
    assert html.lstrip().startswith('<section class="card" id="delivery-results"')
    names = re.findall(r'/messages/outbox/[0-9a-f-]{36}/">([^<]+)</a>', html)
    assert names == expected


def test_it_pages_through_the_outbox_in_a_fixed_number_of_queries(
    login: Any, world: Any, ann: Contact, email_template: Template, monkeypatch: Any
) -> None:
    monkeypatch.setattr(views, "PAGE_SIZE", 3)
    for n in range(7):
        deliver(ann, email_template, f"k{n}", minutes_ago=n, source=f"campaign:{n}")
    client = login(world.bob)
    client.get(OUTBOX)

    sources, url, counts = [], OUTBOX, []
    while url:
        with CaptureQueriesContext(connection) as queries:
            html = client.get(url).content.decode()
        counts.append(len(queries))
        sources += re.findall(r"<code>(campaign:\d)</code>", html)
        more = re.search(r'href="(\?[^"]*after=[^"]+)">Older', html)
        url = OUTBOX + unescape(more.group(1)) if more else ""

    assert sources == [f"campaign:{n}" for n in range(7)]
    assert counts == [counts[0]] * 3  # the contacts come with their rows, not one by one
    assert counts[0] <= 6 + rls_statements(3)  # + the scope (see the templates list)


def test_it_shows_a_messages_content_status_and_last_error(
    login: Any, world: Any, outbox: dict[str, Any]
) -> None:
    failed = outbox["failed"]

    html = login(world.bob).get(f"/t/acme/messages/outbox/{failed.public_id}/").content.decode()

    assert "400 Bad Request: payload too large" in text_of(html, "last-error")
    assert text_of(html, "delivery-status") == "Failed: push service said 400"
    assert text_of(html, "preview-push-title") == "Back"  # rendered from the snapshot
    assert "<dt>title</dt><dd><pre>Back</pre></dd>" in html


def test_it_answers_404_for_another_teams_message(
    login: Any, world: Any, outbox: dict[str, Any]
) -> None:
    url = f"/t/acme/messages/outbox/{outbox['globex'].public_id}/"

    assert login(world.alice).get(url).status_code == 404


# --- Sending settings ----------------------------------------------------------------------------


def test_it_lets_an_admin_change_the_sending_settings(login: Any, world: Any) -> None:
    response = login(world.alice).post(
        SETTINGS,
        {
            "require_opt_in": "on",
            "frequency_cap": "3",
            "frequency_window_hours": "48",
            "quiet_start": "21:00",
            "quiet_end": "08:00",
            "hourly_limit": "500",
        },
    )

    assert response.status_code == 302
    policy = SendingPolicy.objects.get(tenant=world.acme)
    assert policy.require_opt_in
    assert (policy.frequency_cap, policy.frequency_window_hours, policy.hourly_limit) == (
        3,
        48,
        500,
    )
    assert (policy.quiet_start.hour, policy.quiet_end.hour) == (21, 8)
    page = login(world.alice).get(SETTINGS).content.decode()
    assert "Sending settings saved." in page
    assert 'value="21:00"' in page
    assert not SendingPolicy.objects.filter(tenant=world.globex).exists()


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"quiet_start": "21:00"}, None, "Give quiet hours both a start and an end, or neither."),
        ({"quiet_start": "21:00", "quiet_end": "21:00"}, "quiet_end", "The end must differ"),
        ({"frequency_window_hours": "0"}, "frequency_window_hours", "greater than or equal to 1"),
        ({"frequency_cap": "-1"}, "frequency_cap", "greater than or equal to 0"),
        ({"quiet_end": "25:00", "quiet_start": "08:00"}, "quiet_end", "Enter a valid time."),
    ],
)
def test_it_explains_what_is_wrong_with_the_sending_settings_and_saves_nothing(
    login: Any, world: Any, fields: dict[str, str], field: str | None, message: str
) -> None:
    data = {"frequency_cap": "0", "frequency_window_hours": "24", "hourly_limit": "0", **fields}

    response = login(world.alice).post(SETTINGS, data)

    assert response.status_code == 400
    assert message in unescape(response.content.decode())
    if field:
        assert re.search(
            rf'id="id_{field}_errors"><li>[^<]*{re.escape(message)}',
            unescape(response.content.decode()),
        )
    assert not SendingPolicy.objects.exists()


def test_it_shows_the_sending_settings_to_everyone_but_lets_only_admins_change_them(
    login: Any, world: Any
) -> None:
    SendingPolicy.objects.create(tenant=world.acme, frequency_cap=2)
    data = {"frequency_cap": "9", "frequency_window_hours": "24", "hourly_limit": "0"}

    for user in (world.bob, world.dave):
        page = login(user).get(SETTINGS).content.decode()
        assert "Only admins change the sending settings." in page
        assert 'name="frequency_cap" value="2"' in page
        assert login(user).post(SETTINGS, data).status_code == 403
    assert SendingPolicy.objects.get(tenant=world.acme).frequency_cap == 2
    assert login(world.olivia).post(SETTINGS, data).status_code == 302  # the owner is an admin too


# --- Suppressions --------------------------------------------------------------------------------


def test_it_lets_an_admin_suppress_an_address_and_lift_it(login: Any, world: Any) -> None:
    client = login(world.alice)

    added = client.post(f"{SUPPRESSIONS}add/", {"address": "Ann@Example.com", "detail": "asked"})
    again = client.post(f"{SUPPRESSIONS}add/", {"address": "ann@example.com"}, follow=True)

    assert added.status_code == 302
    [row] = Suppression.objects.filter(tenant=world.acme)
    assert (row.address, row.reason, row.detail) == ("ann@example.com", "manual", "asked")
    assert "ann@example.com was already suppressed (added by hand)." in again.content.decode()
    page = client.get(SUPPRESSIONS).content.decode()
    assert "ann@example.com" in page and "Added by hand" in page

    removed = client.post(f"{SUPPRESSIONS}remove/", {"address": "ann@example.com"}, follow=True)
    assert "Messages may go to ann@example.com again." in removed.content.decode()
    assert not Suppression.objects.exists()


def test_it_refuses_a_suppression_that_is_not_an_address(login: Any, world: Any) -> None:
    response = login(world.alice).post(f"{SUPPRESSIONS}add/", {"address": "nope"})

    assert response.status_code == 400
    assert "Enter a valid email address." in response.content.decode()
    assert not Suppression.objects.exists()


def test_it_lists_suppressions_to_everyone_but_lets_only_admins_change_them(
    login: Any, world: Any
) -> None:
    Suppression.objects.create(tenant=world.acme, address="gone@example.com", reason="bounced")
    Suppression.objects.create(tenant=world.globex, address="theirs@example.com", reason="manual")

    for user in (world.bob, world.dave):
        page = login(user).get(SUPPRESSIONS).content.decode()
        assert "gone@example.com" in page and "Bounced" in page
        assert "theirs@example.com" not in page
        assert "Suppress an address" not in page and "Remove gone@example.com" not in page
        add = login(user).post(f"{SUPPRESSIONS}add/", {"address": "x@example.com"})
        remove = login(user).post(f"{SUPPRESSIONS}remove/", {"address": "gone@example.com"})
        assert (add.status_code, remove.status_code) == (403, 403)
    assert Suppression.objects.count() == 2


def test_it_cannot_lift_another_teams_suppression(login: Any, world: Any) -> None:
    Suppression.objects.create(tenant=world.globex, address="theirs@example.com", reason="manual")

    response = login(world.alice).post(f"{SUPPRESSIONS}remove/", {"address": "theirs@example.com"})

    assert response.status_code == 404
    assert Suppression.objects.count() == 1


def test_it_searches_suppressions_by_the_start_of_the_address(login: Any, world: Any) -> None:
    for address in ("ann@example.com", "bob@example.com"):
        Suppression.objects.create(tenant=world.acme, address=address, reason="manual")

    html = (
        login(world.bob)
        .get(
            SUPPRESSIONS, {"q": "AN"}, HTTP_HX_REQUEST="true", HTTP_HX_TARGET="suppression-results"
        )
        .content.decode()
    )

    assert html.lstrip().startswith('<section class="card" id="suppression-results"')
    assert "ann@example.com" in html and "bob@example.com" not in html


def test_it_links_messages_from_the_sidebar(login: Any, world: Any) -> None:
    html = login(world.bob).get(OUTBOX).content.decode()

    assert '<a href="/t/acme/messages/templates/">Messages</a>' not in html  # it is current
    assert '<a href="/t/acme/messages/templates/" aria-current="page">Messages</a>' in html
    assert '<a href="/t/acme/messages/outbox/" aria-current="page">Outbox</a>' in html
