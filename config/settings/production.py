"""Production: no default secrets, HTTPS by default, `manage.py check --deploy` clean.

`PRODUCTION = True` arms the guards in common/checks.py: no start with an empty Stripe key or
webhook secret or with mail going to the console, and no demo data."""

from .base import *  # noqa: F403
from .base import NUM_PROXIES, env

PRODUCTION = True
DEBUG = env.bool("DEBUG", default=False)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
# X-Forwarded-Proto says "https" only if a proxy we trust wrote it: with NUM_PROXIES = 0 any
# client could send it and pass for a TLS connection.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if NUM_PROXIES > 0 else None
# Behind a TLS-terminating proxy (SECURE_SSL_REDIRECT=false) cookies stay Secure and HSTS is
# sent; only a plain-HTTP run on loopback drops them, and says so with INSECURE_LOCAL_HTTP.
INSECURE_LOCAL_HTTP = env.bool("INSECURE_LOCAL_HTTP", default=False)
SESSION_COOKIE_SECURE = not INSECURE_LOCAL_HTTP
CSRF_COOKIE_SECURE = not INSECURE_LOCAL_HTTP
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if INSECURE_LOCAL_HTTP else 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not INSECURE_LOCAL_HTTP
SECURE_HSTS_PRELOAD = not INSECURE_LOCAL_HTTP
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]

# collectstatic (run when the image is built) writes compressed files with hashed names;
# whitenoise serves them with far-future cache headers.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
