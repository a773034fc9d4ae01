from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from common.tokens import api_token_issue
from tests.factories import ProductFactory, StaffUserFactory, SupplierFactory, UserFactory


def client_for(user) -> APIClient:
    """An API client carrying a fresh token of `user` (hashed and expiring, as in production)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_issue(user=user).token}")
    return client


@pytest.fixture
def customer(db):
    return UserFactory()


@pytest.fixture
def other_customer(db):
    return UserFactory()


@pytest.fixture
def staff_user(db):
    return StaffUserFactory()


@pytest.fixture
def api(customer) -> APIClient:
    """An API client authenticated as `customer`."""
    return client_for(customer)


@pytest.fixture
def staff_api(staff_user) -> APIClient:
    """Staff status and no permission at all: the API must let them do nothing more."""
    return client_for(staff_user)


CATALOG_PERMISSIONS = ("add_supplier", "change_supplier", "view_supplier", "add_product", "change_product",
                       "view_product")


@pytest.fixture
def catalog_manager(db):
    """Staff with the catalog's model permissions (add, change, view), as the admin grants them."""
    from django.contrib.auth.models import Permission

    user = StaffUserFactory()
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="suppliers",
                                                        codename__in=CATALOG_PERMISSIONS))
    return user


@pytest.fixture
def catalog_api(catalog_manager) -> APIClient:
    return client_for(catalog_manager)


@pytest.fixture
def supplier(db):
    return SupplierFactory()


@pytest.fixture
def product(supplier):
    return ProductFactory(supplier=supplier)


@pytest.fixture
def limited_product(supplier):
    return ProductFactory(supplier=supplier, daily_capacity=5)


# --- Local Stripe (payments) ---------------------------------------------------------------

@pytest.fixture(scope="session")
def localstripe():
    """The real localstripe server on a free port (one per test worker); yields its base URL.
    `--from-scratch`: never load another run's /tmp/localstripe.pickle."""
    import sys
    from pathlib import Path

    from tests.support.servers import free_port, start_server, stop_server

    port = free_port()
    proc = start_server([str(Path(sys.executable).parent / "localstripe"), "--port", str(port), "--from-scratch"],
                        port, log_name="localstripe")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_server(proc)


@pytest.fixture(scope="session")
def strict_stripe_server(localstripe):
    """Production Stripe's rules (tests/support/strict_stripe.py) in front of localstripe."""
    from payments.local_stripe import StrictStripe

    stand_in = StrictStripe(localstripe)
    try:
        yield stand_in
    finally:
        stand_in.stop()


@pytest.fixture
def strict_stripe(strict_stripe_server):
    """The strict Stripe stand-in, healthy and with an empty request log, for this test."""
    strict_stripe_server.reset()
    yield strict_stripe_server
    strict_stripe_server.reset()


@pytest.fixture
def stripe_local(strict_stripe, settings):
    """Point the Stripe gateway at "Stripe" (localstripe behind the strict stand-in) for this
    test; yields the base URL."""
    settings.STRIPE_API_BASE = strict_stripe.url
    return strict_stripe.url


# --- Redis ---------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def redis_url() -> str:
    """TEST_REDIS_URL (default redis://127.0.0.1:6379/0). Never flushed: tests use unique keys."""
    from tests.support.redis_server import require_redis, suite_redis_url

    url = suite_redis_url()
    require_redis(url)
    return url


@pytest.fixture
def shared_cache(settings, redis_url):
    """The deployed cache: Redis (the suite's), with keys of this test's own."""
    import uuid

    settings.CACHES = {"default": {
        "BACKEND": "common.cache.RedisCache", "LOCATION": redis_url,
        "KEY_PREFIX": f"test-{uuid.uuid4().hex}",
        "OPTIONS": {"socket_connect_timeout": settings.CACHE_CONNECT_TIMEOUT_SECONDS,
                    "socket_timeout": settings.CACHE_SOCKET_TIMEOUT_SECONDS}}}
    return redis_url


@pytest.fixture
def own_redis(tmp_path):
    """A private redis-server on a free port, which the test may stop or pause."""
    from tests.support.redis_server import private_redis

    with private_redis(tmp_path) as server:
        yield server


# --- Fake supplier and Slack sink (outbox) -------------------------------------------------

@pytest.fixture(scope="session")
def fake_supplier_server():
    from tests.support.fake_supplier import start_fake_supplier, stop_fake_supplier

    handle, proc = start_fake_supplier()
    try:
        yield handle
    finally:
        stop_fake_supplier(proc)


@pytest.fixture
def fake_supplier(fake_supplier_server, supplier):
    """The fake supplier over real HTTP, reset, with `supplier` pointing at it."""
    fake_supplier_server.reset()
    supplier.base_url = fake_supplier_server.base_url
    supplier.save(update_fields=["base_url"])
    return fake_supplier_server


@pytest.fixture
def slack_sink(settings):
    from tests.support.slack_sink import SlackSink

    with SlackSink() as sink:
        settings.SLACK_WEBHOOK_URL = sink.url
        yield sink


@pytest.fixture
def alerts(settings, slack_sink, mailoutbox):
    """Staff alerts go to an e-mail address and to a local Slack sink."""
    settings.ALERT_EMAILS = ["ops@example.test"]
    return slack_sink


@pytest.fixture
def sentry():
    """The real sentry-sdk, initialised as production does, sending to a local ingest stand-in."""
    import sentry_sdk

    from config.sentry import sentry_init
    from tests.support.sentry_sink import SentrySink

    with SentrySink() as sink:
        sentry_init(dsn=sink.dsn, environment="staging", release="reserve@1.2.3")
        try:
            yield sink
        finally:
            sentry_sdk.flush(timeout=5)
            sentry_sdk.init()  # no DSN: the SDK is off again for the other tests
