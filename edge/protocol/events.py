"""Events on the wire: the fact, its codes, and its delivery envelope."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge import codes
from edge.codes import Codes, Condition, Kind, ZoneType
from edge.errors import ProtocolError
from edge.model import Event, ZoneRef
from edge.protocol.common import VERSION, as_bool, as_int, dumps, iso_ms, load, parse_iso_ms


@dataclass(frozen=True)
class EventMessage:
    """An event as it travels: the fact plus its delivery envelope."""

    event: Event
    seq: int
    device: str
    account: str
    sent_at_ms: int
    historical: bool


def event_record(event: Event) -> dict[str, Any]:
    """The event's own fields as JSON-ready data (what the outbox stores)."""
    zone = event.zone
    return {
        "id": event.id,
        "kind": event.kind.value,
        "condition": event.condition.value,
        "cid": event.codes.cid,
        "sia": event.codes.sia,
        "occurred_at": iso_ms(event.occurred_at_ms),
        "partition": event.partition,
        "armed": event.armed,
        "zone": None
        if zone is None
        else {"id": zone.id, "name": zone.name, "type": zone.type.value, "number": zone.number},
        "text": event.text,
        "extra": dict(event.extra),
    }


def event_from_record(data: dict[str, Any]) -> Event:
    """Inverse of :func:`event_record`; ProtocolError on anything malformed.

    Strict: booleans must be JSON booleans, numbers JSON integers, and the
    Contact ID and SIA codes must be the ones the code table gives the
    condition and kind (so a fire cannot arrive labelled 1130).
    """
    try:
        condition = Condition(data["condition"])
        kind = Kind(data["kind"])
        cid = str(data["cid"])
        if len(cid) != 4 or cid[0] not in "13" or not cid.isdigit():
            raise ProtocolError(f"bad Contact ID code {cid!r}")
        got = Codes(int(cid[0]), int(cid[1:]), str(data["sia"]))
        restore = got.cid_qualifier == 3
        if got.sia == codes.LEGACY_SIA.get((condition, restore)):  # a box not yet updated
            got = Codes(got.cid_qualifier, got.cid_event, codes.codes(condition, restore).sia)
        if got != codes.codes(condition, restore) or kind != codes.kind(condition, restore):
            raise ProtocolError(
                f"codes {got.cid}/{got.sia} and kind {kind.value!r} do not match "
                f"condition {condition.value!r}"
            )
        zone = data.get("zone")
        ref = (
            None
            if zone is None
            else ZoneRef(
                id=str(zone["id"]),
                name=str(zone["name"]),
                type=ZoneType(zone["type"]),
                number=as_int(zone["number"], "zone.number"),
            )
        )
        return Event(
            id=str(data["id"]),
            kind=kind,
            condition=condition,
            codes=got,
            occurred_at_ms=parse_iso_ms(data["occurred_at"]),
            partition=as_int(data["partition"], "partition"),
            armed=as_bool(data.get("armed"), "armed", optional=True),
            zone=ref,
            text=str(data.get("text", "")),
            extra={str(k): str(v) for k, v in dict(data.get("extra") or {}).items()},
        )
    except ProtocolError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ProtocolError(f"malformed event: {exc!r}") from exc


def encode_event(message: EventMessage) -> bytes:
    body = {
        "v": VERSION,
        **event_record(message.event),
        "seq": message.seq,
        "device": message.device,
        "account": message.account,
        "sent_at": iso_ms(message.sent_at_ms),
        "historical": message.historical,
    }
    return dumps(body)


def decode_event(payload: bytes) -> EventMessage:
    data = load(payload)
    try:
        return EventMessage(
            event=event_from_record(data),
            seq=as_int(data["seq"], "seq"),
            device=str(data["device"]),
            account=str(data["account"]),
            sent_at_ms=parse_iso_ms(data["sent_at"]),
            historical=bool(as_bool(data["historical"], "historical")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError(f"malformed event envelope: {exc!r}") from exc


@dataclass(frozen=True)
class BoxSite:
    """Where a box is, as its config says (``device.site``, ``address``, ``latitude``,
    ``longitude``): sent in its birth so that a new box appears with its location."""

    name: str = ""
    address: str = ""
    latitude: float | None = None
    longitude: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The birth's ``site`` object: only what is known."""
        body: dict[str, Any] = {k: v for k, v in (("name", self.name),
                                                  ("address", self.address)) if v}  # fmt: skip
        if self.latitude is not None and self.longitude is not None:
            body["latitude"], body["longitude"] = self.latitude, self.longitude
        return body


MAX_SITE_TEXT = 300


def encode_state(
    state: str,
    *,
    boot_id: str,
    version: str,
    at_ms: int,
    supervision: dict[str, int] | None = None,
    site: BoxSite | None = None,
    route: int | None = None,
) -> bytes:
    """``supervision`` (in the birth): ``heartbeat_s`` and ``lost_s``, the box's profile;
    ``site`` (in the birth): its name, address and coordinates, when any is known;
    ``route``: on a box with several routes, the route (1: the primary) this state
    is about: the box is offline only when every route it announced says so."""
    body: dict[str, Any] = {"v": VERSION, "state": state, "boot_id": boot_id, "version": version}
    body["at"] = iso_ms(at_ms)
    if supervision is not None:
        body["supervision"] = supervision
    if site is not None and site.as_dict():
        body["site"] = site.as_dict()
    if route is not None:  # a box with several routes: which one this state is about
        body["route"] = route
    return dumps(body)


def decode_site(value: object) -> BoxSite:
    """A birth's ``site`` object (station side); ProtocolError when malformed."""
    if not isinstance(value, dict):
        raise ProtocolError(f"site must be an object, not {value!r}")
    unknown = set(value) - {"name", "address", "latitude", "longitude"}
    if unknown:
        raise ProtocolError(f"site: unknown keys {sorted(unknown)}")
    texts = {}
    for key in ("name", "address"):
        text = value.get(key, "")
        if not isinstance(text, str) or len(text) > MAX_SITE_TEXT or "\x00" in text:
            raise ProtocolError(f"site.{key} must be text of at most {MAX_SITE_TEXT} characters")
        texts[key] = text
    lat, lon = value.get("latitude"), value.get("longitude")
    if (lat is None) != (lon is None):
        raise ProtocolError("site: latitude and longitude go together")
    for name, number, limit in (("latitude", lat, 90), ("longitude", lon, 180)):
        if number is None:
            continue
        if isinstance(number, bool) or not isinstance(number, int | float):
            raise ProtocolError(f"site.{name} must be a number, not {number!r}")
        if not -limit <= number <= limit:
            raise ProtocolError(f"site.{name} {number} is outside -{limit} to {limit}")
    return BoxSite(
        texts["name"],
        texts["address"],
        None if lat is None else float(lat),
        None if lon is None else float(lon),
    )


def encode_heartbeat(*, seq: int, at_ms: int, interval_s: int, outbox_depth: int) -> bytes:
    body = {
        "v": VERSION,
        "seq": seq,
        "at": iso_ms(at_ms),
        "interval_s": interval_s,
        "outbox_depth": outbox_depth,
    }
    return dumps(body)


def decode_object(payload: bytes) -> dict[str, Any]:
    """A versioned JSON object (state, heartbeat); ProtocolError otherwise."""
    return load(payload)
