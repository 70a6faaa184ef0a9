"""The outbox's tables and its send-order policy."""

from __future__ import annotations

from edge.codes import Condition, Kind
from edge.model import Event

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS events (
    id TEXT PRIMARY KEY,
    seq INTEGER NOT NULL UNIQUE,
    priority INTEGER NOT NULL,
    zone TEXT,
    body TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    first_sent_ms INTEGER,
    next_send_ms INTEGER NOT NULL DEFAULT 0
) STRICT;
CREATE INDEX IF NOT EXISTS events_order ON events (priority, seq);
CREATE INDEX IF NOT EXISTS events_zone ON events (zone, attempts, created_ms);
CREATE INDEX IF NOT EXISTS events_created ON events (created_ms);
CREATE TABLE IF NOT EXISTS media (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    priority INTEGER NOT NULL,
    kind TEXT NOT NULL,
    content_type TEXT NOT NULL,
    file TEXT NOT NULL,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    acked_chunks INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_send_ms INTEGER NOT NULL DEFAULT 0,
    lost TEXT
) STRICT;
CREATE INDEX IF NOT EXISTS media_order ON media (priority, created_ms);
CREATE INDEX IF NOT EXISTS media_event ON media (event_id);
CREATE TABLE IF NOT EXISTS media_due (
    id TEXT PRIMARY KEY,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    camera TEXT NOT NULL,
    from_ms INTEGER NOT NULL,
    to_ms INTEGER NOT NULL,
    priority INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS zone_last (
    zone TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    seq INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS dead_letters (
    id TEXT PRIMARY KEY,
    what TEXT NOT NULL,
    body TEXT NOT NULL,
    reason TEXT NOT NULL,
    code INTEGER,
    at_ms INTEGER NOT NULL
) STRICT;
INSERT OR IGNORE INTO meta (key, value) VALUES ('seq', 0);
INSERT OR IGNORE INTO meta (key, value) VALUES ('evicted_events', 0);
INSERT OR IGNORE INTO meta (key, value) VALUES ('evicted_media', 0);
INSERT OR IGNORE INTO meta (key, value) VALUES ('dead_letters', 0);
"""
# Columns added since the first release, for databases made before them.
UPGRADES = (("media", "lost", "ALTER TABLE media ADD COLUMN lost TEXT"),)

# Send order, lowest first. Within the first class: fire, then panic and
# hold-up, then intrusion and technical, then tamper. Both halves of a
# condition (alarm and restore) share a class, so a zone's events keep their
# order when sorted by (priority, seq).
_CONDITION_RANK = {
    Condition.FIRE: 0,
    Condition.PANIC: 1,
    Condition.HOLDUP: 1,
    Condition.BURGLARY: 2,
    Condition.ENTRY_EXIT: 2,
    Condition.TECHNICAL: 2,
    Condition.SENSOR_TAMPER: 3,
    Condition.PANEL_TAMPER: 3,
    Condition.ENCLOSURE_TAMPER: 3,
    Condition.CAMERA_TAMPER: 3,
}
TROUBLE = 10
ROUTINE = 20  # arm/disarm, tests, supervision
MOTION = 30  # video-only events: the first to be evicted


def priority(event: Event) -> int:
    rank = _CONDITION_RANK.get(event.condition)
    if rank is not None:
        return rank
    if event.kind in (Kind.TROUBLE, Kind.TROUBLE_RESTORE):
        return TROUBLE
    if event.kind in (Kind.ARM, Kind.DISARM, Kind.TEST):
        return ROUTINE
    return MOTION
