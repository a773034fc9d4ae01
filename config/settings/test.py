"""Test settings: real MariaDB (DATABASE_URL), fast hashers, locmem mail."""

import os

os.environ.setdefault("SECRET_KEY", "test-only-insecure-key")
os.environ.setdefault("DATABASE_URL", "mysql://root@127.0.0.1:3306/reserve")
os.environ.setdefault("STRIPE_API_KEY", "sk_test_suite")
os.environ.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_test_suite_secret")
os.environ.setdefault("STRIPE_TIMEOUT_SECONDS", "2")

from .base import *  # noqa: F403
from .base import METRICS_ALLOWED_NETWORKS, REST_FRAMEWORK, SUPPLIER_ALLOWED_HOSTS

# Settings, not environment variables: the processes a test starts under production settings
# (tests/deploy) must not inherit them.
# The test client comes from loopback: it may read /health/ready's details and /metrics.
METRICS_ALLOWED_NETWORKS = METRICS_ALLOWED_NETWORKS or ["127.0.0.0/8"]
# The fake supplier runs on loopback over plain http.
SUPPLIER_ALLOWED_HOSTS = SUPPLIER_ALLOWED_HOSTS or ["127.0.0.1", "localhost"]

DEBUG = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# Throttling is tested on its own with explicit rates; concurrency tests must not hit it.
REST_FRAMEWORK = {**REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
    **REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "user": "100000/min", "anon": "100000/min",
    "reservation_create": "100000/min"}}
LOGGING_CONFIG = None if os.environ.get("TEST_QUIET_LOGS") else "logging.config.dictConfig"
# Static files from the apps' directories (no collectstatic in the test run).
STATIC_ROOT = None
WHITENOISE_USE_FINDERS = True
