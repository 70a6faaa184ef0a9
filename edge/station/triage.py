"""The workstation's rules, as pure functions: what opens an incident, in which order the
queue shows them, what restores an alarm, when one escalates, when one may be closed.

An event is filed one of three ways (:func:`filing`): an **alarm** (alarm, tamper,
trouble; the station's own "device lost") joins its site's open incident or opens
one; a **restore** (restore, tamper_restore, trouble_restore; "device restored")
marks the alarms of its zone and code that came before it as back to normal;
everything else (arm, disarm, test, motion) is the site's **history** only.

The queue's order (:func:`queue_key`): fire, panic and hold-up, intrusion,
tamper, technical, device lost; within one priority the oldest first.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from edge.codes import Condition, Kind


class Category(enum.StrEnum):
    """What an alarm is about, for its priority and the site's instructions."""

    FIRE = "fire"
    PANIC = "panic"  # panic and hold-up
    INTRUSION = "intrusion"
    TAMPER = "tamper"
    TECHNICAL = "technical"
    DEVICE_LOST = "device_lost"


PRIORITY: dict[Category, int] = {c: i for i, c in enumerate(Category, start=1)}

CONDITION_CATEGORY: dict[Condition, Category] = {
    Condition.FIRE: Category.FIRE,
    Condition.PANIC: Category.PANIC,
    Condition.HOLDUP: Category.PANIC,
    Condition.BURGLARY: Category.INTRUSION,
    Condition.ENTRY_EXIT: Category.INTRUSION,
    Condition.SENSOR_TAMPER: Category.TAMPER,
    Condition.PANEL_TAMPER: Category.TAMPER,
    Condition.ENCLOSURE_TAMPER: Category.TAMPER,
    Condition.CAMERA_TAMPER: Category.TAMPER,
    Condition.TECHNICAL: Category.TECHNICAL,
    Condition.AC_LOSS: Category.TECHNICAL,
    Condition.LOW_BATTERY: Category.TECHNICAL,
    Condition.COMM_TROUBLE: Category.TECHNICAL,
    Condition.COMM_FAILED_EVENT: Category.TECHNICAL,
    Condition.SYSTEM_TROUBLE: Category.TECHNICAL,
}

ALARM_KINDS = frozenset({Kind.ALARM, Kind.TAMPER, Kind.TROUBLE})
RESTORE_KINDS = frozenset({Kind.RESTORE, Kind.TAMPER_RESTORE, Kind.TROUBLE_RESTORE})
DEVICE_LOST_KEY = "device_lost"  # the restore key of the station's own alarm

# The levée de doute's outcomes, and what an operator may do about an incident.
OUTCOMES = ("real", "false_cause", "doubtful", "technical", "test", "customer_error")
DISPATCH = ("police", "fire_brigade", "guard", "technician", "keyholder")
CALL_RESULTS = ("reached", "no_answer", "voicemail", "wrong_number")
MAX_TEXT = 2_000  # characters of a comment, a reason or a cause


@dataclass(frozen=True)
class Alarm:
    """The event opens or joins an incident."""

    category: Category
    restore_key: str

    @property
    def priority(self) -> int:
        return PRIORITY[self.category]


@dataclass(frozen=True)
class Restore:
    """The event brings back to normal the alarms with this key that came before it."""

    restore_key: str


def restore_key(zone_id: str | None, cid: str) -> str:
    """Zone and Contact ID event code: an alarm (1130) and its restore (3130) share it."""
    return f"{zone_id or '-'}:{cid[1:]}"


def filing(kind: str, condition: str, zone_id: str | None, cid: str) -> Alarm | Restore | None:
    """How an event from a box is filed; None: the site's history only."""
    if kind in RESTORE_KINDS:
        return Restore(restore_key(zone_id, cid))
    if kind not in ALARM_KINDS:
        return None
    try:
        category = CONDITION_CATEGORY[Condition(condition)]
    except (ValueError, KeyError):
        category = Category.TECHNICAL  # a condition of a newer box: handled, not lost
    return Alarm(category, restore_key(zone_id, cid))


def device_lost() -> Alarm:
    return Alarm(Category.DEVICE_LOST, DEVICE_LOST_KEY)


def queue_key(priority: int, opened_ms: int, incident_id: str) -> tuple[int, int, str]:
    """The queue's order: the most urgent first, then the one waiting longest."""
    return (priority, opened_ms, incident_id)


def escalated(holder: str | None, waiting_ms: int, now_ms: int, escalate_s: float) -> bool:
    """Nobody took it within ``escalate_s`` of its opening (or of its release)."""
    return holder is None and now_ms - waiting_ms >= escalate_s * 1000


def close_problem(outcome: str | None, unrestored: int, reason: str) -> str | None:
    """Why an incident may not be closed yet (a code), or None.

    It needs an outcome, and every alarm back to normal, or else a written reason
    (the *clôture sans retour à la normale*).
    """
    if outcome not in OUTCOMES:
        return "no_outcome"
    if unrestored and not reason.strip():
        return "not_restored"
    return None


def text_problem(text: object, required: bool = True) -> str | None:
    """A comment, reason or cause: a string of at most ``MAX_TEXT`` characters."""
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        return "bad_text"
    if required and not text.strip():
        return "empty_text"
    return None
