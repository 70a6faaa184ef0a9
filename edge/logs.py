"""Logging: structured records to journald under systemd, readable text otherwise.

The journal's native protocol is a datagram of ``KEY=value`` fields, so it is
spoken here directly. Add fields to a record with
``log.info(..., extra={"journal": {"EVENT_ID": event_id}})``.

A line that carries a secret for the person at the console (the page's
one-time setup code) is logged with ``extra=SECRET``: it goes to the console
and the journal, and handlers that others can read (the page's log view)
leave it out (:func:`is_secret`).
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import sys
from collections.abc import Mapping
from types import MappingProxyType

JOURNAL_SOCKET = "/run/systemd/journal/socket"
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
MAX_DATAGRAM = 200_000
SECRET: Mapping[str, object] = MappingProxyType({"secret": True})  # extra= of a secret line


def is_secret(record: logging.LogRecord) -> bool:
    """True for a record logged with ``extra=SECRET``: for the console and journal only."""
    return getattr(record, "secret", False) is True


def journal_fields(record: logging.LogRecord, identifier: str) -> dict[str, str]:
    fields = {
        "MESSAGE": record.getMessage(),
        "PRIORITY": str(_PRIORITY.get(record.levelno, 6)),
        "SYSLOG_IDENTIFIER": identifier,
        "LOGGER": record.name,
        "CODE_FILE": record.pathname,
        "CODE_LINE": str(record.lineno),
        "CODE_FUNC": record.funcName,
        "THREAD_NAME": record.threadName or "",
    }
    if record.exc_info:
        fields["MESSAGE"] += "\n" + logging.Formatter().formatException(record.exc_info)
    extra = getattr(record, "journal", None)
    if isinstance(extra, Mapping):
        for key, value in extra.items():
            fields[str(key).upper()] = str(value)
    return fields


def encode_journal(fields: Mapping[str, str], max_bytes: int = MAX_DATAGRAM) -> bytes:
    """The native journal protocol: ``KEY=value\\n``, or a length-prefixed binary form.

    A datagram over ``max_bytes`` has its MESSAGE cut (on a UTF-8 boundary, marked
    ``… [truncated N bytes]``); every other field is kept whole.
    """
    parts = {key: _field(key, value.encode("utf-8", "replace")) for key, value in fields.items()}
    size = sum(len(part) for part in parts.values())
    if size > max_bytes and "MESSAGE" in parts:
        others = size - len(parts["MESSAGE"])
        room = max_bytes - others - len(b"MESSAGE\n") - 8 - 1  # the binary form's overhead
        message = fields["MESSAGE"].encode("utf-8", "replace")
        parts["MESSAGE"] = _field("MESSAGE", _cut(message, room))
    return b"".join(parts.values())


def _field(key: str, data: bytes) -> bytes:
    if b"\n" in data:
        return key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
    return key.encode() + b"=" + data + b"\n"


def _cut(data: bytes, room: int) -> bytes:
    """``data`` in at most ``room`` bytes (when room allows the marker): its head and a
    marker saying how many bytes were dropped."""
    longest = _marker(len(data))  # the marker is never longer than this
    keep = max(0, min(len(data), room - len(longest)))
    while 0 < keep < len(data) and data[keep] & 0xC0 == 0x80:  # not inside a character
        keep -= 1
    return data[:keep] + _marker(len(data) - keep)


def _marker(dropped: int) -> bytes:
    return f"… [truncated {dropped} bytes]".encode()


class JournalHandler(logging.Handler):
    def __init__(self, identifier: str, address: str = JOURNAL_SOCKET) -> None:
        super().__init__()
        self.identifier = identifier
        self.address = address
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._sock.sendto(encode_journal(journal_fields(record, self.identifier)), self.address)
        except OSError:
            self.handleError(record)

    def close(self) -> None:
        self._sock.close()
        super().close()


def setup(level: str = "INFO", identifier: str = "edge") -> None:
    """Journald when started by systemd with a journal, text on stderr otherwise."""
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    handler: logging.Handler
    if os.environ.get("JOURNAL_STREAM") and os.path.exists(JOURNAL_SOCKET):  # noqa: PTH110
        handler = JournalHandler(identifier)
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
