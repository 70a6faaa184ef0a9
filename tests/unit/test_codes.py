"""The code table against an independent copy of the published standards.

The reference tables below are typed in from the standards, not derived from
``edge.codes``: Contact ID event codes from SIA DC-05 (appendix of event
codes) and two-letter codes from SIA DC-03 (its event code list: code, name,
and what the address field carries). A row of ``edge.codes.TABLE`` that
drifts from them fails here.
"""

from __future__ import annotations

import re

import pytest

from edge import codes
from edge.codes import (
    BY_CONDITION,
    TABLE,
    TWENTY_FOUR_HOUR,
    ZONE_CONDITION,
    Codes,
    Condition,
    Kind,
    ZoneType,
)

# SIA DC-05 Contact ID event codes: code -> accepted spellings of the published
# meaning (the standard abbreviates some of them in its table).
CID_MEANING: dict[int, tuple[str, ...]] = {
    110: ("Fire",),
    120: ("Panic",),
    122: ("Silent",),  # 24-hour silent panic, used for hold-up
    130: ("Burglary",),
    134: ("Entry/Exit",),
    137: ("Tamper",),  # control panel tamper
    140: ("General Alarm",),  # the nearest to video motion: CID has no video code
    144: ("Sensor tamper",),
    145: ("Expansion module tamper", "Exp. module tamper"),  # the box's enclosure
    150: ("24 Hour Non-Burglary", "24 Hour Non-Burg"),
    301: ("AC Loss",),
    302: ("Low system battery",),
    350: ("Communication trouble",),
    354: ("Failure to communicate event",),
    300: ("System trouble",),
    401: ("Open/Close by user", "O/C by user"),
    601: ("Manual trigger test report",),
    602: ("Periodic test report",),
}

# SIA DC-03 two-letter codes and their published meanings.
SIA_MEANING: dict[str, str] = {
    "BA": "Burglary Alarm",
    "BR": "Burglary Restoral",
    "FA": "Fire Alarm",
    "FR": "Fire Restoral",
    "PA": "Panic Alarm",
    "PR": "Panic Restoral",
    "HA": "Holdup Alarm",
    "HR": "Holdup Restoral",
    "UA": "Untyped Zone Alarm",
    "UR": "Untyped Zone Restoral",
    "TA": "Tamper Alarm",
    "TR": "Tamper Restoral",
    "AT": "AC Trouble",
    "AR": "AC Restoral",
    "YT": "System Battery Trouble",
    "YR": "System Battery Restoral",
    "YS": "Communications Trouble",  # DC-03: the link is in trouble (CID 350)
    "YC": "Communications Fail",  # DC-03: an event could not be reported (CID 354)
    "YK": "Communications Restoral",  # DC-03's one restoral for YS and YC
    "ES": "Expansion Device Tamper",  # DC-03: address = expansion device number
    "EJ": "Expansion Device Tamper Restoral",
    "OP": "Opening Report",
    "CL": "Closing Report",
    "RX": "Manual Test",
    "RP": "Automatic Test",
    "YX": "Service Required",
    "YZ": "Service Completed",
}

# What each condition must send: Contact ID event code, SIA event code, SIA
# restore code, and the kinds the station files them under.
EXPECTED: dict[Condition, tuple[int, str, str | None, Kind, Kind | None]] = {
    Condition.BURGLARY: (130, "BA", "BR", Kind.ALARM, Kind.RESTORE),
    Condition.ENTRY_EXIT: (134, "BA", "BR", Kind.ALARM, Kind.RESTORE),
    Condition.FIRE: (110, "FA", "FR", Kind.ALARM, Kind.RESTORE),
    Condition.PANIC: (120, "PA", "PR", Kind.ALARM, Kind.RESTORE),
    Condition.HOLDUP: (122, "HA", "HR", Kind.ALARM, Kind.RESTORE),
    Condition.TECHNICAL: (150, "UA", "UR", Kind.ALARM, Kind.RESTORE),
    Condition.SENSOR_TAMPER: (144, "TA", "TR", Kind.TAMPER, Kind.TAMPER_RESTORE),
    Condition.PANEL_TAMPER: (137, "TA", "TR", Kind.TAMPER, Kind.TAMPER_RESTORE),
    # 145 is an expansion module's tamper: DC-03 has ES / EJ for it; TA / TR is the
    # panel's own enclosure (137).
    Condition.ENCLOSURE_TAMPER: (145, "ES", "EJ", Kind.TAMPER, Kind.TAMPER_RESTORE),
    Condition.AC_LOSS: (301, "AT", "AR", Kind.TROUBLE, Kind.TROUBLE_RESTORE),
    Condition.LOW_BATTERY: (302, "YT", "YR", Kind.TROUBLE, Kind.TROUBLE_RESTORE),
    # 350 is a trouble of the communication path: DC-03's YS; YC ("fail") is 354, an
    # event that could not be reported. Both restore as YK, DC-03's only restoral for them.
    Condition.COMM_TROUBLE: (350, "YS", "YK", Kind.TROUBLE, Kind.TROUBLE_RESTORE),
    Condition.COMM_FAILED_EVENT: (354, "YC", "YK", Kind.TROUBLE, Kind.TROUBLE_RESTORE),
    Condition.SYSTEM_TROUBLE: (300, "YX", "YZ", Kind.TROUBLE, Kind.TROUBLE_RESTORE),
    # Contact ID: 1 401 = opening (disarm), 3 401 = closing (arm).
    Condition.OPEN_CLOSE: (401, "OP", "CL", Kind.DISARM, Kind.ARM),
    Condition.MANUAL_TEST: (601, "RX", None, Kind.TEST, None),
    Condition.PERIODIC_TEST: (602, "RP", None, Kind.TEST, None),
    Condition.CAMERA_TAMPER: (144, "TA", "TR", Kind.TAMPER, Kind.TAMPER_RESTORE),
    Condition.VIDEO_MOTION: (140, "UA", None, Kind.MOTION, None),
}

RESTORE_OF: dict[Kind, Kind] = {
    Kind.ALARM: Kind.RESTORE,
    Kind.TAMPER: Kind.TAMPER_RESTORE,
    Kind.TROUBLE: Kind.TROUBLE_RESTORE,
}

TEST_CONDITIONS = (Condition.MANUAL_TEST, Condition.PERIODIC_TEST)
NO_RESTORE = (*TEST_CONDITIONS, Condition.VIDEO_MOTION)  # reports of a moment


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().casefold())


def test_table_has_exactly_one_row_per_condition() -> None:
    conditions = [row.condition for row in TABLE]
    assert len(conditions) == len(set(conditions))
    assert set(conditions) == set(Condition)
    assert set(BY_CONDITION) == set(Condition)
    assert all(BY_CONDITION[row.condition] is row for row in TABLE)


def test_reference_covers_every_condition() -> None:
    # If a condition is added to the code, it must be added here from the standard.
    assert set(EXPECTED) == set(Condition)


@pytest.mark.parametrize("condition", list(Condition), ids=str)
def test_row_matches_published_codes(condition: Condition) -> None:
    row = BY_CONDITION[condition]
    cid, sia_event, sia_restore, event_kind, restore_kind = EXPECTED[condition]
    assert row.cid == cid
    assert row.sia_event == sia_event
    assert row.sia_restore == sia_restore
    assert row.event_kind is event_kind
    assert row.restore_kind is restore_kind


@pytest.mark.parametrize("condition", list(Condition), ids=str)
def test_row_meaning_is_the_published_contact_id_meaning(condition: Condition) -> None:
    row = BY_CONDITION[condition]
    assert row.cid in CID_MEANING, f"{row.cid} is not a Contact ID code we know"
    accepted = {_norm(m) for m in CID_MEANING[row.cid]}
    assert _norm(row.meaning) in accepted


def test_every_sia_code_is_a_published_dc03_code() -> None:
    used = {row.sia_event for row in TABLE} | {r.sia_restore for r in TABLE if r.sia_restore}
    assert used <= set(SIA_MEANING)


@pytest.mark.parametrize("condition", list(Condition), ids=str)
def test_sia_restore_is_a_restoral_or_closing(condition: Condition) -> None:
    row = BY_CONDITION[condition]
    if row.sia_restore is None:
        return
    event_meaning = SIA_MEANING[row.sia_event]
    restore_meaning = SIA_MEANING[row.sia_restore]
    if condition is Condition.OPEN_CLOSE:
        assert (event_meaning, restore_meaning) == ("Opening Report", "Closing Report")
    elif condition is Condition.SYSTEM_TROUBLE:
        assert (event_meaning, restore_meaning) == ("Service Required", "Service Completed")
    else:
        assert "Restoral" in restore_meaning
        assert "Restoral" not in event_meaning


@pytest.mark.parametrize("condition", [c for c in Condition if c not in NO_RESTORE], ids=str)
def test_every_alarm_tamper_and_trouble_has_a_restore(condition: Condition) -> None:
    row = BY_CONDITION[condition]
    assert row.sia_restore is not None
    assert row.restore_kind is not None
    assert row.sia_restore != row.sia_event
    if row.event_kind in RESTORE_OF:
        assert row.restore_kind is RESTORE_OF[row.event_kind]
    restore = codes.codes(condition, restore=True)
    start = codes.codes(condition, restore=False)
    assert restore.cid_event == start.cid_event == row.cid
    assert restore.sia == row.sia_restore


def test_only_test_reports_lack_a_restore() -> None:
    without = {row.condition for row in TABLE if row.sia_restore is None}
    assert without == set(NO_RESTORE)
    assert all(BY_CONDITION[c].event_kind is Kind.TEST for c in TEST_CONDITIONS)


@pytest.mark.parametrize("condition", list(Condition), ids=str)
def test_contact_id_qualifiers(condition: Condition) -> None:
    start = codes.codes(condition, restore=False)
    assert start.cid_qualifier == 1  # new event / opening
    assert start.sia == BY_CONDITION[condition].sia_event
    if condition not in NO_RESTORE:
        assert codes.codes(condition, restore=True).cid_qualifier == 3  # restore / closing


def test_open_close_is_opening_then_closing() -> None:
    opening = codes.codes(Condition.OPEN_CLOSE, restore=False)
    closing = codes.codes(Condition.OPEN_CLOSE, restore=True)
    assert (opening.cid, opening.sia) == ("1401", "OP")
    assert (closing.cid, closing.sia) == ("3401", "CL")
    assert codes.kind(Condition.OPEN_CLOSE, restore=False) is Kind.DISARM
    assert codes.kind(Condition.OPEN_CLOSE, restore=True) is Kind.ARM


@pytest.mark.parametrize("condition", list(Condition), ids=str)
def test_kind_follows_the_table(condition: Condition) -> None:
    _, _, _, event_kind, restore_kind = EXPECTED[condition]
    assert codes.kind(condition, restore=False) is event_kind
    if restore_kind is not None:
        assert codes.kind(condition, restore=True) is restore_kind


@pytest.mark.parametrize("condition", TEST_CONDITIONS, ids=str)
def test_test_reports_have_no_restore(condition: Condition) -> None:
    with pytest.raises(ValueError, match="no restore"):
        codes.codes(condition, restore=True)
    with pytest.raises(ValueError, match="no restore"):
        codes.kind(condition, restore=True)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Codes(1, 130, "BA"), "1130"),
        (Codes(3, 401, "CL"), "3401"),
        (Codes(1, 110, "FA"), "1110"),
        (Codes(3, 602, "RP"), "3602"),
        (Codes(1, 1, "BA"), "1001"),  # event code is always three digits
        (Codes(1, 34, "BA"), "1034"),
    ],
)
def test_cid_formatting(value: Codes, text: str) -> None:
    assert value.cid == text


def test_codes_for_burglary_alarm_and_restore() -> None:
    assert codes.codes(Condition.BURGLARY, restore=False) == Codes(1, 130, "BA")
    assert codes.codes(Condition.BURGLARY, restore=True) == Codes(3, 130, "BR")
    assert codes.codes(Condition.BURGLARY, restore=False).cid == "1130"
    assert codes.codes(Condition.BURGLARY, restore=True).cid == "3130"


# What each zone type must report as (independent of edge.codes.ZONE_CONDITION).
ZONE_EXPECTED: dict[ZoneType, Condition] = {
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


def test_every_zone_type_maps_to_a_condition() -> None:
    assert set(ZONE_CONDITION) == set(ZoneType)
    assert all(ZONE_CONDITION[z] in BY_CONDITION for z in ZoneType)


@pytest.mark.parametrize("zone_type", list(ZoneType), ids=str)
def test_zone_type_condition(zone_type: ZoneType) -> None:
    assert ZONE_CONDITION[zone_type] is ZONE_EXPECTED[zone_type]


@pytest.mark.parametrize("zone_type", list(ZoneType), ids=str)
def test_zone_types_never_map_to_a_condition_without_restore(zone_type: ZoneType) -> None:
    # A zone goes active and inactive: it needs both codes.
    assert BY_CONDITION[ZONE_CONDITION[zone_type]].sia_restore is not None


def test_twenty_four_hour_zone_types() -> None:
    expected = {
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
    assert expected == TWENTY_FOUR_HOUR
    # Intrusion zones report only when armed; the armed-state output is not an alarm.
    for zone_type in (ZoneType.INTRUSION, ZoneType.ENTRY_EXIT, ZoneType.ARMED_STATE):
        assert zone_type not in TWENTY_FOUR_HOUR
