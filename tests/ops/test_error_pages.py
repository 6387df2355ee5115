"""The server-error page, which must not fail itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.staticfiles.storage import staticfiles_storage
from django.test import Client

MANIFEST_STORAGE = "whitenoise.storage.CompressedManifestStaticFilesStorage"


def crash(*args: object, **kwargs: object) -> None:
    raise RuntimeError("boom")


@pytest.fixture
def manifest_storage_without_manifest(settings, tmp_path: Path) -> None:
    """Production's static storage before collectstatic has run: `{% static %}` raises."""
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {**settings.STORAGES, "staticfiles": {"BACKEND": MANIFEST_STORAGE}}
    with pytest.raises(ValueError, match="Missing staticfiles manifest entry"):
        staticfiles_storage.url("css/wayfarer.css")


@pytest.mark.django_db
def test_it_apologises_for_a_crash_even_without_collected_static_files(
    manifest_storage_without_manifest: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ops.views.health_report", crash)  # any view that raises will do

    response = Client(raise_request_exception=False).get("/healthz")

    assert response.status_code == 500
    page = response.content.decode()
    assert "Something went wrong" in page
    assert "please try again in a moment" in page
    # Self-contained: nothing else to fetch, so it looks right whatever is broken.
    assert "<style>" in page
    assert "<link" not in page and "/static/" not in page


def test_a_missing_page_inside_a_team_keeps_the_team(login, world) -> None:
    # Issue 18 item 8: the in-app 404 lost the team (sidebar, switcher, the way back).
    page = login(world.bob).get("/t/acme/no-such-page/")
    assert page.status_code == 404
    html = page.content.decode()
    assert "Page not found" in html
    assert 'aria-label="Main"' in html  # the team's sidebar
    assert "Back to Acme's dashboard" in html and 'href="/t/acme/"' in html


def test_a_missing_page_of_another_team_shows_nothing_of_it(login, world) -> None:
    html = login(world.bob).get("/t/globex/no-such-page/").content.decode()
    assert "Globex" not in html and 'aria-label="Main"' not in html
