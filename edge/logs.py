"""Logging: structured records to journald under systemd, readable text otherwise.

The journal's native protocol is a datagram of ``KEY=value`` fields, so it is
spoken here directly. Add fields to a record with
``log.info(..., extra={"journal": {"EVENT_ID": event_id}})``.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import sys
from collections.abc import Mapping

JOURNAL_SOCKET = "/run/systemd/journal/socket"
_PRIORITY = {
    logging.CRITICAL: 2,
    logging.ERROR: 3,
    logging.WARNING: 4,
    logging.INFO: 6,
    logging.DEBUG: 7,
}
MAX_DATAGRAM = 200_000


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


def encode_journal(fields: Mapping[str, str]) -> bytes:
    """The native journal protocol: ``KEY=value\\n``, or a length-prefixed binary form."""
    out = bytearray()
    for key, value in fields.items():
        data = value.encode("utf-8", "replace")
        if b"\n" in data:
            out += key.encode() + b"\n" + struct.pack("<Q", len(data)) + data + b"\n"
        else:
            out += key.encode() + b"=" + data + b"\n"
    return bytes(out[:MAX_DATAGRAM])


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
