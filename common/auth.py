"""The API's login and logout (E7): a password buys an expiring token (common/tokens.py);
logout revokes it at once.

The login is throttled per client address (the default anonymous throttle) and goes through
the same lockout as the admin login (common/auth_backends.py): per username and address, and
per account from any address, so guessing from many addresses is stopped too."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import authenticate, user_logged_in
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import ValidationError
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from common.exceptions import LoginLockedOut
from common.parsers import SafeJSONParser
from common.tokens import api_token_issue, api_token_revoke, api_tokens_revoke_all


class TokenObtainInputSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})


class TokenOutputSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Shown once: only its digest is stored.")
    expiry = serializers.DateTimeField(help_text="After this, log in again.")


class TokenObtainApi(APIView):
    """POST username + password → a new token and when it expires."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    parser_classes = (SafeJSONParser,)

    error_responses = {"POST": (LoginLockedOut,)}

    @extend_schema(
        summary="Log in: get an API token",
        description="Your username and password buy a new token, valid until `expiry` (send it as "
                    "`Authorization: Token <token>`). Wrong credentials are a 400; repeated failures lock the "
                    "account and the address out for a while (429 `login_locked_out` with `Retry-After`), the "
                    "right password included.",
        request=TokenObtainInputSerializer, responses={200: TokenOutputSerializer},
        examples=[OpenApiExample("Credentials", request_only=True,
                                 value={"username": "demo", "password": "demo-pass-123"}),
                  OpenApiExample("Token", response_only=True,
                                 value={"token": "3f6c0e0b2d9a4c1e8b7a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c",
                                        "expiry": "2026-11-30T17:00:00Z"})],
    )
    def post(self, request: Request) -> Response:
        data = TokenObtainInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        # The DRF request, not the Django one: the lockout's marks stay on it, so this view
        # answers the lockout as a problem (axes' middleware would answer for the admin).
        user = authenticate(request=request, **data.validated_data)
        if user is None:
            if getattr(request, "axes_locked_out", False):
                raise LoginLockedOut(retry_after=int(settings.AXES_COOLOFF_TIME.total_seconds()))
            raise ValidationError({"non_field_errors": ["Unable to log in with provided credentials."]})
        issued = api_token_issue(user=user)
        # As a session login does: the lockout forgets this address's failures, last_login is set.
        user_logged_in.send(sender=type(user), request=request, user=user)
        return Response(TokenOutputSerializer({"token": issued.token, "expiry": issued.expiry}).data)


class LogoutApi(APIView):
    """Revoke the token this request carries."""

    @extend_schema(summary="Log out", description="The token this request carries stops working at once.",
                   request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        api_token_revoke(token=request.auth)
        return Response(status=status.HTTP_204_NO_CONTENT)


class LogoutAllApi(APIView):
    """Revoke every token of the user (a lost device, a leaked token)."""

    @extend_schema(summary="Log out everywhere",
                   description="Every token of your account stops working at once (a lost device, a leaked token).",
                   request=None, responses={204: None})
    def post(self, request: Request) -> Response:
        api_tokens_revoke_all(user=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
