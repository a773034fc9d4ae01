"""Columns read as the database's text (common.text_columns) are written exactly as the answers
write the ORM's values: on MariaDB here, and for the forms SQLite (the run command's database)
and MySQL's char(32) UUIDs give."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from common.text_columns import as_text, utc_datetime_text, utc_iso_text, uuid_text
from reservations.api.serializers import api_datetime
from reservations.models import Reservation
from tests.factories import ReservationFactory


@pytest.mark.django_db
@pytest.mark.parametrize("microsecond", [0, 7, 606748])
def test_mariadb_text_is_written_as_the_orm_values_are(microsecond):
    when = dt.datetime(2026, 11, 30, 2, 43, 46, microsecond, tzinfo=dt.UTC)
    reservation = ReservationFactory(expires_at=when)
    read = Reservation.objects.filter(pk=reservation.pk).annotate(
        id_text=as_text("id"), expires_text=as_text("expires_at")).values_list("id_text", "expires_text").get()
    assert uuid_text(read[0]) == str(reservation.pk)
    assert utc_iso_text(read[1]) == api_datetime(when, dt.UTC)
    assert utc_datetime_text(read[1]) == when


def test_char32_uuids_are_written_with_hyphens():
    value = uuid.uuid4()
    assert uuid_text(value.hex) == str(value)
    assert uuid_text(str(value)) == str(value)
    assert uuid_text(str(value).upper()) == str(value)
    assert uuid_text(None) is None


@pytest.mark.parametrize(("text", "written"), [
    ("2026-11-30 02:43:46", "2026-11-30T02:43:46Z"),  # SQLite: a whole second has no fraction
    ("2026-11-30 02:43:46.000000", "2026-11-30T02:43:46Z"),  # MariaDB DATETIME(6)
    ("2026-11-30 02:43:46.000100", "2026-11-30T02:43:46.000100Z"),
    (None, None),
])
def test_datetime_text_is_written_as_isoformat_in_utc(text, written):
    assert utc_iso_text(text) == written
    if text is not None:
        assert utc_iso_text(text) == api_datetime(utc_datetime_text(text), dt.UTC)
