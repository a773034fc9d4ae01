"""The outbox is a library: apps register their topics' handlers (and schedules) from their own
AppConfig.ready(); the outbox imports none of them (import contract, pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from outbox.handlers import TopicHandler, handler_for, register_topic, registered_topics
from outbox.schedules import periodic_tasks
from tests.support.servers import ROOT


def test_every_topic_the_apps_enqueue_has_its_handler_registered_by_its_app():
    assert set(registered_topics()) >= {
        "supplier.book", "supplier.cancel",  # suppliers
        "payment.refund", "payment.cancel_intent", "reservation.compensate",  # payments
        "email.customer",  # reservations (guest e-mails)
        "alert.email", "alert.slack",  # the outbox's own staff alerts
    }
    assert type(handler_for("supplier.book")).__module__ == "suppliers.booking"
    assert type(handler_for("payment.refund")).__module__ == "payments.services.refunds"


def test_a_topic_cannot_be_claimed_by_a_second_handler():
    class Other(TopicHandler):
        pass

    with pytest.raises(ValueError, match="already has handler"):
        register_topic("supplier.book", Other())
    register_topic("supplier.book", type(handler_for("supplier.book"))())  # the same handler again: fine


def test_each_app_registers_its_schedules():
    assert {task.name: task.func for task in periodic_tasks()} == {
        "outbox drain": "outbox.tasks.outbox_drain_task",
        "idempotency keys purge": "common.idempotency.idempotency_keys_purge",
        "api tokens purge": "common.tokens.api_tokens_purge_expired",
        "reservation expiry": "reservations.expiry.reservations_expire_due",
        "payments reconcile": "payments.services.payments_reconcile",
        "ledgers reconcile": "ledgers.services.ledgers_reconcile_scheduled",
    }


def test_the_import_contracts_hold():
    """Dependencies point one way; the Stripe SDK only in the gateway; HTTP only in the supplier
    adapter and the alert sender (`make lint` runs the same check)."""
    lint_imports = str(Path(sys.executable).parent / "lint-imports")
    lint = subprocess.run([lint_imports, "--no-logo", "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, check=False)
    assert lint.returncode == 0, lint.stdout[-3000:] + lint.stderr[-2000:]
    assert "3 kept, 0 broken" in lint.stdout
