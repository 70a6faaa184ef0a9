"""The stills and clips of the journal's events: what the page can honestly show of them.

An alarm announces its media in the event's ``extra`` (``clip_id``, ``still_ids``;
prefixed ``<camera>:`` when several cameras film the zone). The outbox tells the
journal when each is queued (its file in the outbox's folder) or will never come
(a lost notice, with the reason), and deletes the file once the station has it.
So a media is, as the page says it:

- ``coming``: announced, not queued yet (a clip waits for its post-roll);
- ``here``: its file is still on the box, waiting for the station: viewable;
- ``gone``: its file has left the box: delivered to the station, or removed for
  room on a full disk (the box cannot tell which from here);
- ``lost``: it will never come, and why.

Pure but for :func:`state`, which looks at the file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

STATES = ("coming", "here", "gone", "lost")
KINDS = ("still", "clip")
TYPES = frozenset({"image/jpeg", "video/mp4"})  # what the page serves from the outbox


@dataclass(frozen=True)
class Announced:
    """A still or clip an event said it would bring."""

    id: str
    kind: str  # still | clip
    camera: str


@dataclass(frozen=True)
class Note:
    """What the outbox said of one media: queued with its file, or lost."""

    id: str
    kind: str
    content_type: str
    file: str  # "" for a lost notice
    size: int
    lost: str | None
    at_ms: int


def announced(extra: dict[str, str]) -> tuple[Announced, ...]:
    """The media an event's ``extra`` announces: each camera's stills, then its clip."""
    stills: dict[str, list[Announced]] = {}
    clips: dict[str, list[Announced]] = {}
    for key, value in extra.items():
        prefix, _, name = key.rpartition(":")
        camera = prefix or extra.get("camera", "")
        if name == "still_ids":
            stills.setdefault(camera, []).extend(
                Announced(i, "still", camera) for i in value.split()
            )
            clips.setdefault(camera, [])
        elif name == "clip_id" and value:
            stills.setdefault(camera, [])
            clips.setdefault(camera, []).append(Announced(value, "clip", camera))
    return tuple(m for camera in stills for m in (*stills[camera], *clips[camera]))


def dumps(media: tuple[Announced, ...]) -> str:
    return json.dumps([asdict(m) for m in media], separators=(",", ":")) if media else ""


def loads(text: object) -> tuple[Announced, ...]:
    if not isinstance(text, str) or not text:
        return ()
    try:
        items = json.loads(text)
        return tuple(Announced(str(m["id"]), str(m["kind"]), str(m["camera"])) for m in items)
    except (ValueError, TypeError, KeyError):
        return ()  # a damaged cell: the event is still shown, without its media


def state(note: Note | None) -> str:
    if note is None:
        return "coming"
    if note.lost is not None:
        return "lost"
    return "here" if note.file and Path(note.file).is_file() else "gone"


def as_json(media: Announced, note: Note | None) -> dict[str, Any]:
    return {
        "id": media.id,
        "kind": media.kind,
        "camera": media.camera,
        "state": state(note),
        "content_type": note.content_type if note and note.content_type else None,
        "size": note.size if note and note.file else None,
        "lost": note.lost if note else None,
    }
