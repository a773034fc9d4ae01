"""API tokens (E7), what `Authorization: Token <token>` carries.

django-rest-knox keeps a SHA-512 digest of each token and its first characters (to find it by
an indexed lookup), never the token itself: a copy of the database lets no one call the API.
Every token expires (`API_TOKEN_TTL_HOURS`) and can be revoked at once (logout). The token is
shown once, to whoever asked for it (the login answer, `manage.py drf_create_token`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import connections, models, transaction
from django.utils import timezone
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS

# What rest_framework.authtoken left behind: its plain-text tokens (`key`, `user_id`).
LEGACY_TABLE = "authtoken_token"


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once; only its digest is stored
    expiry: dt.datetime


def api_token_issue(*, user: AbstractBaseUser, ttl: dt.timedelta | None = None) -> IssuedToken:
    """A new token for `user`, valid for `ttl` (default API_TOKEN_TTL_HOURS). The user's
    expired tokens are deleted here (and hourly: api_tokens_purge_expired); authentication only
    refuses them, to stay one query."""
    with transaction.atomic():
        AuthToken.objects.filter(user=user, expiry__lte=timezone.now()).delete()
        instance, token = AuthToken.objects.create(user=user, expiry=ttl or settings.API_TOKEN_TTL)
    return IssuedToken(token=token, expiry=instance.expiry)


PURGE_BATCH = 1000


def api_tokens_purge_expired() -> int:
    """Delete every expired token (scheduled hourly): a user who never logs in again would
    otherwise keep theirs forever. In batches, so that no transaction holds many rows. Returns
    how many were deleted."""
    deleted = 0
    while True:
        batch = list(AuthToken.objects.filter(expiry__lte=timezone.now()).values_list("pk", flat=True)[:PURGE_BATCH])
        if not batch:
            return deleted
        deleted += AuthToken.objects.filter(pk__in=batch, expiry__lte=timezone.now()).delete()[0]


def api_token_revoke(*, token: AuthToken) -> None:
    """Logout: the token stops working with the next request."""
    AuthToken.objects.filter(pk=token.pk).delete()


def api_tokens_revoke_all(*, user: AbstractBaseUser) -> int:
    """Logout everywhere (or a stolen token whose value is unknown): every token of `user`."""
    deleted, _ = AuthToken.objects.filter(user=user).delete()
    return deleted


def legacy_tokens_convert(*, token_model: type[models.Model] = AuthToken, using: str = "default",
                          ttl: dt.timedelta | None = None, drop_table: bool = False) -> int:
    """Move rest_framework.authtoken's plain-text tokens to hashed, expiring ones: a client
    keeps its token string, which now expires after `ttl` (default API_TOKEN_TTL_HOURS); the
    plain-text rows are deleted (`drop_table`: the table too). Idempotent; returns how many
    tokens were converted. `token_model` is the historical model when a migration calls it."""
    connection = connections[using]
    if LEGACY_TABLE not in connection.introspection.table_names():
        return 0
    quote = connection.ops.quote_name
    with transaction.atomic(using=using):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {quote('key')}, {quote('user_id')} FROM {quote(LEGACY_TABLE)}")  # noqa: S608
            rows = cursor.fetchall()
        expiry = timezone.now() + (ttl or settings.API_TOKEN_TTL)
        token_model._default_manager.using(using).bulk_create(
            [token_model(digest=hash_token(key), token_key=key[:CONSTANTS.TOKEN_KEY_LENGTH], user_id=user_id,
                         expiry=expiry) for key, user_id in rows],
            ignore_conflicts=True)  # converted by an earlier run
        with connection.cursor() as cursor:
            cursor.executemany(f"DELETE FROM {quote(LEGACY_TABLE)} WHERE {quote('key')} = %s",  # noqa: S608
                               [(key,) for key, _ in rows])
    if drop_table:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {quote(LEGACY_TABLE)}")
    return len(rows)
