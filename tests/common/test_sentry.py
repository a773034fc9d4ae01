"""Sentry (F2) with the real SDK, sending to a local ingest stand-in: environment, release,
the request_id tag, failed django-q2 tasks, and no guest e-mail or name in any event."""

from __future__ import annotations

import json

import pytest
import sentry_sdk
from django_q.signals import post_execute
from rest_framework.test import APIClient

GUEST_EMAIL = "ada.lovelace@example.com"
GUEST_NAME = "Ada Lovelace"


@pytest.mark.urls("tests.urls_boom")
def test_an_unhandled_error_is_reported_with_environment_release_and_request_id_but_no_guest_pii(sentry):
    response = APIClient(raise_request_exception=False).post(
        "/api/v1/test-boom/", {"guest_email": GUEST_EMAIL, "guest_name": GUEST_NAME, "note": f"for {GUEST_EMAIL}"},
        format="json", HTTP_X_REQUEST_ID="req-sentry-1")
    assert response.status_code == 500
    sentry_sdk.flush(timeout=5)

    [event] = [e for e in sentry.events() if e.get("exception")]
    assert (event["environment"], event["release"]) == ("staging", "reserve@1.2.3")
    assert event["tags"]["request_id"] == "req-sentry-1"
    text = b"".join(sentry.raw).decode()
    assert GUEST_EMAIL not in text
    assert GUEST_NAME not in text
    assert "[redacted]" in json.dumps(event["request"])


@pytest.mark.django_db
def test_a_failed_django_q_task_is_reported(sentry):
    from common.task_errors import connect_task_error_reporting

    connect_task_error_reporting()
    try:
        post_execute.send(sender="django_q", task={
            "id": "t1", "name": "hotel-kilo", "func": "payments.services.payments_reconcile",
            "group": "payments reconcile", "success": False, "result": f"boom : Traceback ... KeyError: {GUEST_EMAIL}"})
        post_execute.send(sender="django_q", task={"id": "t2", "name": "ok", "func": "x.y", "success": True,
                                                   "result": None})
        sentry_sdk.flush(timeout=5)
    finally:
        post_execute.disconnect(dispatch_uid="sentry_failed_tasks")

    [event] = sentry.events()
    assert event["message"] == "task failed: payments.services.payments_reconcile"
    assert event["tags"]["task_group"] == "payments reconcile"
    assert GUEST_EMAIL not in json.dumps(event)
