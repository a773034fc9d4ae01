"""The zero-setup demo: SQLite by default, local Stripe server, fake supplier."""

import os

os.environ.setdefault("SECRET_KEY", "local-only-insecure-key-not-for-production")
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("STRIPE_API_KEY", "sk_test_local")
os.environ.setdefault("STRIPE_API_BASE", "http://127.0.0.1:8420")
os.environ.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_local_demo_secret")
# `curl http://127.0.0.1:8000/metrics` works on the demo machine without a token.
os.environ.setdefault("METRICS_ALLOWED_NETWORKS", "127.0.0.0/8,::1/128")

# The fake supplier runs on loopback over plain http.
os.environ.setdefault("SUPPLIER_ALLOWED_HOSTS", "127.0.0.1,localhost")

from .base import *  # noqa: F403

# runserver serves static files itself; whitenoise finds them in the apps without collectstatic.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
