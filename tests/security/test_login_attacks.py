"""Password guessing over real HTTP (issue "security" 1), as the audit did it: 150 wrong API
passwords with a new X-Forwarded-For each time, then the right one; 40 wrong admin passwords,
then the right one. Neither may end in a token or a session, whether or not a proxy is
trusted (with one, each guess really comes from another client address: only the per-account
lockout can stop it)."""

from __future__ import annotations

import re

import pytest
import requests

from tests.factories import StaffUserFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)

PASSWORD = "pass-word-123"  # UserFactory's


def api_login(http, username: str, password: str, address: str) -> requests.Response:
    return http("POST", "/api/v1/auth/token/", json={"username": username, "password": password},
                headers={"X-Forwarded-For": address})


def admin_login(base_url: str, username: str, password: str, address: str) -> requests.Session:
    session = requests.Session()
    page = session.get(f"{base_url}/admin/login/", timeout=30)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    session.post(f"{base_url}/admin/login/?next=/admin/", timeout=30, allow_redirects=False,
                 data={"username": username, "password": password, "csrfmiddlewaretoken": token},
                 headers={"X-Forwarded-For": address, "Referer": f"{base_url}/admin/login/"})
    return session


def logged_in(base_url: str, session: requests.Session) -> bool:
    return session.get(f"{base_url}/admin/", timeout=30, allow_redirects=False).status_code == 200


@pytest.mark.parametrize("num_proxies", [0, 1])
def test_rotating_x_forwarded_for_does_not_buy_api_password_guesses(http, settings, num_proxies):
    settings.NUM_PROXIES = num_proxies
    victim = UserFactory()

    codes = [api_login(http, victim.username, f"guess-{i}", f"198.18.{i // 250}.{i % 250 + 1}").status_code
             for i in range(150)]
    right = api_login(http, victim.username, PASSWORD, "198.18.9.9")

    assert codes.count(400) < 25  # refused early: the address or the account is locked
    assert set(codes) == {400, 429}
    assert right.status_code == 429, right.text
    assert right.json()["code"] == "login_locked_out"
    assert "token" not in right.json()


@pytest.mark.parametrize("num_proxies", [0, 1])
def test_forty_wrong_admin_passwords_lock_the_admin_login(live_server, settings, num_proxies):
    settings.NUM_PROXIES = num_proxies
    staff = StaffUserFactory()
    staff.set_password(PASSWORD)
    staff.save()

    for i in range(40):
        admin_login(live_server.url, staff.username, f"guess-{i}", f"198.19.0.{i + 1}")
    session = admin_login(live_server.url, staff.username, PASSWORD, "198.19.1.1")

    assert not logged_in(live_server.url, session)


def test_a_locked_out_account_does_not_lock_out_the_others(http, settings):
    settings.NUM_PROXIES = 1
    victim, bystander = UserFactory(), UserFactory()
    for i in range(settings.LOGIN_ACCOUNT_FAILURE_LIMIT):
        api_login(http, victim.username, "wrong", f"198.18.20.{i + 1}")

    assert api_login(http, victim.username, PASSWORD, "198.18.21.1").status_code == 429
    assert api_login(http, bystander.username, PASSWORD, "198.18.21.1").status_code == 200
