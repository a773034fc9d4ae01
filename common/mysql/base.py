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
only what happens after the server ends the transaction on its own inside an atomic block (a
deadlock victim's rollback, an implicit commit by DDL): further statements autocommit instead of
opening a new transaction. Django refuses statements in a block whose savepoint rollback
failed, the ORM's writes mark the block for rollback on any error, and retry_on_deadlock
re-runs the whole transaction (tests/common/test_mysql_backend.py)."""

from __future__ import annotations

from django.db.backends.mysql import base
from django.db.backends.utils import debug_transaction


class DatabaseWrapper(base.DatabaseWrapper):
    def _start_transaction_under_autocommit(self) -> None:
        # Logged as Django logs its own BEGIN (connection.queries), not through execute wrappers.
        with debug_transaction(self, "BEGIN"), self.wrap_database_errors:
            self.connection.query(b"START TRANSACTION")
