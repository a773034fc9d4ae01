"""API tokens in the shared cache (issue "performance"): a request whose token is cached costs
no query to authenticate, and whatever stops a token stops it at once, cached or not."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from knox.models import AuthToken
from rest_framework.test import APIClient

from common.authentication import _remember
from common.tokens import api_token_issue, api_tokens_revoke_all

pytestmark = pytest.mark.django_db


def with_token(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def knox_queries(captured: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in captured.captured_queries if "knox_authtoken" in q["sql"]]


@pytest.fixture
def cached_client(shared_cache, customer):
    issued = api_token_issue(user=customer)
    client = with_token(issued.token)
    assert client.get("/api/v1/reservations/").status_code == 200  # now in the cache
    return client, issued


def test_a_cached_token_costs_no_query(cached_client):
    client, _ = cached_client
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/api/v1/reservations/").status_code == 200
    assert knox_queries(captured) == []


def test_without_a_shared_cache_every_request_reads_the_database(customer):
    """LocMem (the test settings, `make run` without Redis) is per process: never used."""
    client = with_token(api_token_issue(user=customer).token)
    client.get("/api/v1/reservations/")
    with CaptureQueriesContext(connection) as captured:
        assert client.get("/api/v1/reservations/").status_code == 200
    assert len(knox_queries(captured)) == 1


def test_logout_stops_a_cached_token_at_once(cached_client):
    client, _ = cached_client
    assert client.post("/api/v1/auth/logout/").status_code == 204
    assert client.get("/api/v1/reservations/").status_code == 401


def test_logout_everywhere_stops_every_cached_token(cached_client, customer):
    client, _ = cached_client
    other = with_token(api_token_issue(user=customer).token)
    assert other.get("/api/v1/reservations/").status_code == 200

    api_tokens_revoke_all(user=customer)

    assert client.get("/api/v1/reservations/").status_code == 401
    assert other.get("/api/v1/reservations/").status_code == 401


def test_a_deactivated_user_is_refused_at_once(cached_client, customer):
    client, _ = cached_client
    customer.is_active = False
    customer.save()
    assert client.get("/api/v1/reservations/").status_code == 401


def test_a_deleted_user_is_refused_at_once(cached_client, customer):
    client, _ = cached_client
    customer.reservations.all().delete()
    customer.delete()
    assert client.get("/api/v1/reservations/").status_code == 401


def test_a_copy_read_before_the_revocation_cannot_come_back(cached_client):
    """A request read the token from the database just before it was revoked, and puts its
    copy in the cache after: the revocation's tombstone keeps it out."""
    client, issued = cached_client
    stale = AuthToken.objects.select_related("user").get(token_key=issued.token[:15])
    assert client.post("/api/v1/auth/logout/").status_code == 204

    _remember(stale)

    assert client.get("/api/v1/reservations/").status_code == 401


@pytest.mark.django_db(transaction=True)  # the failed revocation rolls back its own transaction
def test_a_revocation_the_cache_cannot_record_fails_and_the_token_stays_consistent(customer, settings, own_redis):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": own_redis.url,
                                   "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}}
    issued = api_token_issue(user=customer)
    client = with_token(issued.token)
    client.raise_request_exception = False
    assert client.get("/api/v1/reservations/").status_code == 200
    own_redis.stop()

    response = client.post("/api/v1/auth/logout/")

    assert response.status_code >= 500  # not "logged out" while a cached copy might live on
    assert AuthToken.objects.filter(token_key=issued.token[:15]).exists()
    assert client.get("/api/v1/reservations/").status_code == 200  # read from the database
