"""Login lockout (django-axes) for every password login: the admin's form and the API's token
login alike.

Two limits, counted over the last AXES_COOLOFF_TIME:
- AXES_FAILURE_LIMIT failures for one username from one address lock that pair (axes' own
  AXES_LOCKOUT_PARAMETERS): a colleague elsewhere still gets in;
- LOGIN_ACCOUNT_FAILURE_LIMIT failures for one username from any addresses lock the account:
  an attacker who changes address with every guess (a botnet, or X-Forwarded-For rotated
  through a trusted proxy) is stopped too, which no per-address limit or throttle can do.
  The price is the classic one: anyone can keep a known username locked for the cool-off by
  failing on purpose. Staff clear a lockout with `manage.py axes_reset_username NAME`.

Axes refuses `authenticate()` calls without a request; code that checks a password outside a
request (a management command, a test) has no client to lock out, so those calls go straight
to the next backend."""

from __future__ import annotations

from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum
from django.http import HttpRequest


class LoginLockoutBackend(AxesStandaloneBackend):
    def authenticate(self, request: HttpRequest | None, username: str | None = None, password: str | None = None,
                     **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class AccountLockoutHandler(AxesDatabaseHandler):
    """Axes' database handler (the per username-and-address limit) plus the per-account limit."""

    def is_locked(self, request: Any, credentials: dict | None = None) -> bool:
        return super().is_locked(request, credentials) or self._account_locked(request, credentials)

    def user_login_failed(self, sender: Any, credentials: dict, request: Any = None, **kwargs: Any) -> None:
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is not None and not request.axes_locked_out and self._account_locked(request, credentials):
            request.axes_locked_out = True
            request.axes_credentials = credentials

    @staticmethod
    def _account_locked(request: Any, credentials: dict | None) -> bool:
        username = get_client_username(request, credentials)
        if not username:
            return False
        failures = (AccessAttempt.objects.filter(username=username, attempt_time__gte=get_cool_off_threshold(request))
                    .aggregate(total=Sum("failures_since_start"))["total"]) or 0
        return failures >= settings.LOGIN_ACCOUNT_FAILURE_LIMIT
