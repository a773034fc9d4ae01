"""The API token login goes through the admin's lockout (django-axes, common/auth_backends.py):
AXES_FAILURE_LIMIT failures for a username from one address lock that pair, and
LOGIN_ACCOUNT_FAILURE_LIMIT failures for a username from any addresses lock the account, so an
attacker who changes address on every guess (which the per-address throttle cannot see) is
stopped too. A lockout is a 429 problem, the right password included, until the cool-off ends."""

from __future__ import annotations

import datetime as dt

import pytest
from axes.models import AccessAttempt
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "pass-word-123"  # UserFactory's


def login(client: APIClient, username: str, password: str, **headers: str):
    return client.post("/api/v1/auth/token/", {"username": username, "password": password}, format="json",
                       **headers)


@pytest.fixture
def victim():
    return UserFactory()


def test_failures_from_one_address_lock_the_api_login_even_with_the_right_password(victim, settings):
    client = APIClient(REMOTE_ADDR="198.51.100.30")
    codes = [login(client, victim.username, "wrong").status_code for _ in range(settings.AXES_FAILURE_LIMIT)]

    locked = login(client, victim.username, PASSWORD)

    assert codes == [400] * (settings.AXES_FAILURE_LIMIT - 1) + [429]
    assert locked.status_code == 429
    assert locked["Content-Type"] == "application/problem+json"
    assert locked.json()["code"] == "login_locked_out"
    assert locked["Retry-After"] == str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    assert not AuthToken.objects.exists()


def test_the_same_user_elsewhere_still_logs_in_while_one_address_is_locked(victim, settings):
    attacker = APIClient(REMOTE_ADDR="198.51.100.31")
    for _ in range(settings.AXES_FAILURE_LIMIT):
        login(attacker, victim.username, "wrong")

    assert login(APIClient(REMOTE_ADDR="198.51.100.32"), victim.username, PASSWORD).status_code == 200


def test_an_attacker_rotating_addresses_is_locked_out_per_account(victim, settings, strict_throttling):
    """Behind one trusted proxy, every guess comes from another client address: the
    per-address throttle (3/min here) and the per-address lockout never see two. 150 wrong
    passwords are not followed by a successful login."""
    settings.NUM_PROXIES = 1
    proxy = APIClient(REMOTE_ADDR="10.0.0.2")

    codes = [login(proxy, victim.username, "wrong", HTTP_X_FORWARDED_FOR=f"198.18.{i // 250}.{i % 250 + 1}")
             .status_code for i in range(150)]
    right_password = login(proxy, victim.username, PASSWORD, HTTP_X_FORWARDED_FOR="198.18.9.9")

    limit = settings.LOGIN_ACCOUNT_FAILURE_LIMIT
    assert codes == [400] * (limit - 1) + [429] * (150 - limit + 1)  # never throttled: one try per address
    assert right_password.status_code == 429
    assert right_password.json()["code"] == "login_locked_out"
    assert not AuthToken.objects.exists()
    # Another account is not affected.
    bystander = UserFactory()
    assert login(proxy, bystander.username, PASSWORD, HTTP_X_FORWARDED_FOR="198.18.9.9").status_code == 200


def test_the_account_lockout_ends_with_the_cool_off(victim, settings):
    for i in range(settings.LOGIN_ACCOUNT_FAILURE_LIMIT):
        login(APIClient(REMOTE_ADDR=f"198.51.100.{100 + i}"), victim.username, "wrong")
    assert login(APIClient(REMOTE_ADDR="198.51.100.99"), victim.username, PASSWORD).status_code == 429

    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - dt.timedelta(seconds=1))

    assert login(APIClient(REMOTE_ADDR="198.51.100.99"), victim.username, PASSWORD).status_code == 200


def test_a_successful_login_forgets_that_addresses_failures(victim, settings):
    client = APIClient(REMOTE_ADDR="198.51.100.40")
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        login(client, victim.username, "wrong")
    assert login(client, victim.username, PASSWORD).status_code == 200

    codes = [login(client, victim.username, "wrong").status_code for _ in range(settings.AXES_FAILURE_LIMIT - 1)]

    assert codes == [400] * (settings.AXES_FAILURE_LIMIT - 1)
