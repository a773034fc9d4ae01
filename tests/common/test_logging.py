from __future__ import annotations

import json
import logging

from django.conf import settings

from common.logging import RequestContextFilter
from common.request_context import log_context, request_id_var


def _render(record: logging.LogRecord) -> dict:
    formatter_conf = settings.LOGGING["formatters"]["json"]
    from pythonjsonlogger.json import JsonFormatter

    formatter = JsonFormatter(formatter_conf["fmt"], rename_fields=formatter_conf["rename_fields"])
    RequestContextFilter().filter(record)
    return json.loads(formatter.format(record))


def test_log_lines_are_json_with_request_reservation_and_event_ids():
    token = request_id_var.set("req-42")
    try:
        with log_context(reservation_id="res-1", event_id="evt-9"):
            record = logging.getLogger("reserve.test").makeRecord(
                "reserve.test", logging.INFO, __file__, 1, "reservation paid", (), None)
            line = _render(record)
    finally:
        request_id_var.reset(token)

    assert line["message"] == "reservation paid"
    assert line["level"] == "INFO"
    assert (line["request_id"], line["reservation_id"], line["event_id"]) == ("req-42", "res-1", "evt-9")


def test_context_does_not_leak_after_the_block():
    with log_context(reservation_id="res-1"):
        pass
    record = logging.getLogger("reserve.test").makeRecord("reserve.test", logging.INFO, __file__, 1, "x", (), None)
    assert "reservation_id" not in _render(record)
