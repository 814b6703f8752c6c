"""Settings of the demo project; every value comes from the environment (see .env.example)."""

from importlib.util import find_spec
from pathlib import Path

import django
import environ

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="insecure-demo-key-change-me" if DEBUG else None)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "delivery",
    "providers",
    "support_console",
    "config",  # the demo project's own command: demo_setup
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
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

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("CONN_MAX_AGE", default=60))
# With persistent connections, check a reused connection before the request uses it: after a
# database restart, the first request of each worker would otherwise fail (and answer 503).
DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql" and env.bool(
    "DATABASE_PREPARED_STATEMENTS", default=True
):
    # Parameters bound by the server, and a statement a connection runs five times prepared:
    # PostgreSQL then parses and plans the webhook's statements once per connection, not once
    # per request (docs/performance.md). Prepared statements live on one server connection: set
    # DATABASE_PREPARED_STATEMENTS=false behind PgBouncer in transaction mode (before 1.21).
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        server_side_binding=True, prepare_threshold=5
    )

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / ".tmp" / "static"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Behind a TLS-terminating proxy that sets X-Forwarded-Proto (see README, "Proxies").
if env.bool("BEHIND_TLS_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True

SMS_DELIVERY = {
    "WEBHOOK_BASE_URL": env.str("WEBHOOK_BASE_URL", default="") or None,
    # "deferred": answer once stored, apply in a task (TASKS below runs it).
    "PROCESSING": env.str("SMS_DELIVERY_PROCESSING", default="sync"),
    "HASH_KEY": env.str("SMS_DELIVERY_HASH_KEY", default=""),
    "ENCRYPTION_KEYS": env.list("SMS_DELIVERY_ENCRYPTION_KEYS", default=[]),
    # Numbers typed without a country code (console search, register_outbound) are read here.
    "DEFAULT_REGION": env.str("SMS_DELIVERY_DEFAULT_REGION", default="US") or None,
    "PROVIDERS": {
        "twilio": {
            "ACCOUNT_SID": env.str("TWILIO_ACCOUNT_SID", default=""),
            # Rotation: several tokens, comma-separated. The demo signs its simulated callbacks
            # with a fixed token when none is set (DEBUG only).
            "AUTH_TOKENS": env.list("TWILIO_AUTH_TOKEN", default=[])
            or (["demo-twilio-auth-token"] if DEBUG else []),
        },
    },
}

# Phone numbers are masked in everything written to the console, the development server's
# request lines included (Vonage and Plivo GET callbacks carry numbers in the query string).
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_numbers": {"()": "delivery.masking.MaskPhoneNumbers"}},
    "formatters": {
        "server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "filters": ["mask_numbers"]},
        "server": {
            "class": "logging.StreamHandler",
            "formatter": "server",
            "filters": ["mask_numbers"],
        },
    },
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "delivery": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "providers": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.server": {"handlers": ["server"], "level": "INFO", "propagate": False},
    },
}

# Further providers are enabled only when their credentials are set, so `check` stays quiet
# (E001/E006) on installs that do not use them.
VONAGE_SIGNATURE_SECRETS = env.list("VONAGE_SIGNATURE_SECRET", default=[])
if VONAGE_SIGNATURE_SECRETS:
    SMS_DELIVERY["PROVIDERS"]["vonage"] = {
        # Dashboard → Settings → API settings → signature secret; comma-separated to rotate.
        "SIGNATURE_SECRETS": VONAGE_SIGNATURE_SECRETS,
        # HMAC chosen there for SMS API sig: md5, sha1, sha256, sha512 (empty: read off sig).
        "SIGNATURE_METHOD": env.str("VONAGE_SIGNATURE_METHOD", default="") or None,
        "UNSIGNED_DLRS_ALLOWED": env.bool("VONAGE_UNSIGNED_DLRS_ALLOWED", default=False),
    }

PLIVO_AUTH_TOKENS = env.list("PLIVO_AUTH_TOKEN", default=[])
if PLIVO_AUTH_TOKENS:
    SMS_DELIVERY["PROVIDERS"]["plivo"] = {
        "AUTH_ID": env.str("PLIVO_AUTH_ID", default=""),
        "AUTH_TOKENS": PLIVO_AUTH_TOKENS,
        "ACCEPT_V2_SIGNATURES": env.bool("PLIVO_ACCEPT_V2_SIGNATURES", default=False),
    }

TELNYX_PUBLIC_KEYS = env.list("TELNYX_PUBLIC_KEY", default=[])
if TELNYX_PUBLIC_KEYS:
    # base64 Ed25519 public key(s) from the Telnyx portal; comma-separated during a rotation.
    SMS_DELIVERY["PROVIDERS"]["telnyx"] = {"PUBLIC_KEYS": TELNYX_PUBLIC_KEYS}

# Django's task framework, for deferred processing: built in from Django 6.0, the django-tasks
# backport on 5.2. The demo runs tasks in the web process (ImmediateBackend); TASKS_BACKEND=db
# stores them for `manage.py db_worker` (django-tasks-db), as a production install would.
_TASKS = "django.tasks" if find_spec("django.tasks") else "django_tasks"
if _TASKS == "django_tasks" and find_spec("django_tasks"):
    INSTALLED_APPS.append("django_tasks")
if env.str("TASKS_BACKEND", default="") == "db":
    INSTALLED_APPS.append("django_tasks_db")
    TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend"}}
else:
    TASKS = {"default": {"BACKEND": f"{_TASKS}.backends.immediate.ImmediateBackend"}}

# Email (alert notifier mail_admins, the demo's fallback recipe): the console backend in the demo
# unless EMAIL_BACKEND says otherwise. Django >= 6.1 configures it as MAILERS (EMAIL_BACKEND is
# deprecated there); the test runner swaps either for its in-memory backend.
_EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": _EMAIL_BACKEND}}
else:
    EMAIL_BACKEND = _EMAIL_BACKEND
