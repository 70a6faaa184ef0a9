"""edge/logs.py: the journald native protocol, record fields, the handler, setup()."""

from __future__ import annotations

import logging
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge import logs
from edge.logs import JournalHandler, encode_journal, journal_fields


def decode_journal(data: bytes) -> dict[str, str]:
    """Parse a datagram as journald does (native protocol), strictly: every field
    complete and closed, binary lengths exact, valid names, nothing left over."""
    fields: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        assert end >= 0, f"field at byte {pos} not closed"
        line = data[pos:end]
        if b"=" in line:
            key, _, value = line.partition(b"=")
            pos = end + 1
        else:
            key = line
            prefix = data[end + 1 : end + 9]
            assert len(prefix) == 8, f"{key!r}: length prefix cut short"
            size = int.from_bytes(prefix, "little")
            value = data[end + 9 : end + 9 + size]
            assert len(value) == size, f"{key!r}: {size} bytes announced, {len(value)} there"
            assert data[end + 9 + size : end + 10 + size] == b"\n", "binary field not closed"
            pos = end + 10 + size
        assert re.fullmatch(rb"[A-Z0-9_]+", key) and not key[:1].isdigit(), key
        assert key.decode() not in fields, f"{key!r} twice"
        fields[key.decode()] = value.decode()
    return fields


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def logger() -> Iterator[tuple[logging.Logger, Records]]:
    log = logging.getLogger("edge.test.logs")
    records = Records()
    log.addHandler(records)
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log, records
    log.removeHandler(records)
    log.propagate = True


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """Restore the root logger's handlers and level after setup() replaced them."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield root
    for handler in list(root.handlers):
        root.removeHandler(handler)
        if handler not in handlers:
            handler.close()
    for handler in handlers:
        root.addHandler(handler)
    root.setLevel(level)


# -- encode_journal ----------------------------------------------------------------


def test_encode_text_fields() -> None:
    fields = {"MESSAGE": "zone fire: alarm", "PRIORITY": "3", "EVENT_ID": "a=b"}
    assert encode_journal(fields) == b"MESSAGE=zone fire: alarm\nPRIORITY=3\nEVENT_ID=a=b\n"


def test_encode_empty_value_and_no_fields() -> None:
    assert encode_journal({"THREAD_NAME": ""}) == b"THREAD_NAME=\n"
    assert encode_journal({}) == b""


def test_encode_value_with_newline_uses_the_binary_form() -> None:
    assert encode_journal({"MESSAGE": "a\nb"}) == (
        b"MESSAGE\n" + b"\x03\x00\x00\x00\x00\x00\x00\x00" + b"a\nb" + b"\n"
    )


def test_binary_length_counts_utf8_bytes_not_characters() -> None:
    value = "état\n✓"
    data = value.encode()
    assert len(data) == 9 and len(value) == 6
    assert encode_journal({"MESSAGE": value, "PRIORITY": "6"}) == (
        b"MESSAGE\n" + len(data).to_bytes(8, "little") + data + b"\nPRIORITY=6\n"
    )


def test_encode_round_trips_through_a_journald_parser() -> None:
    fields = {
        "MESSAGE": "line one\nline two\n",
        "PRIORITY": "4",
        "SYSLOG_IDENTIFIER": "edge",
        "EVENT_ID": "0190-abc=def",
        "TEXT": "façade ☃",
    }
    assert decode_journal(encode_journal(fields)) == fields


def _huge_record_fields(logger: tuple[logging.Logger, Records], message: str) -> dict[str, str]:
    log, records = logger
    log.error("%s", message, extra={"journal": {"EVENT_ID": "e-7", "ZONE": "fire"}})
    return journal_fields(records.records[-1], "edge")


@pytest.mark.parametrize("newlines", [True, False], ids=["lines", "one-line"])
def test_a_huge_message_is_cut_not_the_datagram(
    logger: tuple[logging.Logger, Records], newlines: bool
) -> None:
    unit = "zone fire: état ✓ alarm\n" if newlines else "zone fire: état ✓ alarm; "
    message = unit * (1_000_000 // len(unit.encode()) + 1)  # over 1 MB of UTF-8
    fields = _huge_record_fields(logger, message)
    data = encode_journal(fields)
    assert len(data) <= logs.MAX_DATAGRAM
    got = decode_journal(data)  # strict: lengths consistent, every field closed
    assert set(got) == set(fields)
    for key in fields.keys() - {"MESSAGE"}:  # PRIORITY, identifiers, extras intact
        assert got[key] == fields[key], key
    assert got["PRIORITY"] == "3" and got["EVENT_ID"] == "e-7"
    cut = re.fullmatch(r"(.*)… \[truncated (\d+) bytes\]", got["MESSAGE"], re.DOTALL)
    assert cut is not None, got["MESSAGE"][-100:]
    kept, dropped = cut.groups()
    assert message.startswith(kept) and len(kept) > 150_000
    assert int(dropped) == len(message.encode()) - len(kept.encode())
    assert ("\n" in got["MESSAGE"]) is newlines


def test_a_message_just_under_the_limit_is_not_cut() -> None:
    fields = {"PRIORITY": "6", "SYSLOG_IDENTIFIER": "edge"}
    rest = len(encode_journal(fields))
    room = logs.MAX_DATAGRAM - rest - len(b"MESSAGE=\n")
    fields = {"MESSAGE": "x" * room, **fields}
    data = encode_journal(fields)
    assert len(data) == logs.MAX_DATAGRAM
    assert decode_journal(data) == fields
    fields["MESSAGE"] += "y"  # one byte over: cut to make room for the marker
    data = encode_journal(fields)
    assert logs.MAX_DATAGRAM - 64 <= len(data) <= logs.MAX_DATAGRAM
    got = decode_journal(data)
    cut = re.fullmatch(r"(x*)… \[truncated (\d+) bytes\]", got["MESSAGE"])
    assert cut is not None, got["MESSAGE"][-100:]
    kept, dropped = cut.groups()
    assert len(kept) + int(dropped) == room + 1
    assert got["PRIORITY"] == "6" and got["SYSLOG_IDENTIFIER"] == "edge"


# -- journal_fields ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "priority"),
    [
        (logging.CRITICAL, "2"),
        (logging.ERROR, "3"),
        (logging.WARNING, "4"),
        (logging.INFO, "6"),
        (logging.DEBUG, "7"),
    ],
)
def test_priority_follows_the_level(
    logger: tuple[logging.Logger, Records], level: int, priority: str
) -> None:
    log, records = logger
    log.log(level, "hello %s", "world")
    fields = journal_fields(records.records[-1], "edge")
    assert fields["PRIORITY"] == priority
    assert fields["MESSAGE"] == "hello world"


def test_fields_name_the_source(logger: tuple[logging.Logger, Records]) -> None:
    log, records = logger
    log.info("box up")
    line = sys._getframe().f_lineno - 1
    fields = journal_fields(records.records[-1], "edge-station")
    assert fields["SYSLOG_IDENTIFIER"] == "edge-station"
    assert fields["LOGGER"] == "edge.test.logs"
    assert fields["CODE_FILE"] == __file__
    assert fields["CODE_LINE"] == str(line)
    assert fields["CODE_FUNC"] == "test_fields_name_the_source"
    assert fields["THREAD_NAME"] == "MainThread"


def test_extra_journal_fields_are_upper_cased(logger: tuple[logging.Logger, Records]) -> None:
    log, records = logger
    log.info("stored", extra={"journal": {"event_id": "e-1", "EVENT_SEQ": 7, "Zone": "fire"}})
    fields = journal_fields(records.records[-1], "edge")
    assert fields["EVENT_ID"] == "e-1"
    assert fields["EVENT_SEQ"] == "7"
    assert fields["ZONE"] == "fire"
    assert "event_id" not in fields and "Zone" not in fields


def test_no_extra_fields_without_journal_extra(logger: tuple[logging.Logger, Records]) -> None:
    log, records = logger
    log.info("plain", extra={"other": {"EVENT_ID": "x"}})
    fields = journal_fields(records.records[-1], "edge")
    assert set(fields) == {
        "MESSAGE",
        "PRIORITY",
        "SYSLOG_IDENTIFIER",
        "LOGGER",
        "CODE_FILE",
        "CODE_LINE",
        "CODE_FUNC",
        "THREAD_NAME",
    }


def test_exception_text_follows_the_message(logger: tuple[logging.Logger, Records]) -> None:
    log, records = logger
    try:
        raise ValueError("pin 17 busy")
    except ValueError:
        log.exception("cannot open input %s", "in1")
    fields = journal_fields(records.records[-1], "edge")
    message = fields["MESSAGE"]
    assert message.startswith("cannot open input in1\nTraceback (most recent call last):\n")
    assert message.endswith("ValueError: pin 17 busy")
    assert fields["PRIORITY"] == "3"
    assert decode_journal(encode_journal(fields))["MESSAGE"] == message


# -- JournalHandler --------------------------------------------------------------


def test_handler_sends_one_datagram_per_record(
    tmp_path: Path, logger: tuple[logging.Logger, Records]
) -> None:
    log, _records = logger
    path = tmp_path / "journal"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2.0)
        handler = JournalHandler("edge-test", address=str(path))
        log.addHandler(handler)
        try:
            log.warning("door %s", "open", extra={"journal": {"event_id": "e-42"}})
            log.error("two\nlines")
        finally:
            log.removeHandler(handler)
            handler.close()
        first = decode_journal(sock.recv(65536))
        second = decode_journal(sock.recv(65536))
    assert first["MESSAGE"] == "door open"
    assert first["PRIORITY"] == "4"
    assert first["SYSLOG_IDENTIFIER"] == "edge-test"
    assert first["EVENT_ID"] == "e-42"
    assert first["LOGGER"] == "edge.test.logs"
    assert second["MESSAGE"] == "two\nlines"
    assert second["PRIORITY"] == "3"


def test_handler_sends_a_huge_record_as_one_valid_datagram(
    tmp_path: Path, logger: tuple[logging.Logger, Records]
) -> None:
    log, _records = logger
    path = tmp_path / "journal"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(2.0)
        handler = JournalHandler("edge-test", address=str(path))
        log.addHandler(handler)
        try:
            log.error("dump:\n%s", "0123456789abcdef\n" * 65_536)  # 1 MiB
        finally:
            log.removeHandler(handler)
            handler.close()
        got = decode_journal(sock.recv(2 * logs.MAX_DATAGRAM))
    assert got["PRIORITY"] == "3" and got["SYSLOG_IDENTIFIER"] == "edge-test"
    assert got["LOGGER"] == "edge.test.logs"
    assert got["MESSAGE"].startswith("dump:\n0123456789abcdef\n")
    assert got["MESSAGE"].endswith(" bytes]")


def test_handler_reports_a_missing_socket_through_handle_error(
    tmp_path: Path, logger: tuple[logging.Logger, Records], monkeypatch: pytest.MonkeyPatch
) -> None:
    log, _records = logger
    handler = JournalHandler("edge-test", address=str(tmp_path / "nobody"))
    failed: list[logging.LogRecord] = []
    monkeypatch.setattr(handler, "handleError", failed.append)
    log.addHandler(handler)
    try:
        log.info("lost")
    finally:
        log.removeHandler(handler)
        handler.close()
    assert [r.getMessage() for r in failed] == ["lost"]


# -- setup -----------------------------------------------------------------------


def test_setup_writes_text_to_stderr_without_journal_stream(
    root_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    logs.setup("DEBUG")
    assert len(root_logger.handlers) == 1
    handler = root_logger.handlers[0]
    assert type(handler) is logging.StreamHandler
    assert handler.stream is sys.stderr
    assert root_logger.level == logging.DEBUG
    record = logging.LogRecord("edge.app", logging.WARNING, "f.py", 1, "box %s up", ("b1",), None)
    assert handler.format(record).endswith(" WARNING edge.app: box b1 up")


def test_setup_uses_text_when_the_journal_socket_is_missing(
    root_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
    monkeypatch.setattr(logs, "JOURNAL_SOCKET", str(tmp_path / "no-journal"))
    logs.setup("INFO")
    assert [type(h) for h in root_logger.handlers] == [logging.StreamHandler]
    assert root_logger.level == logging.INFO


def test_setup_uses_the_journal_under_systemd(
    root_logger: logging.Logger, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "journal"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        monkeypatch.setenv("JOURNAL_STREAM", "8:12345")
        monkeypatch.setattr(logs, "JOURNAL_SOCKET", str(path))
        logs.setup("WARNING", identifier="edge-x")
    handlers = root_logger.handlers
    assert len(handlers) == 1 and isinstance(handlers[0], JournalHandler)
    assert handlers[0].identifier == "edge-x"
    assert root_logger.level == logging.WARNING
