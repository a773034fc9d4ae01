"""django-axes' backend (login lockout), usable where there is no request.

Axes refuses `authenticate()` calls without a request; code that checks a password outside
a request (a management command, a test) has no client address to lock out, so those calls
go straight to the next backend."""

from __future__ import annotations

from typing import Any

from axes.backends import AxesStandaloneBackend
from django.http import HttpRequest


class LoginLockoutBackend(AxesStandaloneBackend):
    def authenticate(self, request: HttpRequest | None, username: str | None = None, password: str | None = None,
                     **kwargs: Any) -> None:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
