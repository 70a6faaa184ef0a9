"""Keep ``edge/protocol/PROTOCOL.md`` honest: its examples are what the encoders produce.

Every example block in the document is the output of the real encoders below
(shown indented; the wire form is the compact JSON). Regenerate the blocks
and the code table after a protocol change with::

    .venv/bin/python -m tests.unit.test_protocol_doc --write
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from edge import codes
from edge.codes import Condition, ZoneType
from edge.model import Event, ZoneRef
from edge.protocol import (
    BoxSite,
    Chunk,
    ClipArgs,
    Command,
    CommandRejected,
    EventMessage,
    MediaProgress,
    SnapshotArgs,
    Topics,
    chunk_count,
    chunk_properties,
    decode_ack,
    decode_event,
    decode_result,
    encode_ack,
    encode_command,
    encode_event,
    encode_heartbeat,
    encode_result,
    encode_state,
    parse_chunk,
    parse_command,
    station_filters,
)
from edge.protocol.commands import REASONS, STATUSES, TYPES
from edge.protocol.media import CONTENT_TYPES, KINDS

DOC = Path(__file__).resolve().parents[2] / "edge" / "protocol" / "PROTOCOL.md"

T0 = 1_795_875_790_123  # 2026-11-28T14:23:10.123Z: the alarm
EVENT_ID = "019ad0e1-2a2b-7c3d-8e4f-5a6b7c8d9e0f"
STILL_ID = "019ad0e1-2a2c-7000-8a00-000000000001"
DEVICE, ACCOUNT, PREFIX = "gw-0001", "A1B2", "edge"
CHUNK_BYTES = 256 * 1024  # the outbox's default chunk size
STILL = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 1200 + b"\xff\xd9"  # 307,206 bytes


def _alarm() -> EventMessage:
    event = Event(
        id=EVENT_ID,
        kind=codes.kind(Condition.BURGLARY, restore=False),
        condition=Condition.BURGLARY,
        codes=codes.codes(Condition.BURGLARY, restore=False),
        occurred_at_ms=T0,
        partition=1,
        armed=True,
        zone=ZoneRef(id="hall", name="Hall PIR", type=ZoneType.INTRUSION, number=3),
        text="Hall PIR: alarm",
    )
    return EventMessage(event, 1842, DEVICE, ACCOUNT, sent_at_ms=T0 + 41, historical=False)


def _still_chunks() -> list[tuple[Chunk, bytes]]:
    count = chunk_count(len(STILL), CHUNK_BYTES)
    sha = hashlib.sha256(STILL).hexdigest()
    return [
        (
            Chunk(i, count, len(STILL), sha, "image/jpeg", "still"),
            STILL[i * CHUNK_BYTES : (i + 1) * CHUNK_BYTES],
        )
        for i in range(count)
    ]


def _clip_command() -> Command:
    clip = ClipArgs("porch", from_ms=T0 - 20_000, to_ms=T0 + 40_000)
    return Command("op7-20261128-0003", T0 + 180_000, clip)


def payloads() -> dict[str, bytes]:
    """Every example of the document, by name, as the wire carries it."""
    chunks = _still_chunks()
    return {
        "state-online": encode_state(
            "online",
            boot_id="5f0c1d2e",
            version="0.1.0",
            at_ms=T0 - 3_600_000,
            supervision={"heartbeat_s": 60, "lost_s": 180},
            site=BoxSite("ACME warehouse", "12 rue des Docks, 69009 Lyon", 45.7772, 4.8044),
        ),
        "state-offline": encode_state(
            "offline", boot_id="5f0c1d2e", version="0.1.0", at_ms=T0 - 3_600_000
        ),
        "heartbeat": encode_heartbeat(seq=61, at_ms=T0 - 1_877, interval_s=60, outbox_depth=0),
        "alarm-event": encode_event(_alarm()),
        "event-ack": encode_ack([EVENT_ID]),
        "media-ack-partial": encode_ack([], (MediaProgress(STILL_ID, 1),)),
        "media-ack-complete": encode_ack([], (MediaProgress(STILL_ID, 2, complete=True),)),
        **{
            f"still-chunk-{chunk.index}": json.dumps(
                [list(p) for p in chunk_properties(chunk)], separators=(",", ":")
            ).encode()
            for chunk, _ in chunks
        },
        "cmd-clip": encode_command(_clip_command()),
        "cmd-result-accepted": encode_result("op7-20261128-0003", "accepted", at_ms=T0 + 60_300),
        "cmd-result-done": encode_result(
            "op7-20261128-0003",
            "done",
            at_ms=T0 + 63_900,
            event_id="019ad0e2-6a0f-7000-8b00-000000000006",
            media_ids=["019ad0e2-6a10-7000-8b00-000000000007"],
        ),
        "cmd-result-rejected": encode_result(
            "op7-20261128-0004", "rejected", _late_reason(), at_ms=T0 + 60_300
        ),
    }


def _late_reason() -> str:
    """What the parser says about a snapshot command that arrived after its expiry."""
    late = Command("op7-20261128-0004", T0 + 50_000, SnapshotArgs("porch"))
    with pytest.raises(CommandRejected) as info:
        parse_command(encode_command(late), T0 + 60_300)
    return info.value.reason


def render(payload: bytes) -> str:
    """How a payload appears in the document: indented JSON, a property pair per line."""
    value = json.loads(payload)
    if isinstance(value, list):
        return "[\n" + ",\n".join(f"  {json.dumps(pair)}" for pair in value) + "\n]"
    return json.dumps(value, indent=2, ensure_ascii=False)


def code_table() -> str:
    lines = [
        "| condition | Contact ID | SIA event | SIA restore | kind | restore kind | CID meaning |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in codes.TABLE:
        restore = row.sia_restore or "—"
        lines.append(
            f"| `{row.condition.value}` | {row.cid:03d} | {row.sia_event} | {restore} "
            f"| `{row.event_kind.value}` | "
            + (f"`{row.restore_kind.value}`" if row.restore_kind else "—")
            + f" | {row.meaning} |"
        )
    return "\n".join(lines)


_BLOCK = re.compile(r"<!-- example: ([a-z0-9-]+) -->\n```json\n(.*?)```", re.S)
_CODES = re.compile(r"(<!-- codes:begin -->\n)(.*?)(<!-- codes:end -->)", re.S)


def _doc() -> str:
    return DOC.read_text(encoding="utf-8")


def write() -> None:
    """Regenerate the example blocks and the code table in place."""
    examples = payloads()
    text = _BLOCK.sub(
        lambda m: f"<!-- example: {m[1]} -->\n```json\n{render(examples[m[1]])}\n```", _doc()
    )
    text = _CODES.sub(lambda m: m[1] + "\n" + code_table() + "\n\n" + m[3], text)
    DOC.write_text(text, encoding="utf-8")


# --- the examples are exact ----------------------------------------------------


def test_every_example_is_in_the_document_exactly() -> None:
    blocks = _BLOCK.findall(_doc())
    examples = payloads()
    assert {name for name, _ in blocks} == set(examples), "regenerate with --write"
    for name, block in blocks:
        wire = json.dumps(json.loads(block), separators=(",", ":")).encode()
        assert wire == examples[name], f"example {name!r} is stale: regenerate with --write"
        assert block == render(examples[name]) + "\n", f"example {name!r} is not as rendered"


def test_the_examples_decode() -> None:
    examples = payloads()
    assert decode_event(examples["alarm-event"]) == _alarm()
    assert decode_ack(examples["event-ack"]).ids == (EVENT_ID,)
    assert decode_ack(examples["media-ack-complete"]).media[0].complete
    assert parse_command(examples["cmd-clip"], T0 + 60_300) == _clip_command()
    assert decode_result(examples["cmd-result-done"]).status == "done"
    chunks = _still_chunks()
    assert len(chunks) == 2
    assert b"".join(data for _, data in chunks) == STILL
    for chunk, _ in chunks:
        assert parse_chunk(chunk_properties(chunk)) == chunk


def test_chunk_sizes_in_the_document() -> None:
    text = _doc()
    sizes = [len(data) for _, data in _still_chunks()]
    assert f"{len(STILL):,}" in text
    for size in sizes:
        assert f"{size:,}" in text


# --- every name the encoders use is documented ------------------------------------


def _paths(value: Any, parent: str = "") -> set[str]:
    """Field names as the document writes them: ``zone.name``, ``media[].have``."""
    if isinstance(value, dict):
        found = set()
        for key, inner in value.items():
            path = f"{parent}.{key}" if parent else key
            found |= {path} | _paths(inner, path)
        return found
    if isinstance(value, list):
        return {p for inner in value for p in _paths(inner, f"{parent}[]")}
    return set()


def _named(text: str, path: str) -> bool:
    """A field is named by its path, or (for free-form objects) by its own name."""
    last = re.split(r"\[\]\.|\.", path)[-1]
    return f"`{path}`" in text or (path.startswith("details.") and f"`{last}`" in text)


def test_every_field_is_documented() -> None:
    text = _doc()
    paths: set[str] = {"text", "extra", "media", "zone"}  # optional, may be empty or null
    for name, payload in payloads().items():
        if name.startswith("still-chunk"):
            paths |= {key for key, _ in json.loads(payload)}
        else:
            paths |= _paths(json.loads(payload))
    missing = sorted(p for p in paths if not _named(text, p))
    assert not missing, f"fields not named in PROTOCOL.md: {missing}"


def test_every_topic_is_documented() -> None:
    text = _doc()
    topics = Topics(PREFIX, DEVICE)
    base = topics.base + "/"
    suffixes = [
        getattr(topics, name)[len(base) :]
        for name in ("state", "events", "heartbeat", "ack", "cmd", "cmd_result")
    ]
    suffixes.append(topics.media("<event_id>", "<media_id>")[len(base) :])
    for suffix in suffixes:
        assert f"`{suffix}`" in text, suffix
    for pattern in station_filters(PREFIX).values():
        assert f"`{pattern.replace(PREFIX, '<prefix>', 1)}`" in text, pattern


@pytest.mark.parametrize(
    "words",
    [TYPES, STATUSES, REASONS, KINDS, CONTENT_TYPES],
    ids=["types", "statuses", "reasons", "media kinds", "content types"],
)
def test_every_vocabulary_word_is_documented(words: tuple[str, ...]) -> None:
    text = _doc()
    assert all(f"`{word}`" in text for word in words), words


def test_every_event_kind_and_zone_type_is_documented() -> None:
    text = _doc()
    for word in [k.value for k in codes.Kind] + [z.value for z in ZoneType]:
        assert f"`{word}`" in text, word


def test_code_table_matches_edge_codes() -> None:
    found = _CODES.search(_doc())
    assert found is not None, "PROTOCOL.md lost its code table markers"
    assert found[2].strip() == code_table(), "code table is stale: regenerate with --write"
    rows = found[2].strip().splitlines()[2:]
    assert len(rows) == len(codes.TABLE)
    for line, row in zip(rows, codes.TABLE, strict=True):
        cells = [c.strip().strip("`") for c in line.strip("|").split("|")]
        assert cells[0] == row.condition.value
        assert int(cells[1]) == row.cid
        assert (cells[2], cells[3]) == (row.sia_event, row.sia_restore or "—")


def test_constants_in_the_document() -> None:
    text = _doc()
    from edge.protocol.commands import MAX_CLIP_S, MAX_EXPIRY_S, MAX_TEXT
    from edge.protocol.media import MAX_CHUNKS

    for number in (MAX_CLIP_S, MAX_EXPIRY_S, MAX_TEXT, f"{MAX_CHUNKS:,}"):
        assert str(number) in text, number


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        write()
    else:
        for name, payload in payloads().items():
            print(f"--- {name}\n{render(payload)}")
