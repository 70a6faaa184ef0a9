"""The station's two storage back-ends behind one small interface: SQLite and PostgreSQL.

The store writes its SQL once, in the dialect both understand (``?``
placeholders, ``INSERT ... ON CONFLICT``, ``excluded.``); :class:`PgDb`
turns ``?`` into psycopg's ``%s`` and :func:`pg_schema` turns SQLite's
``STRICT`` tables with 64-bit ``INTEGER`` into PostgreSQL's ``BIGINT``.

SQLite (the default) is one file on one machine: ``BEGIN IMMEDIATE`` makes
every transaction the only writer, even across processes. PostgreSQL is the
shared store of a station whose receivers split the load (MQTT shared
subscriptions): transactions run concurrently, so whatever must be decided
by one writer at a time (one media's chunks) takes :meth:`Db.lock`, a
transaction-scoped advisory lock. Every library error leaves here as
:class:`StorageError` naming the store.

psycopg is the ``station`` extra (``pip install 'edge-gateway[station]'``): a box
never has it, and an SQLite store does without it; only a PostgreSQL store
needs it, and says so when it is missing.
"""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

try:
    import psycopg
except ImportError as exc:  # the station extra: a box has no psycopg
    _NO_PSYCOPG: str | None = str(exc)
else:
    _NO_PSYCOPG = None

from edge.db import Transaction, open_db
from edge.errors import StorageError

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...

    def __iter__(self) -> Iterator[Any]: ...


class Db(Protocol):
    """One open transaction."""

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """``sql`` once per row (PostgreSQL: pipelined, not a round trip per row)."""

    def lock(self, name: str) -> None:
        """Hold ``name`` until the transaction ends (a no-op where there is one writer)."""


class Backend(Protocol):
    label: str
    shared: bool  # True: other receivers write to the same store at the same time
    dialect: str  # "sqlite" or "postgresql": for the little DDL the two write differently

    def open(self, schema: str) -> None: ...

    def close(self) -> None: ...

    def transaction(self) -> contextlib.AbstractContextManager[Db]: ...

    def read(self) -> contextlib.AbstractContextManager[Db]:
        """A transaction that only reads: on SQLite it does not take the write lock."""


def is_postgres(target: str) -> bool:
    return target.startswith(POSTGRES_SCHEMES)


def pg_schema(schema: str) -> str:
    """SQLite's schema in PostgreSQL: 64-bit integers, no STRICT."""
    return schema.replace(" INTEGER", " BIGINT").replace(") STRICT;", ");")


@functools.lru_cache(maxsize=256)
def pg_query(sql: str) -> str:
    """``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class SqliteDb:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor:
        return self.conn.execute(sql, args)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.conn.executemany(sql, rows)

    def lock(self, name: str) -> None:
        """``BEGIN IMMEDIATE`` already made this transaction the only writer."""


class PgDb:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> Cursor:
        return self.conn.execute(pg_query(sql), args)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            with self.conn.cursor() as cur:
                cur.executemany(pg_query(sql), rows)

    def lock(self, name: str) -> None:
        self.conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (name,))


class SqliteBackend:
    """One SQLite file (WAL, ``synchronous=FULL``)."""

    shared = False
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = f"station store {path}"
        self.conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def open(self, schema: str) -> None:
        self.conn = open_db(self.path, schema, "station store")

    def close(self) -> None:
        with self._lock:
            if self.conn is not None:
                self.conn.close()
                self.conn = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Db]:
        with Transaction(self.conn, self._lock, self.label) as conn:
            yield SqliteDb(conn)

    @contextlib.contextmanager
    def read(self) -> Iterator[Db]:
        """A deferred transaction: one consistent view (WAL), no wait for the writer."""
        with self._lock:
            conn = self.conn
            if conn is None:
                raise StorageError(f"{self.label} is not open")
            try:
                conn.execute("BEGIN")
                try:
                    yield SqliteDb(conn)
                finally:
                    conn.execute("ROLLBACK")
            except sqlite3.Error as exc:
                raise StorageError(f"{self.label}: {exc}") from exc


class PgBackend:
    """A PostgreSQL database shared by every receiver; reconnects after a lost connection."""

    shared = True
    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        if _NO_PSYCOPG is not None:
            raise StorageError(
                f"a PostgreSQL station store needs psycopg, which is not installed "
                f"({_NO_PSYCOPG}): pip install 'edge-gateway[station]' "
                "(the station extra; an SQLite store needs nothing more)"
            )
        self.url = url
        self.label = f"station store {_redact(url)}"
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()

    def open(self, schema: str) -> None:
        with self._lock:
            conn = self._connect()
            try:
                with conn.transaction():  # two receivers starting at once: one creates
                    conn.execute("SELECT pg_advisory_xact_lock(7009)")
                    conn.execute(pg_schema(schema).encode())
            except psycopg.Error as exc:
                conn.close()
                raise StorageError(f"cannot open {self.label}: {exc}") from exc
            self._conn = conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Db]:
        with self._lock:
            conn = self._conn
            if conn is None:
                raise StorageError(f"{self.label} is not open")
            if conn.closed:  # the server went away: a new connection, same store
                conn = self._conn = self._connect()
            try:
                with conn.transaction():
                    yield PgDb(conn)
            except psycopg.Error as exc:
                raise StorageError(f"{self.label}: {exc}") from exc

    def read(self) -> contextlib.AbstractContextManager[Db]:
        return self.transaction()  # readers never wait for writers in PostgreSQL

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StorageError(f"cannot open {self.label}: {exc}") from exc


def backend(target: str | Path) -> Backend:
    """A PostgreSQL URL, or the path of an SQLite file."""
    if isinstance(target, str) and is_postgres(target):
        return PgBackend(target)
    return SqliteBackend(Path(target))


def _redact(url: str) -> str:
    """The URL without its password, for logs and errors."""
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, user = head.partition("//")
    return f"{scheme}//{user.split(':', 1)[0]}:***@{tail}"
