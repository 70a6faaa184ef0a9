"""The shared web authentication (edge.auth): hash formats, sessions on a fake clock,
CSRF and Origin, roles, and the lockout's keeping across restarts (its pure state
is tested in test_web_lockout.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from edge import auth
from edge.auth import passwords
from edge.clock import FakeClock

PASSWORD = "correct horse battery"
WALL = 1_800_000_000.0


def box_line(password: str, salt: bytes) -> str:
    """A hash as the box has always written it: base64, a 32-byte digest."""
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    b64 = base64.b64encode
    return f"scrypt$16384$8$1${b64(salt).decode()}${b64(digest).decode()}"


def station_line(password: str, salt: bytes, n: int = 2**14) -> str:
    """A hash as the station's oplog wrote it until now: hex, hashlib's 64-byte digest."""
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=8, p=1)
    return f"scrypt${n}$8$1${salt.hex()}${digest.hex()}"


# -- passwords -------------------------------------------------------------------


def test_one_format_is_written_the_box_s() -> None:
    line = auth.hash_password(PASSWORD, salt=b"s" * 16)
    assert line == box_line(PASSWORD, b"s" * 16)
    assert not auth.needs_rehash(line)


@pytest.mark.parametrize("make", [box_line, station_line], ids=["box-base64", "station-hex"])
def test_both_stored_formats_verify(make: Any) -> None:
    line = make(PASSWORD, b"0123456789abcdef")
    assert auth.verify_password(PASSWORD, line)
    assert not auth.verify_password(PASSWORD + "!", line)
    assert not auth.verify_password("correct horse batterY", line)


def test_the_station_s_hex_lines_are_rewritten_and_then_verify_the_same() -> None:
    old = station_line(PASSWORD, b"salt-of-station!")
    assert auth.needs_rehash(old)
    new = auth.hash_password(PASSWORD)
    assert auth.verify_password(PASSWORD, new) and not auth.needs_rehash(new)


def test_a_weaker_cost_asks_for_a_rewrite() -> None:
    salt = b"x" * 16
    digest = hashlib.scrypt(PASSWORD.encode(), salt=salt, n=2**10, r=8, p=1, dklen=32)
    line = f"scrypt$1024$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    assert auth.verify_password(PASSWORD, line)
    assert auth.needs_rehash(line)


def test_a_long_password_already_stored_still_logs_in() -> None:
    """The station took passwords of any length: they are checked whole, never cut."""
    long = "y" * 300
    line = station_line(long, b"z" * 16)
    assert auth.verify_password(long, line)
    assert not auth.verify_password("y" * 256, line)
    assert not auth.verify_password("y" * (passwords.MAX_CHECKED + 1), line)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "garbage",
        "md5$abc",
        "scrypt$x$8$1$AA==$AA==",
        "scrypt$16384$8$1$!!$AA==",
        "scrypt$16384$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AA==",  # a digest too short to mean much
        "scrypt$16384$8$1$abc$" + "ab" * 32,  # odd hex salt
        "scrypt$1000$8$1$" + "ab" * 16 + "$" + "ab" * 32,  # n not a power of 2
        "scrypt$16384$8$0$" + "ab" * 16 + "$" + "ab" * 32,  # p = 0
        "scrypt$16384$8$1$$" + "ab" * 32,  # no salt
        "scrypt$16384$8$1$" + "ab" * 16 + "$" + "ab" * 32 + "$more",
    ],
)
def test_a_damaged_hash_line_never_verifies(stored: str) -> None:
    assert not auth.verify_password("anything at all", stored)
    assert auth.needs_rehash(stored)


def test_an_unknown_account_costs_one_scrypt_all_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = passwords._scrypt

    def counted(*args: Any) -> bytes:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(passwords, "_scrypt", counted)
    assert not auth.verify_password(PASSWORD, None)
    assert not auth.verify_password(PASSWORD, "garbage")
    assert calls == [1, 1]


@pytest.mark.parametrize("password", ["", "short", "x" * 9, "x" * 257])
def test_new_passwords_follow_the_rules(password: str) -> None:
    with pytest.raises(auth.AuthError, match="10 to 256"):
        auth.hash_password(password)


# -- sessions --------------------------------------------------------------------


def test_an_idle_session_expires_and_a_used_one_lives() -> None:
    clock = FakeClock()
    sessions = auth.Sessions(idle_s=60, max_s=3600)
    sid, session = sessions.create(clock.monotonic(), "alice", "operator")
    assert (session.user, session.role) == ("alice", "operator")
    for _ in range(10):
        clock.advance(59)
        assert sessions.get(sid, clock.monotonic()) is session
    clock.advance(61)
    assert sessions.get(sid, clock.monotonic()) is None
    assert sid not in sessions.by_id  # forgotten


def test_a_busy_session_ends_at_its_absolute_expiry() -> None:
    clock = FakeClock()
    sessions = auth.Sessions(idle_s=60, max_s=600)
    sid, _ = sessions.create(clock.monotonic())
    for _ in range(10):
        clock.advance(59)
        assert sessions.get(sid, clock.monotonic()) is not None  # 590 s in
    clock.advance(11)
    assert sessions.get(sid, clock.monotonic()) is None  # 601 s after the login


def test_peek_does_not_keep_a_session_alive() -> None:
    clock = FakeClock()
    sessions = auth.Sessions(idle_s=60, max_s=3600)
    sid, _ = sessions.create(clock.monotonic())
    clock.advance(40)
    assert sessions.peek(sid, clock.monotonic()) is not None
    clock.advance(40)
    assert sessions.peek(sid, clock.monotonic()) is None


def test_sessions_have_their_own_secrets_and_are_listed_and_dropped() -> None:
    clock = FakeClock()
    sessions = auth.Sessions(idle_s=60, max_s=3600)
    a, sa = sessions.create(clock.monotonic(), "alice", "operator")
    clock.advance(1)
    b, sb = sessions.create(clock.monotonic(), "bob", "supervisor")
    c, _ = sessions.create(clock.monotonic(), "alice", "operator")
    assert len({a, b, c, sa.csrf, sb.csrf}) == 5
    assert [s.user for s in sessions.active(clock.monotonic())] == ["alice", "bob", "alice"]
    sessions.drop_user("alice")
    assert [s.user for s in sessions.active(clock.monotonic())] == ["bob"]
    sessions.drop(b)
    sessions.drop(None)
    assert sessions.active(clock.monotonic()) == []
    assert sessions.get(None, 0.0) is None and sessions.get("", 0.0) is None


def test_the_sessions_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from edge.auth import sessions as module

    monkeypatch.setattr(module, "MAX_SESSIONS", 3)
    sessions = auth.Sessions(idle_s=60, max_s=3600)
    sids = [sessions.create(float(n))[0] for n in range(5)]
    assert sorted(sessions.by_id) == sorted(sids[2:])  # the least recently used went


# -- CSRF and Origin ---------------------------------------------------------------

OWN = ["http://127.0.0.1:8090"]


@pytest.mark.parametrize(
    ("origin", "referer", "ok"),
    [
        ("http://127.0.0.1:8090", None, True),
        ("HTTP://127.0.0.1:8090", None, True),
        ("http://127.0.0.1:8091", None, False),
        ("https://127.0.0.1:8090", None, False),
        ("http://evil.example", None, False),
        ("null", None, False),
        ("", None, False),
        (None, "http://127.0.0.1:8090/events/x?y=1", True),
        (None, "http://127.0.0.1:8090", True),
        (None, "http://evil.example/http://127.0.0.1:8090/", False),
        (None, "http://127.0.0.1:8090@evil.example/", False),
        (None, "http://127.0.0.1:99999/", False),
        (None, "not a url", False),
        ("http://127.0.0.1:8090", "http://evil.example/", True),  # Origin is what counts
        (None, None, True),  # not a browser's cross-site request: the CSRF token decides
    ],
)
def test_same_origin(origin: str | None, referer: str | None, ok: bool) -> None:
    assert auth.same_origin(origin, referer, OWN) is ok


def test_same_origin_with_ipv6_and_a_second_allowed_origin() -> None:
    allowed = ["http://[::1]:8090", "https://station.example.com/"]
    assert auth.same_origin(None, "http://[::1]:8090/x", allowed)
    assert auth.same_origin("https://station.example.com", None, allowed)
    assert not auth.same_origin(None, "http://[::2]:8090/x", allowed)
    assert auth.origin_of("http", "Station.example:8090") == "http://station.example:8090"


def test_every_state_change_needs_the_origin_and_the_session_s_token() -> None:
    _, session = auth.Sessions().create(0.0)
    token = session.csrf

    def why(method: str, token: str | None, origin: str | None = None, **kw: Any) -> Any:
        return auth.refusal(method, kw.pop("session", session), token, origin, None, OWN, **kw)

    assert why("GET", None, "http://evil.example") is None  # reading changes nothing
    assert why("POST", token) is None
    assert why("post", token, OWN[0]) is None
    assert why("POST", token, "http://evil.example") is auth.Refusal.CROSS_SITE
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        assert why(method, None) is auth.Refusal.CSRF
        assert why(method, "") is auth.Refusal.CSRF
        assert why(method, token + "x") is auth.Refusal.CSRF
        assert why(method, token, session=None) is auth.Refusal.CSRF  # no session: refused
    assert why("POST", None, session=None, public=True) is None  # the login itself
    assert why("POST", None, "null", session=None, public=True) is auth.Refusal.CROSS_SITE
    assert str(auth.Refusal.CSRF) == "missing or wrong CSRF token"


# -- roles -----------------------------------------------------------------------------


def test_roles_are_a_ladder() -> None:
    roles = auth.Roles(("operator", "supervisor"))
    assert roles.lowest == "operator"
    assert roles.permits("supervisor", "operator") and roles.permits("supervisor", "supervisor")
    assert roles.permits("operator", "operator") and not roles.permits("operator", "supervisor")
    assert not roles.permits("", "operator") and not roles.permits("admin", "operator")
    assert roles.parse("supervisor") == "supervisor"
    with pytest.raises(auth.AuthError, match="role 'admin': one of operator, supervisor"):
        roles.parse("admin")
    with pytest.raises(auth.AuthError):
        roles.permits("supervisor", "admin")  # a route asking for no such role is a bug
    with pytest.raises(ValueError, match="each once"):
        auth.Roles(("operator", "operator"))


# -- the lockout, kept ---------------------------------------------------------------------


class Row:
    """A store of one snapshot (as the station keeps it), with faults to order."""

    where = "test row"

    def __init__(self) -> None:
        self.text: str | None = None
        self.fail_read = self.fail_write = False
        self.writes = 0

    def read(self) -> object | None:
        if self.fail_read:
            raise auth.AuthError("test row: cannot read")
        if self.text is None:
            return None
        try:
            return json.loads(self.text)
        except ValueError as exc:
            raise auth.AuthError(f"test row: {exc}") from exc

    def write(self, snapshot: dict[str, Any]) -> None:
        if self.fail_write:
            raise auth.AuthError("test row: cannot write")
        self.text = json.dumps(snapshot)
        self.writes += 1


def locked_out(store: auth.LockoutStore, clock: FakeClock) -> auth.Keeper:
    """Three failures from one client, kept in ``store`` after each."""
    kept = auth.Keeper(auth.Lockout(max_failures=3, lockout_s=10), store)
    kept.load(clock.monotonic(), clock.time())
    for _ in range(3):
        kept.lockout.failed("a", clock.monotonic())
        kept.save(kept.lockout.snapshot(clock.monotonic(), clock.time()))
    return kept


def restarted(store: auth.LockoutStore, clock: FakeClock) -> auth.Keeper:
    kept = auth.Keeper(auth.Lockout(max_failures=3, lockout_s=10), store)
    kept.load(clock.monotonic(), clock.time())
    return kept


def test_a_kept_lockout_survives_a_restart_in_its_row() -> None:
    row, clock = Row(), FakeClock(WALL)
    locked_out(row, clock)
    assert row.writes == 3
    clock.advance(4)
    again = restarted(row, FakeClock(clock.time()))  # a new process: another monotonic clock
    assert again.lockout.retry_after_s("a", 1000.0) == 6
    assert again.lockout.retry_after_s("b", 1000.0) == 0


def test_a_kept_lockout_survives_a_restart_in_its_file(tmp_path: Path) -> None:
    kept_in = auth.LockoutFile(tmp_path / "web" / "lockout.json")
    clock = FakeClock(WALL)
    assert kept_in.read() is None
    locked_out(kept_in, clock)
    assert kept_in.path.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in kept_in.path.parent.iterdir()) == ["lockout.json"]
    clock.advance(7)
    again = restarted(kept_in, FakeClock(clock.time()))
    assert again.lockout.retry_after_s("a", 1000.0) == 3


@pytest.mark.parametrize(
    "damage", ["not json", '{"version": 1}', "[]", '{"version": 9, "clients": {}}', "unreadable"]
)
def test_a_damaged_snapshot_locks_every_login_once_and_is_written_afresh(
    damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    row, clock = Row(), FakeClock(WALL)
    if damage == "unreadable":
        row.fail_read = True
    else:
        row.text = damage
    kept = restarted(row, clock)
    assert any(
        r.levelno == logging.ERROR and "test row is lost: every login waits 10 s" in r.getMessage()
        for r in caplog.records
    )
    assert kept.lockout.retry_after_s("anyone", clock.monotonic()) == 10
    assert kept.lockout.retry_after_s("anyone", clock.monotonic() + 10) == 0
    if damage != "unreadable":
        assert json.loads(row.text or "")["box_until"] == WALL + 10  # written afresh


def test_a_damaged_file_locks_every_login(tmp_path: Path) -> None:
    path = tmp_path / "lockout.json"
    path.write_bytes(b"\x00{not json")
    kept = restarted(auth.LockoutFile(path), FakeClock(WALL))
    assert kept.lockout.retry_after_s("anyone", 1000.0) == 10
    assert json.loads(path.read_text())["version"] == 1


def test_a_failing_write_is_logged_once_and_its_recovery_too(
    caplog: pytest.LogCaptureFixture,
) -> None:
    row, clock = Row(), FakeClock(WALL)
    kept = restarted(row, clock)
    row.fail_write = True
    for _ in range(5):
        kept.lockout.failed("a", clock.monotonic())
        kept.save(kept.lockout.snapshot(clock.monotonic(), clock.time()))
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.getMessage() for r in errors] == [
        "the login lockout is kept in memory only: a restart forgets it"
    ]
    row.fail_write = False
    with caplog.at_level(logging.INFO):
        kept.save(kept.lockout.snapshot(clock.monotonic(), clock.time()))
    assert "written to test row again" in caplog.text
    assert json.loads(row.text or "")["clients"]["a"]["lockouts"] == 1
