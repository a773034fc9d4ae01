"""Raw second connections to MariaDB, for causing real failures (KILL, deadlocks)."""

from __future__ import annotations

import MySQLdb
from django.db import connection


def raw_connection(*, autocommit: bool = True) -> MySQLdb.Connection:
    """A connection of its own to the test database, outside Django's connection handling."""
    s = connection.settings_dict
    conn = MySQLdb.connect(host=s["HOST"] or "127.0.0.1", port=int(s["PORT"] or 3306), user=s["USER"],
                           passwd=s["PASSWORD"] or "", db=s["NAME"], charset="utf8mb4")
    conn.autocommit(autocommit)
    with conn.cursor() as cur:
        cur.execute("SET SESSION innodb_lock_wait_timeout = 10")
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")  # as the app
    return conn


def connection_id(conn=None) -> int:
    """The server-side id of a connection (Django's by default)."""
    if conn is None:
        connection.ensure_connection()
        with connection.cursor() as cur:
            cur.execute("SELECT CONNECTION_ID()")
            return cur.fetchone()[0]
    with conn.cursor() as cur:
        cur.execute("SELECT CONNECTION_ID()")
        return cur.fetchone()[0]


def kill_connection(conn_id: int) -> None:
    killer = raw_connection()
    try:
        with killer.cursor() as cur:
            cur.execute(f"KILL CONNECTION {int(conn_id)}")
    finally:
        killer.close()
