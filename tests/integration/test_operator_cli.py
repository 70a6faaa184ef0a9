"""``edge station operator NAME [--role]`` and the login options of ``edge station page``."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

from edge import auth, logs
from edge.__main__ import main
from edge.station import oplog
from edge.station.store import StationStore
from edge.station.web import server
from edge.station.web.gate import Security

PASSWORD = "correct horse battery"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "station.sqlite"
    store = StationStore(path)
    store.open()
    store.close()
    return path


def operator(
    db: Path, monkeypatch: pytest.MonkeyPatch, *args: str, password: str = PASSWORD
) -> int:
    monkeypatch.setattr("sys.stdin", io.StringIO(password + "\n"))
    return main(["station", "operator", *args, "--db", str(db)])


def account(db: Path, name: str) -> oplog.Account | None:
    store = StationStore(db)
    store.open()
    try:
        with store.transaction() as tx:
            return oplog.account(tx, name)
    finally:
        store.close()


def test_an_operator_is_an_operator_unless_told(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert operator(db, monkeypatch, "alice") == 0
    assert capsys.readouterr().out == "operator alice set (operator)\n"
    assert operator(db, monkeypatch, "bob", "--role", "supervisor") == 0
    assert capsys.readouterr().out == "operator bob set (supervisor)\n"
    alice, bob = account(db, "alice"), account(db, "bob")
    assert alice is not None and bob is not None
    assert (alice.role, bob.role) == ("operator", "supervisor")
    assert auth.verify_password(PASSWORD, alice.hash) and not auth.needs_rehash(alice.hash)


def test_a_new_password_keeps_the_role_unless_told(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert operator(db, monkeypatch, "bob", "--role", "supervisor") == 0
    assert operator(db, monkeypatch, "bob", password="another long password") == 0
    bob = account(db, "bob")
    assert bob is not None and bob.role == "supervisor"
    assert auth.verify_password("another long password", bob.hash)
    assert operator(db, monkeypatch, "bob", "--role", "operator") == 0
    assert (account(db, "bob") or pytest.fail()).role == "operator"


def test_bad_roles_and_passwords_are_refused(
    db: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        operator(db, monkeypatch, "alice", "--role", "admin")
    assert exit_.value.code == 2 and "invalid choice: 'admin'" in capsys.readouterr().err
    assert operator(db, monkeypatch, "alice", password="short") == 1
    assert "10 to 256 characters" in capsys.readouterr().err
    assert account(db, "alice") is None


def test_the_page_takes_its_login_settings(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    given: list[Security | None] = []
    options: list[dict[str, Any]] = []

    async def serve(
        _store: Any, _host: str, _port: int, security: Security | None = None, **kw: Any
    ) -> None:
        given.append(security)
        options.append(kw)

    monkeypatch.setattr(server, "serve", serve)
    monkeypatch.setattr(logs, "setup", lambda *a, **kw: None)  # keep pytest's log handlers
    args = ["station", "page", "--db", str(db), "--session-idle-s", "600",
            "--session-max-s", "28800", "--login-max-failures", "4", "--lockout-s", "60",
            "--origin", "https://Station.example.com", "--origin", "http://[::1]:8090"]  # fmt: skip
    assert main(args) == 0
    assert given == [
        Security(600, 28_800, 4, 60, ("https://station.example.com", "http://[::1]:8090"))
    ]
    assert main(["station", "page", "--db", str(db)]) == 0
    assert given[-1] == Security()  # the defaults: 30 min idle, 12 h, 5 failures, 300 s
    assert options[-1] == {"escalate_s": 60.0, "commands": None, "shift_hours": (6, 14, 22)}
    more = ["--escalate-s", "90", "--shift-hours", "19,7", "--broker", "mqtt://127.0.0.1:1"]
    assert main(["station", "page", "--db", str(db), *more]) == 0
    assert (options[-1]["escalate_s"], options[-1]["shift_hours"]) == (90.0, (7, 19))
    link = options[-1]["commands"]
    assert (link.link.settings.port, link.prefix) == (1, "edge")  # the page's own MQTT link


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--session-idle-s", "10"], "--session-idle-s 10: must be 60 to 86400"),
        (["--session-max-s", "1e9"], "--session-max-s 1e+09: must be 300 to 604800"),
        (["--session-idle-s", "3600", "--session-max-s", "1800"], "at least --session-idle-s"),
        (["--login-max-failures", "1"], "--login-max-failures 1: must be 3 to 20"),
        (["--lockout-s", "0"], "--lockout-s 0: must be 10 to 3600"),
        (["--origin", "https://station.example/path"], "scheme://host[:port], no path"),
        (["--origin", "station.example"], "scheme://host[:port], no path"),
        (["--escalate-s", "5"], "--escalate-s 5: must be 10 to 3600"),
        (["--shift-hours", "6,25"], "--shift-hours '6,25': hours 0 to 23"),
        (["--broker", "tcp://x"], "--broker 'tcp://x': must be mqtt://host:port"),
    ],
)
def test_bad_page_settings_are_refused_by_name(
    db: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["station", "page", "--db", str(db), *args]) == 2
    assert message in capsys.readouterr().err
