"""Admin login (staff can refund money): repeated failures lock the username out from that
address (django-axes). The API token login goes through the same lockout: test_login_lockout.py."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.factories import StaffUserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


@pytest.fixture
def staff():
    user = StaffUserFactory()
    user.set_password(PASSWORD)
    user.save()
    return user


def admin_login(client: Client, username: str, password: str) -> int:
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password}).status_code


def test_five_failures_lock_the_admin_login_even_with_the_right_password(staff, settings):
    client = Client(REMOTE_ADDR="198.51.100.20")
    assert [admin_login(client, staff.username, "wrong") for _ in range(4)] == [200] * 4  # the form again

    assert admin_login(client, staff.username, "wrong") == 429
    assert admin_login(client, staff.username, PASSWORD) == 429
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_per_address_and_username(staff):
    attacker = Client(REMOTE_ADDR="198.51.100.21")
    for _ in range(5):
        admin_login(attacker, staff.username, "wrong")

    colleague = Client(REMOTE_ADDR="198.51.100.22")

    assert admin_login(colleague, staff.username, PASSWORD) == 302  # logged in
    assert colleague.session["_auth_user_id"] == str(staff.pk)


def test_a_success_before_the_limit_resets_the_count(staff):
    client = Client(REMOTE_ADDR="198.51.100.23")
    for _ in range(4):
        admin_login(client, staff.username, "wrong")
    assert admin_login(client, staff.username, PASSWORD) == 302
    client.logout()
    for _ in range(4):
        admin_login(client, staff.username, "wrong")

    assert admin_login(client, staff.username, PASSWORD) == 302
