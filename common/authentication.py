"""The API's authentication (E7): `Authorization: Token <token>` (api.md), the token checked
against its stored SHA-512 digest (django-rest-knox, common/tokens.py).

Kept apart from the views (common/auth.py): DRF imports this class while it defines APIView."""

from __future__ import annotations

from hmac import compare_digest
from typing import Any

from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.crypto import hash_token
from knox.models import AuthToken
from knox.settings import CONSTANTS
from rest_framework.exceptions import AuthenticationFailed


class ApiTokenAuthentication(TokenAuthentication):
    """One query per request: the tokens whose first characters match (an indexed column, the
    user joined), then a constant-time compare of digests. knox's own check also loads all of
    the user's tokens on every request to delete the expired ones; here an expired token is
    refused, and deleted at the user's next login."""

    def authenticate_credentials(self, token: bytes) -> tuple[Any, AuthToken]:
        try:
            presented = token.decode("utf-8")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid token.") from None
        digest = hash_token(presented)
        for candidate in AuthToken.objects.filter(
                token_key=presented[:CONSTANTS.TOKEN_KEY_LENGTH]).select_related("user"):
            if not compare_digest(digest, candidate.digest):
                continue
            if candidate.expiry is not None and candidate.expiry <= timezone.now():
                raise AuthenticationFailed("Token expired: log in again for a new one.")
            return self.validate_user(candidate)
        raise AuthenticationFailed("Invalid token.")
