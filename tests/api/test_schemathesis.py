"""The schema tells the whole truth (issue 11): schemathesis (`st run --checks all`: examples,
coverage, fuzzing and stateful phases) against a live server, as a customer and as staff, with
0 failures. Every answer must be a documented status with a documented content type, body and
headers; invalid input must be refused and valid input accepted; no 500.

The server is pytest-django's live server (this process, the test settings) in front of the
real MariaDB, Stripe (localstripe behind the strict stand-in) and Redis. The settings raise the
limits that would otherwise turn a fuzzing run into a wall of 429s/409s (the per-customer hold
limit, the login lockout); the throttles are already out of reach in the test settings, and the
schema still documents 429 where a throttle applies. Production settings are untouched."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import Group, Permission
from django.utils import timezone

from backoffice.staff_group import GROUP_NAME
from common.tokens import api_token_issue
from tests.conftest import CATALOG_PERMISSIONS
from tests.factories import ProductFactory, StaffUserFactory, SupplierFactory, UserFactory
from tests.support.servers import ROOT

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.schemathesis]

CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 25  # per operation and phase: the two runs stay within ~2-3 minutes in all


@pytest.fixture
def fuzzable_server(live_server, stripe_local, settings) -> dict[str, list[str]]:
    """The live server, with the limits that only cap how much fuzzing gets done lifted, and the
    data schemathesis draws from besides random values (a supplier and a product that exist,
    dates that can be booked, a card the local Stripe accepts)."""
    settings.RESERVATION_MAX_UNPAID_HOLDS = 1_000_000
    settings.AXES_FAILURE_LIMIT = 1_000_000
    settings.LOGIN_ACCOUNT_FAILURE_LIMIT = 1_000_000
    supplier = SupplierFactory()
    product = ProductFactory(supplier=supplier, daily_capacity=None)
    today = timezone.localdate()
    return {"product_ids": [str(product.id)], "supplier_ids": [str(supplier.id)],
            "supplier_urls": ["http://127.0.0.1:9/"], "payment_methods": ["pm_card_visa"],
            "bookable_dates": [(today + dt.timedelta(days=d)).isoformat() for d in (1, 7, 30)]}


def _customer():
    return UserFactory()


def _staff():
    """A catalog manager on the back-office staff group: the staff API's widest real role."""
    user = StaffUserFactory()
    user.groups.add(Group.objects.get(name=GROUP_NAME))
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="suppliers",
                                                        codename__in=CATALOG_PERMISSIONS))
    return user


def run_schemathesis(base_url: str, *, token: str, logout_tokens: tuple[str, str], data: dict[str, list[str]],
                     workdir: Path) -> subprocess.CompletedProcess:
    """`st run` as a subprocess, configured by tests/api/schemathesis.toml plus this run's data.
    The logout operations revoke the token they carry, so each gets a user of its own (the run's
    user would be logged out for the rest of it). One
    worker: Python 3.11's `ast.parse` (Hypothesis describes strategies with it) is not thread-safe
    and fails at random with "AST constructor recursion depth mismatch" in concurrent workers."""
    config = workdir / "schemathesis.toml"
    dictionaries = "".join(f"\n[dictionaries.{name}]\nvalues = {json.dumps(values)}\n" for name, values in data.items())
    config.write_text(CONFIG.read_text() + dictionaries + f"""
[[operations]]
include-name = "POST /api/v1/auth/logout/"
headers = {{ Authorization = "Token {logout_tokens[0]}" }}

[[operations]]
include-name = "POST /api/v1/auth/logout-all/"
headers = {{ Authorization = "Token {logout_tokens[1]}" }}
""")
    cmd = [str(Path(sys.executable).parent / "st"), "--config-file", str(config), "run", f"{base_url}/api/schema/",
           "--checks", "all", "--max-examples", str(MAX_EXAMPLES), "--workers", "1", "--seed", "11",
           "--no-color", "--request-timeout", "20", "-H", f"Authorization: Token {token}"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, cwd=workdir)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("role", ["customer", "staff"])
def test_schemathesis_finds_no_failure(live_server, fuzzable_server, tmp_path, role):
    user = _customer() if role == "customer" else _staff()
    started = time.monotonic()
    result = run_schemathesis(live_server.url, token=api_token_issue(user=user).token,
                              logout_tokens=(api_token_issue(user=UserFactory()).token,
                                             api_token_issue(user=UserFactory()).token), data=fuzzable_server,
                              workdir=tmp_path)
    output = f"schemathesis as {role}: {time.monotonic() - started:.0f}s\n{result.stdout}{result.stderr}"
    log = ROOT / ".test-logs" / f"schemathesis-{role}.txt"
    log.parent.mkdir(exist_ok=True)
    log.write_text(output)
    assert result.returncode == 0, output
    assert re.search(r"(\d+) generated, \1 passed", output), output  # every case ran and passed
