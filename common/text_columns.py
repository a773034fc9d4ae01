"""Columns read as the text the database already holds, for answers that only write them out.

The ORM converts each UUID into a `uuid.UUID` and each DATETIME into an aware `datetime` (after
mysqlclient has parsed it in Python), and an answer turns them straight back into text: for the
40 rows of a list page that was a third of its Python time (bench/profile_api.py, issue
"performance"). Read with `as_text`, such a column arrives as the database's own text, and the
functions below write it as the answers do. No library does this; it is a few lines.
"""

from __future__ import annotations

import datetime as dt
import uuid

from django.db.models import CharField, F, QuerySet
from django.db.models.functions import Cast


def as_text(column: str) -> Cast:
    """`column` as text: `CAST(column AS char)` (MariaDB), `CAST(column AS text)` (SQLite), with
    no converter on the way out."""
    return Cast(F(column), output_field=CharField())


def values_with_text(queryset: QuerySet, names: tuple[str, ...], text: dict[str, str]) -> QuerySet:
    """`queryset.values_list(*names)`, where each name in `text` is that column (its value)
    read `as_text`."""
    annotated = queryset.annotate(**{f"{name}_text": as_text(column) for name, column in text.items()})
    return annotated.values_list(*(f"{name}_text" if name in text else name for name in names))


def uuid_text(text: str | None) -> str | None:
    """A UUIDField read `as_text`, as `str(uuid.UUID(...))` writes it: MariaDB's native uuid
    type gives that already; a char(32) column (SQLite, MySQL) gives the hex."""
    if text is None or (len(text) == 36 and text.islower()):
        return text
    return str(uuid.UUID(text))


def utc_datetime_text(text: str | None) -> dt.datetime | None:
    """A DateTimeField read `as_text` (USE_TZ: stored in UTC, without a zone) as the aware datetime
    the ORM gives, for answers written in another time zone than UTC."""
    if text is None:
        return None
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def utc_iso_text(text: str | None) -> str | None:
    """A DateTimeField read `as_text`, written as `datetime.isoformat()` writes the UTC datetime
    with "Z" for "+00:00" (DRF's format for UTC): "2026-11-30 02:43:46.606748" (MariaDB's
    DATETIME(6), SQLite's text) becomes "2026-11-30T02:43:46.606748Z", and a whole second is
    written without a fraction, as isoformat() does."""
    if text is None:
        return None
    if text.endswith(".000000"):
        text = text[:-7]
    return text.replace(" ", "T", 1) + "Z"
