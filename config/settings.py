"""Wayfarer settings: everything comes from the environment (see .env.example).

The defaults give the embedded demo that `make run` starts on a laptop: SQLite, a file-system
Celery broker and mail written to files, all under `var/`. Production sets DATABASE_URL,
CELERY_BROKER_URL, EMAIL_URL, SECRET_KEY and ALLOWED_HOSTS.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.csp import CSP

from core import throttle as _throttle

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


def env_port(name: str, *, default: int) -> int:
    raw = env.str(name, default=str(default)).strip()
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a port number (1-65535).")
    return int(raw)


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
# Absolute base URL used in links that leave the request cycle (emails, push payloads). Without
# SITE_URL, the address `make run PORT=…` serves on (its processes all see PORT): a mail sent by the
# worker of `make run PORT=8100` links to :8100. A deployment behind a proxy sets SITE_URL.
SITE_URL = env.str("SITE_URL", default=f"http://127.0.0.1:{env_port('PORT', default=8000)}")
SITE_URL = SITE_URL.rstrip("/")

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
    "journeys.apps.JourneysConfig",
    "campaigns.apps.CampaignsConfig",
    "analytics.apps.AnalyticsConfig",
    "webhooks.apps.WebhooksConfig",
    "personalisation.recommendations.apps.RecommendationsConfig",
    "personalisation.search.apps.SearchConfig",
    "personalisation.placements.apps.PlacementsConfig",
    "personalisation.surveys.apps.SurveysConfig",
    "personalisation.personas.apps.PersonasConfig",
    "anymail",
    "ops",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.csp.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "core.middleware.refuse_nul_in_query",  # 400 at every door, before any filter sees it
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
                "django.template.context_processors.csp",
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
    if env_bool("DATABASE_POOL", default=False):
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = True
# PostgreSQL settings every statement runs with. JIT compiling pays off only for long analytical
# queries; for a segment count it added over a second of compilation to half a second of work
# (bench/segments.py). Segment rules negate large sets ("did not order"), which PostgreSQL runs
# as NOT (id IN (subquery)): it hashes the subquery once if it fits in work_mem (times
# hash_mem_multiplier, 2) and else rescans it for every contact — seconds become hours at a
# million contacts. 64 MB holds a few million contact ids; queries that do not need the memory
# do not take it. Prepared statements are planned afresh for each execution: a generic plan made
# while a table was small (a new installation filling up) would keep scanning it whole long
# after it has grown.
DATABASE_SERVER_SETTINGS = {
    "plan_cache_mode": "force_custom_plan",
    "jit": "off",
    "work_mem": "64MB",
}
# PgBouncer (or any pooler) in transaction pooling between the app and PostgreSQL:
# DATABASE_POOLER=pgbouncer (docs/operations.md, "PgBouncer"). A server connection is then the
# app's for one transaction only, so nothing may live on it longer: no prepared statements, no
# server-side (WITH HOLD) cursors, no session settings — the row-level security scope and
# DATABASE_SERVER_SETTINGS go transaction-locally at the start of each transaction (core/rls.py;
# no startup `options` either, which PgBouncer refuses).
DATABASE_POOLER = env.str("DATABASE_POOLER", default="").strip().lower()
if DATABASE_POOLER in {"", "none"}:
    DATABASE_POOLER = ""
elif DATABASE_POOLER != "pgbouncer":
    raise ImproperlyConfigured(
        f"DATABASE_POOLER={DATABASE_POOLER!r}: use pgbouncer (transaction pooling), or nothing."
    )
elif "postgresql" not in DATABASES["default"]["ENGINE"]:
    raise ImproperlyConfigured("DATABASE_POOLER=pgbouncer needs a PostgreSQL DATABASE_URL.")
if "postgresql" in DATABASES["default"]["ENGINE"]:
    # Django's backend with tenant tables grouped by every selected column: their primary keys
    # hold tenant_id too (tenants/keys.py, tenants/postgresql/base.py).
    DATABASES["default"]["ENGINE"] = "tenants.postgresql"
    options = DATABASES["default"].setdefault("OPTIONS", {})
    if DATABASE_POOLER:
        options["prepare_threshold"] = None  # psycopg then ignores prepare=True too (core/db.py)
        DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
    else:
        # Django's own cursors bind on the client side and never prepare; the ingestion hot path
        # (audience/bulk.py) uses server-side cursors whose statements are the same for every
        # batch, so they are prepared (Django's default, None, would forbid it).
        options["prepare_threshold"] = 5
        server_settings = " ".join(f"-c {k}={v}" for k, v in DATABASE_SERVER_SETTINGS.items())
        options["options"] = f"{options.get('options', '')} {server_settings}".strip()
# Reuse server connections across requests (opening one costs more than a whole ingest call);
# SQLite files need no connection reuse. Behind PgBouncer a kept connection holds no server
# connection between transactions, and still saves a connection set-up per request.
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
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
if env_bool("TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy on every response (Django's own middleware). Scripts run only from this
# origin or with the response's nonce, so an injected <script> or on*= handler does nothing. Style
# attributes stay allowed: an email preview (a srcdoc iframe, which inherits this policy) shows the
# email's own inline styles, as a mail client does. Images may come from any https host: product
# photos and email images live on the tenant's own servers.
SECURE_CSP: dict[str, list[str]] = {
    "default-src": [CSP.SELF],
    "script-src": [CSP.SELF, CSP.NONCE],
    "style-src": [CSP.SELF, CSP.NONCE],
    "style-src-attr": [CSP.UNSAFE_INLINE],
    "img-src": [CSP.SELF, "data:", "https:"],
    "connect-src": [CSP.SELF],
    "object-src": [CSP.NONE],
    "base-uri": [CSP.NONE],
    "form-action": [CSP.SELF],
    "frame-ancestors": [CSP.NONE],
}

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

# --- Event retention ------------------------------------------------------------------------
# How many months of raw events a team keeps when it has not chosen (audience/retention.py): the
# current month and this many before it. Order history, contact profiles and rollups are kept
# beyond it.
WAYFARER_EVENT_RETENTION_MONTHS = env.int("WAYFARER_EVENT_RETENTION_MONTHS", default=25)
# How many days finished outbound webhook messages stay in the log (webhooks.tasks.messages_prune).
WAYFARER_WEBHOOK_LOG_DAYS = env.int("WAYFARER_WEBHOOK_LOG_DAYS", default=30)

# --- Outbound requests ------------------------------------------------------------------------
# URLs requested on a tenant's or visitor's behalf (push endpoints) go only to public https
# addresses (core/outbound.py). true lets tests and local development reach receivers on
# loopback and the private network (and plain http on loopback); /healthz warns while it is on.
WAYFARER_OUTBOUND_ALLOW_PRIVATE = env_bool("WAYFARER_OUTBOUND_ALLOW_PRIVATE", default=False)

# --- Send test limits ------------------------------------------------------------------------
# The editor's "Send test" goes out at once, past the outbox: it has limits of its own
# (messaging/send_test_limits.py), counted in the Django cache.
MESSAGING_SEND_TESTS_PER_USER_HOUR = env.int("MESSAGING_SEND_TESTS_PER_USER_HOUR", default=10)
MESSAGING_SEND_TESTS_PER_TENANT_DAY = env.int("MESSAGING_SEND_TESTS_PER_TENANT_DAY", default=50)

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

# --- Beat leadership -------------------------------------------------------------------------
# One beat dispatches at a time (ops/scheduler.py); another stands by and takes over when the
# leader has not renewed its lease this long.
BEAT_LEASE_SECONDS = env.int("BEAT_LEASE_SECONDS", default=30)

# --- REST API --------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.authentication.SecretKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.authentication.HasTenantKey"],
    "DEFAULT_SCHEMA_CLASS": "core.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # orjson and the storable checks (nesting, NUL, surrogates, numbers): core/parsers.py
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
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
    "ENUM_NAME_OVERRIDES": {
        "ConsentEnum": "audience.models.Consent",
        # Two "channel" choice sets: a message's (email, push) and a survey answer's (+ web).
        "ChannelEnum": "messaging.models.Channel",
        "SurveyAnswerChannelEnum": "personalisation.surveys.models.AnswerChannel",
    },
    # The schema and its docs are public; the endpoints they describe are not.
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
}

# --- Throttling -----------------------------------------------------------------------------
# Limits shared by every web process (core/throttle.py; docs/operations.md, "Rate limits").
# Their counters live in Django's cache: CACHE_URL, else the Redis of CELERY_BROKER_URL, else
# (the embedded demo) files under var/cache. Files rather than the database cache: every
# gunicorn worker sees them, they need no table, and they add no writes to the SQLite file,
# whose single writer lock the demo's imports and drains already contend for.
_cache_url = env.str("CACHE_URL", default="")
if not _cache_url and CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    _cache_url = CELERY_BROKER_URL
if _cache_url:
    CACHES = {"default": environ.Env.cache_url_config(_cache_url)}
    if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
        # A Redis that hangs must not hang requests: limits then let requests through.
        CACHES["default"].setdefault("OPTIONS", {}).update(
            {"socket_connect_timeout": 1, "socket_timeout": 1}
        )
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
            "OPTIONS": {"MAX_ENTRIES": 5000},
        }
    }
CACHES["default"].setdefault("KEY_PREFIX", "wayfarer")

# Rates: "<count>/<period>" with the period s, m, h or d and an optional multiple ("10000/10s"),
# or "off". Sized far above normal traffic; each scope is named in core/throttle.py.
WAYFARER_THROTTLE_RATES = {
    # /v1/* per write key: 1,000 requests/s, counted over 10 s so that bursts pass.
    "tracking": env.str("WAYFARER_THROTTLE_TRACKING", default="10000/10s"),
    # /api/v1/* per secret key: 50 requests/s, counted over 10 s.
    "api": env.str("WAYFARER_THROTTLE_API", default="500/10s"),
    "signup": env.str("WAYFARER_THROTTLE_SIGNUP", default="20/h"),  # per client address
    "password_reset": env.str("WAYFARER_THROTTLE_PASSWORD_RESET", default="5/h"),  # per email
    "password_reset_ip": env.str("WAYFARER_THROTTLE_PASSWORD_RESET_IP", default="20/h"),
    "template_preview": env.str("WAYFARER_THROTTLE_PREVIEW", default="120/m"),  # per user
}
for _scope, _rate in WAYFARER_THROTTLE_RATES.items():
    try:
        _throttle.parse_rate(_rate)
    except ValueError as _exc:
        raise ImproperlyConfigured(f"WAYFARER_THROTTLE_{_scope.upper()}: {_exc}") from None
# Behind reverse proxies, how many of them append to X-Forwarded-For (the client address for
# per-address limits and the login lockout); 0 trusts only the connection's own address.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# Login lockout (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one account, or
# from one address, further attempts are refused until AXES_COOLOFF_TIME has passed since the
# last one. Covers the sign-in page and the admin's. Operators unlock in the admin (Axes, then
# Access attempts) or with `manage.py axes_reset` / `axes_reset_username <email>`.
INSTALLED_APPS += ["axes"]
MIDDLEWARE += ["axes.middleware.AxesMiddleware"]  # last, as axes requires
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses locked-out attempts
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("WAYFARER_LOGIN_FAILURE_LIMIT", default=10)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("WAYFARER_LOGIN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # either one locks
AXES_RESET_ON_SUCCESS = True
AXES_USERNAME_CALLABLE = "accounts.lockout.lockout_username"
AXES_CLIENT_IP_CALLABLE = "core.throttle.client_ip"
AXES_LOCKOUT_CALLABLE = "accounts.lockout.locked_out"
# The REST API's limit per secret key, through DRF's throttling (answered 429 + Retry-After).
REST_FRAMEWORK["DEFAULT_THROTTLE_CLASSES"] = ["tenants.authentication.ApiKeyThrottle"]

# --- Logging ---------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # Axes logs every sign-in at INFO; its warnings (failures, lockouts) are what matter.
        "axes": {"level": "WARNING"},
    },
}
