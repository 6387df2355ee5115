"""The email as it arrives: sent by the outbox through Django's SMTP backend to a real SMTP
server, then read back — sender, headers (Message-ID, RFC 8058 List-Unsubscribe), both parts,
inlined CSS, tracked links that verify and redirect, the open pixel — and the test send."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from audience.models import Contact
from messaging import links, mail
from messaging.mail import email_build
from messaging.models import Channel, Delivery, Template
from messaging.outbox import deliveries_send
from messaging.plaintext import html_to_text
from messaging.rendering import RenderedEmail
from messaging.services import delivery_create, sender_identity_update
from tests.mail_sink import MailSink

HTML = """<!doctype html>
<html><head><style>
p { color: #123456; }
.button { background: #ff6600; padding: 8px; }
@media (max-width: 600px) { p { font-size: 18px; } }
</style></head><body>
<p>Hi {{ contact.first_name }}!</p>
<p><a class="button" href="https://shop.example/welcome?utm=mail&amp;ref={{ contact.id }}">Visit
   the shop</a></p>
<p><a href='https://shop.example/welcome?utm=mail&amp;ref={{ contact.id }}'>Again</a>
   <a href="http://blog.example/post">our blog</a>
   <a href="mailto:help@acme.example">help@acme.example</a> <a href="#top">top</a></p>
<p><a href="{{ unsubscribe_url }}">Unsubscribe</a> ·
   <a href="{{ preferences_url }}">Preferences</a></p>
</body></html>"""


@pytest.fixture
def acme(world: Any) -> Any:
    sender_identity_update(
        tenant=world.acme,
        sender_name="Acme Shop",
        sender_email="shop@acme.example",
        reply_to_email="care@acme.example",
        verified=True,  # confirmed: tests/messaging/test_sender_verification.py
    )
    return world.acme


@pytest.fixture
def ann(acme: Any) -> Contact:
    return Contact.objects.create(tenant=acme, email="ann@example.com", first_name="Ann")


def decide(tenant: Any, contact: Contact, html: str = HTML, key: str = "k1") -> Delivery:
    template = Template.objects.create(
        tenant=tenant,
        name=f"Welcome {key}",
        channel=Channel.EMAIL,
        subject="Welcome, {{ contact.first_name }}",
        preheader="Your first order ships free",
        html=html,
    )
    delivery, _ = delivery_create(
        tenant=tenant,
        contact=contact,
        template=template,
        source="journey:42",
        idempotency_key=key,
    )
    return delivery


def send_one(sink: MailSink, delivery: Delivery) -> EmailMessage:
    report = deliveries_send(channel=Channel.EMAIL)
    assert report.sent == 1, report
    [received] = sink.wait_for(1)
    delivery.refresh_from_db()
    return received.message


def parts(message: EmailMessage) -> tuple[str, str]:
    html = message.get_body(preferencelist=("html",))
    text = message.get_body(preferencelist=("plain",))
    assert html is not None and text is not None
    # SMTP carries CRLF line ends; compare texts as written.
    return (
        html.get_content().replace("\r\n", "\n"),
        text.get_content().replace("\r\n", "\n"),
    )


def hrefs(html: str) -> list[str]:
    return [m.replace("&amp;", "&") for m in re.findall(r'<a\b[^>]*\bhref="([^"]*)"', html)]


def test_it_sends_from_the_tenant_to_the_contact_with_bulk_mail_headers(
    mail_sink: MailSink, acme: Any, ann: Contact, settings: Any
) -> None:
    settings.SITE_URL = "https://mail.wayfarer.example"
    delivery = decide(acme, ann)

    message = send_one(mail_sink, delivery)

    assert message["From"] == "Acme Shop <shop@acme.example>"
    assert message["Reply-To"] == "care@acme.example"
    assert message["To"] == "ann@example.com"
    assert message["Subject"] == "Welcome, Ann"
    # At the sender's domain, as mail clients do (issue 18: a Message-ID at SITE_URL's host was
    # an IP address in the demo, which spam filters score).
    assert message["Message-ID"] == f"<{delivery.public_id}@acme.example>"
    assert delivery.provider_id == message["Message-ID"]
    # The time zone is known: UTC is "+0000"; "-0000" would say "unknown" (RFC 5322 §3.3).
    assert message["Date"].endswith(" +0000")
    assert message["List-Unsubscribe"] == f"<{links.unsubscribe_url(delivery)}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.get_content_type() == "multipart/alternative"


def test_it_inlines_css_and_keeps_media_queries(
    mail_sink: MailSink, acme: Any, ann: Contact
) -> None:
    html, _ = parts(send_one(mail_sink, decide(acme, ann)))

    assert '<p style="color: #123456;">Hi Ann!</p>' in html
    assert 'style="background: #ff6600;padding: 8px;"' in html.replace("; ", ";")
    assert re.search(r"<style>\s*@media \(max-width: 600px\)", html)
    assert "p { color: #123456; }" not in html  # inlined, not left in the <style>


def test_it_puts_the_preheader_first_and_hidden(
    mail_sink: MailSink, acme: Any, ann: Contact
) -> None:
    html, text = parts(send_one(mail_sink, decide(acme, ann)))

    body = html[html.index("<body>") + len("<body>") :].lstrip()
    assert body.startswith('<div style="display:none;')
    assert "Your first order ships free" in body[: body.index("</div>")]
    assert "Your first order ships free" not in text
    # Not hidden by a tiny font, which spam filters read as invisible text meant to fool them.
    assert "font-size" not in body[: body.index(">")]


def test_it_tracks_web_links_with_signed_redirects(
    mail_sink: MailSink, acme: Any, ann: Contact, client: Any
) -> None:
    delivery = decide(acme, ann)
    html, _ = parts(send_one(mail_sink, delivery))
    welcome = f"https://shop.example/welcome?utm=mail&ref={ann.public_id}"

    found = hrefs(html)

    assert found[3:] == [
        "mailto:help@acme.example",
        "#top",
        links.unsubscribe_url(delivery),
        links.preferences_url(delivery),
    ]
    tracked = found[:3]
    assert tracked[0] == tracked[1] == links.click_url(delivery, welcome)
    assert tracked[2] == links.click_url(delivery, "http://blog.example/post")
    for url, original in zip(tracked[1:], (welcome, "http://blog.example/post"), strict=True):
        parsed = urlsplit(url)
        token = parsed.path.rstrip("/").rsplit("/", 1)[1]
        query = parse_qs(parsed.query)
        assert query["u"] == [original]
        assert links.url_is_signed(token, original, query["s"][0])
        assert links.delivery_public_id(token) == delivery.public_id
        response = client.get(f"{parsed.path}?{parsed.query}")
        assert response.status_code == 302
        assert response["Location"] == original


def test_it_adds_an_open_pixel_before_the_end_of_the_body(
    mail_sink: MailSink, acme: Any, ann: Contact, client: Any
) -> None:
    delivery = decide(acme, ann)
    html, _ = parts(send_one(mail_sink, delivery))

    pixel = re.search(r'<img src="([^"]+)" width="1" height="1" alt=""[^>]*>\s*</body>', html)

    assert pixel is not None
    assert pixel.group(1) == links.open_url(delivery)
    response = client.get(urlsplit(pixel.group(1)).path)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"


def test_its_text_part_is_the_final_html_as_text(
    mail_sink: MailSink, acme: Any, ann: Contact
) -> None:
    delivery = decide(acme, ann)
    html, text = parts(send_one(mail_sink, delivery))
    welcome = links.click_url(
        delivery, f"https://shop.example/welcome?utm=mail&ref={ann.public_id}"
    )

    assert text == html_to_text(html)
    assert text.startswith("Hi Ann!\n\n")
    assert f"Visit the shop ({welcome})" in text
    assert f"Again ({welcome})" in text
    assert f"our blog ({links.click_url(delivery, 'http://blog.example/post')})" in text
    assert f"Unsubscribe ({links.unsubscribe_url(delivery)})" in text
    assert "help@acme.example top" in text


def test_it_falls_back_to_the_site_sender_without_a_reply_to(
    mail_sink: MailSink, world: Any, settings: Any
) -> None:
    settings.DEFAULT_FROM_EMAIL = "Wayfarer <noreply@wayfarer.example>"
    contact = Contact.objects.create(tenant=world.globex, email="gus@example.com")

    message = send_one(mail_sink, decide(world.globex, contact, html="<p>Hi</p>"))

    assert message["From"] == "Wayfarer <noreply@wayfarer.example>"
    assert message["Reply-To"] is None


def test_a_message_id_is_never_at_an_ip_address(
    mail_sink: MailSink, world: Any, settings: Any
) -> None:
    # The demo is served at http://127.0.0.1:8000: a Message-ID at that IP is what SpamAssassin's
    # FONT_INVIS_MSGID holds against a mail. The sender's domain is used instead…
    settings.SITE_URL = "http://127.0.0.1:8000"
    settings.DEFAULT_FROM_EMAIL = "Demo <demo@shop.example>"
    contact = Contact.objects.create(tenant=world.globex, email="gus@example.com")

    message = send_one(mail_sink, decide(world.globex, contact, html="<p>Hi</p>"))

    assert message["Message-ID"].endswith("@shop.example>")
    # …and with no usable sender domain either, a reserved name rather than the IP.
    assert mail._domain("noreply") == "wayfarer.invalid"


def test_it_tells_an_esp_which_delivery_and_tenant(acme: Any, ann: Contact) -> None:
    delivery = decide(acme, ann)
    rendered = RenderedEmail(subject="S", preheader="", html="<p>x</p>", text="x\n")

    message = email_build(delivery=delivery, rendered=rendered)

    assert message.metadata == {"delivery": str(delivery.public_id), "tenant": "acme"}
    assert message.tags == ["journey"]


def test_a_test_send_is_marked_and_untracked(mail_sink: MailSink, acme: Any) -> None:
    rendered = RenderedEmail(
        subject="Welcome, Ann",
        preheader="Ships free",
        html='<html><body><p><a href="https://shop.example/">Shop</a></p></body></html>',
        text="Shop (https://shop.example/)\n",
    )

    email_build(delivery=None, rendered=rendered, tenant=acme, to="dave@example.com").send()

    [received] = mail_sink.wait_for(1)
    message = received.message
    html, text = parts(message)
    assert received.rcpt_tos == ["dave@example.com"]
    assert message["Subject"] == "[Test] Welcome, Ann"
    assert message["From"] == "Acme Shop <shop@acme.example>"
    assert message["List-Unsubscribe"] is None
    assert message["List-Unsubscribe-Post"] is None
    assert re.fullmatch(r"<test-[0-9a-f]{32}@[^>]+>", message["Message-ID"])
    assert hrefs(html) == ["https://shop.example/"]
    assert "<img" not in html
    assert text == "Shop (https://shop.example/)\n"


def test_it_needs_somewhere_to_send_a_test(acme: Any) -> None:
    rendered = RenderedEmail(subject="S", preheader="", html="<p>x</p>", text="x\n")

    with pytest.raises(ValueError, match="an address to send to"):
        email_build(delivery=None, rendered=rendered, tenant=acme)


def test_it_encodes_non_ascii_names_and_keeps_list_unsubscribe_one_readable_line(
    mail_sink: MailSink, acme: Any, settings: Any
) -> None:
    settings.SITE_URL = "https://mail.wayfarer.example"
    sender_identity_update(tenant=acme, sender_name="Café Zoë")
    zoe = Contact.objects.create(tenant=acme, email="zoe@example.com", first_name="Zoë")
    delivery = decide(acme, zoe, html="<p>Grüße, {{ contact.first_name }} €</p>")

    message = send_one(mail_sink, delivery)

    [received] = mail_sink.received()
    assert message["From"] == "Café Zoë <shop@acme.example>"
    assert message["Subject"] == "Welcome, Zoë"
    assert b"\r\nSubject: =?utf-8?" in received.data  # RFC 2047, not raw UTF-8
    # Not folded and not an encoded word: mailbox providers read the URL as it is.
    line = f"\r\nList-Unsubscribe: <{links.unsubscribe_url(delivery)}>\r\n".encode()
    assert line in received.data
    assert max(len(raw) for raw in received.data.split(b"\r\n")) <= 998
    assert "Grüße, Zoë €" in parts(message)[0]


def test_the_smtp_bytes_are_the_same_message_as_djangos_and_safe_for_data(
    acme: Any, ann: Contact
) -> None:
    sender_identity_update(tenant=acme, sender_name="Café Zoë, Ltd")
    delivery = decide(acme, ann)
    delivery = Delivery.objects.select_related("tenant", "contact").get(pk=delivery.pk)
    long_subject = "A subject long enough to be folded " * 4 + "— and not ASCII"
    rendered = RenderedEmail(
        subject=long_subject,
        preheader="",
        html="<p>First line</p>\n.<p>a line that starts with a dot</p>\r\n" + "<p>x</p>" * 60,
        text=".hidden dot\nline two\r\nline three " + "y" * 200,
    )
    message = email_build(delivery=delivery, rendered=rendered)

    data = message.smtp_data()

    assert data is not None and data.endswith(b"\r\n")
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF line ends only
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))
    lines = data.split(b"\r\n")
    assert all(line == b"." or line.startswith(b"..") for line in lines if line.startswith(b"."))
    # Undo SMTP's dot-stuffing, as the server does, and compare with Django's message.
    wire = email.message_from_bytes(data.replace(b"\r\n..", b"\r\n."), policy=email.policy.default)
    django = email.message_from_bytes(message.message().as_bytes(), policy=email.policy.default)
    for name in ("Subject", "From", "To", "Reply-To", "Message-ID", "List-Unsubscribe"):
        assert wire[name] == django[name], name
    assert wire["Subject"] == long_subject
    assert wire["From"] == '"Café Zoë, Ltd" <shop@acme.example>'
    assert parts(wire) == parts(django)
    html, text = parts(wire)
    assert ".<p>a line that starts with a dot</p>" in html
    assert text.startswith(".hidden dot\nline two\nline three yyy")
