"""Wayfarer settings: everything comes from the environment (see .env.example).

The defaults give the embedded demo that `make run` starts on a laptop: SQLite, a file-system
Celery broker and mail written to files, all under `var/`. Production sets DATABASE_URL,
CELERY_BROKER_URL, EMAIL_URL, SECRET_KEY and ALLOWED_HOSTS.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env")  # optional; real environment variables win

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, *, default: bool) -> bool:
    """A boolean variable; a value that is neither true nor false stops start-up."""
    raw = env.str(name, default=str(default)).strip().lower()
    if raw not in _TRUE | _FALSE:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true or false).")
    return raw in _TRUE


VAR_DIR = Path(env.str("WAYFARER_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env_bool("DEBUG", default=False)


def _secret_key() -> str:
    """SECRET_KEY from the environment, or one generated once and kept in var/ for the demo."""
    key = env.str("SECRET_KEY", default="")
    if key:
        if len(key) < 32:
            raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long.")
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Absolute base URL used in links that leave the request cycle (emails, push payloads).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    # Index expressions with an operator class (OpClass) need it; harmless on SQLite.
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_celery_beat",
    # Wayfarer apps, lowest layer first (imports only point up this list; see docs/architecture.md).
    "core",
    "accounts",
    "tenants",
    "audience",
    "segments.apps.SegmentsConfig",
    "messaging.apps.MessagingConfig",
    "anymail",
    "ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "tenants.middleware.TenantMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "tenants.context_processors.tenant_navigation",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------------
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'wayfarer.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file-backed test database, so that a Celery worker started by an e2e test sees it; one
    # per test process, so that two test runs on one machine cannot trample each other.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test_wayfarer_{os.getpid()}.sqlite3")}
    # SQLite has one writer at a time; the demo's web, worker and beat processes take turns:
    # - WAL: readers never wait for the writer, nor it for them;
    # - IMMEDIATE: a transaction takes the write lock when it begins, so it waits its turn
    #   there (the busy timeout applies) rather than failing at once with "database is locked"
    #   when a read inside it turns into a write;
    # - timeout: how long a writer waits for the lock (Python's default, 5 s, was too short
    #   while a big import ran; the import now commits every half second: audience/csv_io.py);
    # - synchronous=NORMAL: in WAL mode this is still safe against a crash of any process (only
    #   a power cut may lose the last commits), and commits stop waiting for the disk.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": env.int("SQLITE_BUSY_TIMEOUT", default=20),
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    # One test database per test process here too, so two runs on one server never collide.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}
    # Django's own cursors bind on the client side and never prepare; the ingestion hot path
    # (audience/bulk.py) uses server-side cursors whose statements are the same for every batch,
    # so they are prepared (Django's default, None, would forbid it). Planned afresh for each
    # execution all the same: a generic plan made while a table was small (a new installation
    # filling up) would keep scanning it whole long after it has grown.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    options["prepare_threshold"] = 5
    # JIT compiling pays off only for long analytical queries; for a segment count it added
    # over a second of compilation to half a second of work (bench/segments.py). Segment rules
    # negate large sets ("did not order"), which PostgreSQL runs as NOT (id IN (subquery)): it
    # hashes the subquery once if it fits in work_mem (times hash_mem_multiplier, 2) and else
    # rescans it for every contact — seconds become hours at a million contacts. 64 MB holds a
    # few million contact ids; queries that do not need the memory do not take it.
    server_settings = "-c plan_cache_mode=force_custom_plan -c jit=off -c work_mem=64MB"
    options["options"] = f"{options.get('options', '')} {server_settings}".strip()
    if env_bool("DATABASE_POOL", default=False):
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = True
# Reuse server connections across requests (opening one costs more than a whole ingest call);
# SQLite files need no connection reuse.
_sqlite = DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0 if _sqlite else 60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = not _sqlite
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Security --------------------------------------------------------------------------------
SECURE_COOKIES = env_bool("SECURE_COOKIES", default=False)  # true behind HTTPS in production
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
SESSION_COOKIE_HTTPONLY = True
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
if env_bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- I18n / time -----------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"  # stored and computed in UTC; local rules use the contact's or tenant's zone
USE_I18N = True
USE_TZ = True

# --- Static files ----------------------------------------------------------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"

# --- Email -----------------------------------------------------------------------------------
if env.str("EMAIL_URL", default=""):
    # smtp://user:pass@host:587 (smtp+tls://, smtp+ssl://), consolemail://, …
    globals().update(env.email_url("EMAIL_URL"))
else:
    # The demo default: every message is written as a file a user can open.
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = str(VAR_DIR / "mail")
if env.str("EMAIL_BACKEND", default=""):
    # Any ESP through django-anymail, e.g. anymail.backends.postmark.EmailBackend; its settings
    # come from ANYMAIL_* variables (ANYMAIL_POSTMARK_SERVER_TOKEN=… becomes POSTMARK_SERVER_TOKEN).
    EMAIL_BACKEND = env.str("EMAIL_BACKEND")
ANYMAIL = {
    name.removeprefix("ANYMAIL_"): value
    for name, value in os.environ.items()
    if name.startswith("ANYMAIL_")
}
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=30)
# A claimed message whose worker went silent this long is settled by recovery (messaging/outbox.py).
MESSAGING_LEASE_SECONDS = env.int("MESSAGING_LEASE_SECONDS", default=300)
# Messages a sender sends at once: its SMTP connections, its requests open to each push service.
MESSAGING_SMTP_CONNECTIONS = env.int("MESSAGING_SMTP_CONNECTIONS", default=8)
MESSAGING_PUSH_CONNECTIONS = env.int("MESSAGING_PUSH_CONNECTIONS", default=8)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Wayfarer <wayfarer@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery ----------------------------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or "filesystem://localhost//"
if CELERY_BROKER_URL.startswith("filesystem://"):
    _broker_dir = VAR_DIR / "celery"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        # Exchange tables; kombu's default is ./control in whatever directory a process runs.
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
        "polling_interval": 0.2,
        # Messages a worker took, kept until it acknowledges them (ops/broker.py, the transport
        # that config/celery.py gives to filesystem:// URLs).
        "claimed_folder": str(_broker_dir / "claimed"),
    }
    for _folder in ("queue", "processed", "control", "claimed"):
        (_broker_dir / _folder).mkdir(parents=True, exist_ok=True)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "ops.scheduler.HeartbeatDatabaseScheduler"
# How old the last beat tick / worker heartbeat may be before /healthz calls it stale.
HEALTH_STALE_AFTER_SECONDS = env.int("HEALTH_STALE_AFTER_SECONDS", default=90)

# --- REST API --------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.authentication.SecretKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.authentication.HasTenantKey"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "EXCEPTION_HANDLER": "core.api_errors.exception_handler",
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Wayfarer API",
    "DESCRIPTION": "REST API of Wayfarer. Authenticate with a secret API key: "
    "`Authorization: Bearer wf_sk_…`.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"ConsentEnum": "audience.models.Consent"},
    # The schema and its docs are public; the endpoints they describe are not.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}

# --- Logging ---------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
