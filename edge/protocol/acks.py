"""The station's acknowledgement: what it has durably stored, events and media.

``{"v":1, "ids":[event ids], "media":[{"id":..., "have":n, "complete":bool}]}``.
For media, ``have`` counts the chunks stored from the first one on without a
gap, so the box resumes from chunk ``have`` after a reconnect; ``complete``
means the whole file is stored and its sha256 checked. A station that found a
bad checksum answers ``have: 0``: the box sends the file again from the start.
"""

from __future__ import annotations

from dataclasses import dataclass

from edge.errors import ProtocolError
from edge.protocol.common import VERSION, as_bool, as_int, dumps, load


@dataclass(frozen=True)
class MediaProgress:
    media_id: str
    have: int
    complete: bool = False


@dataclass(frozen=True)
class Ack:
    ids: tuple[str, ...] = ()
    media: tuple[MediaProgress, ...] = ()


def encode_ack(ids: list[str] | tuple[str, ...], media: tuple[MediaProgress, ...] = ()) -> bytes:
    body: dict[str, object] = {"v": VERSION, "ids": list(ids)}
    if media:
        body["media"] = [{"id": m.media_id, "have": m.have, "complete": m.complete} for m in media]
    return dumps(body)


def decode_ack(payload: bytes) -> Ack:
    data = load(payload)
    ids = data.get("ids", [])
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ProtocolError("ack must carry a list of event id strings in 'ids'")
    media = data.get("media", [])
    if not isinstance(media, list):
        raise ProtocolError("ack 'media' must be a list")
    progress = []
    for item in media:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise ProtocolError("each ack 'media' item needs a string 'id'")
        have = as_int(item.get("have"), "media.have")
        if have < 0:
            raise ProtocolError("media.have must not be negative")
        complete = bool(as_bool(item.get("complete", False), "media.complete"))
        progress.append(MediaProgress(item["id"], have, complete))
    if not ids and not progress:
        raise ProtocolError("ack acknowledges nothing")
    return Ack(tuple(ids), tuple(progress))
