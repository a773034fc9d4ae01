"""The zero-setup demo: SQLite by default, local Stripe server, fake supplier."""

import os

os.environ.setdefault("SECRET_KEY", "local-only-insecure-key-not-for-production")
os.environ.setdefault("DEBUG", "true")
os.environ.setdefault("STRIPE_API_KEY", "sk_test_local")
os.environ.setdefault("STRIPE_API_BASE", "http://127.0.0.1:8420")
os.environ.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_local_demo_secret")

from .base import *  # noqa: F403
