"""Settings shared by every environment. Everything a deployment changes comes from the
environment (django-environ); secrets have no default outside local/test settings."""

import datetime as dt
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False) if (BASE_DIR / ".env").exists() else None

SECRET_KEY = env("SECRET_KEY")
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

INSTALLED_APPS = [
    # First: its templates override the admin's own (index, change forms of the work queues).
    "backoffice",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",  # API tokens, stored hashed and expiring (common/tokens.py)
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and ReDoc served by us, no CDN
    "django_q",
    "axes",
    "common",
    "suppliers",
    "reservations",
    "payments",
    "outbox",
    "ledgers",
]

MIDDLEWARE = [
    "common.middleware.RequestIdMiddleware",
    "common.middleware.AccessLogMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files from the web process itself (compressed, cache-busted names in production).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "common.middleware.ProblemDetailsMiddleware",
    # Last, as django-axes requires: turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
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
            ],
        },
    },
]

# --- Database ------------------------------------------------------------------------------
# No ATOMIC_REQUESTS: every service owns its transaction (style.md).
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DB_CONNECT_TIMEOUT_SECONDS = env.int("DB_CONNECT_TIMEOUT_SECONDS", default=5)
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    # Django's backend with one round trip less per transaction (common/mysql/base.py).
    DATABASES["default"]["ENGINE"] = "common.mysql"
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "charset": "utf8mb4",
            "isolation_level": "read committed",
            "connect_timeout": DB_CONNECT_TIMEOUT_SECONDS,
            # A statement waiting on a row lock gives up quickly (error 1205) instead of
            # holding a web worker for the server default of 50 s; retry_on_deadlock re-runs it.
            "init_command": "SET SESSION innodb_lock_wait_timeout = %d"
            % env.int("DB_LOCK_WAIT_TIMEOUT_SECONDS", default=10),
        }
    )
    DATABASES["default"]["TEST"] = {"CHARSET": "utf8mb4", "COLLATION": "utf8mb4_unicode_ci"}
elif DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The zero-setup demo runs web and workers as separate processes on one file.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"timeout": 20, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# django-q2 declares a partial index; MariaDB ignores the condition and the index still works.
SILENCED_SYSTEM_CHECKS = ["models.W037"]

REDIS_URL = env("REDIS_URL", default="")
# E5: a Redis that hangs costs a request at most these, and callers of the cache degrade
# (throttling lets the request through) instead of failing.
CACHE_CONNECT_TIMEOUT_SECONDS = env.float("CACHE_CONNECT_TIMEOUT_SECONDS", default=0.5)
CACHE_SOCKET_TIMEOUT_SECONDS = env.float("CACHE_SOCKET_TIMEOUT_SECONDS", default=0.5)
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "common.cache.RedisCache",  # Django's, with one client per pool
            "LOCATION": REDIS_URL,
            "OPTIONS": {
                "socket_connect_timeout": CACHE_CONNECT_TIMEOUT_SECONDS,
                "socket_timeout": CACHE_SOCKET_TIMEOUT_SECONDS,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

AUTHENTICATION_BACKENDS = [
    # First, as django-axes requires: refuses a locked-out login before any password check.
    "common.auth_backends.LoginLockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en"
# The languages guests are written to in (C8): a reservation keeps the one its Accept-Language
# asked for, anything else is English. Catalogs: locale/ (make messages compiles them).
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Client address and login protection ---------------------------------------------------
# How many proxies in front of us append to X-Forwarded-For. 0: the header is ignored and the
# peer address is the client (a client cannot choose its own identity for throttling).
NUM_PROXIES = env.int("NUM_PROXIES", default=0)

# Password logins (the admin's, and the API's token login: staff can refund money, and a
# customer's token can cancel their bookings) are locked out by django-axes
# (common/auth_backends.py): after AXES_FAILURE_LIMIT failures for one username from one
# address, that pair; after LOGIN_ACCOUNT_FAILURE_LIMIT failures for one username from any
# addresses, the account; both for AXES_COOLOFF_MINUTES. The API answers a lockout with 429
# `login_locked_out`; AXES_ONLY_ADMIN_SITE = true would leave the API login to its throttle alone.
AXES_ONLY_ADMIN_SITE = env.bool("AXES_ONLY_ADMIN_SITE", default=False)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
LOGIN_ACCOUNT_FAILURE_LIMIT = env.int("LOGIN_ACCOUNT_FAILURE_LIMIT", default=20)
AXES_COOLOFF_TIME = dt.timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "common.auth_backends.AccountLockoutHandler"
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "common.net.client_ip"
AXES_VERBOSE = False

# --- API -----------------------------------------------------------------------------------
REST_FRAMEWORK = {
    # `Authorization: Token <token>` (api.md), the token stored hashed and expiring (common/tokens.py).
    "DEFAULT_AUTHENTICATION_CLASSES": ["common.authentication.ApiTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["common.parsers.SafeJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_THROTTLE_CLASSES": [
        "common.throttling.AnonRateThrottle",
        "common.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env("API_THROTTLE_USER_RATE", default="300/min"),
        "anon": env("API_THROTTLE_ANON_RATE", default="60/min"),
        # POST /reservations/ per user, on top of "user": creating holds is what hoarding costs.
        "reservation_create": env("API_THROTTLE_RESERVATION_CREATE_RATE", default="10/min"),
    },
    "NUM_PROXIES": NUM_PROXIES,
    "EXCEPTION_HANDLER": "common.errors.problem_exception_handler",
    # The schema documents every operation's errors and headers (common/openapi.py).
    "DEFAULT_SCHEMA_CLASS": "common.openapi.ApiAutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Reserve & Charge API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Served from our own static files (drf-spectacular-sidecar): the docs work offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# API tokens: how long one lives; then the client logs in again (POST /api/v1/auth/token/).
API_TOKEN_TTL = dt.timedelta(hours=env.int("API_TOKEN_TTL_HOURS", default=24))
# Seconds a token found in the database stays in the shared cache (Redis only; 0: never). A
# revocation or a change of its user removes it at once (common/authentication.py).
API_TOKEN_CACHE_SECONDS = env.int("API_TOKEN_CACHE_SECONDS", default=300)
REST_KNOX = {"TOKEN_TTL": API_TOKEN_TTL, "AUTH_HEADER_PREFIX": "Token", "AUTO_REFRESH": False}

# --- Domain --------------------------------------------------------------------------------
RESERVATION_HOLD_MINUTES = env.int("RESERVATION_HOLD_MINUTES", default=15)
# Unpaid reservations one customer may hold at once: one account cannot hoard a day's places.
RESERVATION_MAX_UNPAID_HOLDS = env.int("RESERVATION_MAX_UNPAID_HOLDS", default=3)
DEADLOCK_RETRY_ATTEMPTS = env.int("DEADLOCK_RETRY_ATTEMPTS", default=5)

# --- Stripe --------------------------------------------------------------------------------
STRIPE_API_KEY = env("STRIPE_API_KEY", default="")
STRIPE_API_BASE = env("STRIPE_API_BASE", default="https://api.stripe.com")
STRIPE_WEBHOOK_SECRET = env("STRIPE_WEBHOOK_SECRET", default="")
# The one place the Stripe API version is pinned (B7): requests and the shapes of the objects
# we read follow it; upgrading is a deliberate change, tested against the strict stand-in.
STRIPE_API_VERSION = "2026-10-28.endive"
STRIPE_TIMEOUT_SECONDS = env.float("STRIPE_TIMEOUT_SECONDS", default=8)
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=1)
STRIPE_BREAKER_FAIL_MAX = env.int("STRIPE_BREAKER_FAIL_MAX", default=5)
STRIPE_BREAKER_RESET_SECONDS = env.int("STRIPE_BREAKER_RESET_SECONDS", default=30)
IDEMPOTENCY_KEY_TTL_HOURS = env.int("IDEMPOTENCY_KEY_TTL_HOURS", default=24)
IDEMPOTENCY_LOCK_STALE_SECONDS = env.int("IDEMPOTENCY_LOCK_STALE_SECONDS", default=90)
# Stripe's search lags: "no intent found" closes an unknown attempt only once it is this old.
STRIPE_SEARCH_SETTLED_SECONDS = env.int("STRIPE_SEARCH_SETTLED_SECONDS", default=180)

# --- Outbox and suppliers ------------------------------------------------------------------
OUTBOX_BACKOFF_BASE_SECONDS = env.int("OUTBOX_BACKOFF_BASE_SECONDS", default=15)
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=5)
OUTBOX_LEASE_SECONDS = env.int("OUTBOX_LEASE_SECONDS", default=60)
# How long one scheduled drain task loops. Longer than its 1-minute schedule plus the
# scheduler's ~30 s granularity, so a drain is always running (C3); shorter than Q timeout.
OUTBOX_DRAIN_SECONDS = env.int("OUTBOX_DRAIN_SECONDS", default=100)
# Hosts a supplier base_url may name over plain http or on internal addresses (the demo's
# fake supplier on loopback). Empty in production: https to public addresses only.
SUPPLIER_ALLOWED_HOSTS = env.list("SUPPLIER_ALLOWED_HOSTS", default=[])
SUPPLIER_BREAKER_FAIL_MAX = env.int("SUPPLIER_BREAKER_FAIL_MAX", default=5)
SUPPLIER_BREAKER_RESET_SECONDS = env.int("SUPPLIER_BREAKER_RESET_SECONDS", default=30)

# --- Reconciliation (H1) -------------------------------------------------------------------
# The daily run compares the last LEDGERS_RECONCILE_WINDOW_HOURS (overlapping the previous run);
# anything touched in the last LEDGERS_RECONCILE_SETTLE_SECONDS is work in progress, not judged.
LEDGERS_RECONCILE_WINDOW_HOURS = env.int("LEDGERS_RECONCILE_WINDOW_HOURS", default=48)
LEDGERS_RECONCILE_SETTLE_SECONDS = env.int("LEDGERS_RECONCILE_SETTLE_SECONDS", default=900)

# --- Alerts and mail -----------------------------------------------------------------------
ALERT_EMAILS = env.list("ALERT_EMAILS", default=[])
SLACK_WEBHOOK_URL = env("SLACK_WEBHOOK_URL", default="")
SLACK_TIMEOUT_SECONDS = env.float("SLACK_TIMEOUT_SECONDS", default=5)
vars().update(env.email_url("EMAIL_URL", default="consolemail://"))
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Reserve & Charge <no-reply@reserve.invalid>")

# --- Task queue (django-q2) ----------------------------------------------------------------
# Retry state lives on outbox rows, not in the queue: a failed task is acknowledged
# (ack_failures) and never re-run by the broker; retry > timeout so a slow task is not
# delivered twice while it still runs.
Q_CLUSTER = {
    # One queue per name: clusters sharing a name share work (G3).
    "name": env("Q_CLUSTER_NAME", default="reserve"),
    # Up to two overlapping drains occupy workers; the others serve on-commit deliveries.
    "workers": env.int("Q_WORKERS", default=4),
    "timeout": env.int("Q_TIMEOUT_SECONDS", default=120),
    "retry": env.int("Q_RETRY_SECONDS", default=300),
    "max_attempts": 1,
    "ack_failures": True,
    "catch_up": False,
    "save_limit": 1000,
    "poll": 0.5,
    "label": "Task queue",
}
if REDIS_URL:
    # Timeouts (E5): an on-commit enqueue must not hang a web request when Redis is away.
    # socket_timeout stays above the broker's 1 s blocking pop.
    Q_CLUSTER["redis"] = REDIS_URL + ("&" if "?" in REDIS_URL else "?") + "socket_connect_timeout=2&socket_timeout=5"
else:
    Q_CLUSTER["orm"] = "default"

# --- Observability -------------------------------------------------------------------------
SENTRY_DSN = env("SENTRY_DSN", default="")
SENTRY_ENVIRONMENT = env("SENTRY_ENVIRONMENT", default="")
SENTRY_RELEASE = env("SENTRY_RELEASE", default="")
SENTRY_TRACES_SAMPLE_RATE = env.float("SENTRY_TRACES_SAMPLE_RATE", default=0.0)
# /metrics (F3) answers a scraper with `Authorization: Bearer <METRICS_TOKEN>` or from one of
# METRICS_ALLOWED_NETWORKS (CIDRs; the client address as NUM_PROXIES says). Neither set: 403.
METRICS_TOKEN = env("METRICS_TOKEN", default="")
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=[])
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "ts", "levelname": "level", "name": "logger"},
        }
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json",
        }
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # Django logs every 4xx as a warning; our own handler logs what matters.
        "django.request": {"level": "ERROR"},
        # One line per request (F4), from common.middleware.AccessLogMiddleware.
        "reserve.access": {"level": env("ACCESS_LOG_LEVEL", default="INFO")},
    },
}

# Production only: refuse to start without real secrets or with mail going to the console.
PRODUCTION = False

if SENTRY_DSN:
    from config.sentry import sentry_init

    sentry_init(dsn=SENTRY_DSN, environment=SENTRY_ENVIRONMENT, release=SENTRY_RELEASE,
                traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE)
