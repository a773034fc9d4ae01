"""Per-request (or per-task) context carried into every log line (F1)."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
reservation_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("reservation_id", default=None)
event_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("event_id", default=None)


@contextmanager
def log_context(*, reservation_id: object = None, event_id: object = None) -> Iterator[None]:
    tokens = []
    if reservation_id is not None:
        tokens.append((reservation_id_var, reservation_id_var.set(str(reservation_id))))
    if event_id is not None:
        tokens.append((event_id_var, event_id_var.set(str(event_id))))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
