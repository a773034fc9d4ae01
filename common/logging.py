import logging

from common.request_context import event_id_var, request_id_var, reservation_id_var


class RequestContextFilter(logging.Filter):
    """Adds request_id / reservation_id / event_id to every record (F1)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in (
            ("request_id", request_id_var),
            ("reservation_id", reservation_id_var),
            ("event_id", event_id_var),
        ):
            if getattr(record, name, None) is None:
                value = var.get()
                if value is not None:
                    setattr(record, name, value)
        return True
