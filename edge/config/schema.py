"""The one configuration model of the box: structure, types and ranges.

Cross-references between sections (an input's zone, a zone's cameras,
duplicate pins) are checked in :mod:`edge.config.rules`; loading and error
reporting live in :mod:`edge.config.load`. Nothing here does I/O.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ByteSize,
    ConfigDict,
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from edge.codes import ZoneType

_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
_ACCOUNT = re.compile(r"^[0-9A-F]{3,16}$")
_TOPIC_PREFIX = re.compile(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$")
_ALSA = re.compile(r"^[A-Za-z0-9_]+(:[A-Za-z0-9_=,.-]+)?$")  # hw:1,0  plughw:CARD=Mic,DEV=0
RESERVED_PINS = frozenset({0, 1})  # BCM 0/1: HAT ID EEPROM (ID_SD, ID_SC)


def _slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise ValueError(
            "must be 1-63 characters of a-z, 0-9, '-' and '_', starting with a letter or digit"
        )
    return value


def _account(value: str) -> str:
    if not _ACCOUNT.fullmatch(value):
        raise ValueError("must be 3 to 16 hexadecimal digits in upper case (e.g. '1234' or 'A1B2')")
    return value


def _broker_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("mqtt", "mqtts"):
        raise ValueError("must start with mqtt:// (plain) or mqtts:// (TLS)")
    if not parts.hostname:
        raise ValueError("must name a host, e.g. mqtts://station.example.net:8883")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("port must be a number from 1 to 65535") from exc
    if port == 0:
        raise ValueError("port must be a number from 1 to 65535")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError("must not carry a path, query or fragment")
    if parts.username or parts.password:
        raise ValueError("must not carry credentials; use uplink.username and uplink.password")
    return value


def _topic_prefix(value: str) -> str:
    if not _TOPIC_PREFIX.fullmatch(value):
        raise ValueError("must be topic levels of A-Z, a-z, 0-9, '-' and '_' joined by '/'")
    return value


Slug = Annotated[str, AfterValidator(_slug)]
Account = Annotated[str, AfterValidator(_account)]
BrokerUrl = Annotated[str, AfterValidator(_broker_url)]


class Section(BaseModel):
    """Base of every config section: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DeviceConfig(Section):
    id: Slug = Field(description="Unique device id; appears in every topic and event.")
    site: str = Field(default="", max_length=200, description="Human description of the site.")
    address: str = Field(
        default="", max_length=300, description="The site's postal address, sent in the birth."
    )
    latitude: float | None = Field(
        default=None, ge=-90, le=90, description="The site's latitude (WGS 84 degrees, north +)."
    )
    longitude: float | None = Field(
        default=None, ge=-180, le=180, description="The site's longitude (WGS 84 degrees, east +)."
    )
    state_dir: Path | None = Field(
        default=None,
        description="Where the outbox and media live; default: $STATE_DIRECTORY from systemd.",
    )

    @model_validator(mode="after")
    def _coordinates_together(self) -> DeviceConfig:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("latitude and longitude go together: give both or neither")
        if any(ord(c) < 32 for c in self.address):
            raise ValueError("address must be one line, without control characters")
        return self


class StationConfig(Section):
    account: Account = Field(description="Account number at the central station (SIA/Contact ID).")


class BrokerSection(Section):
    """An MQTT broker to connect to, and who we are there (the primary's, a backup's)."""

    broker: BrokerUrl = Field(description="mqtt://host:port or mqtts://host:port")
    client_id: Slug | None = None
    username: str | None = None
    password: SecretStr | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None

    @property
    def tls(self) -> bool:
        return urlsplit(self.broker).scheme == "mqtts"

    @property
    def host(self) -> str:
        return urlsplit(self.broker).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.broker).port or (8883 if self.tls else 1883)


class UplinkConfig(BrokerSection):
    client_id: Slug | None = Field(default=None, description="Default: the device id.")
    topic_prefix: Annotated[str, AfterValidator(_topic_prefix)] = "edge"
    keepalive_s: int = Field(default=30, ge=5, le=600)
    ack_timeout_s: float = Field(default=20.0, ge=1.0, le=600.0)
    publish_timeout_s: float = Field(default=10.0, ge=0.5, le=120.0)
    historical_after_s: float = Field(
        default=60.0, ge=1.0, le=86400.0, description="Events first sent later are historical."
    )
    reconnect_min_s: int = Field(default=1, ge=1, le=60)
    reconnect_max_s: int = Field(default=60, ge=1, le=3600)
    session_expiry_s: int = Field(
        default=7 * 86400,
        ge=0,
        le=30 * 86400,
        description="Broker keeps the session (and acks sent meanwhile) this long; 0: none.",
    )
    max_inflight: int = Field(default=100, ge=1, le=1000)
    chunk_bytes: int = Field(
        default=256 * 1024, ge=16 * 1024, le=4 * 1024 * 1024, description="Media chunk size."
    )


class SupervisionConfig(Section):
    profile: Literal["standard", "strict", "custom"] = Field(
        default="standard",
        description="standard: heartbeat 60 s, path loss 180 s; strict: 20 s / 90 s; "
        "custom: heartbeat_s and path_loss_s below.",
    )
    heartbeat_s: int | None = Field(default=None, ge=5, le=3600)
    path_loss_s: int | None = Field(default=None, ge=10, le=86400)
    max_ack_s: int = Field(
        default=30,
        ge=5,
        le=3600,
        description="An alarm unacknowledged this long: delivery failure.",
    )
    periodic_test_s: int = Field(
        default=86_400,
        ge=0,
        le=7 * 86_400,
        description="Periodic test report (CID 602) interval; 0: none. At least 60 otherwise.",
    )


class GpioConfig(Section):
    backend: Literal["lgpio", "mock"] = Field(
        default="lgpio", description="'lgpio' on the device; 'mock' simulates the pins."
    )


class InputConfig(Section):
    name: Slug
    pin: int = Field(ge=0, le=27, description="BCM GPIO number.")
    contact: Literal["no", "nc"] = Field(
        default="nc", description="Panel output contact: normally open or normally closed."
    )
    pull: Literal["up", "down"] = "up"
    zone: Slug


class OutputConfig(Section):
    name: Slug
    pin: int = Field(ge=0, le=27, description="BCM GPIO number.")
    function: Literal["path_fault", "delivery_failure"]
    active_high: bool = Field(default=True, description="Level that means 'fault'.")


class ZoneConfig(Section):
    id: Slug
    name: str = Field(min_length=1, max_length=64, description="Shown to the operator.")
    type: ZoneType
    number: int = Field(ge=1, le=999, description="Zone number sent in Contact ID / SIA.")
    partition: int = Field(default=1, ge=1, le=99)
    cameras: tuple[Slug, ...] = Field(default=(), description="Cameras that cover this zone.")
    alarm_when_disarmed: bool | None = Field(
        default=None, description="Default: true for 24-hour types, false for intrusion."
    )
    glitch_ms: int = Field(
        default=20,
        ge=0,
        le=1000,
        description="An activation shorter than this is ignored; the alarm comes this long after.",
    )
    restore_ms: int = Field(
        default=1000, ge=0, le=60_000, description="Restore after this long stable inactive."
    )
    hold_s: int = Field(
        default=10,
        ge=0,
        le=3600,
        description="An alarm is held at least this long: re-activations meanwhile are one alarm.",
    )
    swinger_limit: int = Field(
        default=3,
        ge=1,
        le=100,
        description="Alarms per arming period; the next shuts the zone down until arm/disarm.",
    )


def _polygon(value: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    if len(value) < 3:
        raise ValueError(
            "a privacy mask needs at least 3 corners, e.g. [[0, 0], [100, 0], [0, 80]]"
        )
    if any(x < 0 or y < 0 for x, y in value):
        raise ValueError("mask corners are pixel positions: no negative numbers")
    return value


Polygon = Annotated[tuple[tuple[int, int], ...], AfterValidator(_polygon)]


class CameraConfig(Section):
    id: Slug
    source: Literal["synthetic", "picamera2", "v4l2", "rtsp", "file"]
    device: str | None = Field(default=None, description="v4l2 only: e.g. /dev/video0")
    url: str | None = Field(default=None, description="rtsp only: rtsp://host/stream")
    path: Path | None = Field(default=None, description="file only: a video file, looped")
    width: int = Field(default=1280, ge=160, le=3840)
    height: int = Field(default=720, ge=120, le=2160)
    fps: float = Field(default=15.0, gt=0, le=60)
    keyframe_interval_s: float = Field(default=1.0, ge=0.25, le=10.0)
    bitrate_kbps: int = Field(
        default=2000, ge=100, le=20_000, description="Target bitrate of the H.264 stream."
    )
    privacy_masks: tuple[Polygon, ...] = Field(
        default=(),
        description="Polygons of [x, y] pixel corners blanked before encoding.",
    )
    passthrough: bool = Field(
        default=True,
        description="Record the camera's own H.264 as it comes (no re-encoding) when it sends "
        "H.264 without B-frames and has no privacy masks; false: always re-encode.",
    )
    encoder: Literal["auto", "libx264", "v4l2m2m"] = Field(
        default="auto",
        description="When the box encodes: auto = the Pi 4's hardware encoder when present, "
        "else libx264; v4l2m2m = the hardware one (libx264 if it cannot open).",
    )
    substream: str | None = Field(
        default=None,
        description="rtsp: URL of the camera's low-resolution stream, decoded for motion instead "
        "of the main one; file: a video file (test bench).",
    )
    audio: bool = Field(
        default=False,
        description="Keep this camera's sound in the pre-alarm ring, clips and recordings.",
    )
    audio_device: str | None = Field(
        default=None,
        description="ALSA device of a microphone (e.g. 'hw:1,0' for a USB one); default: the "
        "camera's own audio track (rtsp, file).",
    )
    audio_bitrate_kbps: int = Field(default=32, ge=16, le=128, description="AAC bitrate.")

    @field_validator("substream")
    @classmethod
    def _substream(cls, value: str | None, info: ValidationInfo) -> str | None:
        source = info.data.get("source")
        if value is None:
            return value
        if source not in ("rtsp", "file"):
            raise ValueError(
                f"only an rtsp camera (or a file) has a sub-stream; source is {source!r}"
            )
        if source == "rtsp" and not value.startswith(("rtsp://", "rtsps://")):
            raise ValueError("must start with rtsp:// or rtsps://")
        return value

    @field_validator("audio_device")
    @classmethod
    def _audio_device(cls, value: str | None) -> str | None:
        if value is not None and not _ALSA.fullmatch(value):
            raise ValueError(
                "must be an ALSA device name such as 'hw:1,0', 'plughw:CARD=Mic,DEV=0' or "
                "'default' (see arecord -L)"
            )
        return value

    @model_validator(mode="after")
    def _audio_source(self) -> CameraConfig:
        if self.audio and self.audio_device is None and self.source not in ("rtsp", "file"):
            raise ValueError(
                f"audio = true on a {self.source} camera needs audio_device (the microphone's "
                "ALSA device, e.g. 'hw:1,0'): this source has no sound of its own"
            )
        return self


def _area(value: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    if len(value) < 3:
        raise ValueError("an area needs at least 3 corners, e.g. [[0, 0], [100, 0], [0, 80]]")
    if any(x < 0 or y < 0 for x, y in value):
        raise ValueError("area corners are pixel positions: no negative numbers")
    return value


class MotionAreaConfig(Section):
    name: Slug = Field(description="Named in motion events and evidence, e.g. 'driveway'.")
    corners: Annotated[tuple[tuple[int, int], ...], AfterValidator(_area)] = Field(
        description="[x, y] pixel corners in the camera's picture (0,0 = top left)."
    )


class MotionCameraConfig(Section):
    camera: Slug = Field(description="Id of the [[cameras]] block these settings are for.")
    sensitivity: int | None = Field(
        default=None, ge=1, le=10, description="This camera's sensitivity; default: motion's."
    )
    masks: tuple[MotionAreaConfig, ...] = Field(
        default=(), description="Areas where motion is ignored (trees, a busy road)."
    )
    zones: tuple[MotionAreaConfig, ...] = Field(
        default=(), description="Named areas: events and evidence say which were touched."
    )


class MotionConfig(Section):
    enabled: bool = Field(default=True, description="Run the motion pre-filter on the cameras.")
    sensitivity: int = Field(
        default=5, ge=1, le=10, description="1 = only large, strong changes; 10 = small, faint."
    )
    threshold: int | None = Field(
        default=None, ge=4, le=100, description="Grey levels; overrides the sensitivity's."
    )
    min_area_pct: float | None = Field(
        default=None,
        ge=0.01,
        le=50,
        description="Smallest moving blob in % of the picture; overrides the sensitivity's.",
    )
    calibration_frames: int = Field(
        default=12, ge=2, le=300, description="Background learning after start-up."
    )
    min_frames: int = Field(
        default=2, ge=1, le=10, description="Consecutive frames with a blob before motion."
    )
    events_when_armed: bool = Field(
        default=True, description="Send video-only motion events while the site is armed."
    )
    event_cooldown_s: float = Field(
        default=60.0, ge=5, le=3600, description="Quiet time per camera zone between events."
    )
    evidence_window_s: float = Field(
        default=5.0, ge=1, le=60, description="Motion this long before an alarm is its evidence."
    )
    queue_frames: int = Field(
        default=4, ge=1, le=64, description="Frames waiting for the detector; more are dropped."
    )
    tamper: bool = Field(default=True, description="Watch for covered, blinded, turned cameras.")
    tamper_after_s: float = Field(
        default=10.0, ge=1, le=600, description="A tamper must last this long to be raised."
    )
    tamper_restore_s: float = Field(
        default=10.0, ge=1, le=600, description="Normal again this long before its restore."
    )
    person_check: bool = Field(
        default=False,
        description="Look for a person inside the motion boxes (OpenCV's HOG people detector).",
    )
    person_min_confidence: float = Field(
        default=0.7, ge=0.05, le=0.99, description="Confidence (0..1) from which a person is seen."
    )
    events_need_person: bool = Field(
        default=False, description="Video-only motion events only when a person is seen."
    )
    cameras: tuple[MotionCameraConfig, ...] = Field(
        default=(), description="Per-camera sensitivity, masks and zones."
    )

    @field_validator("events_need_person")
    @classmethod
    def _needs_the_check(cls, value: bool, info: ValidationInfo) -> bool:
        if value and not info.data.get("person_check"):
            raise ValueError("needs person_check = true (the person check must run to be asked)")
        return value


RETENTION_CAP_DAYS = 30  # French CSI L252-5


def _retention(value: int) -> int:
    if value > RETENTION_CAP_DAYS:
        raise ValueError(
            f"must be at most {RETENTION_CAP_DAYS} days: the legal cap for video surveillance "
            "(French Code de la sécurité intérieure, L252-5)"
        )
    return value


class RecordingConfig(Section):
    enabled: bool = True
    mode: Literal["alarms", "motion", "continuous"] = Field(
        default="continuous",
        description="Which footage is kept on disk: around alarms, around motion, or all.",
    )
    segment_s: int = Field(default=60, ge=10, le=600, description="Length of one MP4 file.")
    retention_days: Annotated[int, AfterValidator(_retention)] = Field(
        default=30, ge=1, description="Legal cap: 30 days (French CSI L252-5)."
    )
    pre_roll_s: float = Field(default=10.0, ge=0.0, le=30.0)
    post_roll_s: float = Field(default=10.0, ge=0.0, le=120.0)
    max_bytes: ByteSize | None = Field(default=None, description="e.g. '20GiB'")
    keep_free_bytes: ByteSize = Field(
        default=ByteSize(512 * 1024**2),
        description="Free disk space recording never uses: the oldest footage goes first.",
    )


class WebConfig(Section):
    enabled: bool = True
    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8080, ge=1, le=65535)
    tls: bool = Field(default=False, description="HTTPS with a certificate made at first start.")
    api_token: SecretStr | None = Field(
        default=None, min_length=24, max_length=256, description="Bearer token for scripts."
    )
    session_idle_s: int = Field(default=1800, ge=60, le=86_400)
    login_max_failures: int = Field(default=5, ge=3, le=20)
    lockout_s: int = Field(default=300, ge=10, le=3600)
    apply_confirm_s: int = Field(default=60, ge=1, le=3600)
    journal_days: int = Field(default=30, ge=1, le=90, description="Days of event journal kept.")


class OutboxConfig(Section):
    max_events: int = Field(default=10_000, ge=100, le=1_000_000)
    media_quota_bytes: ByteSize = Field(default=ByteSize(2 * 1024**3), description="e.g. '2GiB'")
    reserve_bytes: ByteSize = Field(
        default=ByteSize(16 * 1024**2),
        le=1024**3,
        description="Disk space held back for events, released when the disk is full.",
    )


class RouteBase(Section):
    """A transmission path besides the primary ([uplink]): a backup (EN 50136-1's
    alternative ATP). Supervised on its own: path loss after ``path_loss_s`` without a
    working connection (MQTT) or an answered message (DC-09)."""

    name: Slug = Field(description="Shown in troubles and on the status page, e.g. '4g'.")
    bind_interface: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_.:-]{1,15}$",
        description="Network interface the connection leaves by (e.g. 'wwan0').",
    )
    bind_address: str | None = Field(default=None, description="Source address to bind.")
    path_loss_s: int = Field(default=180, ge=10, le=86400)


class MqttRouteConfig(BrokerSection, RouteBase):
    type: Literal["mqtt"]
    client_id: Slug | None = Field(default=None, description="Default: the primary's.")
    heartbeat_s: int = Field(default=60, ge=5, le=3600)


class Dc09RouteConfig(RouteBase):
    type: Literal["dc09"]
    receiver: str = Field(
        pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$", description="host:port of the alarm receiver"
    )
    transport: Literal["tcp", "udp"] = "tcp"
    account: Account | None = Field(default=None, description="Default: station.account.")
    receiver_number: str | None = Field(
        default=None, pattern=r"^[0-9A-F]{1,6}$", description="Rrcvr: hex, if the receiver asks"
    )
    line_prefix: str = Field(default="0", pattern=r"^[0-9A-F]{1,6}$", description="Lpref: hex")
    format: Literal["sia-dcs", "adm-cid"] = "sia-dcs"
    key_file: Path | None = Field(
        default=None, description="AES-128/192/256 key, hex, one line: messages are encrypted."
    )
    video_base: str | None = Field(
        default=None,
        pattern=r"^https?://[^\s]+$",
        description="Where the operator sees the alarm's media: <video_base>/events/<id>.",
    )
    null_s: int = Field(default=60, ge=1, le=86400, description="NULL (link test) message period.")
    ack_timeout_s: float = Field(default=5.0, ge=0.5, le=60.0)


RouteConfig = Annotated[MqttRouteConfig | Dc09RouteConfig, Field(discriminator="type")]


class DeliveryConfig(Section):
    """How events use the routes: the primary first; a backup takes an event the primary
    has not had acknowledged within its class's failover time, or at once while the
    primary is down (each further backup after as long again)."""

    failover_s: float = Field(default=20.0, ge=1.0, le=3600.0, description="Alarms, tamper.")
    failover_trouble_s: float | None = Field(default=None, ge=1.0, le=86400.0)
    failover_routine_s: float | None = Field(default=None, ge=1.0, le=86400.0)
    failover_motion_s: float | None = Field(default=None, ge=1.0, le=86400.0)
    done_when: Literal["first", "every"] = Field(
        default="first",
        description="first: an event is done once any route had it acknowledged; "
        "every: it goes over every route at once and is done when all acknowledged it.",
    )


class EdgeConfig(Section):
    """The whole configuration of one box."""

    device: DeviceConfig
    station: StationConfig
    uplink: UplinkConfig
    gpio: GpioConfig = GpioConfig()
    zones: tuple[ZoneConfig, ...] = ()
    inputs: tuple[InputConfig, ...] = ()
    outputs: tuple[OutputConfig, ...] = ()
    supervision: SupervisionConfig = SupervisionConfig()
    cameras: tuple[CameraConfig, ...] = ()
    recording: RecordingConfig = RecordingConfig()
    motion: MotionConfig = MotionConfig()
    web: WebConfig = WebConfig()
    outbox: OutboxConfig = OutboxConfig()
    routes: tuple[RouteConfig, ...] = ()  # backups of [uplink], in the order they are tried
    delivery: DeliveryConfig = DeliveryConfig()

    def zone(self, zone_id: str) -> ZoneConfig:
        for zone in self.zones:
            if zone.id == zone_id:
                return zone
        raise KeyError(zone_id)
