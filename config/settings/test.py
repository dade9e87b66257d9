"""Test settings: in-memory SQLite unless DATABASE_URL points at PostgreSQL; fast hashing; eager jobs."""

from .base import *

DEBUG = False
SECRET_KEY = "test-secret-key-not-for-production"
if not DATABASE_URL:
    DATABASES = {"default": sqlite_database(VAR_DIR / "test.sqlite3")}
    DATABASES["default"]["TEST"] = {"NAME": ""}  # in-memory test database
else:
    # Tests open and close their own connections per thread (concurrency tests run 50 threads at once):
    # no pool, whose size would make those threads queue.
    DATABASES = {"default": {**database_from_url(DATABASE_URL), "OPTIONS": {"connect_timeout": 5}}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://"
CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
FEDELE_SMS_BACKEND = "fedele.shared.sms.LocmemBackend"
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
MEDIA_ROOT = VAR_DIR / "test-media"
FEDELE_API_RATE_LIMIT_PER_MINUTE = 100_000
LANGUAGE_CODE = "en"
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
# The test receivers listen on 127.0.0.1; the refusal itself is tested with this turned off.
FEDELE_WEBHOOK_ALLOW_PRIVATE_TARGETS = True
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True
