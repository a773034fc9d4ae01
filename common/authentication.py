"""The API's authentication (E7): `Authorization: Token <token>` (api.md), the token checked
against its stored SHA-512 digest (django-rest-knox, common/tokens.py).

A token found in the database is kept in the shared cache (Redis) for a while, with its user,
so that a request costs no query to authenticate. Whatever stops a token stops it at once:
deleting it (logout, logout everywhere, expiry cleanup, the admin, the user's deletion) or
changing its user (deactivated, made non-staff) writes a tombstone over its cache entry in the
same step, and a request that read the token from the database just before can only add its
copy where no entry (and no tombstone) is (`cache.add`): a stale copy cannot come back. If the
cache cannot be written, the revocation fails (the error is raised) rather than leave a copy
alive. Only a cache shared by every process is used (Redis): a per-process cache (LocMem, in
`make run` without Redis) could not be revoked in the other processes.

Kept apart from the views (common/auth.py): DRF imports this class while it defines APIView."""

from __future__ import annotations

import contextlib
from hmac import compare_digest
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import DEFAULT_CACHE_ALIAS, caches
from django.core.cache.backends.redis import RedisCache
from django.db.models.signals import post_delete, post_save
from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework.exceptions import AuthenticationFailed

from common.throttling import CACHE_UNAVAILABLE

_REVOKED = "revoked"


def _shared_cache() -> RedisCache | None:
    cache = caches[DEFAULT_CACHE_ALIAS]
    return cache if isinstance(cache, RedisCache) and settings.API_TOKEN_CACHE_SECONDS > 0 else None


def _cache_key(digest: str) -> str:
    return f"apitoken:{digest}"


def _cached(digest: str) -> AuthToken | None:
    cache = _shared_cache()
    if cache is None:
        return None
    try:
        value = cache.get(_cache_key(digest))
    except CACHE_UNAVAILABLE:
        return None  # the database answers
    return value if isinstance(value, AuthToken) else None


def _remember(token: AuthToken) -> None:
    cache = _shared_cache()
    if cache is None:
        return
    seconds = settings.API_TOKEN_CACHE_SECONDS
    if token.expiry is not None:
        seconds = min(seconds, int((token.expiry - timezone.now()).total_seconds()))
    if seconds <= 0:
        return
    with contextlib.suppress(*CACHE_UNAVAILABLE):
        cache.add(_cache_key(token.digest), token, seconds)  # never over a tombstone


def api_tokens_forget(digests: list[str]) -> None:
    """Tombstones over these tokens' cache entries: the next request reads the database.
    Raises if the cache cannot be written (the caller's revocation must not succeed then)."""
    cache = _shared_cache()
    if cache is None or not digests:
        return
    cache.set_many({_cache_key(digest): _REVOKED for digest in digests}, settings.API_TOKEN_CACHE_SECONDS)


class ApiTokenAuthentication(TokenAuthentication):
    """No query for a token in the cache; otherwise one: the tokens whose first characters
    match (an indexed column, the user joined), then a constant-time compare of digests.
    knox's own check also loads all of the user's tokens on every request to delete the
    expired ones; here an expired token is refused, and deleted at the user's next login or by the
    hourly purge (common.tokens.api_tokens_purge_expired)."""

    def authenticate_credentials(self, token: bytes) -> tuple[Any, AuthToken]:
        try:
            presented = token.decode("utf-8")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid token.") from None
        digest = hash_token(presented)
        found = _cached(digest)
        if found is None:
            found = next((candidate for candidate in AuthToken.objects.filter(
                token_key=presented[:CONSTANTS.TOKEN_KEY_LENGTH]).select_related("user")
                if compare_digest(digest, candidate.digest)), None)
            if found is None:
                raise AuthenticationFailed("Invalid token.")
            _remember(found)
        if found.expiry is not None and found.expiry <= timezone.now():
            raise AuthenticationFailed("Token expired: log in again for a new one.")
        return self.validate_user(found)


def _token_deleted(sender: Any, instance: AuthToken, **kwargs: Any) -> None:
    api_tokens_forget([instance.digest])


def _user_saved(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return  # a login: nothing that authentication checks changed
    api_tokens_forget(list(AuthToken.objects.filter(user_id=instance.pk).values_list("digest", flat=True)))


def connect_token_cache_invalidation() -> None:
    """From CommonConfig.ready(): a token deleted, or its user changed, leaves the cache at once."""
    post_delete.connect(_token_deleted, sender=AuthToken, dispatch_uid="api_token_cache_deleted")
    post_save.connect(_user_saved, sender=get_user_model(), dispatch_uid="api_token_cache_user_saved")
