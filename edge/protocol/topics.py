"""Topics: everything of one device lives under ``<prefix>/<device>/``."""

from __future__ import annotations

from dataclasses import dataclass

from edge.errors import ProtocolError


@dataclass(frozen=True)
class Topics:
    """The topics of one device under ``prefix``."""

    prefix: str
    device: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.device}"

    @property
    def state(self) -> str:
        return f"{self.base}/state"

    @property
    def events(self) -> str:
        return f"{self.base}/events"

    @property
    def heartbeat(self) -> str:
        return f"{self.base}/heartbeat"

    @property
    def ack(self) -> str:
        return f"{self.base}/ack"

    @property
    def cmd(self) -> str:
        return f"{self.base}/cmd"

    @property
    def cmd_result(self) -> str:
        return f"{self.base}/cmd/result"

    def media(self, event_id: str, media_id: str) -> str:
        return f"{self.base}/media/{event_id}/{media_id}"


def station_filters(prefix: str) -> dict[str, str]:
    """Subscription filters a station uses to hear every device under ``prefix``."""
    return {
        "events": f"{prefix}/+/events",
        "state": f"{prefix}/+/state",
        "heartbeat": f"{prefix}/+/heartbeat",
        "media": f"{prefix}/+/media/+/+",
        "cmd_result": f"{prefix}/+/cmd/result",
    }


def device_of(topic: str, prefix: str) -> str:
    """The device id in ``<prefix>/<device>/...``; ProtocolError if the topic is foreign."""
    head = prefix + "/"
    if not topic.startswith(head):
        raise ProtocolError(f"topic {topic!r} is not under {prefix!r}")
    device = topic[len(head) :].split("/", 1)[0]
    if not device:
        raise ProtocolError(f"topic {topic!r} names no device")
    return device
