"""Media on the wire: a still or clip in chunks on ``media/<event_id>/<media_id>``.

Each chunk's payload is raw bytes; MQTT v5 user properties say where it
belongs: ``v``, ``index`` (from 0), ``count``, ``size`` (bytes of the whole
file), ``sha256`` (hex, of the whole file), ``content_type`` and ``kind``
(``still`` or ``clip``).

A *lost notice* is a message on the same topic with no payload and the user
properties ``v``, ``kind`` and ``lost`` (the reason): the box will never send
this media (evicted from a full disk, or not recorded before a power cut). The
station stores the notice and acknowledges it as a complete media.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from edge.errors import ProtocolError
from edge.protocol.common import VERSION

KINDS = ("still", "clip")
CONTENT_TYPES = ("image/jpeg", "video/mp4")
MAX_CHUNKS = 100_000
MAX_REASON = 500
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_ID = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,79}")  # no leading dot: never ".."


@dataclass(frozen=True)
class Chunk:
    """What a chunk's user properties say."""

    index: int
    count: int
    size: int
    sha256: str
    content_type: str
    kind: str


@dataclass(frozen=True)
class Lost:
    """A media an event announced that the box will never send, and why."""

    kind: str
    reason: str


def chunk_count(size: int, chunk_bytes: int) -> int:
    """Chunks needed for ``size`` bytes; an empty file is still one (empty) chunk."""
    return max(1, -(-size // chunk_bytes))


def chunk_properties(chunk: Chunk) -> tuple[tuple[str, str], ...]:
    return (
        ("v", str(VERSION)),
        ("index", str(chunk.index)),
        ("count", str(chunk.count)),
        ("size", str(chunk.size)),
        ("sha256", chunk.sha256),
        ("content_type", chunk.content_type),
        ("kind", chunk.kind),
    )


def lost_properties(kind: str, reason: str) -> tuple[tuple[str, str], ...]:
    """User properties of a lost notice: ``media/<event>/<media>`` with no payload, saying
    that this still or clip, announced by its event, will never come, and why."""
    return (("v", str(VERSION)), ("kind", kind), ("lost", reason[:MAX_REASON]))


def parse_lost(properties: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> Lost | None:
    """The lost notice these user properties carry, or None for a chunk."""
    props = dict(properties)
    if "lost" not in props:
        return None
    try:
        version = int(props["v"])
    except (KeyError, ValueError) as exc:
        raise ProtocolError("lost notice without a numeric 'v'") from exc
    if version > VERSION:
        raise ProtocolError(f"media protocol version {version} is newer than {VERSION}")
    kind, reason = props.get("kind", ""), props["lost"]
    if kind not in KINDS:
        raise ProtocolError(f"lost notice of unknown kind {kind!r}")
    if not reason or len(reason) > MAX_REASON or "\x00" in reason:
        raise ProtocolError("lost notice needs a reason of 1 to 500 characters")
    return Lost(kind, reason)


def parse_chunk(properties: tuple[tuple[str, str], ...] | list[tuple[str, str]]) -> Chunk:
    """The chunk header from user properties; ProtocolError on anything off."""
    props = dict(properties)
    try:
        version = int(props["v"])
        if version > VERSION:
            raise ProtocolError(f"media protocol version {version} is newer than {VERSION}")
        chunk = Chunk(
            index=int(props["index"]),
            count=int(props["count"]),
            size=int(props["size"]),
            sha256=props["sha256"],
            content_type=props["content_type"],
            kind=props["kind"],
        )
    except KeyError as exc:
        raise ProtocolError(f"media chunk lacks user property {exc.args[0]!r}") from exc
    except ValueError as exc:
        raise ProtocolError(f"media chunk property is not a number: {exc}") from exc
    if not 0 < chunk.count <= MAX_CHUNKS or not 0 <= chunk.index < chunk.count:
        raise ProtocolError(f"chunk {chunk.index} of {chunk.count} is out of range")
    if chunk.size < 0:
        raise ProtocolError("media size must not be negative")
    if not _SHA256.fullmatch(chunk.sha256):
        raise ProtocolError("sha256 must be 64 lower-case hex digits")
    if chunk.content_type not in CONTENT_TYPES or chunk.kind not in KINDS:
        raise ProtocolError(f"unknown media type {chunk.content_type!r} / kind {chunk.kind!r}")
    return chunk


def media_ids(topic: str, prefix: str) -> tuple[str, str, str]:
    """``(device, event_id, media_id)`` from ``<prefix>/<device>/media/<event>/<media>``."""
    head = prefix + "/"
    parts = topic[len(head) :].split("/") if topic.startswith(head) else []
    if len(parts) != 4 or parts[1] != "media" or not all(_ID.fullmatch(p) for p in parts):
        raise ProtocolError(f"not a media topic: {topic!r}")
    return parts[0], parts[2], parts[3]
