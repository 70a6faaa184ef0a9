"""SIA DC-09 messages as pure functions: :func:`encode` a :class:`Frame`, :func:`decode` bytes.

One message on the wire::

    <LF> crc(4 hex) length(4 hex) "ID" seq(4) [R rcvr] L line [#acct] [ data ] [x]... _time <CR>

``crc`` is CRC-16/ARC and ``length`` the byte count of everything from the
first ``"`` to the end of the timestamp: ``0`` and three hex digits, so a
message has at most :data:`MAX_LENGTH` bytes there (:class:`FrameTooLong`).
Encrypted messages (``"*ID"``) carry, after ``[``, the hex of AES-CBC (128,
192 or 256-bit key, zero IV) over ``pad|data]`` + extended data + timestamp,
where ``pad`` is 1 to 16 characters other than ``|[]`` that make the length a
multiple of 16. Time is UTC, ``_HH:MM:SS,MM-DD-YYYY``. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import re
import secrets
import string
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from edge.errors import ProtocolError

IDENTS = ("SIA-DCS", "ADM-CID", "NULL", "ACK", "NAK", "DUH", "RSP")
RESPONSES = ("ACK", "NAK", "DUH", "RSP")
TIME_FORMAT = "%H:%M:%S,%m-%d-%Y"
PAD_CHARS = string.ascii_letters + string.digits  # never | [ ]
KEY_BYTES = (16, 24, 32)
MAX_SEQ = 9999
MAX_LENGTH = 0x0FFF  # the length field is "0" and three hex digits

_HEAD = re.compile(
    r'"(?P<star>\*)?(?P<ident>[A-Z-]+)"(?P<seq>\d{4})'
    r"(?:R(?P<receiver>[0-9A-F]{1,6})|None)?L(?P<line>[0-9A-F]{1,6})"
    r"(?:#(?P<account>[0-9A-F]{3,16}))?\["
)
_TAIL = re.compile(r"(?P<ext>(?:\[[^\[\]]*\])*)(?:_(?P<ts>\d\d:\d\d:\d\d,\d\d-\d\d-\d{4}))?")


# Tolerated, never written: pysiaalarm answers a message without a receiver
# number with "None" in its place ('"ACK"0001NoneL0#1234[]').


class Dc09Error(ProtocolError):
    """Bytes that are not a DC-09 message (or not one we can read with our key)."""


class FrameTooLong(Dc09Error):
    """A frame longer than DC-09's length field can say (``length`` bytes)."""

    def __init__(self, length: int) -> None:
        super().__init__(
            f"a DC-09 message of {length} bytes: the length field allows at most {MAX_LENGTH}"
        )
        self.length = length


@dataclass(frozen=True)
class Frame:
    """One DC-09 message, in clear. ``data`` is what sits in the first brackets."""

    ident: str
    seq: int
    line: str = "0"
    receiver: str | None = None
    account: str | None = None
    data: str = ""
    extended: tuple[str, ...] = ()  # e.g. ("Vhttps://station/media/...",), brackets off
    timestamp: datetime | None = None  # UTC, whole seconds
    encrypted: bool = False


def crc16(data: bytes) -> int:
    """CRC-16/ARC (reflected 0x8005, init 0): DC-09's CRC. ``b"123456789"`` gives 0xBB3D."""
    crc = 0
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def format_time(at: datetime) -> str:
    return "_" + at.astimezone(UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime:
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError as exc:
        raise Dc09Error(f"timestamp {text!r} is not HH:MM:SS,MM-DD-YYYY") from exc


def encode(
    frame: Frame, key: bytes | None = None, pad: Callable[[int], str] | None = None
) -> bytes:
    """The message's bytes, LF to CR. ``key`` is required for an encrypted frame.

    ``pad(n)`` gives the ``n`` padding characters (random by default).
    """
    _check(frame)
    tail = "".join(f"[{x}]" for x in frame.extended)
    if frame.timestamp is not None:
        tail += format_time(frame.timestamp)
    clear = f"{frame.data}]{tail}"
    if frame.encrypted:
        if key is None:
            raise Dc09Error("an encrypted frame needs a key")
        n = 16 - (len(clear) + 1) % 16 or 16
        filler = (pad or _random_pad)(n)
        if len(filler) != n or any(c in "|[]" for c in filler):
            raise Dc09Error(f"padding must be {n} characters, none of | [ ]")
        rest = _aes(key, encrypt=True, data=f"{filler}|{clear}".encode("ascii")).hex().upper()
    else:
        rest = clear
    body = (
        f'"{"*" if frame.encrypted else ""}{frame.ident}"{frame.seq:04d}'
        f"{'' if frame.receiver is None else 'R' + frame.receiver}L{frame.line}"
        f"{'' if frame.account is None else '#' + frame.account}[{rest}"
    ).encode("ascii")
    if len(body) > MAX_LENGTH:
        raise FrameTooLong(len(body))
    return b"\n%04X%04X%s\r" % (crc16(body), len(body), body)


def decode(raw: bytes, key: bytes | None = None) -> Frame:
    """The frame in ``raw`` (LF and CR optional). Dc09Error on a bad CRC, length or layout."""
    text = raw.strip(b"\r\n")
    if len(text) < 8:
        raise Dc09Error(f"too short for a DC-09 message: {raw!r}")
    try:
        crc, length = int(text[:4], 16), int(text[4:8], 16)
    except ValueError as exc:
        raise Dc09Error(f"no CRC and length in {raw[:12]!r}") from exc
    body = text[8:]
    if crc16(body) != crc:
        raise Dc09Error(f"CRC {crc:04X} does not match the message ({crc16(body):04X})")
    if len(body) != length:
        raise Dc09Error(f"length {length} does not match the message ({len(body)} bytes)")
    try:
        message = body.decode("ascii")
    except UnicodeDecodeError as exc:
        raise Dc09Error("a DC-09 message is ASCII") from exc
    head = _HEAD.match(message)
    if head is None or head["ident"] not in IDENTS:
        raise Dc09Error(f"no DC-09 header in {message[:40]!r}")
    rest = message[head.end() :]
    encrypted = head["star"] is not None
    if encrypted:
        rest = _decrypt(rest, key, head["ident"])
    data, bracket, tail = rest.partition("]")
    if not bracket or "[" in data:
        raise Dc09Error(f"data of {message[:40]!r} has no closing bracket")
    end = _TAIL.fullmatch(tail)
    if end is None:
        raise Dc09Error(f"cannot read extended data and time in {tail!r}")
    return Frame(
        ident=head["ident"],
        seq=int(head["seq"]),
        line=head["line"],
        receiver=head["receiver"],
        account=head["account"],
        data=data,
        extended=tuple(x[1:] for x in re.findall(r"\[[^\[\]]*", end["ext"])),
        timestamp=None if end["ts"] is None else parse_time(end["ts"]),
        encrypted=encrypted,
    )


def split(buffer: bytes) -> tuple[list[bytes], bytes]:
    """Whole messages (LF ... CR) in ``buffer``, and what is left of the next one."""
    messages: list[bytes] = []
    while True:
        end = buffer.find(b"\r")
        if end < 0:
            return messages, buffer
        start = buffer.rfind(b"\n", 0, end)
        if start >= 0 and end - start > 1:
            messages.append(buffer[start : end + 1])
        buffer = buffer[end + 1 :]


def check_key(key: bytes) -> bytes:
    if len(key) not in KEY_BYTES:
        raise Dc09Error(f"an AES key has 16, 24 or 32 bytes, not {len(key)}")
    return key


def _check(frame: Frame) -> None:
    problems = []
    if frame.ident not in IDENTS:
        problems.append(f"ident {frame.ident!r} is not one of {', '.join(IDENTS)}")
    if not 0 <= frame.seq <= MAX_SEQ:
        problems.append(f"sequence {frame.seq} is not 0..{MAX_SEQ}")
    for name, value, low, high in (
        ("line", frame.line, 1, 6),
        ("receiver", frame.receiver, 1, 6),
        ("account", frame.account, 3, 16),
    ):
        if value is not None and not re.fullmatch(f"[0-9A-F]{{{low},{high}}}", value):
            problems.append(f"{name} {value!r} is not {low} to {high} upper-case hex digits")
    for part in (frame.data, *frame.extended):
        if not part.isascii() or any(c in part for c in "[]\r\n") or not part.isprintable():
            problems.append(f"{part!r}: printable ASCII without [ ] only")
    if frame.timestamp is not None and frame.timestamp.microsecond:
        problems.append("the timestamp has whole seconds")
    if problems:
        raise Dc09Error("; ".join(problems))


def _decrypt(rest: str, key: bytes | None, ident: str) -> str:
    if key is None:
        raise Dc09Error("an encrypted message, and no key")
    try:
        blob = bytes.fromhex(rest)
    except ValueError as exc:
        raise Dc09Error("encrypted part is not hex") from exc
    if not blob or len(blob) % 16:
        raise Dc09Error(f"encrypted part of {len(blob)} bytes is not whole AES blocks")
    clear = _aes(key, encrypt=False, data=blob).decode("ascii", "replace")
    pad, bar, after = clear.partition("|")
    if bar and "]" not in pad and "[" not in pad:
        return after
    if ident in RESPONSES and "]" in clear:  # a response padded without "|": no data
        return clear[clear.index("]") :]
    raise Dc09Error("decrypted text has no pad separator (wrong key?)")


def _aes(key: bytes, *, encrypt: bool, data: bytes) -> bytes:
    cipher = Cipher(algorithms.AES(check_key(key)), modes.CBC(bytes(16)))
    worker = cipher.encryptor() if encrypt else cipher.decryptor()
    return worker.update(data) + worker.finalize()


def _random_pad(n: int) -> str:
    return "".join(secrets.choice(PAD_CHARS) for _ in range(n))
