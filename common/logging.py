"""Log records carry request_id / reservation_id / event_id from the current context (F1).

Added when the record is made rather than by a handler filter, so every handler (the JSON
console handler, Sentry's, pytest's caplog) sees the same fields. It wraps
`Logger.makeRecord` rather than the record factory because the factory runs before a call's
`extra=` is applied, and logging refuses an `extra` key that is already set; here an explicit
`extra={"event_id": …}` wins and the context only fills what is missing.

The same hook lowers Django's `django.security.*` records (a forged Host header, a body over
the upload limit, too many fields) from ERROR to WARNING: they are what a client sent, and at
ERROR anyone could raise a Sentry alert on demand (issue "security"). Lowered here, before
any handler or Sentry's logging integration sees the record; a logger filter would not see
the records of `django.security`'s children."""

from __future__ import annotations

import logging
from typing import Any

from common.request_context import event_id_var, request_id_var, reservation_id_var

CLIENT_FAULT_LOGGERS = "django.security."
_CONTEXT = (("request_id", request_id_var), ("reservation_id", reservation_id_var), ("event_id", event_id_var))
_original_make_record = logging.Logger.makeRecord


def _make_record_with_context(self: logging.Logger, *args: Any, **kwargs: Any) -> logging.LogRecord:
    record = _original_make_record(self, *args, **kwargs)
    if record.levelno > logging.WARNING and record.name.startswith(CLIENT_FAULT_LOGGERS):
        record.levelno, record.levelname = logging.WARNING, "WARNING"
    for name, var in _CONTEXT:
        if name not in record.__dict__:
            value = var.get()
            if value is not None:
                setattr(record, name, value)
    return record


def install_context_on_log_records() -> None:
    """Idempotent; called from CommonConfig.ready()."""
    logging.Logger.makeRecord = _make_record_with_context  # type: ignore[method-assign]
