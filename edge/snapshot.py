"""The status snapshot: one typed section per stage, as ``/api/status`` gives it.

Built by :mod:`edge.status` from the stages, read by the technician page, its
OpenAPI document (the response schema is :class:`Status`'s JSON Schema) and
``/metrics``. Pure: pydantic models only. A figure that is not known is None
(``null``), never 0.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Device(Section):
    id: str
    site: str
    account: str
    version: str
    boot_id: str
    uptime_s: int
    simulated_inputs: bool


class Route(Section):
    """One transmission path: 1 is the primary ([uplink]), 2... its backups."""

    number: int
    name: str
    kind: str  # mqtt | dc09
    connected: bool
    lost: bool  # lost for longer than its path_loss_s (a trouble was raised)
    path_loss_s: int
    published: int
    acknowledged: int


class Uplink(Section):
    broker: str
    connected: bool
    connects: int
    last_error: str | None
    in_flight: int
    window: int
    published: int
    acknowledged: int
    refused: int
    media_chunks: int
    media_done: int
    last_ack_at: str | None
    connected_since: str | None
    margin_s: float
    profile: str
    heartbeat_s: int
    path_loss_s: int
    path_lost: bool
    delivery_failed: bool
    refused_subscriptions: dict[str, str]
    commands: int
    commands_rejected: int
    routes: list[Route] = []  # the primary and its backups, when there are backups
    category: str = ""  # the EN 50136-1 category the routes reach, and their states
    ats: str = ""  # that category alone (DP2, SP4...), "" when none is reached


class Provisioning(Section):
    state: str  # unmanaged | unprovisioned | provisioned
    uplink_allowed: bool
    problems: list[str]
    serial: str | None
    csr_file: str | None
    setup_code_file: str | None


class Outbox(Section):
    depth: int  # events not yet acknowledged, on disk and held in memory
    oldest_age_s: float | None
    media: int
    media_bytes: int
    peak_depth: int  # the deepest since the queue was last empty (drain progress)
    held_in_memory: int  # events the disk refused, sent all the same
    reserve_held: bool  # false while the disk is full and the reserve is in use


class Journal(Section):
    durable: bool
    file: str | None
    problem: str | None
    started_afresh: str | None  # why the file was begun anew (a damaged one kept aside)
    days: int
    max_rows: int
    pending: int
    written: int
    batches: int
    changes: int  # events and media noted since the start: the events page refreshes on it


class Zone(Section):
    id: str
    name: str
    type: str
    number: int
    active: bool
    changes: int
    last_change_at: str | None


class Zones(Section):
    armed: dict[str, bool]  # partition -> armed
    zones: list[Zone]
    edges_dropped: int


class WalkTest(Section):
    running: bool
    zones: list[str] | None = None
    seen: list[str] | None = None
    not_seen: list[str] | None = None
    activations: int | None = None
    remaining_s: int | None = None


class Camera(Section):
    state: str  # stopped | running | lost
    frames: int
    fps: float
    width: int
    height: int
    error: str
    dropped: int
    ring_bytes: int
    ring_seconds: float
    path: str = ""  # passthrough | encode ("" before the camera first opens)
    path_reason: str = ""
    encoder: str | None = None  # libx264 | h264_v4l2m2m; None when passed through
    encoder_reason: str = ""
    source_fps: float | None = None  # the rate frames really come at (their own times)
    fps_note: str | None = None  # when that differs from the config's fps
    audio: str = "off"  # off | on | no sound | lost: why
    substream: str | None = None  # the sub-stream's state, for a camera that has one


class Recorder(Section):
    mode: str
    kept: int
    failing: str | None
    yielding: bool  # no new footage: an alarm's media wait for room


class Video(Section):
    lores_dropped: int
    media_failed: int
    media_lost: int  # stills and clips announced lost to the station
    media_waiting: int  # waiting for room on a full disk
    stills_pending: int
    recorder: Recorder


class MotionCamera(Section):
    fps: float
    frames: int
    calibrating: bool
    motion: bool
    boxes: list[list[int]]
    lores: list[int]
    tamper: list[str]
    outside_zones: int = 0  # frames with motion outside every zone (no event, no evidence)
    person_checks: int = 0  # frames the person check looked at
    person_seen: int = 0  # ... and said "person"
    person: str | None = None  # its last answer: yes | no; None before it looked


class Motion(Section):
    enabled: bool
    processed: int = 0
    dropped: int = 0
    rejected: int = 0
    cameras: dict[str, MotionCamera] = {}


class System(Section):
    clock_synchronized: bool | None
    clock_offset_ms: float | None
    clock_source: str | None
    load_1m: float
    cpu_temp_c: float | None
    retention_days: int
    oldest_recording_at: str | None
    memory_total_bytes: int | None = None
    memory_used_bytes: int | None = None
    disk_total_bytes: int | None = None
    disk_used_bytes: int | None = None
    disk_free_bytes: int | None = None
    process_rss_bytes: int | None = None
    process_cpu_s: float | None = None
    process_threads: int | None = None
    process_open_fds: int | None = None


class Verdict(Section):
    """One thing wrong with the box, in words: what the page's badge and ``/healthz`` say.

    ``key`` is a catalogue key (``edge/i18n/<lang>/box.json``) and ``values`` its
    placeholders (a name ending in ``_s`` is a duration in seconds); ``text`` is the
    same in English, for probes and logs. ``level``: ``fault`` (events may not reach
    the station, or a stage is dead), ``warning`` (something does not work as it
    should), ``starting`` (not ready yet: a camera before its first picture, the
    link's first connection), ``ok`` (the verdict of a healthy box only)."""

    check: str | None  # the health check that found it; None when healthy
    level: str  # ok | starting | warning | fault
    key: str
    values: dict[str, str | int | float]
    text: str


class Status(Section):
    device: Device
    uplink: Uplink
    provisioning: Provisioning
    outbox: Outbox
    journal: Journal
    zones: Zones
    outputs: dict[str, bool]
    walktest: WalkTest
    cameras: dict[str, Camera]
    video: Video
    motion: Motion
    system: System
    problems: dict[str, str]
    healthy: bool
    verdict: Verdict  # the worst of ``faults``, or "healthy"
    faults: list[Verdict]  # everything wrong, the worst first
