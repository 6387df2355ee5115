"""Liquid in messages: escaping, lenient undefined, the sandbox's limits failing fast with the
field named, Python internals out of reach, push rendering, and what saving a template checks."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from messaging import services
from messaging.context import sample_context
from messaging.models import Channel, SenderIdentity, Template
from messaging.rendering import (
    RenderedEmail,
    RenderedPush,
    TemplateError,
    render,
    render_email,
    render_push,
    template_errors,
)
from tenants.models import Tenant

NESTED_LOOPS = "{% for a in (1..1000000) %}{% for b in (1..1000000) %}x{% endfor %}{% endfor %}"


@pytest.fixture
def tenant() -> Tenant:
    # Rendering and validation read no database: an unsaved tenant is enough.
    return Tenant(name="Acme", slug="acme", timezone="Europe/Berlin")


@pytest.fixture
def context(tenant: Tenant) -> dict[str, Any]:
    return sample_context(tenant, sender=SenderIdentity(tenant=tenant, sender_name="Acme Shop"))


def email(html: str = "<p>Hi</p>", subject: str = "Hello", preheader: str = "") -> dict[str, Any]:
    return {"channel": Channel.EMAIL, "subject": subject, "preheader": preheader, "html": html}


def push(**fields: Any) -> dict[str, Any]:
    return {
        "channel": Channel.PUSH,
        "title": "Hi",
        "body": "",
        "icon_url": "",
        "image_url": "",
        "target_url": "",
        "actions": [],
        **fields,
    }


def email_template(tenant: Tenant, **fields: Any) -> Template:
    return Template(
        tenant=tenant,
        name="t",
        channel=Channel.EMAIL,
        **{"subject": "Hello", "html": "<p>Hi</p>", **fields},
    )


def push_template(tenant: Tenant, **fields: Any) -> Template:
    return Template(
        tenant=tenant, name="p", channel=Channel.PUSH, **{"title": "Hi", "body": "B", **fields}
    )


def rendering_error(content: dict[str, Any], context: dict[str, Any]) -> TemplateError:
    with pytest.raises(TemplateError) as caught:
        render(content, context)
    return caught.value


# --- Rendering ---------------------------------------------------------------------------------


def test_it_personalises_every_email_field(context: dict[str, Any]) -> None:
    rendered = render_email(
        email(
            subject="{{ contact.first_name }}, {{ cart.count }} items wait",
            preheader="Total {{ cart.total | money: cart.currency }}",
            html="<p>Hi {{ contact.name }} of {{ tenant.name }}</p>",
        ),
        context,
    )

    assert rendered == RenderedEmail(
        subject="Ada, 4 items wait",
        preheader="Total €247.90",
        html="<p>Hi Ada Lovelace of Acme</p>",
        text="Hi Ada Lovelace of Acme\n",
    )


def test_it_escapes_values_in_html_but_not_in_the_subject(context: dict[str, Any]) -> None:
    context["contact"]["first_name"] = "<script>alert(1)</script> & Co"

    rendered = render_email(
        email(
            subject="Hi {{ contact.first_name }}",
            html='<p title="{{ contact.first_name }}">{{ contact.first_name | upcase }}</p>',
        ),
        context,
    )

    assert rendered.subject == "Hi <script>alert(1)</script> & Co"
    assert "<script>" not in rendered.html
    assert rendered.html == (
        '<p title="&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co">'
        "&lt;SCRIPT&gt;ALERT(1)&lt;/SCRIPT&gt; &amp; CO</p>"
    )


def test_it_renders_a_missing_value_as_nothing_at_send_time(context: dict[str, Any]) -> None:
    context["contact"]["first_name"] = ""
    del context["contact"]["attributes"]

    rendered = render_email(
        email(
            subject="Hi {{ contact.first_name }}{{ contact.nickname }}!",
            html="<p>{{ contact.attributes.plan }}{{ nothing.at.all }}|"
            "{{ contact.first_name | default: 'friend' }}</p>",
        ),
        context,
    )

    assert rendered.subject == "Hi !"
    assert rendered.html == "<p>|friend</p>"


def test_it_keeps_subject_and_preheader_on_one_line(context: dict[str, Any]) -> None:
    context["contact"]["first_name"] = "Ada\r\nBcc: someone@example.com"

    rendered = render_email(
        email(subject="Hi {{ contact.first_name }}", preheader="\n{{ contact.first_name }}\n"),
        context,
    )

    assert rendered.subject == "Hi Ada Bcc: someone@example.com"
    assert rendered.preheader == "Ada Bcc: someone@example.com"


def test_it_loops_over_the_cart_with_prices(context: dict[str, Any]) -> None:
    html = (
        "<ul>{% for item in cart.items %}<li>{{ item.quantity }} x {{ item.name }}: "
        "{{ item.line_total | money: item.currency }}</li>{% endfor %}</ul>"
    )

    rendered = render_email(email(html=html), context)

    assert rendered.text == (
        "- 1 x Trail Running Shoes: €89.90\n- 2 x Merino Wool Socks: €29.00\n"
        "- 1 x Rain Jacket: €129.00\n"
    )


def test_it_renders_push_fields_as_text_and_its_actions(context: dict[str, Any]) -> None:
    rendered = render_push(
        push(
            title="{{ contact.first_name }} & your cart",
            body="{{ cart.items[0].name }} is waiting",
            icon_url="https://shop.example/icon.png",
            image_url="{{ cart.items[0].image_url }}",
            target_url=" {{ cart.items[0].url }} ",
            actions=[
                {
                    "action": "buy",
                    "title": "Buy {{ cart.items[0].name }}",
                    "url": "{{ cart.items[0].url }}",
                },
                {"title": "Later", "url": "https://shop.example/later"},
            ],
        ),
        context,
    )

    assert rendered == RenderedPush(
        title="Ada & your cart",
        body="Trail Running Shoes is waiting",
        icon_url="https://shop.example/icon.png",
        image_url="https://shop.example/images/sample-1.jpg",
        target_url="https://shop.example/products/sample-1",
        actions=[
            {
                "action": "buy",
                "title": "Buy Trail Running Shoes",
                "url": "https://shop.example/products/sample-1",
            },
            {"action": "action-2", "title": "Later", "url": "https://shop.example/later"},
        ],
    )


def test_it_renders_by_the_content_channel(context: dict[str, Any]) -> None:
    assert isinstance(render(email(), context), RenderedEmail)
    assert isinstance(render(push(), context), RenderedPush)


def test_it_reuses_a_parsed_template_for_the_same_source(context: dict[str, Any]) -> None:
    from messaging.rendering import PARSE_CACHE

    PARSE_CACHE.clear()
    for name in ("Ada", "Grace", "Edsger"):
        context["contact"]["first_name"] = name
        assert render_email(email(html="<p>{{ contact.first_name }}</p>"), context).html == (
            f"<p>{name}</p>"
        )

    assert PARSE_CACHE.misses == 1
    assert PARSE_CACHE.hits == 2


# --- The sandbox -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    [
        "contact.__class__",
        "contact['__class__']",
        "contact.__class__.__mro__",
        "contact.email.__class__",
        "contact.email.upper",
        "contact.items",
        "contact.keys",
        "cart.items.__len__",
        "tenant.__dict__",
        "now.__globals__",
    ],
)
def test_it_never_reaches_python_internals(context: dict[str, Any], expression: str) -> None:
    rendered = render_email(email(html=f"[{{{{ {expression} }}}}]"), context)

    assert rendered.html == "[]"


@pytest.mark.parametrize(
    "html",
    [
        "{{ 'x' | attr: '__class__' }}",
        "{{ contact | attr: 'email' }}",
        "{{ contact.email | getattr: '__class__' }}",
        "{% include 'secrets' %}",
        "{% render 'secrets' %}",
    ],
)
def test_it_has_no_way_out_through_filters_or_partials(
    context: dict[str, Any], tenant: Tenant, html: str
) -> None:
    assert rendering_error(email(html=html), context).field == "html"
    assert template_errors(email_template(tenant, html=html))["html"]


def test_it_stops_nested_million_loops_at_once_naming_the_field(context: dict[str, Any]) -> None:
    started = time.thread_time()  # CPU: a loaded machine stretches the wall clock
    error = rendering_error(email(html=f"<p>Hi</p>\n{NESTED_LOOPS}"), context)

    assert time.thread_time() - started < 1
    assert error.field == "html"
    assert error.message == "html, line 2: loops would repeat more than 10,000 times"


@pytest.mark.parametrize(
    "bomb",
    [
        # Doubling a string by assignment.
        "{% assign s = 'xxxxxxxxxx' %}{% for i in (1..40) %}{% assign s = s | append: s %}"
        "{% endfor %}{{ s }}",
        # One replace squares its input.
        "{% assign s = 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' %}{% assign s = s | replace: 'x', s %}"
        "{% assign s = s | replace: 'x', s %}{{ s }}",
        # A huge range joined in one filter call.
        "{{ (1..100000000) | join: ',' }}",
        # A list of references to one big string, joined.
        "{% assign s = 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' | split: '' %}"
        "{% assign big = s | join: '' | replace: 'x', 'yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy' %}"
        "{% for i in (1..10000) %}{{ big }}{{ big }}{{ big }}{% endfor %}",
        # Output alone.
        "{% for i in (1..10000) %}{% for j in (1..1) %}{{ 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
        "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' }}{% endfor %}"
        "{% endfor %}",
    ],
)
def test_it_stops_size_bombs_fast_naming_the_field(context: dict[str, Any], bomb: str) -> None:
    started = time.thread_time()
    error = rendering_error(email(html=bomb), context)

    assert time.thread_time() - started < 1
    assert error.field == "html"
    assert error.message.startswith("html, line 1: ")


def test_it_limits_short_fields_to_a_short_output(context: dict[str, Any]) -> None:
    error = rendering_error(
        email(subject="{% for i in (1..2000) %}{{ contact.email }}{% endfor %}"), context
    )

    assert error.field == "subject"
    assert error.message == "subject, line 1: the result would be longer than 10,000 bytes"


def test_it_refuses_a_field_too_long_to_parse_quickly(tenant: Tenant) -> None:
    huge = "<p>plain text</p>" * 40_000

    assert template_errors(email_template(tenant, html=huge)) == {
        "html": ["html: longer than 500,000 characters"]
    }


def test_it_stops_a_render_that_runs_out_of_time(context: dict[str, Any]) -> None:
    # Each loop stays within the iteration limit and outputs nothing: only the clock stops it.
    empty_loops = "{% for i in (1..10000) %}{% if i == 0 %}x{% endif %}{% endfor %}\n" * 400
    # This thread's CPU time, not the wall clock: a loaded machine stretches the wall clock
    # (the deadline is one) but not the work done before the deadline stops it.
    started = time.thread_time()
    error = rendering_error(email(preheader=empty_loops), context)

    assert time.thread_time() - started < 1
    assert error.field == "preheader"
    assert "took longer than 0.25 s to render" in error.message


def test_it_names_a_push_field_that_fails(context: dict[str, Any]) -> None:
    error = rendering_error(push(body="Hi\n{{ contact.first_name | nope }}"), context)

    assert error.field == "body"
    assert error.message == "body, line 2: unknown filter 'nope'"


# --- Saving a template -------------------------------------------------------------------------


def test_it_finds_nothing_wrong_with_a_good_template(tenant: Tenant) -> None:
    template = email_template(
        tenant,
        subject="{{ contact.first_name | default: 'Hello' }}",
        preheader="{{ cart.count }} items",
        html="{% for p in recommendations %}<a href='{{ p.url }}'>{{ p.name }}</a>{% endfor %}",
    )

    assert template_errors(template) == {}


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        (
            {"subject": "Hi {{ contact.first_name"},
            {"subject": ["subject, line 1: expected '}}', found end of file"]},
        ),
        ({"html": "<p>\n\n{% endfor %}</p>"}, {"html": ["html, line 3: unexpected tag 'endfor'"]}),
        ({"html": "<p>{% shout %}</p>"}, {"html": ["html, line 1: unexpected tag 'shout'"]}),
        (
            # Unknown filters are found even in a branch the sample contact would not take.
            {"preheader": "{% if false %}\n{{ contact.name | shout }}{% endif %}"},
            {"preheader": ["preheader, line 2: unknown filter 'shout'"]},
        ),
        (
            {"html": "{% if true %}\n\n{{ contact.__class__.__init__ }}{% endif %}"},
            {
                "html": [
                    "html, line 3: 'contact.__class__.__init__' is not available "
                    "(names starting with _ are private)"
                ]
            },
        ),
        (
            {"html": NESTED_LOOPS},
            {"html": ["html, line 1: loops would repeat more than 10,000 times"]},
        ),
        (
            {"subject": "{{ 10 | divided_by: 0 }}"},
            {"subject": ["subject, line 1: divided_by: can't divide by 0"]},
        ),
        (
            {"subject": "{{ x | nope }}", "html": "{% endif %}"},
            {
                "subject": ["subject, line 1: unknown filter 'nope'"],
                "html": ["html, line 1: unexpected tag 'endif'"],
            },
        ),
    ],
)
def test_it_reports_each_kind_of_error_by_field(
    tenant: Tenant, fields: dict[str, str], errors: dict[str, list[str]]
) -> None:
    assert template_errors(email_template(tenant, **fields)) == errors


def test_it_validates_every_push_field_and_action(tenant: Tenant) -> None:
    template = push_template(
        tenant,
        title="{{ a | nope }}",
        body="{% endfor %}",
        icon_url="{{ b | nope }}",
        image_url="{{ c | nope }}",
        target_url="{{ d | nope }}",
        actions=[
            {"title": "{{ e | nope }}", "url": "https://x.example/"},
            {"title": "T", "url": "{% x %}"},
        ],
    )

    errors = template_errors(template)

    assert set(errors) == {"title", "body", "icon_url", "image_url", "target_url", "actions"}
    assert errors["actions"] == [
        "actions, line 1: unknown filter 'nope'",
        "actions, line 1: unexpected tag 'x'",
    ]


def test_it_requires_push_links_to_be_web_urls_on_the_sample(tenant: Tenant) -> None:
    template = push_template(
        tenant,
        target_url="{{ contact.email }}",
        image_url="javascript:alert(1)",
        actions=[
            {"title": "Open", "url": "{{ unsubscribe_url }}"},
            {"title": "", "url": "https://x.example/"},
        ],
    )

    assert template_errors(template) == {
        "image_url": [
            "image_url: must give an http(s) URL; on the sample contact it gives "
            "“javascript:alert(1)”"
        ],
        "target_url": [
            "target_url: must give an http(s) URL; on the sample contact it gives "
            "“ada.lovelace@example.com”"
        ],
        "actions": [
            "actions[1]: the url must give an http(s) URL; on the sample contact it gives “#”",
            "actions[2]: needs a title",
        ],
    }


def test_it_accepts_push_links_built_from_the_context(tenant: Tenant) -> None:
    template = push_template(
        tenant,
        target_url="{{ recommendations[0].url }}?utm_source=push",
        actions=[{"action": "cart", "title": "Cart", "url": "https://shop.example/cart"}],
    )

    assert template_errors(template) == {}


def test_it_refuses_more_push_actions_than_browsers_show(tenant: Tenant) -> None:
    action = {"title": "A", "url": "https://x.example/"}
    template = push_template(tenant, actions=[action, action, action])

    assert template_errors(template) == {"actions": ["actions: at most 2 (what browsers show)"]}


def test_it_validates_a_template_that_has_no_tenant_yet() -> None:
    template = Template(name="t", channel=Channel.EMAIL, subject="{{ tenant.name }}", html="x")

    assert template_errors(template) == {}
    assert template_errors(Template(channel=Channel.EMAIL, html="{% endif %}")) == {
        "html": ["html, line 1: unexpected tag 'endif'"]
    }


def test_saving_refuses_a_template_that_would_fail_at_send_time(world: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        services.template_save(
            tenant=world.acme,
            name="Bomb",
            channel=Channel.EMAIL,
            subject="Hi",
            html=f"<p>{{{{ contact.__class__ }}}}</p>\n{NESTED_LOOPS}",
        )

    assert caught.value.message_dict == {
        "html": [
            "html, line 1: 'contact.__class__' is not available "
            "(names starting with _ are private)",
        ]
    }
    assert not Template.objects.filter(tenant=world.acme, name="Bomb").exists()


# --- The plain-text part -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<h1>Hi</h1><p>One\n   two</p><div>Three</div>", "Hi\n\nOne two\n\nThree\n"),
        ("<p>a<br>b<br/>c</p><hr><p>d</p>", "a\nb\nc\n\n----------\n\nd\n"),
        ("<ul><li>one</li><li>two</li></ul>", "- one\n- two\n"),
        ("<table><tr><td>Shoes</td><td>€89.90</td></tr></table>", "Shoes €89.90\n"),
        (
            '<p><a href="https://x.example/a?b=1&amp;c=2">Shop</a></p>',
            "Shop (https://x.example/a?b=1&c=2)\n",
        ),
        ("<a href='https://x.example/'>https://x.example/</a>", "https://x.example/\n"),
        (
            '<a href="https://x.example/"><img src="i.png" alt="Our shop"></a>',
            "Our shop (https://x.example/)\n",
        ),
        ('<a href="https://x.example/"><img src="i.png"></a>', "https://x.example/\n"),
        ('<a href="mailto:help@x.example">help@x.example</a>', "help@x.example\n"),
        ('<a href="#top">Top</a> <a href="javascript:x()">JS</a>', "Top JS\n"),
        ("<p>Fish &amp; chips&nbsp;&lt;3 &#8364;5</p>", "Fish & chips <3 €5\n"),
        (
            "<html><head><title>T</title><style>p{color:red}</style></head><body>"
            "<!-- hidden --><script>var a = '<p>no</p>';</script><p>Yes</p></body></html>",
            "Yes\n",
        ),
        (
            '<div style="display: none; max-height:0">Pre <div>nested</div> header</div>'
            "<p>Body</p><span style='DISPLAY:NONE'>x</span><p style=\"color:red\">Red</p>",
            "Body\n\nRed\n",
        ),
        ("<!--[if mso]><p>Outlook</p><![endif]--><p>All</p>", "All\n"),
        ("", ""),
    ],
)
def test_it_makes_readable_text_of_html(html: str, text: str) -> None:
    from messaging.plaintext import html_to_text

    assert html_to_text(html) == text
