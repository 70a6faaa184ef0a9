"""What an event says in DC-09: SIA-DCS or ADM-CID data, the video reference. Pure.

Shared by the station's bridge (stored events) and the box's own DC-09 route.
"""

from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass
from datetime import datetime

from edge.codes import Condition
from edge.dc09.codec import Frame

log = logging.getLogger(__name__)
ACCOUNT = re.compile(r"[0-9A-F]{3,16}")  # what DC-09 carries; box configs enforce it too
USER = re.compile(r"[0-9]{1,3}")  # a user number fits Contact ID's 3-digit address field


class Format(enum.Enum):
    SIA_DCS = "SIA-DCS"
    ADM_CID = "ADM-CID"


@dataclass(frozen=True)
class Alarm:
    """The fields of a stored event the bridge forwards."""

    event_id: str
    cid: str  # "1130": qualifier and event code
    sia: str  # "BA"
    partition: int
    zone: int | None  # the zone's number; None for the box itself
    video: str | None = None  # URL of the stored clip (or still)
    account: str | None = None  # the box's account; None: the bridge's own
    user: int | None = None  # open/close (401): the user number, sent in place of the zone


def address(alarm: Alarm) -> int | None:
    """The number in the address field: the user for open/close, else the zone."""
    return alarm.user if alarm.user is not None else alarm.zone


def data(alarm: Alarm, account: str, fmt: Format) -> str:
    """The bracketed data: ``#acct|Nri1/BA003`` or ``#acct|1130 01 003``."""
    number = address(alarm)
    if fmt is Format.ADM_CID:
        return f"#{account}|{alarm.cid} {alarm.partition % 100:02d} {(number or 0) % 1000:03d}"
    field = "" if number is None else f"{number:03d}"
    return f"#{account}|Nri{alarm.partition}/{alarm.sia}{field}"


def event_frame(
    alarm: Alarm,
    *,
    fmt: Format,
    seq: int,
    account: str,
    line: str,
    receiver: str | None,
    at: datetime,
    encrypted: bool,
) -> Frame:
    extended = () if alarm.video is None else (f"V{alarm.video}",)
    return Frame(
        ident=fmt.value,
        seq=seq,
        line=line,
        receiver=receiver,
        account=account,
        data=data(alarm, account, fmt),
        extended=extended,
        timestamp=at.replace(microsecond=0),
        encrypted=encrypted,
    )


def null_frame(
    *, seq: int, account: str, line: str, receiver: str | None, at: datetime, encrypted: bool
) -> Frame:
    """The supervision (link test) message."""
    return Frame(
        ident="NULL",
        seq=seq,
        line=line,
        receiver=receiver,
        account=account,
        data="",
        timestamp=at.replace(microsecond=0),
        encrypted=encrypted,
    )


def alarm_of(event_id: str, body: dict[str, object], account: str, base: str | None) -> Alarm:
    """What DC-09 sends for an event, from its JSON record (as the box sends it and the
    station stores it): codes, partition, the zone's number (a route's number for a
    route trouble), the user for open/close, and ``<base>/events/<id>`` as video."""
    zone = body.get("zone")
    number = zone.get("number") if isinstance(zone, dict) else None
    partition = body.get("partition")
    return Alarm(
        event_id=event_id,
        cid=str(body.get("cid", "")),
        sia=str(body.get("sia", "")),
        partition=partition if isinstance(partition, int) else 0,
        zone=number if isinstance(number, int) else None,
        video=None if base is None else f"{base.rstrip('/')}/events/{event_id}",
        account=hex_account(account),
        user=_user(event_id, body) if body.get("condition") == Condition.OPEN_CLOSE else None,
    )


def hex_account(account: str | None) -> str | None:
    return account if account and ACCOUNT.fullmatch(account) else None


def _user(event_id: str, body: dict[str, object]) -> int:
    """Open/close says who: the event's ``extra.user`` (0 to 999), else user 0 ("000")."""
    extra = body.get("extra")
    user = extra.get("user") if isinstance(extra, dict) else None
    if user is None:
        return 0
    if isinstance(user, str) and USER.fullmatch(user):
        return int(user)
    log.warning("event %s: user %r is not 0 to 999; sent as user 000", event_id, user)
    return 0
