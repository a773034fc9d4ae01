"""Django's MySQL/MariaDB backend, with one round trip less per transaction.

Django opens an atomic block with `SET autocommit=0` and, after its COMMIT or ROLLBACK,
restores autocommit with `SET autocommit=1`: three round trips around every transaction
(bench/profile_api.py: a webhook's two toggles cost as much as two of its nine statements).
`START TRANSACTION` opens the same transaction while the session stays in autocommit mode, so
COMMIT or ROLLBACK ends it and there is nothing to restore (mysqlclient skips the restore when
the server reports autocommit on). This is the hook Django's SQLite backend uses for its BEGIN
(`_start_transaction_under_autocommit`, called by atomic() only): `set_autocommit(False)`
called by hand keeps Django's behaviour, so statements after a manual commit() are still in a
transaction.

Same isolation (the session's, READ COMMITTED), same locks, same savepoints. What differs is
what follows when the server ends the transaction on its own inside an atomic block: further
statements would autocommit one by one instead of opening a new transaction. A deadlock is the
case that happens (InnoDB rolls the victim's whole transaction back; a lock wait timeout rolls
back the statement only): the cursor marks the block for rollback when one is reported, so
Django refuses every further statement in it and rolls back at its end — whether the error
came through a savepoint, an ORM write or a plain read that a caller swallowed. (Statements
that commit implicitly, DDL, are never run inside a block.) tests/common/test_mysql_backend.py."""

from __future__ import annotations

from typing import Any

from django.db.backends.mysql import base
from django.db.backends.utils import debug_transaction
from django.utils.asyncio import async_unsafe

# MariaDB errors after which the server has rolled the whole transaction back.
_TRANSACTION_ROLLED_BACK = frozenset({1213})  # deadlock found when trying to get lock


class CursorWrapper(base.CursorWrapper):
    def __init__(self, cursor: Any, db: DatabaseWrapper) -> None:
        super().__init__(cursor)
        self.db = db

    def execute(self, query: str, args: Any = None) -> Any:
        try:
            return super().execute(query, args)
        except base.Database.OperationalError as exc:
            self._transaction_ended_by_server(exc)
            raise

    def executemany(self, query: str, args: Any) -> Any:
        try:
            return super().executemany(query, args)
        except base.Database.OperationalError as exc:
            self._transaction_ended_by_server(exc)
            raise

    def _transaction_ended_by_server(self, exc: Exception) -> None:
        if exc.args and exc.args[0] in _TRANSACTION_ROLLED_BACK and self.db.in_atomic_block:
            self.db.needs_rollback = True


class DatabaseWrapper(base.DatabaseWrapper):
    @async_unsafe
    def create_cursor(self, name: str | None = None) -> CursorWrapper:
        return CursorWrapper(self.connection.cursor(), self)

    def _start_transaction_under_autocommit(self) -> None:
        # Logged as Django logs its own BEGIN (connection.queries), not through execute wrappers.
        with debug_transaction(self, "BEGIN"), self.wrap_database_errors:
            self.connection.query(b"START TRANSACTION")
