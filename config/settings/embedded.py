"""Embedded mode: SQLite under var/, eager jobs, in-memory channel layer. Nothing else to install."""

from .base import *
from .base import SECRET_KEY, VAR_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
if not SECRET_KEY:
    # A first run must work with no set-up; the key is made once and kept beside the database.
    from fedele.shared.secret_key import load_or_create_secret_key

    SECRET_KEY = load_or_create_secret_key(VAR_DIR / "secret_key")
WHITENOISE_AUTOREFRESH = DEBUG
# A local trial talks to receivers on the same machine or LAN.
FEDELE_WEBHOOK_ALLOW_PRIVATE_TARGETS = env.bool("FEDELE_WEBHOOK_ALLOW_PRIVATE_TARGETS", default=True)
WHITENOISE_USE_FINDERS = True
