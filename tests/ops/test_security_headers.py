"""The Content-Security-Policy on what the product serves (the browser proof is
tests/e2e/test_csp.py, which crawls every page in Chromium)."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from ops.demo import seed_demo


def directives(header: str) -> dict[str, list[str]]:
    parts = (part.strip().split() for part in header.split(";") if part.strip())
    return {name: values for name, *values in parts}


@pytest.mark.django_db
def test_pages_run_only_their_own_scripts(world, login) -> None:
    client = login(world.alice)

    response = client.get(f"/t/{world.acme.slug}/")

    policy = directives(response.headers["Content-Security-Policy"])
    assert policy["script-src"][0] == "'self'"
    assert re.fullmatch(r"'nonce-[\w+/=-]+'", policy["script-src"][1])
    assert "'unsafe-inline'" not in policy["script-src"]
    assert "'unsafe-eval'" not in policy["script-src"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    # No inline handler left in the page: they would no longer run.
    assert not re.search(rb"\son[a-z]+=", response.content)


@pytest.mark.django_db
def test_the_demo_shop_carries_the_nonce_on_its_inline_scripts(client: Client) -> None:
    tenant = seed_demo()
    client.force_login(tenant.memberships.get().user)

    response = client.post(f"/t/{tenant.slug}/demo-shop/")

    nonce = re.search(r"'nonce-([^']+)'", response.headers["Content-Security-Policy"])
    assert nonce
    scripts = re.findall(rb"<script([^>]*)>", response.content)
    inline = [attrs for attrs in scripts if b"src=" not in attrs and b"json" not in attrs]
    assert inline, "the shop runs inline scripts"
    assert all(f'nonce="{nonce.group(1)}"'.encode() in attrs for attrs in inline)


def test_the_error_page_may_style_itself_and_run_nothing(rf) -> None:
    from ops.views import error_500

    response = error_500(rf.get("/t/acme/"))

    # The policy goes on in the middleware; the view declares its own.
    policy = response._csp_config  # type: ignore[attr-defined]
    assert policy["style-src"] == ["'unsafe-inline'"]
    assert policy["default-src"] == ["'none'"]
    assert "script-src" not in policy
