"""The event vocabulary: one table from what happened to its Contact ID and SIA codes.

Contact ID (SIA DC-05) sends ``Q XYZ``: qualifier 1 = new event or opening
(disarm), 3 = restore or closing (arm). SIA (DC-03) uses two-letter codes, one
for the event and one for its restore. Every alarm, tamper and trouble here
has its restore.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """What an event says happened, as the station files it."""

    ALARM = "alarm"
    RESTORE = "restore"
    TAMPER = "tamper"
    TAMPER_RESTORE = "tamper_restore"
    TROUBLE = "trouble"
    TROUBLE_RESTORE = "trouble_restore"
    ARM = "arm"
    DISARM = "disarm"
    TEST = "test"
    MOTION = "motion"


class ZoneType(StrEnum):
    """What a panel output wired to the box means."""

    INTRUSION = "intrusion"
    ENTRY_EXIT = "entry_exit"
    FIRE = "fire"
    PANIC = "panic"
    HOLDUP = "holdup"
    TECHNICAL = "technical"
    TAMPER = "tamper"
    PANEL_TAMPER = "panel_tamper"
    ENCLOSURE_TAMPER = "enclosure_tamper"
    ARMED_STATE = "armed_state"
    AC_POWER = "ac_power"
    BATTERY = "battery"


class Condition(StrEnum):
    """The condition behind an event; one row of the code table each."""

    BURGLARY = "burglary"
    ENTRY_EXIT = "entry_exit"
    FIRE = "fire"
    PANIC = "panic"
    HOLDUP = "holdup"
    TECHNICAL = "technical"
    SENSOR_TAMPER = "sensor_tamper"
    PANEL_TAMPER = "panel_tamper"
    ENCLOSURE_TAMPER = "enclosure_tamper"
    AC_LOSS = "ac_loss"
    LOW_BATTERY = "low_battery"
    COMM_TROUBLE = "comm_trouble"
    COMM_FAILED_EVENT = "comm_failed_event"
    SYSTEM_TROUBLE = "system_trouble"
    OPEN_CLOSE = "open_close"
    MANUAL_TEST = "manual_test"
    PERIODIC_TEST = "periodic_test"
    CAMERA_TAMPER = "camera_tamper"
    VIDEO_MOTION = "video_motion"


@dataclass(frozen=True)
class CodeRow:
    """One condition: Contact ID event code, SIA event and restore codes, its kinds."""

    condition: Condition
    cid: int
    sia_event: str
    sia_restore: str | None
    event_kind: Kind
    restore_kind: Kind | None
    meaning: str  # the published Contact ID meaning (SIA DC-05 appendix)


@dataclass(frozen=True)
class Codes:
    """The codes one event carries on the wire."""

    cid_qualifier: int
    cid_event: int
    sia: str

    @property
    def cid(self) -> str:
        """``'1130'``: qualifier and event code as Contact ID writes them."""
        return f"{self.cid_qualifier}{self.cid_event:03d}"


_R = CodeRow
TABLE: tuple[CodeRow, ...] = (
    _R(Condition.BURGLARY, 130, "BA", "BR", Kind.ALARM, Kind.RESTORE, "Burglary"),
    _R(Condition.ENTRY_EXIT, 134, "BA", "BR", Kind.ALARM, Kind.RESTORE, "Entry/Exit"),
    _R(Condition.FIRE, 110, "FA", "FR", Kind.ALARM, Kind.RESTORE, "Fire"),
    _R(Condition.PANIC, 120, "PA", "PR", Kind.ALARM, Kind.RESTORE, "Panic"),
    _R(Condition.HOLDUP, 122, "HA", "HR", Kind.ALARM, Kind.RESTORE, "Silent"),
    _R(Condition.TECHNICAL, 150, "UA", "UR", Kind.ALARM, Kind.RESTORE, "24 Hour Non-Burglary"),
    _R(Condition.SENSOR_TAMPER, 144, "TA", "TR", Kind.TAMPER, Kind.TAMPER_RESTORE, "Sensor tamper"),
    _R(Condition.PANEL_TAMPER, 137, "TA", "TR", Kind.TAMPER, Kind.TAMPER_RESTORE, "Tamper"),
    # 145 is an expansion module's tamper (the box's own enclosure): SIA ES / EJ
    # (Expansion Device Tamper / Restoral); TA / TR stay the panel's (137) and sensors'.
    _R(
        Condition.ENCLOSURE_TAMPER,
        145,
        "ES",
        "EJ",
        Kind.TAMPER,
        Kind.TAMPER_RESTORE,
        "Exp. module tamper",
    ),
    _R(Condition.AC_LOSS, 301, "AT", "AR", Kind.TROUBLE, Kind.TROUBLE_RESTORE, "AC Loss"),
    _R(
        Condition.LOW_BATTERY,
        302,
        "YT",
        "YR",
        Kind.TROUBLE,
        Kind.TROUBLE_RESTORE,
        "Low system battery",
    ),
    # 350, trouble on the communication path: SIA YS (Communications Trouble). YC
    # (Communications Fail) is 354, an event not reported. Both restore as YK
    # (Communications Restoral), the only restoral SIA DC-03 has for them.
    _R(
        Condition.COMM_TROUBLE,
        350,
        "YS",
        "YK",
        Kind.TROUBLE,
        Kind.TROUBLE_RESTORE,
        "Communication trouble",
    ),
    _R(
        Condition.COMM_FAILED_EVENT,
        354,
        "YC",
        "YK",
        Kind.TROUBLE,
        Kind.TROUBLE_RESTORE,
        "Failure to communicate event",
    ),
    _R(
        Condition.SYSTEM_TROUBLE,
        300,
        "YX",
        "YZ",
        Kind.TROUBLE,
        Kind.TROUBLE_RESTORE,
        "System trouble",
    ),
    _R(Condition.OPEN_CLOSE, 401, "OP", "CL", Kind.DISARM, Kind.ARM, "O/C by user"),
    _R(Condition.MANUAL_TEST, 601, "RX", None, Kind.TEST, None, "Manual trigger test report"),
    _R(Condition.PERIODIC_TEST, 602, "RP", None, Kind.TEST, None, "Periodic test report"),
    # A camera is a sensor: covered, blinded, defocused or turned is its tamper.
    _R(
        Condition.CAMERA_TAMPER,
        144,
        "TA",
        "TR",
        Kind.TAMPER,
        Kind.TAMPER_RESTORE,
        "Sensor tamper",
    ),
    # Contact ID and SIA have no video-motion code: 140 / UA ("general alarm") is the
    # nearest; receivers must file these by kind ("motion"), the lowest priority.
    _R(Condition.VIDEO_MOTION, 140, "UA", None, Kind.MOTION, None, "General Alarm"),
)

BY_CONDITION: dict[Condition, CodeRow] = {row.condition: row for row in TABLE}

ZONE_CONDITION: dict[ZoneType, Condition] = {
    ZoneType.INTRUSION: Condition.BURGLARY,
    ZoneType.ENTRY_EXIT: Condition.ENTRY_EXIT,
    ZoneType.FIRE: Condition.FIRE,
    ZoneType.PANIC: Condition.PANIC,
    ZoneType.HOLDUP: Condition.HOLDUP,
    ZoneType.TECHNICAL: Condition.TECHNICAL,
    ZoneType.TAMPER: Condition.SENSOR_TAMPER,
    ZoneType.PANEL_TAMPER: Condition.PANEL_TAMPER,
    ZoneType.ENCLOSURE_TAMPER: Condition.ENCLOSURE_TAMPER,
    ZoneType.ARMED_STATE: Condition.OPEN_CLOSE,
    ZoneType.AC_POWER: Condition.AC_LOSS,
    ZoneType.BATTERY: Condition.LOW_BATTERY,
}

# Zone types that report whether the site is armed or not.
TWENTY_FOUR_HOUR: frozenset[ZoneType] = frozenset(
    {
        ZoneType.FIRE,
        ZoneType.PANIC,
        ZoneType.HOLDUP,
        ZoneType.TECHNICAL,
        ZoneType.TAMPER,
        ZoneType.PANEL_TAMPER,
        ZoneType.ENCLOSURE_TAMPER,
        ZoneType.AC_POWER,
        ZoneType.BATTERY,
    }
)


def codes(condition: Condition, restore: bool) -> Codes:
    """The wire codes for ``condition`` starting (``restore=False``) or ending.

    For open/close, "starting" is the opening (disarm) and "ending" the
    closing (arm), as Contact ID qualifiers 1 and 3 say.
    """
    row = BY_CONDITION[condition]
    if restore:
        if row.sia_restore is None:
            raise ValueError(f"{condition.value} has no restore")
        return Codes(3, row.cid, row.sia_restore)
    return Codes(1, row.cid, row.sia_event)


# SIA codes earlier boxes sent, before the table above was corrected (PROTOCOL.md 6):
# a station still accepts them from a box not yet updated, and stores the right ones.
LEGACY_SIA = {
    (Condition.COMM_TROUBLE, False): "YC",
    (Condition.ENCLOSURE_TAMPER, False): "TA",
    (Condition.ENCLOSURE_TAMPER, True): "TR",
}


def kind(condition: Condition, restore: bool) -> Kind:
    row = BY_CONDITION[condition]
    if restore:
        if row.restore_kind is None:
            raise ValueError(f"{condition.value} has no restore")
        return row.restore_kind
    return row.event_kind
