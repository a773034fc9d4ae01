"""API tokens (E7): `Authorization: Token <token>` as api.md has it, but stored hashed, expiring
and revocable (django-rest-knox); one indexed query per request."""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient, APIRequestFactory

from common.authentication import ApiTokenAuthentication
from common.tokens import api_token_issue
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"  # UserFactory's


def login(username: str, password: str = PASSWORD, **headers: str):
    return APIClient().post("/api/v1/auth/token/", {"username": username, "password": password}, format="json",
                            **headers)


def with_token(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


def test_login_answers_a_token_and_when_it_expires(customer, settings):
    response = login(customer.username)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"token", "expiry"}
    expiry = dt.datetime.fromisoformat(body["expiry"])
    assert abs(expiry - (timezone.now() + settings.API_TOKEN_TTL)) < dt.timedelta(minutes=1)
    assert with_token(body["token"]).get("/api/v1/reservations/").status_code == 200


def test_wrong_credentials_are_a_400_problem_and_issue_nothing(customer):
    response = login(customer.username, "nope")

    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    assert not AuthToken.objects.exists()


def test_the_database_holds_a_digest_never_the_token(customer):
    token = login(customer.username).json()["token"]

    [row] = AuthToken.objects.values()
    assert row["digest"] == hashlib.sha512(token.encode()).hexdigest()
    assert token not in str(row)  # only its first 15 characters, to find the row
    assert row["token_key"] == token[:15]


def test_an_expired_token_is_refused(customer):
    issued = api_token_issue(user=customer)
    AuthToken.objects.update(expiry=timezone.now() - dt.timedelta(seconds=1))

    response = with_token(issued.token).get("/api/v1/reservations/")

    assert response.status_code == 401
    assert response.json()["code"] == "authentication_failed"
    assert response["WWW-Authenticate"] == "Token"


def test_a_token_that_only_shares_the_indexed_prefix_is_refused(customer):
    issued = api_token_issue(user=customer)
    forged = issued.token[:15] + ("0" if issued.token[15] != "0" else "1") + issued.token[16:]

    assert with_token(forged).get("/api/v1/reservations/").status_code == 401


def test_a_header_that_is_not_utf8_is_a_401_not_a_500(customer):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token caf\xe9")  # latin-1 on the wire

    assert client.get("/api/v1/reservations/").status_code == 401


def test_logout_revokes_the_token_at_once(customer):
    mine, other_device = api_token_issue(user=customer).token, api_token_issue(user=customer).token
    client = with_token(mine)
    assert client.get("/api/v1/reservations/").status_code == 200

    assert client.post("/api/v1/auth/logout/").status_code == 204

    assert client.get("/api/v1/reservations/").status_code == 401
    assert with_token(other_device).get("/api/v1/reservations/").status_code == 200


def test_logout_all_revokes_every_token_of_the_user_and_no_one_elses(customer, other_customer):
    tokens = [api_token_issue(user=customer).token for _ in range(3)]
    theirs = api_token_issue(user=other_customer).token

    assert with_token(tokens[0]).post("/api/v1/auth/logout-all/").status_code == 204

    assert [with_token(t).get("/api/v1/reservations/").status_code for t in tokens] == [401] * 3
    assert with_token(theirs).get("/api/v1/reservations/").status_code == 200


def test_logout_needs_a_token():
    assert APIClient().post("/api/v1/auth/logout/").status_code == 401


def test_a_request_costs_one_query_to_authenticate(customer):
    """The token's row, found by its indexed prefix, with the user joined; nothing else (knox's
    own class also loads every token of the user on each request)."""
    for _ in range(3):
        api_token_issue(user=customer)  # other tokens of the user, expired
    AuthToken.objects.update(expiry=timezone.now() - dt.timedelta(hours=1))
    issued = AuthToken.objects.create(user=customer)[1]  # not through a login, which deletes the expired
    expiry = AuthToken.objects.get(token_key=issued[:15]).expiry
    request = APIRequestFactory().get("/", HTTP_AUTHORIZATION=f"Token {issued}")

    with CaptureQueriesContext(connection) as queries:
        user, token = ApiTokenAuthentication().authenticate(request)

    assert (user, len(queries)) == (customer, 1)
    assert token.expiry == expiry


def test_an_inactive_users_token_is_refused(customer):
    issued = api_token_issue(user=customer)
    customer.is_active = False
    customer.save(update_fields=["is_active"])

    assert with_token(issued.token).get("/api/v1/reservations/").status_code == 401


def test_login_deletes_the_users_expired_tokens(customer):
    api_token_issue(user=customer)
    AuthToken.objects.update(expiry=timezone.now() - dt.timedelta(seconds=1))

    login(customer.username)

    assert AuthToken.objects.filter(user=customer).count() == 1
    assert AuthToken.objects.get(user=customer).expiry > timezone.now()


# --- manage.py drf_create_token (api.md) ------------------------------------------------------

def create_token(*args: str) -> str:
    out = io.StringIO()
    call_command("drf_create_token", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_drf_create_token_prints_a_working_token_once_and_stores_its_digest(customer):
    output = create_token(customer.username, "--hours", "2")

    token = output.split()[2]
    assert output.startswith(f"Generated token {token} for user {customer.username} (expires ")
    assert with_token(token).get("/api/v1/reservations/").status_code == 200
    [row] = AuthToken.objects.filter(user=customer)
    assert row.digest == hashlib.sha512(token.encode()).hexdigest()
    assert abs(row.expiry - (timezone.now() + dt.timedelta(hours=2))) < dt.timedelta(minutes=1)


def test_drf_create_token_reset_revokes_the_users_other_tokens(customer):
    old = api_token_issue(user=customer).token

    new = create_token("-r", customer.username).split()[2]

    assert with_token(old).get("/api/v1/reservations/").status_code == 401
    assert with_token(new).get("/api/v1/reservations/").status_code == 200


def test_drf_create_token_refuses_an_unknown_user():
    with pytest.raises(CommandError, match="no user named"):
        create_token("nobody-at-all")


# --- the tokens rest_framework.authtoken left (README: upgrading) ----------------------------

@pytest.fixture
def legacy_table(transactional_db):
    """rest_framework.authtoken's table as an earlier release left it (DDL commits: a
    transactional test, the table dropped afterwards)."""
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE authtoken_token (`key` varchar(40) PRIMARY KEY, created datetime(6) NOT NULL, "
                       "user_id integer NOT NULL UNIQUE)")
    yield
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS authtoken_token")


def test_legacy_tokens_keep_working_hashed_and_expiring_and_their_plain_text_is_gone(legacy_table, settings):
    user = UserFactory()
    legacy_key = "9944b09199c62bcf9418ad846dd0e4bbdfc6ee4b"
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO authtoken_token (`key`, created, user_id) VALUES (%s, NOW(6), %s)",
                       [legacy_key, user.pk])

    out = io.StringIO()
    call_command("api_tokens_convert_legacy", stdout=out)
    call_command("api_tokens_convert_legacy", stdout=io.StringIO())  # idempotent

    assert "converted 1 legacy token(s)" in out.getvalue()
    assert with_token(legacy_key).get("/api/v1/reservations/").status_code == 200
    [row] = AuthToken.objects.filter(user=user)
    assert row.digest == hashlib.sha512(legacy_key.encode()).hexdigest()
    assert abs(row.expiry - (timezone.now() + settings.API_TOKEN_TTL)) < dt.timedelta(minutes=1)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM authtoken_token")
        assert cursor.fetchone() == (0,)

    call_command("api_tokens_convert_legacy", "--drop-table", stdout=io.StringIO())

    assert "authtoken_token" not in connection.introspection.table_names()


def test_the_hourly_purge_deletes_expired_tokens_only(monkeypatch):
    from common import tokens

    monkeypatch.setattr(tokens, "PURGE_BATCH", 2)  # several batches
    users = UserFactory.create_batch(2)
    for user in users:
        for _ in range(3):
            api_token_issue(user=user, ttl=dt.timedelta(hours=1))
    live = api_token_issue(user=users[0])
    live_digest = hashlib.sha512(live.token.encode()).hexdigest()
    AuthToken.objects.exclude(digest=live_digest).update(expiry=timezone.now() - dt.timedelta(seconds=1))

    assert tokens.api_tokens_purge_expired() == 6
    assert list(AuthToken.objects.values_list("digest", flat=True)) == [live_digest]
    assert APIClient().get("/api/v1/reservations/", HTTP_AUTHORIZATION=f"Token {live.token}").status_code == 200
    assert tokens.api_tokens_purge_expired() == 0
