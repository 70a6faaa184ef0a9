"""A real PostgreSQL (Debian's ``postgresql`` package) on a free loopback port, for the tests.

As root, ``initdb`` and ``postgres`` run as the ``postgres`` user (PostgreSQL
refuses root) in a data folder it owns; otherwise as the current user. Tests
that need it are skipped only when the binaries are absent (``make test``
installs them).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.conftest import free_port, wait_for


def bin_dir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return found[-1].parent if found else None


@dataclass
class Postgres:
    port: int
    data: Path
    proc: subprocess.Popen[bytes]

    def url(self, db: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def fresh(self, name: str) -> str:
        """Database ``name``, emptied (created the first time); its URL."""
        with psycopg.connect(self.url(), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                with psycopg.connect(self.url(name), autocommit=True) as db:
                    db.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public")
            else:
                conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        if self.proc.poll() is None:
            bins = bin_dir()
            assert bins is not None
            subprocess.run(  # "fast" shutdown: clients are disconnected, not waited for
                _as_owner(
                    [str(bins / "pg_ctl"), "-D", str(self.data / "db"), "-m", "fast", "stop"]
                ),
                capture_output=True,
                check=False,
                timeout=30,
            )
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def start_postgres(*, fsync: bool = False) -> Postgres:
    """initdb in a fresh folder and start the server; fsync off unless asked (tests only)."""
    bins = bin_dir()
    if bins is None:
        pytest.skip("PostgreSQL binaries absent (Debian postgresql; `make test` installs it)")
    data = Path(tempfile.mkdtemp(prefix="edge-pg-"))
    if os.geteuid() == 0:
        owner = pwd.getpwnam("postgres")
        os.chown(data, owner.pw_uid, owner.pw_gid)
    init = subprocess.run(
        _as_owner([str(bins / "initdb"), "-D", str(data / "db"), "-U", "postgres", "-A", "trust"]),
        capture_output=True,
        check=False,
    )
    if init.returncode != 0:
        pytest.fail(f"initdb failed: {init.stderr.decode()}")
    port = free_port()
    log = (data / "postgres.log").open("wb")
    options = [
        "-c", "listen_addresses=127.0.0.1", "-c", f"port={port}",
        "-c", f"unix_socket_directories={data}", "-c", f"fsync={'on' if fsync else 'off'}",
        "-c", "max_connections=40",
    ]  # fmt: skip
    proc = subprocess.Popen(
        _as_owner([str(bins / "postgres"), "-D", str(data / "db"), *options]),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = Postgres(port, data, proc)

    def ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"postgres exited: {(data / 'postgres.log').read_text()}")
        with contextlib.suppress(psycopg.Error), psycopg.connect(server.url(), connect_timeout=1):
            return True
        return False

    wait_for(ready, 30, "PostgreSQL to accept connections")
    return server


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    server = start_postgres()
    yield server
    server.stop()
    shutil.rmtree(server.data, ignore_errors=True)
