"""common.mysql: Django's MySQL backend whose atomic blocks open with START TRANSACTION instead
of toggling the session's autocommit. Against real MariaDB, with a second connection that
sees what was (not) committed."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading

import pytest
from django.db import OperationalError, connection, transaction
from django.db.transaction import TransactionManagementError

from reservations.models import DailyInventory
from tests.common.test_deadlock_retry import HeavyOpponent
from tests.factories import ProductFactory
from tests.support.db import connection_id, kill_connection, raw_connection

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def rows() -> list[DailyInventory]:
    return [DailyInventory.objects.create(product=ProductFactory(), date=dt.date(2030, 1, 1)) for _ in range(12)]


def session_counters() -> dict[str, int]:
    with connection.cursor() as cur:
        cur.execute("SHOW SESSION STATUS WHERE Variable_name IN ('Com_set_option', 'Com_begin', 'Com_commit')")
        return {name: int(value) for name, value in cur.fetchall()}


def reserved_seen_by_another_connection(row: DailyInventory) -> int:
    other = raw_connection()
    try:
        with other.cursor() as cur:
            cur.execute("SELECT reserved FROM reservations_dailyinventory WHERE id = %s", [row.pk])
            return cur.fetchone()[0]
    finally:
        other.close()


def test_the_backend_is_in_use():
    assert connection.settings_dict["ENGINE"] == "common.mysql"
    assert connection.vendor == "mysql"


def test_an_atomic_block_opens_with_start_transaction_and_never_toggles_autocommit(rows):
    row = rows[0]
    before = session_counters()
    with transaction.atomic():
        DailyInventory.objects.filter(pk=row.pk).update(reserved=3)
        assert reserved_seen_by_another_connection(row) == 0  # inside a transaction, not committed yet
    after = session_counters()

    assert {name: after[name] - before[name] for name in before} == {
        "Com_begin": 1, "Com_commit": 1, "Com_set_option": 0}  # Django's backend: 0, 1, 2
    assert reserved_seen_by_another_connection(row) == 3


def test_after_a_rolled_back_block_the_session_autocommits_again(rows):
    row, other_row = rows[0], rows[1]
    def fails_after_writing() -> None:
        with transaction.atomic():
            DailyInventory.objects.filter(pk=row.pk).update(reserved=5)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fails_after_writing()
    assert reserved_seen_by_another_connection(row) == 0

    DailyInventory.objects.filter(pk=other_row.pk).update(reserved=7)  # autocommit: visible at once
    assert reserved_seen_by_another_connection(other_row) == 7
    assert connection.connection.get_autocommit()


def test_statements_after_a_manual_commit_are_still_in_a_transaction(rows):
    # Only atomic() opens transactions with START TRANSACTION; set_autocommit(False) by hand keeps
    # Django's SET autocommit=0, under which the statements after a commit() open a new transaction.
    row, other_row = rows[0], rows[1]
    transaction.set_autocommit(False)
    try:
        DailyInventory.objects.filter(pk=row.pk).update(reserved=1)
        transaction.commit()
        DailyInventory.objects.filter(pk=other_row.pk).update(reserved=2)
        assert reserved_seen_by_another_connection(other_row) == 0
        transaction.rollback()
    finally:
        transaction.set_autocommit(True)
    assert reserved_seen_by_another_connection(row) == 1
    assert reserved_seen_by_another_connection(other_row) == 0


def test_the_transaction_runs_at_the_sessions_isolation_level(rows):
    row = rows[0]
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT @@tx_isolation")
            assert cur.fetchone()[0] == "READ-COMMITTED"
        assert DailyInventory.objects.get(pk=row.pk).reserved == 0
        other = raw_connection()
        try:
            with other.cursor() as cur:
                cur.execute("UPDATE reservations_dailyinventory SET reserved = 9 WHERE id = %s", [row.pk])
        finally:
            other.close()
        assert DailyInventory.objects.get(pk=row.pk).reserved == 9  # READ COMMITTED: no snapshot


def _deadlock_then_write(rows: list[DailyInventory], *, through_savepoint: bool
                         ) -> tuple[list, HeavyOpponent, DailyInventory]:
    """Our transaction writes a row, then becomes the victim of a real deadlock on a locking read
    that a caller swallows (inside a savepoint, or bare), then tries to write again."""
    opponent = HeavyOpponent(rows)
    mine = DailyInventory.objects.create(product=ProductFactory(), date=dt.date(2030, 1, 1))
    caught: list[BaseException] = []
    with transaction.atomic():
        DailyInventory.objects.filter(pk=mine.pk).update(reserved=11)  # fewer rows: the victim
        DailyInventory.objects.select_for_update().get(pk=opponent.a.pk)
        t = threading.Thread(target=opponent.play_one_round)
        t.start()
        assert opponent.holds_b.wait(10), opponent.errors
        try:
            with transaction.atomic() if through_savepoint else contextlib.nullcontext():
                DailyInventory.objects.select_for_update().get(pk=opponent.b.pk)
        except OperationalError as exc:  # a caller that swallows the deadlock
            caught.append(exc)
        t.join(15)
        with pytest.raises(TransactionManagementError):
            DailyInventory.objects.filter(pk=opponent.a.pk).update(reserved=12)
    return caught, opponent, mine


@pytest.mark.parametrize("through_savepoint", [True, False], ids=["savepoint", "bare read"])
def test_after_a_deadlock_the_block_refuses_statements_and_nothing_commits(rows, through_savepoint):
    # The server rolls the whole transaction back on a deadlock, so under START TRANSACTION a
    # further statement would autocommit on its own. The backend marks the block for rollback
    # when the deadlock is reported (the bare read: Django alone would not; the savepoint: its
    # failed rollback does too), so Django refuses the statement and rolls back at the end.
    caught, opponent, mine = _deadlock_then_write(rows, through_savepoint=through_savepoint)

    assert [exc.args[0] for exc in caught] == [1213]
    assert not opponent.errors
    assert opponent.rounds == 1  # the opponent committed
    assert reserved_seen_by_another_connection(mine) == 0  # ours rolled back: the write before the deadlock
    assert reserved_seen_by_another_connection(opponent.a) == 0  # and the refused one after it
    connection.close()


def test_a_killed_connection_fails_the_next_block_and_the_one_after_reconnects(rows):
    row = rows[0]
    kill_connection(connection_id())
    with pytest.raises(OperationalError), transaction.atomic():
        DailyInventory.objects.filter(pk=row.pk).update(reserved=4)
    connection.close()  # what Django does between requests for a connection that errored
    with transaction.atomic():
        DailyInventory.objects.filter(pk=row.pk).update(reserved=4)
    assert reserved_seen_by_another_connection(row) == 4
