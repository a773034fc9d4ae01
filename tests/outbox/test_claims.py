"""C2: leases, SKIP LOCKED claims, per-reservation order."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
import time
from collections import Counter

import pytest
from django.conf import settings
from django.db import OperationalError, connection, transaction
from django.utils import timezone

from outbox import delivery
from outbox.delivery import outbox_claim_due, outbox_deliver, outbox_drain_once
from outbox.models import UNFINISHED, OutboxEvent, OutboxStatus
from outbox.services import outbox_enqueue
from reservations.models import Reservation, ReservationStatus
from suppliers.models import SupplierRequest
from tests.support.outbox import drain_all, make_due, paid_reservation


def _enqueue_cancel(reservation):
    with transaction.atomic():
        return outbox_enqueue(topic="supplier.cancel", dedup_key=f"supplier.cancel:{reservation.id}",
                              payload={"reservation_id": str(reservation.id)}, reservation=reservation)


@pytest.mark.django_db
def test_a_live_lease_is_not_claimed_again(fake_supplier, product):
    paid_reservation(product)

    [claimed] = outbox_claim_due(worker="A", limit=5)

    assert claimed.status == OutboxStatus.IN_FLIGHT
    assert claimed.locked_by == "A"
    assert claimed.attempts == 1
    assert outbox_claim_due(worker="B", limit=5) == []


@pytest.mark.django_db
def test_an_expired_lease_is_taken_over_and_the_old_workers_result_is_dropped(fake_supplier, product):
    reservation = paid_reservation(product)
    [a] = outbox_claim_due(worker="A", limit=1)
    OutboxEvent.objects.filter(pk=a.pk).update(locked_until=timezone.now() - dt.timedelta(seconds=1))

    [b] = outbox_claim_due(worker="B", limit=1)

    assert (b.pk, b.locked_by, b.attempts) == (a.pk, "B", 2)
    assert outbox_deliver(event=a) == "stale"  # A comes back late: its answer is not applied
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.PAID
    assert outbox_deliver(event=b) == "delivered"
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONFIRMED
    assert len(fake_supplier.bookings(reference=reservation.code)) == 1
    assert SupplierRequest.objects.filter(reservation=reservation).count() == 2  # both calls audited


@pytest.mark.django_db
def test_a_reservations_later_event_waits_for_the_earlier_one(fake_supplier, product):
    reservation = paid_reservation(product)
    cancel = _enqueue_cancel(reservation)

    [first] = outbox_claim_due(worker="A", limit=10)

    assert first.topic == "supplier.book"
    assert outbox_claim_due(worker="B", limit=10) == []  # the cancel must not overtake the book
    outbox_deliver(event=first)
    make_due()  # the waiting cancel stepped back by a second when it was found blocked
    [second] = [e for e in outbox_claim_due(worker="B", limit=10) if e.topic != "email.customer"]  # the guest's
    assert second.pk == cancel.pk


@pytest.mark.django_db
def test_a_backed_off_book_still_holds_back_the_cancel(fake_supplier, product):
    fake_supplier.set_mode(product.code, "fail")
    reservation = paid_reservation(product)
    outbox_drain_once()  # first attempt fails: retry in 15 s
    _enqueue_cancel(reservation)

    assert outbox_claim_due(worker="B", limit=10) == []


@pytest.mark.django_db
def test_one_batch_takes_one_event_per_reservation_and_others_in_parallel(fake_supplier, product):
    r1, r2 = paid_reservation(product), paid_reservation(product)
    _enqueue_cancel(r1)

    claimed = outbox_claim_due(worker="A", limit=10)

    assert sorted((e.reservation_id, e.topic) for e in claimed) == sorted(
        [(r1.id, "supplier.book"), (r2.id, "supplier.book")])


@pytest.mark.django_db(transaction=True)
def test_two_drainers_in_parallel_never_deliver_one_event_twice(fake_supplier, product, monkeypatch):
    fake_supplier.set_mode(product.code, "slow:0.05")  # each call takes a while: claims overlap
    reservations = [paid_reservation(product) for _ in range(20)]
    delivered: Counter[str] = Counter()
    errors: list[BaseException] = []
    start = threading.Barrier(2)
    # Hold both drainers inside their first claim transaction at the same moment (after their
    # SELECT … FOR UPDATE SKIP LOCKED, before their UPDATE): without the row locks both
    # would have selected the same events. A drainer blocked on the other's locks never
    # arrives, so the barrier gives up after a bound instead of hanging.
    inside_claim = threading.Barrier(2, timeout=3)
    first_in_line = delivery._first_in_line

    def claim_together(candidates, now):
        if not getattr(local, "synced", False):
            local.synced = True
            with contextlib.suppress(threading.BrokenBarrierError):
                inside_claim.wait()
        return first_in_line(candidates, now)

    local = threading.local()
    monkeypatch.setattr(delivery, "_first_in_line", claim_together)

    def drainer(name: str) -> None:
        try:
            start.wait(timeout=10)
            for _ in range(500):
                delivered[name] += outbox_drain_once(worker=name, limit=3).delivered
                if not OutboxEvent.objects.filter(status__in=UNFINISHED).exists():
                    return
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=drainer, args=(n,)) for n in ("A", "B")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    assert not errors
    assert delivered["A"] > 0
    assert delivered["B"] > 0
    assert delivered["A"] + delivered["B"] == 20 + 20  # each booking, and the guest e-mail its confirmation enqueued
    state = fake_supplier.state()
    assert state["requests"]["POST /bookings"] == 20
    assert set(state["key_requests"].values()) == {1}
    assert SupplierRequest.objects.count() == 20
    assert set(Reservation.objects.filter(pk__in=[r.pk for r in reservations]).values_list("status", flat=True)) == {
        ReservationStatus.CONFIRMED}
    assert set(OutboxEvent.objects.values_list("attempts", flat=True)) == {1}
    assert OutboxEvent.objects.count() == 40


@pytest.mark.django_db(transaction=True)
def test_drain_all_settles_a_mixed_backlog(fake_supplier, product):
    fake_supplier.set_mode(product.code, "fail_then_confirm:2")
    reservation = paid_reservation(product)

    drain_all()

    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONFIRMED
    assert OutboxEvent.objects.get(reservation=reservation).attempts == 3


@pytest.mark.django_db(transaction=True)
def test_the_drain_loop_picks_up_an_event_committed_while_it_waits(fake_supplier, product):
    from outbox.delivery import outbox_drain

    result: dict[str, object] = {}

    def run() -> None:
        try:
            result["stats"] = outbox_drain(duration_seconds=4)
        finally:
            connection.close()

    drain = threading.Thread(target=run)
    drain.start()
    reservation = paid_reservation(product)  # committed after the drain started, nobody enqueues it
    drain.join(timeout=30)

    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONFIRMED
    assert result["stats"].delivered == 2  # the booking, then the guest e-mail its confirmation enqueued


@pytest.mark.django_db
def test_the_on_commit_task_delivers_its_event(fake_supplier, product):
    from outbox.tasks import outbox_deliver_event

    reservation = paid_reservation(product)
    event = OutboxEvent.objects.get(reservation=reservation)

    assert outbox_deliver_event(str(event.pk)) == "delivered"
    assert outbox_deliver_event(str(event.pk)) == "not claimable"  # a duplicate queue delivery is harmless


@pytest.mark.django_db(transaction=True)
def test_the_drain_loop_survives_losing_its_database_connection(fake_supplier, product):
    from outbox.delivery import outbox_drain
    from tests.support.db import connection_id, kill_connection, raw_connection

    result: dict[str, object] = {}
    ids: dict[str, int] = {}

    def run() -> None:
        try:
            ids["drain"] = connection_id()
            result["stats"] = outbox_drain(duration_seconds=6)
        except BaseException as exc:
            result["error"] = exc
        finally:
            connection.close()

    drain = threading.Thread(target=run)
    drain.start()
    from tests.support.outbox import wait_until

    wait_until(lambda: "drain" in ids, message="the drain's connection")
    kill_connection(ids["drain"])
    watcher = raw_connection()
    wait_until(lambda: _connection_gone(watcher, ids["drain"]), message="the kill")
    watcher.close()
    reservation = paid_reservation(product)
    drain.join(timeout=30)

    assert "error" not in result
    reservation.refresh_from_db()
    assert reservation.status == ReservationStatus.CONFIRMED
    assert result["stats"].delivered == 2  # the booking, then the guest e-mail its confirmation enqueued


def _connection_gone(conn, conn_id: int) -> bool:
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s", [conn_id])
        return cur.fetchone()[0] == 0


@pytest.mark.django_db
def test_events_waiting_behind_their_reservation_do_not_starve_others(fake_supplier, product):
    fake_supplier.set_mode(product.code, "fail")
    blocked = [paid_reservation(product) for _ in range(4)]
    outbox_drain_once()  # every book fails once: each waits 15 s
    for reservation in blocked:
        _enqueue_cancel(reservation)  # due now, but behind its book
    fake_supplier.set_mode(product.code, "confirm")
    fresh = paid_reservation(product)

    # a window of 3 candidates would only ever see the 4 waiting cancels without the step back
    claimed = outbox_claim_due(worker="A", limit=1) or outbox_claim_due(worker="A", limit=1)

    assert [e.reservation_id for e in claimed] == [fresh.id]


def _transactions_touching_the_outbox(run) -> list[list[str]]:
    """The transactions `run()` commits on this thread's connection that read or write outbox
    rows, each as its statements (the queue broker's own commits left out)."""
    current: list[str] = []
    committed: list[list[str]] = []
    commit = connection.commit

    def record(execute, sql, params, many, context):
        current.append(sql)
        return execute(sql, params, many, context)

    def counted_commit():
        commit()
        if any("outbox_outboxevent" in sql for sql in current):
            committed.append(list(current))
        current.clear()

    connection.commit = counted_commit
    try:
        with connection.execute_wrapper(record):
            run()
    finally:
        del connection.commit
    return committed


@pytest.mark.django_db(transaction=True)
def test_a_drain_round_claims_each_next_event_in_the_transaction_recording_the_previous(fake_supplier, product):
    """One transaction per event, not two: the claim of the next event rides on the commit
    of the previous one's outcome (the first claim stands alone, the last outcome claims
    nothing)."""
    reservations = [paid_reservation(product) for _ in range(3)]

    stats = None

    def run():
        nonlocal stats
        stats = outbox_drain_once(limit=3)

    committed = _transactions_touching_the_outbox(run)

    assert stats.delivered == 3
    assert all(r.status == ReservationStatus.CONFIRMED for r in Reservation.objects.filter(
        pk__in=[r.pk for r in reservations]))
    claims = [sum("SKIP LOCKED" in sql for sql in statements) for statements in committed]
    assert len(committed) == 4  # two per event before
    # The round's first claim looks for pending events and for leases that ran out; the claims
    # riding on an outcome for pending events only (test below: takeovers still happen).
    assert claims == [2, 1, 1, 0]
    assert not OutboxEvent.objects.filter(status=OutboxStatus.IN_FLIGHT).exists()  # nothing claimed past the round


@pytest.mark.django_db
def test_a_drain_round_takes_over_a_lease_that_ran_out_before_the_pending_events(fake_supplier, product):
    """A dead worker's event is taken over by the first claim of a round, ahead of the events
    that became due after its lease ran out (the claims riding on outcomes look at pending
    events only, so a round's first claim is where takeovers happen)."""
    orphan = paid_reservation(product)
    [held] = outbox_claim_due(worker="dead", limit=1)
    OutboxEvent.objects.filter(pk=held.pk).update(locked_until=timezone.now() - dt.timedelta(seconds=5))
    others = [paid_reservation(product) for _ in range(3)]

    stats = outbox_drain_once(limit=1)

    assert stats.delivered == 1
    held.refresh_from_db()
    assert (held.status, held.attempts) == (OutboxStatus.DELIVERED, 2)
    orphan.refresh_from_db()
    assert orphan.status == ReservationStatus.CONFIRMED
    assert not Reservation.objects.filter(pk__in=[r.pk for r in others], status=ReservationStatus.CONFIRMED).exists()


@pytest.mark.django_db
def test_a_claim_riding_on_an_outcome_keeps_a_later_event_behind_its_reservations_expired_first(
        fake_supplier, product, monkeypatch):
    """The claims riding on outcomes look at pending events only, but a reservation's first
    unfinished event may be an in-flight one whose lease ran out: its later event (a cancel)
    still waits for it, never overtakes it (one at a time, oldest first)."""
    first = paid_reservation(product)
    reservation = paid_reservation(product)
    book = OutboxEvent.objects.get(reservation=reservation, topic="supplier.book")
    [held] = outbox_claim_due(worker="dead", limit=1, event_id=book.pk)  # a worker that will die
    cancel = _enqueue_cancel(reservation)
    OutboxEvent.objects.filter(pk=cancel.pk).update(available_at=timezone.now() + dt.timedelta(hours=1))
    handler = delivery.handler_for("supplier.book")
    real_perform = handler.perform

    def perform(event):  # during the first booking's call: the dead worker's lease runs out, the cancel is due
        past = timezone.now() - dt.timedelta(seconds=1)
        OutboxEvent.objects.filter(pk=held.pk).update(locked_until=past)
        OutboxEvent.objects.filter(pk=cancel.pk).update(available_at=past - dt.timedelta(seconds=1))
        return real_perform(event)

    monkeypatch.setattr(handler, "perform", perform)
    stats = outbox_drain_once(limit=2)

    assert stats.delivered == 2  # the first booking, then (riding on it) its guest e-mail
    first.refresh_from_db()
    assert first.status == ReservationStatus.CONFIRMED
    cancel.refresh_from_db()
    assert (cancel.status, cancel.attempts) == (OutboxStatus.PENDING, 0)  # not overtaking the booking
    assert OutboxEvent.objects.get(pk=held.pk).locked_by == "dead"


def _second_claim_raises(monkeypatch, error: Exception) -> list[int]:
    """The second claim (the one made inside the first event's outcome transaction, after its
    outcome is recorded) raises `error`; returns the claims made so far, numbered."""
    claims: list[int] = []
    real = delivery._first_in_line

    def claim(candidates, now):
        claims.append(len(claims) + 1)
        if len(claims) == 2:
            raise error
        return real(candidates, now)

    monkeypatch.setattr(delivery, "_first_in_line", claim)
    return claims


@pytest.mark.django_db(transaction=True)
def test_a_next_claim_that_fails_keeps_the_outcome_and_leaves_no_lease(fake_supplier, product, monkeypatch):
    """The next claim rides on the outcome's transaction, but a bug in it must not cost the
    outcome (a booking recorded as failed, an e-mail sent twice): the outcome commits, no event
    is left leased to a worker that does not know it holds it, and the next is claimed anew."""
    first, second = paid_reservation(product), paid_reservation(product)
    claims = _second_claim_raises(monkeypatch, RuntimeError("claim failed"))

    stats = outbox_drain_once(limit=2)

    assert stats.delivered == 2
    assert claims == [1, 2, 3]  # the second event claimed on its own
    assert not OutboxEvent.objects.filter(status=OutboxStatus.IN_FLIGHT).exists()
    for reservation in (first, second):
        reservation.refresh_from_db()
        assert reservation.status == ReservationStatus.CONFIRMED
        assert OutboxEvent.objects.get(dedup_key=f"supplier.book:{reservation.id}").attempts == 1


@pytest.mark.django_db
def test_an_outcome_retried_after_a_deadlock_is_recorded_not_dropped_as_stale(fake_supplier, product, monkeypatch):
    """The outcome's transaction is re-run whole after a deadlock (retry_on_deadlock); the
    attempt that was rolled back must leave nothing behind that makes the retry's versioned
    update miss (the lease check), or the booking would be dropped as "stale" and called again
    after its lease. The deadlock is raised by hand at the ride-along claim: a real one cannot
    be placed there (that claim never waits: SKIP LOCKED); tests/common/test_deadlock_retry.py
    makes real ones."""
    first, second = paid_reservation(product), paid_reservation(product)
    claims = _second_claim_raises(
        monkeypatch, OperationalError(1213, "Deadlock found when trying to get lock; try restarting transaction"))

    stats = outbox_drain_once(limit=2)

    assert (stats.delivered, stats.stale) == (2, 0)
    assert claims == [1, 2, 3]  # the retried transaction claimed the second event
    for reservation in (first, second):
        reservation.refresh_from_db()
        assert reservation.status == ReservationStatus.CONFIRMED
        event = OutboxEvent.objects.get(dedup_key=f"supplier.book:{reservation.id}")
        assert (event.status, event.attempts) == (OutboxStatus.DELIVERED, 1)
    assert len(fake_supplier.bookings(reference=first.code)) == 1


@pytest.mark.django_db(transaction=True)
def test_a_round_that_ends_during_a_call_claims_nothing_more(fake_supplier, product, monkeypatch):
    """The round's end (stop_at: the worker's drain slice, so its graceful stop) is checked when
    the next claim would be made, after the call: a long call ends the round there."""
    paid_reservation(product), paid_reservation(product)
    handler = delivery.handler_for("supplier.book")
    real_perform = handler.perform

    def slow_perform(event):
        time.sleep(0.3)
        return real_perform(event)

    monkeypatch.setattr(handler, "perform", slow_perform)

    stats = outbox_drain_once(limit=5, stop_at=time.monotonic() + 0.2)

    assert stats.delivered == 1
    assert OutboxEvent.objects.filter(status=OutboxStatus.PENDING, dedup_key__startswith="supplier.book:").count() == 1
    assert not OutboxEvent.objects.filter(status=OutboxStatus.IN_FLIGHT).exists()


@pytest.mark.django_db(transaction=True)
def test_an_event_held_too_long_before_its_call_gets_a_fresh_lease(fake_supplier, product, monkeypatch):
    """Claimed with the previous outcome, an event is called right after that commit; if the
    commit's on-commit work was slow (a hung broker), its lease is renewed before the call, so
    the call never starts on a lease shorter than the call budget."""
    monkeypatch.setattr(delivery, "HELD_RENEW_AFTER_SECONDS", 0.0)
    paid_reservation(product), paid_reservation(product)
    seen: list[tuple] = []
    handler = delivery.handler_for("supplier.book")
    real_perform = handler.perform

    def perform(event):
        row = OutboxEvent.objects.get(pk=event.pk)
        seen.append((row.version, event.version, row.locked_until, timezone.now()))
        return real_perform(event)

    monkeypatch.setattr(handler, "perform", perform)

    assert outbox_drain_once(limit=2).delivered == 2

    (first_version, _, _, _), (second_version, held_version, second_lease, called_at) = seen
    assert first_version == 2  # enqueued at 1, claimed on its own: 2
    assert second_version == 3  # claimed with the first's outcome (2), then renewed before its call (3)
    assert held_version == second_version  # the worker knows its renewed row
    assert second_lease >= called_at + dt.timedelta(seconds=settings.OUTBOX_LEASE_SECONDS) - dt.timedelta(seconds=1)


@pytest.mark.django_db(transaction=True)
def test_a_held_event_taken_over_before_its_renewal_is_not_called(fake_supplier, product, monkeypatch):
    """If the held event's row changed before its late renewal (another worker took it over, or
    staff acted on it), this worker lets it go instead of calling the supplier for it."""
    monkeypatch.setattr(delivery, "HELD_RENEW_AFTER_SECONDS", 0.0)
    paid_reservation(product)
    second = paid_reservation(product)
    real_renewed = delivery._renewed

    def taken_over_first(event, worker):
        OutboxEvent.objects.filter(pk=event.pk).update(locked_by="other-worker", version=event.version + 1)
        return real_renewed(event, worker)

    monkeypatch.setattr(delivery, "_renewed", taken_over_first)

    stats = outbox_drain_once(limit=2)

    assert stats.delivered == 1
    held = OutboxEvent.objects.get(dedup_key=f"supplier.book:{second.id}")
    assert held.status == OutboxStatus.IN_FLIGHT
    assert held.locked_by == "other-worker"
    assert SupplierRequest.objects.filter(reservation=second).count() == 0  # never called by this worker
