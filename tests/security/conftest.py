"""Attacks over real HTTP: a live server (pytest-django's, in a thread of this process, with
the test settings) and `requests`, the way an attacker reaches the API — not a view called
in-process. Each test shows the attack refused and nothing changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from common.tokens import api_token_issue


@dataclass
class Http:
    base_url: str
    tokens: dict[Any, str] = field(default_factory=dict)  # one per user (only its digest is stored)

    def token(self, user) -> str:
        if user.pk not in self.tokens:
            self.tokens[user.pk] = api_token_issue(user=user).token
        return self.tokens[user.pk]

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
