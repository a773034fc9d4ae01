from __future__ import annotations

import json
import logging
import uuid

import pytest
from django.conf import settings

from common.logging import install_context_on_log_records
from common.request_context import log_context, request_id_var, reservation_id_var


def _record(message: str) -> logging.LogRecord:
    install_context_on_log_records()  # done by CommonConfig.ready(); idempotent
    return logging.getLogger("reserve.test").makeRecord("reserve.test", logging.INFO, __file__, 1, message, (), None)


def _render(record: logging.LogRecord) -> dict:
    formatter_conf = settings.LOGGING["formatters"]["json"]
    from pythonjsonlogger.json import JsonFormatter

    formatter = JsonFormatter(formatter_conf["fmt"], rename_fields=formatter_conf["rename_fields"])
    return json.loads(formatter.format(record))


def test_log_lines_are_json_with_request_reservation_and_event_ids():
    token = request_id_var.set("req-42")
    try:
        with log_context(reservation_id="res-1", event_id="evt-9"):
            line = _render(_record("reservation paid"))
    finally:
        request_id_var.reset(token)

    assert line["message"] == "reservation paid"
    assert line["level"] == "INFO"
    assert (line["request_id"], line["reservation_id"], line["event_id"]) == ("req-42", "res-1", "evt-9")


def test_context_does_not_leak_after_the_block():
    with log_context(reservation_id="res-1"):
        pass
    assert "reservation_id" not in _render(_record("x"))


@pytest.mark.django_db
def test_api_log_lines_name_the_reservation_of_the_url(api, monkeypatch, caplog):
    from reservations.api import views

    real = views.selectors.reservation_get_for_user

    def logging_lookup(**kwargs):
        logging.getLogger("reserve.test").info("looking the reservation up")
        return real(**kwargs)

    monkeypatch.setattr(views.selectors, "reservation_get_for_user", logging_lookup)
    missing = uuid.uuid4()
    with caplog.at_level(logging.INFO, logger="reserve.test"):
        response = api.get(f"/api/v1/reservations/{missing}/", HTTP_X_REQUEST_ID="req-log-1")

    assert response.status_code == 404
    record = next(r for r in caplog.records if r.getMessage() == "looking the reservation up")
    assert (record.request_id, record.reservation_id) == ("req-log-1", str(missing))
    assert reservation_id_var.get() is None  # nothing leaks into the next request


def test_an_explicit_extra_wins_over_the_context():
    install_context_on_log_records()
    with log_context(event_id="from-context"):
        record = logging.getLogger("reserve.test").makeRecord(
            "reserve.test", logging.INFO, __file__, 1, "x", (), None, extra={"event_id": "explicit"})
    assert record.event_id == "explicit"
