"""common.compiled.insert_row: what `objects.create()` writes, with the INSERT compiled once. Its
promise is the ORM's row and instance (every column, the auto key, auto_now_add), the ORM's
failure (IntegrityError, the atomic block marked for rollback, a savepoint still catching it),
and the ORM itself wherever a compiled INSERT could differ (save signals, expressions)."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.db import IntegrityError, OperationalError, connection, connections, transaction
from django.db.models import Model, Value
from django.db.models.functions import Concat
from django.db.models.signals import post_save, pre_save
from django.utils import timezone

from common import compiled
from common.compiled import insert_row
from outbox.models import OutboxEvent
from reservations.models import ReservationEvent
from tests.factories import ReservationFactory
from tests.support.db import connection_id, kill_connection

VOLATILE = {"id", "created_at"}


def row(model, pk) -> dict:
    stored = model.objects.filter(pk=pk).values().get()
    return {name: value for name, value in stored.items() if name not in VOLATILE}


@pytest.mark.django_db
def test_the_row_and_the_instance_are_the_orms():
    reservation = ReservationFactory()
    fields = {"reservation": reservation, "from_status": "PAID", "to_status": "CONFIRMED", "actor": "supplier",
              "reason": "supplier confirmed ñ", "data": {"booking_id": "B-1", "amounts": [1, 2.5, None]}}
    before = timezone.now()

    ours = insert_row(ReservationEvent(**fields))
    theirs = ReservationEvent.objects.create(**fields)

    assert isinstance(ours.pk, int)  # the auto key, read back from the database
    assert 0 < ours.pk < theirs.pk
    assert row(ReservationEvent, ours.pk) == row(ReservationEvent, theirs.pk)
    assert ours.created_at >= before  # auto_now_add set on the instance, as save() does
    assert ReservationEvent.objects.get(pk=ours.pk).created_at == ours.created_at
    assert (ours._state.adding, ours._state.db) == (False, "default")


@pytest.mark.django_db
def test_a_model_with_its_own_key_keeps_it_and_nulls_stay_null():
    event = insert_row(OutboxEvent(topic="t", dedup_key="k-1", payload={"a": 1}, available_at=timezone.now()))

    stored = OutboxEvent.objects.get(pk=event.pk)
    assert isinstance(event.pk, uuid.UUID)
    assert (stored.reservation_id, stored.locked_until, stored.payload, stored.errors) == (None, None, {"a": 1}, [])


@pytest.mark.django_db
def test_a_unique_violation_raises_and_marks_the_transaction_like_the_orm():
    insert_row(OutboxEvent(topic="t", dedup_key="same", available_at=timezone.now()))
    with transaction.atomic():
        with pytest.raises(IntegrityError):
            insert_row(OutboxEvent(topic="t", dedup_key="same", available_at=timezone.now()))
        assert connection.needs_rollback  # a later statement must not run in a failed transaction
        transaction.set_rollback(False)


@pytest.mark.django_db
def test_a_savepoint_still_catches_the_violation_and_the_transaction_goes_on():
    with transaction.atomic():
        insert_row(OutboxEvent(topic="t", dedup_key="once", available_at=timezone.now()))
        with pytest.raises(IntegrityError), transaction.atomic():
            insert_row(OutboxEvent(topic="t", dedup_key="once", available_at=timezone.now()))
        insert_row(OutboxEvent(topic="t", dedup_key="twice", available_at=timezone.now()))
    assert set(OutboxEvent.objects.values_list("dedup_key", flat=True)) == {"once", "twice"}


@pytest.mark.django_db
@pytest.mark.parametrize("signal", [pre_save, post_save], ids=["pre_save", "post_save"])
def test_a_model_with_save_signals_goes_through_the_orm(signal):
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance.reason)

    signal.connect(receiver, sender=ReservationEvent)
    try:
        insert_row(ReservationEvent(reservation=ReservationFactory(), actor="a", reason="signalled"))
    finally:
        signal.disconnect(receiver, sender=ReservationEvent)
    assert seen == ["signalled"]


@pytest.mark.django_db
def test_an_explicit_auto_key_is_written_even_after_rows_that_took_one_from_the_database():
    reservation = ReservationFactory()
    first = insert_row(ReservationEvent(reservation=reservation, actor="a"))

    chosen = insert_row(ReservationEvent(id=first.pk + 1000, reservation=reservation, actor="b"))

    assert chosen.pk == first.pk + 1000
    assert ReservationEvent.objects.get(pk=first.pk + 1000).actor == "b"


@pytest.mark.django_db
def test_a_value_its_field_cannot_prepare_marks_the_transaction_for_rollback():
    with transaction.atomic():
        with pytest.raises(TypeError):
            insert_row(ReservationEvent(reservation=ReservationFactory(), actor="a", data={"x": object()}))
        assert connection.needs_rollback
        transaction.set_rollback(False)


@pytest.mark.django_db
def test_a_model_that_cannot_be_compiled_is_asked_once_and_left_to_the_orm(monkeypatch):
    asked = []

    def not_compilable(connection, model, pk_set):
        asked.append(model)
        return compiled._NOT_COMPILABLE

    monkeypatch.setattr(compiled, "_compile_insert", not_compilable)
    monkeypatch.setattr(compiled._inserts, "cache", {})
    reservation = ReservationFactory()
    rows = [insert_row(ReservationEvent(reservation=reservation, actor="a", reason=str(i))) for i in range(3)]

    assert asked == [ReservationEvent]
    assert [ReservationEvent.objects.get(pk=r.pk).reason for r in rows] == ["0", "1", "2"]


@pytest.mark.django_db
def test_a_model_with_a_save_of_its_own_goes_through_it(monkeypatch):
    saved = []

    def save(self, *args, **kwargs):
        saved.append(self.reason)
        return Model.save(self, *args, **kwargs)

    monkeypatch.setattr(ReservationEvent, "save", save)
    event = insert_row(ReservationEvent(reservation=ReservationFactory(), actor="a", reason="its own save"))

    assert saved == ["its own save"]
    assert ReservationEvent.objects.get(pk=event.pk).reason == "its own save"


@pytest.mark.django_db
def test_an_expression_value_goes_through_the_orm():
    event = insert_row(ReservationEvent(reservation=ReservationFactory(), actor="a",
                                        reason=Concat(Value("made "), Value("by SQL"))))
    assert ReservationEvent.objects.get(pk=event.pk).reason == "made by SQL"


@pytest.mark.django_db
def test_an_unsaved_related_instance_is_refused_as_save_refuses_it():
    with pytest.raises(ValueError, match="unsaved related object"):
        insert_row(ReservationEvent(reservation=ReservationFactory.build(id=None), actor="a"))


@pytest.mark.django_db(transaction=True)
def test_threads_each_insert_on_their_own_connection():
    reservation = ReservationFactory()
    ids, errors = [], []

    def work(n):
        try:
            for i in range(5):
                ids.append(insert_row(ReservationEvent(reservation=reservation, actor=f"t{n}", reason=str(i))).pk)
        except Exception as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(n,)) for n in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    assert sorted(ids) == sorted(ReservationEvent.objects.filter(reservation=reservation).values_list("id", flat=True))
    assert len(set(ids)) == 15


@pytest.mark.django_db(transaction=True)
def test_a_killed_connection_fails_the_insert_and_the_next_connection_makes_it():
    """KILL CONNECTION from a second connection: the insert fails (nothing half-written), and the
    compiled INSERT runs on the connection Django opens next."""
    reservation = ReservationFactory()
    insert_row(ReservationEvent(reservation=reservation, actor="before"))  # compiled on this connection
    kill_connection(connection_id())

    with pytest.raises(OperationalError):
        insert_row(ReservationEvent(reservation=reservation, actor="lost"))
    connection.close()  # what Django does at the next request (CONN_HEALTH_CHECKS)
    after = insert_row(ReservationEvent(reservation=reservation, actor="after"))

    assert isinstance(after.pk, int)
    assert list(ReservationEvent.objects.filter(reservation=reservation).order_by("id").values_list(
        "actor", flat=True)) == ["before", "after"]
