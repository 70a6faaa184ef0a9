"""What a stored event says in DC-09: SIA-DCS or ADM-CID data, the video reference. Pure."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from edge.station.dc09.codec import Frame


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
