"""Attacks over real HTTP: a live server (pytest-django's, in a thread of this process, with
the test settings) and `requests`, the way an attacker reaches the API — not a view called
in-process. Each test shows the attack refused and nothing changed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import requests
from rest_framework.authtoken.models import Token


@dataclass
class Http:
    base_url: str

    def token(self, user) -> str:
        return Token.objects.get_or_create(user=user)[0].key

    def __call__(self, method: str, path: str, *, user=None, headers: dict[str, str] | None = None,
                 **kwargs: Any) -> requests.Response:
        sent = dict(headers or {})
        if user is not None:
            sent["Authorization"] = f"Token {self.token(user)}"
        return requests.request(method, self.base_url + path, headers=sent, timeout=30, allow_redirects=False,
                                **kwargs)


@pytest.fixture
def http(live_server) -> Http:
    return Http(live_server.url)


def assert_problem(response: requests.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/problem+json")
    body = response.json()
    if code is not None:
        assert body["code"] == code, body
    return body
