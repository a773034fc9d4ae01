"""common.compiled.CompiledQuery: a query the ORM compiled once, executed with new values. Its
promise is the ORM's answer without the ORM's per-call compiling: the same rows, the same
converted values, each call bound to its own values, on every thread and after a reconnect."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import DataError, OperationalError, connection, transaction
from django.utils import timezone

from common import compiled
from common.compiled import CompiledCount, CompiledQuery, Many, versioned_update_rows
from payments.models import Payment, PaymentStatus
from reservations.models import Reservation
from tests.factories import ReservationFactory, UserFactory
from tests.payments.factories import PaymentFactory
from tests.support.db import connection_id, kill_connection

_USER = Reservation._meta.get_field("user")
_PK = Reservation._meta.pk
BY_USER = CompiledQuery(lambda user: Reservation.objects.filter(user_id=user).order_by("created_at", "id"),
                        user=_USER)
ONE_OF_USER = CompiledQuery(lambda pk, user: Reservation.objects.filter(pk=pk, user_id=user), pk=_PK, user=_USER)
PAYMENTS_OF = CompiledQuery(lambda ids: Payment.objects.filter(reservation_id__in=ids).order_by("created_at"),
                            ids=Many(Payment._meta.get_field("reservation")))
COUNT_OF_USER = CompiledCount(lambda user: Reservation.objects.filter(user_id=user), group_by="user_id", user=_USER)


def values(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}


@pytest.mark.django_db
def test_each_call_is_bound_to_its_own_values():
    ada, bob = UserFactory(), UserFactory()
    adas = [ReservationFactory(user=ada) for _ in range(2)]
    bobs = [ReservationFactory(user=bob) for _ in range(3)]

    for _ in range(2):  # alternately, so that no call keeps the values of the one before
        assert [r.pk for r in BY_USER.execute(user=ada.pk)] == [r.pk for r in adas]
        assert [r.pk for r in BY_USER.execute(user=bob.pk)] == [r.pk for r in bobs]
    assert [r.pk for r in ONE_OF_USER.execute(pk=bobs[0].pk, user=bob.pk)] == [bobs[0].pk]
    assert ONE_OF_USER.execute(pk=bobs[0].pk, user=ada.pk) == []  # both filters are bound
    assert COUNT_OF_USER.execute(user=bob.pk) == 3
    assert COUNT_OF_USER.execute(user=UserFactory().pk) == 0


@pytest.mark.django_db
def test_the_rows_are_the_orms_rows_with_the_same_converted_values():
    reservation = ReservationFactory(expires_at=timezone.now() + dt.timedelta(microseconds=123457), locale="es")
    PaymentFactory(reservation=reservation, status=PaymentStatus.REQUIRES_ACTION, client_secret="pi_secret",
                   next_action={"type": "redirect_to_url", "redirect_to_url": {"url": "https://bank.test/ñ"}})

    [compiled] = ONE_OF_USER.execute(pk=str(reservation.pk), user=reservation.user_id)  # a string, as URLs give
    [payment] = PAYMENTS_OF.execute(ids=[reservation.pk])

    assert values(compiled) == values(Reservation.objects.get(pk=reservation.pk))
    assert values(payment) == values(Payment.objects.get(reservation=reservation))
    assert compiled.expires_at.tzinfo is not None
    assert isinstance(payment.next_action, dict)
    assert compiled._state.adding is False
    assert compiled._state.db == "default"


@pytest.mark.django_db
def test_a_window_is_that_slice_of_the_ordered_rows():
    user = UserFactory()
    rows = [ReservationFactory(user=user) for _ in range(5)]
    ordered = list(Reservation.objects.filter(user=user).order_by("created_at", "id"))

    for window in (slice(0, 2), slice(2, 4), slice(4, 6), slice(5, 7)):
        assert BY_USER.execute(user=user.pk, window=window) == ordered[window]
    assert len(rows) == 5


@pytest.mark.django_db
def test_a_list_parameter_takes_any_length():
    reservations = [ReservationFactory() for _ in range(3)]
    payments = [PaymentFactory(reservation=r) for r in reservations]

    assert {p.pk for p in PAYMENTS_OF.execute(ids=[reservations[1].pk])} == {payments[1].pk}
    assert {p.pk for p in PAYMENTS_OF.execute(ids=[r.pk for r in reservations])} == {p.pk for p in payments}
    assert {p.pk for p in PAYMENTS_OF.execute(ids=[reservations[2].pk, reservations[0].pk])} == {
        payments[2].pk, payments[0].pk}
    assert PAYMENTS_OF.execute(ids=[]) == []


@pytest.mark.django_db
def test_a_parameter_the_query_does_not_carry_is_refused():
    forgetful = CompiledQuery(lambda pk, user: Reservation.objects.filter(pk=pk), pk=_PK, user=_USER)
    with pytest.raises(ImproperlyConfigured, match="'user'"):
        forgetful.execute(pk=ReservationFactory().pk, user=1)


@pytest.mark.django_db
def test_a_constant_slice_is_compiled_with_the_query_and_a_window_on_it_is_refused():
    user = UserFactory()
    ReservationFactory.create_batch(4, user=user)
    first_three = CompiledQuery(lambda user: Reservation.objects.filter(user_id=user).order_by("created_at")[:3],
                                user=_USER)
    assert first_three.execute(user=user.pk) == list(Reservation.objects.filter(user=user).order_by("created_at")[:3])
    with pytest.raises(ImproperlyConfigured, match="window"):
        first_three.execute(user=user.pk, window=slice(0, 2))


@pytest.mark.django_db
def test_prefetches_are_refused_at_compile():
    with pytest.raises(ImproperlyConfigured):
        CompiledQuery(lambda user: Reservation.objects.filter(user_id=user).prefetch_related("payments"),
                      user=_USER).execute(user=1)


@pytest.mark.django_db(transaction=True)
def test_a_killed_connection_fails_the_call_and_the_next_connection_runs_it():
    reservation = ReservationFactory()
    assert ONE_OF_USER.execute(pk=reservation.pk, user=reservation.user_id)  # compiled on this connection
    kill_connection(connection_id())

    with pytest.raises(OperationalError):
        ONE_OF_USER.execute(pk=reservation.pk, user=reservation.user_id)
    connection.close()  # what Django does at the next request (CONN_HEALTH_CHECKS)
    assert [r.pk for r in ONE_OF_USER.execute(pk=reservation.pk, user=reservation.user_id)] == [reservation.pk]


@pytest.mark.django_db(transaction=True)
def test_threads_each_run_it_on_their_own_connection():
    users = [UserFactory() for _ in range(4)]
    expected = {user.pk: {ReservationFactory(user=user).pk for _ in range(user.pk % 3 + 1)} for user in users}
    seen: dict[int, list[set]] = {user.pk: [] for user in users}
    start = threading.Barrier(len(users))

    def read(user_id: int) -> None:
        try:
            start.wait()
            for _ in range(20):
                seen[user_id].append({r.pk for r in BY_USER.execute(user=user_id)})
        finally:
            connection.close()

    threads = [threading.Thread(target=read, args=(user.pk,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(rows == [expected[user_id]] * 20 for user_id, rows in seen.items())


@pytest.mark.django_db
def test_a_compiled_update_writes_only_the_version_it_was_given():
    payment = PaymentFactory()
    other = PaymentFactory()

    assert versioned_update_rows(Payment, pk=payment.pk, version=payment.version + 1, values={"status": "FAILED"}) == 0
    assert versioned_update_rows(Payment, pk=payment.pk, version=payment.version, values={"status": "FAILED"}) == 1
    payment_after, other_after = Payment.objects.get(pk=payment.pk), Payment.objects.get(pk=other.pk)
    assert (payment_after.status, payment_after.version) == ("FAILED", payment.version + 1)
    assert (other_after.status, other_after.version) == (other.status, other.version)  # bound to its own pk


@pytest.mark.django_db
def test_a_compiled_update_writes_nulls_json_and_datetimes_as_the_orm_does():
    payment = PaymentFactory()
    when = timezone.now() + dt.timedelta(microseconds=7)
    action = {"type": "redirect_to_url", "redirect_to_url": {"url": "https://bank.test/ñ"}}

    versioned_update_rows(Payment, pk=payment.pk, version=1, values={"in_flight_for": None, "next_action": action,
                                                                     "updated_at": when})
    versioned_update_rows(Payment, pk=payment.pk, version=2, values={"in_flight_for": payment.reservation_id,
                                                                     "next_action": None, "updated_at": when})
    versioned_update_rows(Payment, pk=payment.pk, version=3, values={"in_flight_for": None, "next_action": action,
                                                                     "updated_at": when})

    stored = Payment.objects.get(pk=payment.pk)
    assert (stored.in_flight_for, stored.next_action, stored.updated_at, stored.version) == (None, action, when, 4)


@pytest.mark.django_db
def test_a_boolean_column_is_left_to_the_orm_and_still_written():
    reservation = ReservationFactory(holds_capacity=False)
    assert versioned_update_rows(Reservation, pk=reservation.pk, version=reservation.version,
                                 values={"holds_capacity": True}) == 1
    assert Reservation.objects.get(pk=reservation.pk).holds_capacity is True


@pytest.mark.django_db
def test_a_failed_compiled_update_marks_the_transaction_for_rollback():
    payment = PaymentFactory()
    with transaction.atomic():
        with pytest.raises(DataError):  # longer than the column: refused by MariaDB's strict mode
            versioned_update_rows(Payment, pk=payment.pk, version=payment.version, values={"currency": "x" * 500})
        assert transaction.get_connection().needs_rollback
        transaction.set_rollback(False)


@pytest.mark.django_db
def test_a_related_instance_is_written_as_its_key():
    payment, elsewhere = PaymentFactory(), ReservationFactory()
    assert versioned_update_rows(Payment, pk=payment.pk, version=payment.version,
                                 values={"reservation": elsewhere}) == 1
    assert Payment.objects.get(pk=payment.pk).reservation_id == elsewhere.pk


@pytest.mark.django_db
def test_two_parameters_never_share_a_marker(monkeypatch):
    """The random source repeats itself: the second integer marker is drawn again, so that
    `check_failures` and `version` (same range) keep their own slots."""
    draws = iter([5, 5, 5, 9, 11, 13, 17, 19, 23, 29])
    monkeypatch.setattr(compiled.secrets, "randbelow", lambda _: next(draws))
    monkeypatch.setattr(compiled._updates, "cache", {})  # compile afresh, with these draws
    payment = PaymentFactory()

    assert versioned_update_rows(Payment, pk=payment.pk, version=1, values={"check_failures": 3}) == 1
    stored = Payment.objects.get(pk=payment.pk)
    assert (stored.check_failures, stored.version) == (3, 2)


def test_none_is_refused_where_the_orm_would_write_is_null():
    with pytest.raises(ValueError, match="None"):
        ONE_OF_USER.execute(pk=None, user=1)


@pytest.mark.django_db(transaction=True)
def test_a_compiled_select_for_update_is_refused_outside_a_transaction_on_every_call():
    reservation = ReservationFactory()
    locking = CompiledQuery(lambda pk: Reservation.objects.select_for_update().filter(pk=pk), pk=_PK)
    with transaction.atomic():
        assert locking.execute(pk=reservation.pk) == [reservation]  # compiled here, inside a transaction
    with pytest.raises(transaction.TransactionManagementError):
        locking.execute(pk=reservation.pk)


@pytest.mark.django_db
def test_rows_built_without_init_are_what_from_db_builds():
    """Plain models' rows skip Model.__init__ (common.compiled._plain_instance): the instance
    must be indistinguishable, its attributes and its state, and usable as the ORM's is."""
    reservation = ReservationFactory(locale="es")
    [fast] = ONE_OF_USER.execute(pk=reservation.pk, user=reservation.user_id)
    orm = Reservation.objects.get(pk=reservation.pk)

    assert {k: v for k, v in vars(fast).items() if k != "_state"} == {
        k: v for k, v in vars(orm).items() if k != "_state"}
    assert (fast._state.adding, fast._state.db) == (orm._state.adding, orm._state.db) == (False, "default")
    assert type(fast) is Reservation
    assert fast.user == reservation.user  # relations load, and are cached, as the ORM's do
    assert fast._state.fields_cache["user"] == reservation.user
    fast.guest_name = "Grace"
    fast.save(update_fields=["guest_name"])  # an UPDATE, not an INSERT: the state says "from the database"
    assert Reservation.objects.get(pk=reservation.pk).guest_name == "Grace"


@pytest.mark.django_db
def test_a_model_with_init_signal_receivers_is_built_through_init():
    from django.db.models.signals import post_init

    reservation = ReservationFactory()
    seen = []

    def receiver(sender, instance, **kwargs):
        seen.append(instance.pk)

    post_init.connect(receiver, sender=Reservation)
    try:
        assert len(ONE_OF_USER.execute(pk=reservation.pk, user=reservation.user_id)) == 1
    finally:
        post_init.disconnect(receiver, sender=Reservation)
    assert seen == [reservation.pk]


def test_only_models_whose_from_db_is_plain_are_built_without_init(monkeypatch):
    attnames = [field.attname for field in Reservation._meta.concrete_fields]
    assert compiled._builds_plainly(Reservation, attnames)
    assert not compiled._builds_plainly(Reservation, attnames[:-1])  # deferred columns: from_db fills them
    django_from_db = Reservation.from_db.__func__

    def own_from_db(cls, db, names, values):
        return django_from_db(cls, db, names, values)

    monkeypatch.setattr(Reservation, "from_db", classmethod(own_from_db))
    assert not compiled._builds_plainly(Reservation, attnames)  # a model's own from_db is always called
