"""Configuration comes from the environment and a bad value stops start-up with a clear message."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def start(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env.update(WAYFARER_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings")
    env.update(overrides)
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.DATABASES['default']['ENGINE'], s.CELERY_BROKER_URL, s.EMAIL_BACKEND, s.DEBUG)"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_it_defaults_to_the_embedded_demo(tmp_path: Path) -> None:
    result = start(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.sqlite3",
        "filesystem://localhost//",
        "django.core.mail.backends.filebased.EmailBackend",
        "False",
    ]
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "celery" / "queue").is_dir()


def test_it_takes_production_services_from_the_environment(tmp_path: Path) -> None:
    result = start(
        tmp_path,
        DATABASE_URL="postgres://u:p@127.0.0.1:5432/wf",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
        EMAIL_URL="smtp+tls://u:p@127.0.0.1:587",
        SECRET_KEY="s" * 40,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[:3] == [
        "tenants.postgresql",
        "redis://127.0.0.1:6379/0",
        "django.core.mail.backends.smtp.EmailBackend",
    ]
    assert not (tmp_path / "secret_key").exists()


def _site_url(tmp_path: Path, **overrides: str) -> str:
    env = {k: v for k, v in os.environ.items() if k not in {"SITE_URL", "PORT"}}
    env.update(WAYFARER_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="config.settings")
    env.update(overrides)
    code = (
        "import django; django.setup(); from django.conf import settings; print(settings.SITE_URL)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_links_follow_the_port_make_run_serves_on(tmp_path: Path) -> None:
    # `make run PORT=8100` gives every process it starts PORT=8100: the links in the mail its
    # worker sends must lead there, not to :8000.
    assert _site_url(tmp_path) == "http://127.0.0.1:8000"
    assert _site_url(tmp_path, PORT="8100") == "http://127.0.0.1:8100"
    # A deployment says where it is served; a trailing slash is forgiven.
    assert _site_url(tmp_path, PORT="8100", SITE_URL="https://wf.example/") == "https://wf.example"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("PORT", "eighty", "PORT='eighty' is not a port number (1-65535)."),
        ("DEBUG", "maybe", "DEBUG='maybe' is not a boolean"),
        ("SECRET_KEY", "short", "SECRET_KEY must be at least 32 characters long"),
        ("EMAIL_URL", "pigeon://coop", "Invalid email schema pigeon"),
    ],
)
def test_it_fails_loudly_on_bad_values(tmp_path: Path, name: str, value: str, message: str) -> None:
    result = start(tmp_path, **{name: value})
    assert result.returncode != 0
    assert message in result.stderr
