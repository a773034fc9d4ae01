"""Log records carry request_id / reservation_id / event_id from the current context (F1).

Done in the record factory rather than in a handler filter, so every handler (the JSON
console handler, Sentry's, pytest's caplog) sees the same fields."""

from __future__ import annotations

import logging
from typing import Any

from common.request_context import event_id_var, request_id_var, reservation_id_var

_CONTEXT = (("request_id", request_id_var), ("reservation_id", reservation_id_var), ("event_id", event_id_var))
_installed = False


def install_context_record_factory() -> None:
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        for name, var in _CONTEXT:
            value = var.get()
            if value is not None:
                setattr(record, name, value)  # `extra=` given to the call still wins: set later
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
