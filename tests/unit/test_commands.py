"""Operator commands: round trips, every rejection with its id, boundaries, fuzzing."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from edge.errors import ProtocolError
from edge.protocol import (
    MAX_CLIP_S,
    ClipArgs,
    Command,
    CommandRejected,
    CommandResult,
    Envelope,
    HoldArgs,
    ReleaseArgs,
    SnapshotArgs,
    TestArgs,
    Topics,
    command_envelope,
    decode_result,
    encode_command,
    encode_result,
    iso_ms,
    parse_command,
    response_topic_problem,
)
from edge.protocol.commands import (
    MAX_EXPIRY_S,
    MAX_HOLD_DAYS,
    MAX_HOLD_SPAN_S,
    MAX_TEXT,
    MIN_TIME_MS,
    REASONS,
)

NOW = 1_795_875_790_123  # 2026-11-28T14:23:10.123Z
CID = "op-42:clip.7_A"
_DELETE = object()
DAY_MS = 86_400_000


def _clip_body(**changes: Any) -> dict[str, Any]:
    args = {"camera": "porch", "from": iso_ms(NOW - 60_000), "to": iso_ms(NOW - 30_000)}
    return _body(**{"type": "clip", "args": args, **changes})


def _body(**changes: Any) -> dict[str, Any]:
    """A valid snapshot command as a dict, with ``changes`` applied (``_DELETE`` deletes)."""
    data: dict[str, Any] = {
        "v": 1,
        "id": CID,
        "type": "snapshot",
        "expires_at": iso_ms(NOW + 60_000),
        "args": {"camera": "porch"},
    }
    for key, value in changes.items():
        if value is _DELETE:
            del data[key]
        else:
            data[key] = value
    return data


def _raw(data: object) -> bytes:
    return json.dumps(data).encode()


def _rejected(payload: bytes, now_ms: int = NOW) -> CommandRejected:
    with pytest.raises(CommandRejected) as info:
        parse_command(payload, now_ms)
    assert info.value.code in REASONS, info.value.reason
    assert isinstance(info.value, ProtocolError)
    return info.value


# --- round trips ----------------------------------------------------------------

COMMANDS = [
    Command(CID, NOW + 1, ClipArgs("porch", NOW - MAX_CLIP_S * 1000, NOW)),
    Command("a", NOW + MAX_EXPIRY_S * 1000, ClipArgs("cam-1_x", NOW - 2, NOW - 1)),
    Command("x" * 80, NOW + 5_000, SnapshotArgs("0")),
    Command("T.1:2-3_4", NOW + 5_000, TestArgs()),
    Command("t", NOW + 5_000, TestArgs("Wöchentlicher Test ✓ " + "x" * (MAX_TEXT - 21))),
    Command("h", NOW + 5_000, HoldArgs("porch", NOW - 60_000, NOW, NOW + 1, "PV 2026/118 ✓")),
    Command(
        "h2",
        NOW + 5_000,
        HoldArgs("c", NOW - MAX_HOLD_SPAN_S * 1000, NOW - 1, NOW + MAX_HOLD_DAYS * DAY_MS, "x"),
    ),
    Command("r", NOW + 5_000, ReleaseArgs("op7-20261128-0009", "affaire classée")),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{c.type}:{c.id[:12]}")
def test_command_round_trip(command: Command) -> None:
    assert parse_command(encode_command(command), NOW) == command


def test_encoded_clip_command_fields() -> None:
    command = Command(CID, NOW + 60_000, ClipArgs("porch", NOW - 10_000, NOW - 5_000))
    assert json.loads(encode_command(command)) == {
        "v": 2,
        "id": CID,
        "type": "clip",
        "expires_at": "2026-11-28T14:24:10.123Z",
        "args": {
            "camera": "porch",
            "from": "2026-11-28T14:23:00.123Z",
            "to": "2026-11-28T14:23:05.123Z",
        },
    }
    assert command.type == "clip"


def test_test_command_without_text_has_empty_args() -> None:
    command = Command(CID, NOW + 60_000, TestArgs())
    assert json.loads(encode_command(command))["args"] == {}
    assert parse_command(_raw(_body(type="test", args={"text": ""})), NOW) == command


def test_parse_accepts_a_hand_written_command() -> None:
    payload = _raw(_clip_body(expires_at="2026-11-28T14:30:00Z"))
    command = parse_command(payload, NOW)
    assert command == Command(
        CID, NOW - 10_123 + 7 * 60_000, ClipArgs("porch", NOW - 60_000, NOW - 30_000)
    )


def test_testargs_is_not_collected_by_pytest() -> None:
    assert TestArgs.__test__ is False


# --- boundaries ---------------------------------------------------------------


def test_expiry_exactly_now_is_expired() -> None:
    error = _rejected(_raw(_body(expires_at=iso_ms(NOW))))
    assert error.code == "expired"
    assert error.command_id == CID


def test_expiry_one_ms_ahead_is_accepted() -> None:
    assert parse_command(_raw(_body(expires_at=iso_ms(NOW + 1))), NOW).expires_at_ms == NOW + 1


def test_expiry_exactly_one_hour_ahead_is_accepted() -> None:
    at_ms = NOW + MAX_EXPIRY_S * 1000
    assert parse_command(_raw(_body(expires_at=iso_ms(at_ms))), NOW).expires_at_ms == at_ms


def test_expiry_beyond_one_hour_is_rejected() -> None:
    error = _rejected(_raw(_body(expires_at=iso_ms(NOW + MAX_EXPIRY_S * 1000 + 1))))
    assert (error.code, error.command_id) == ("expiry_too_far", CID)


def _clip_span(from_ms: int, to_ms: int) -> bytes:
    args = {"camera": "porch", "from": iso_ms(from_ms), "to": iso_ms(to_ms)}
    return _raw(_body(type="clip", args=args))


def test_clip_of_300_s_is_accepted() -> None:
    assert MAX_CLIP_S == 300
    command = parse_command(_clip_span(NOW - 400_000, NOW - 100_000), NOW)
    assert command.args == ClipArgs("porch", NOW - 400_000, NOW - 100_000)


@pytest.mark.parametrize("span_ms", [300_001, 301_000])
def test_clip_over_300_s_is_rejected(span_ms: int) -> None:
    error = _rejected(_clip_span(NOW - 400_000, NOW - 400_000 + span_ms))
    assert (error.code, error.command_id) == ("bad_args", CID)
    assert "exceeds 300 s" in error.reason


def test_clip_ending_exactly_now_is_accepted() -> None:
    assert parse_command(_clip_span(NOW - 1_000, NOW), NOW).args == ClipArgs(
        "porch", NOW - 1_000, NOW
    )


def test_clip_ending_after_now_is_rejected() -> None:
    error = _rejected(_clip_span(NOW - 1_000, NOW + 1))
    assert (error.code, error.command_id) == ("bad_args", CID)


@pytest.mark.parametrize("span_ms", [0, -1, -10_000])
def test_clip_must_run_forwards(span_ms: int) -> None:
    error = _rejected(_clip_span(NOW - 20_000, NOW - 20_000 + span_ms))
    assert (error.code, error.command_id) == ("bad_args", CID)


def test_text_of_200_characters_is_accepted_201_rejected() -> None:
    ok = _raw(_body(type="test", args={"text": "é" * MAX_TEXT}))
    assert parse_command(ok, NOW).args == TestArgs("é" * MAX_TEXT)
    error = _rejected(_raw(_body(type="test", args={"text": "é" * (MAX_TEXT + 1)})))
    assert (error.code, error.command_id) == ("bad_args", CID)


def _hold_body(**changes: Any) -> bytes:
    args = {
        "camera": "porch",
        "from": iso_ms(NOW - 3_600_000),
        "to": iso_ms(NOW - 60_000),
        "until": iso_ms(NOW + 90 * DAY_MS),
        "reason": "requisition PV 2026/118",
    }
    args.update(changes)
    return _raw(_body(type="hold", args=args))


def test_hold_command_parses_with_its_range_end_and_reason() -> None:
    assert parse_command(_hold_body(), NOW).args == HoldArgs(
        "porch", NOW - 3_600_000, NOW - 60_000, NOW + 90 * DAY_MS, "requisition PV 2026/118"
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"from": iso_ms(NOW - 60_000)},  # empty range
        {"from": iso_ms(NOW - 30_000)},  # backwards
        {"from": iso_ms(NOW - 60_000 - MAX_HOLD_SPAN_S * 1000 - 1)},  # over 7 days
        {"to": iso_ms(NOW + 1)},  # footage not recorded yet
        {"until": iso_ms(NOW)},  # ends at once
        {"until": iso_ms(NOW + MAX_HOLD_DAYS * DAY_MS + 1)},
        {"until": None},
        {"reason": ""},
        {"reason": "   "},
        {"reason": "x" * (MAX_TEXT + 1)},
        {"reason": "a\nb"},
        {"reason": 7},
        {"camera": "Porch"},
        {"zoom": 1},
    ],
    ids=repr,
)
def test_hold_rejections_keep_the_id(changes: dict[str, Any]) -> None:
    error = _rejected(_hold_body(**changes))
    assert (error.code, error.command_id) == ("bad_args", CID), error.reason


def test_hold_without_until_or_reason_is_rejected() -> None:
    for key in ("until", "reason", "camera", "from", "to"):
        args = json.loads(_hold_body())["args"]
        del args[key]
        error = _rejected(_raw(_body(type="hold", args=args)))
        assert error.code == "bad_args" and key in error.reason


@pytest.mark.parametrize(
    "args",
    [
        {"hold": "op-1"},
        {"reason": "done"},
        {"hold": "op 1", "reason": "done"},
        {"hold": "", "reason": "done"},
        {"hold": 1, "reason": "done"},
        {"hold": "op-1", "reason": ""},
        {"hold": "op-1", "reason": "done", "camera": "porch"},
    ],
    ids=repr,
)
def test_release_rejections_keep_the_id(args: dict[str, Any]) -> None:
    error = _rejected(_raw(_body(type="release", args=args)))
    assert (error.code, error.command_id) == ("bad_args", CID), error.reason


@pytest.mark.parametrize("command_id", ["a", "x" * 80, "A-Z_a.z:0-9"])
def test_id_limits_accepted(command_id: str) -> None:
    assert parse_command(_raw(_body(id=command_id)), NOW).id == command_id


# --- rejections ---------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"not json",
        b"\xff\xfe\x00",
        b'{"v":1,"id":"a"',
        b"[]",
        b'"clip"',
        b"null",
        b"42",
        b"[" * 100_000,  # nesting deeper than the JSON parser's recursion
        b'{"v":' + b"1" * 5_000 + b"}",  # integer past Python's digit limit
        b'{"v":1,"id":"a","id":"b"}',  # duplicate key: which id?
    ],
    ids=lambda p: repr(p[:24]),
)
def test_not_a_command_object_has_no_id(payload: bytes) -> None:
    error = _rejected(payload)
    assert (error.code, error.command_id) == ("malformed", None)


@pytest.mark.parametrize(
    "command_id",
    [None, "", "x" * 81, "with space", "slash/no", "ünï", "a\n", 7, True, ["a"], {"a": 1}],
    ids=repr,
)
def test_invalid_id_is_not_recovered(command_id: object) -> None:
    error = _rejected(_raw(_body(id=command_id)))
    assert (error.code, error.command_id) == ("malformed", None)


def test_missing_id_is_not_recovered() -> None:
    error = _rejected(_raw(_body(id=_DELETE)))
    assert (error.code, error.command_id) == ("malformed", None)


# (changes to a valid command, expected reason code); the id is always recovered.
REJECTIONS: list[tuple[dict[str, Any], str]] = [
    ({"v": 3}, "unsupported_version"),
    ({"v": 99, "type": "reboot", "extra": 1}, "unsupported_version"),
    ({"v": 0}, "malformed"),
    ({"v": -1}, "malformed"),
    ({"v": "1"}, "malformed"),
    ({"v": 1.0}, "malformed"),
    ({"v": True}, "malformed"),
    ({"v": None}, "malformed"),
    ({"v": _DELETE}, "malformed"),
    ({"type": _DELETE}, "malformed"),
    ({"expires_at": _DELETE}, "malformed"),
    ({"args": _DELETE}, "malformed"),
    ({"extra": 1}, "malformed"),
    ({"device": "gw-0001"}, "malformed"),
    ({"type": "reboot"}, "unknown_type"),
    ({"type": "Clip"}, "unknown_type"),
    ({"type": ""}, "unknown_type"),
    ({"type": 1}, "malformed"),
    ({"type": None}, "malformed"),
    ({"type": ["clip"]}, "malformed"),
    ({"expires_at": iso_ms(NOW - 1)}, "expired"),
    ({"expires_at": "2000-01-01T00:00:00Z"}, "expired"),
    ({"expires_at": iso_ms(NOW + 2 * 3600_000)}, "expiry_too_far"),
    ({"expires_at": "2026-11-28T14:24:10.123+00:00"}, "malformed"),  # UTC, but no Z
    ({"expires_at": "2026-11-28T14:24:10.123"}, "malformed"),
    ({"expires_at": "2026-11-28T14:24:10.123z"}, "malformed"),
    ({"expires_at": "tomorrow Z"}, "malformed"),
    ({"expires_at": "Z"}, "malformed"),
    ({"expires_at": "1999-12-31T23:59:59Z"}, "malformed"),
    ({"expires_at": "0001-01-01T00:00:00Z"}, "malformed"),
    ({"expires_at": NOW + 60_000}, "malformed"),
    ({"expires_at": None}, "malformed"),
    ({"args": None}, "bad_args"),
    ({"args": []}, "bad_args"),
    ({"args": "porch"}, "bad_args"),
    ({"args": {}}, "bad_args"),
    ({"args": {"camera": "porch", "zoom": 2}}, "bad_args"),
    ({"args": {"camera": "Porch"}}, "bad_args"),
    ({"args": {"camera": "-porch"}}, "bad_args"),
    ({"args": {"camera": "porch\n"}}, "bad_args"),
    ({"args": {"camera": ""}}, "bad_args"),
    ({"args": {"camera": "a" * 64}}, "bad_args"),
    ({"args": {"camera": 3}}, "bad_args"),
    ({"args": {"camera": None}}, "bad_args"),
    ({"type": "clip"}, "bad_args"),  # snapshot args on a clip
    ({"type": "test"}, "bad_args"),  # a camera on a test
    ({"type": "hold"}, "bad_args"),  # a hold needs its range, end and reason
    ({"type": "release"}, "bad_args"),  # a release names the hold, not a camera
    ({"type": "Hold"}, "unknown_type"),
    ({"type": "test", "args": {"text": 5}}, "bad_args"),
    ({"type": "test", "args": {"text": None}}, "bad_args"),
    ({"type": "test", "args": {"text": "bell\x07"}}, "bad_args"),
    ({"type": "test", "args": {"text": "two\nlines"}}, "bad_args"),
    ({"type": "test", "args": {"text": "\ud800"}}, "bad_args"),  # lone surrogate
]

CLIP_REJECTIONS: list[dict[str, Any]] = [
    {"camera": _DELETE},
    {"from": _DELETE},
    {"to": _DELETE},
    {"extra": True},
    {"camera": "Porch"},
    {"from": NOW - 60_000},
    {"from": "yesterday"},
    {"from": iso_ms(NOW - 60_000).replace("Z", "+00:00")},
    {"to": None},
    {"to": "1999-12-31T23:59:59.999Z"},
    {"from": "1999-12-31T23:59:59.999Z", "to": "2000-01-01T00:00:00.001Z"},
    {"from": iso_ms(NOW - 30_000), "to": iso_ms(NOW - 60_000)},  # backwards
    {"from": iso_ms(NOW - 400_000)},  # 370 s
    {"to": iso_ms(NOW + 1_000)},  # in the future
    {"from": iso_ms(NOW + 1_000), "to": iso_ms(NOW + 2_000)},
]


@pytest.mark.parametrize(("changes", "code"), REJECTIONS, ids=repr)
def test_rejection_keeps_the_id(changes: dict[str, Any], code: str) -> None:
    error = _rejected(_raw(_body(**changes)))
    assert (error.code, error.command_id) == (code, CID), error.reason
    assert error.reason.startswith(code + ": ")
    assert CID in str(error)


@pytest.mark.parametrize("changes", CLIP_REJECTIONS, ids=repr)
def test_clip_rejection_keeps_the_id(changes: dict[str, Any]) -> None:
    args = _clip_body()["args"]
    for key, value in changes.items():
        if value is _DELETE:
            del args[key]
        else:
            args[key] = value
    error = _rejected(_raw(_clip_body(args=args)))
    assert (error.code, error.command_id) == ("bad_args", CID), error.reason


def test_the_valid_bases_parse() -> None:
    assert parse_command(_raw(_body()), NOW).args == SnapshotArgs("porch")
    assert isinstance(parse_command(_raw(_clip_body()), NOW).args, ClipArgs)


def test_reasons_are_short_even_for_huge_values() -> None:
    error = _rejected(_raw(_body(type="x" * 100_000)))
    assert error.code == "unknown_type"
    assert len(error.reason) < 200


def test_clock_unset_box_rejects_as_too_far() -> None:
    """A box still at 1970 cannot judge expiry: it says the command is too far ahead."""
    error = _rejected(_raw(_body()), now_ms=0)
    assert (error.code, error.command_id) == ("expiry_too_far", CID)


# --- results ------------------------------------------------------------------


def test_result_round_trip_with_details() -> None:
    payload = encode_result(
        CID, "done", at_ms=NOW, event_id="e-1", media_ids=["m1", "m2"], seconds=12.5, ok=True
    )
    assert json.loads(payload) == {
        "v": 2,
        "id": CID,
        "status": "done",
        "reason": "",
        "at": "2026-11-28T14:23:10.123Z",
        "details": {"event_id": "e-1", "media_ids": ["m1", "m2"], "seconds": 12.5, "ok": True},
    }
    assert decode_result(payload) == CommandResult(
        CID,
        "done",
        "",
        NOW,
        {"event_id": "e-1", "media_ids": ["m1", "m2"], "seconds": 12.5, "ok": True},
    )


@pytest.mark.parametrize("status", ["accepted", "done"])
def test_result_statuses_without_reason(status: Any) -> None:
    assert decode_result(encode_result(CID, status, at_ms=NOW)) == CommandResult(
        CID, status, "", NOW
    )


def test_rejection_result_from_the_parser() -> None:
    with pytest.raises(CommandRejected) as info:
        parse_command(_raw(_body(type="reboot")), NOW)
    error = info.value
    result = decode_result(encode_result(error.command_id, "rejected", error.reason, at_ms=NOW))
    assert result.command_id == CID
    assert result.status == "rejected"
    assert result.reason.startswith("unknown_type: ")


def test_rejection_without_id() -> None:
    payload = encode_result(None, "rejected", "malformed: not JSON", at_ms=NOW)
    assert json.loads(payload)["id"] is None
    assert decode_result(payload).command_id is None


@pytest.mark.parametrize(
    ("command_id", "status", "reason", "details"),
    [
        (None, "accepted", "", {}),  # only a rejection may lack an id
        (None, "failed", "camera offline", {}),
        (CID, "rejected", "", {}),  # a rejection says why
        (CID, "failed", "", {}),
        (CID, "ok", "", {}),
        ("bad id", "done", "", {}),
        (CID, "done", "", {"x": float("nan")}),
        (CID, "done", "", {"x": float("inf")}),
        (CID, "done", "", {"x": [1, 2]}),
    ],
)
def test_encode_result_refuses_to_break_the_rules(
    command_id: Any, status: Any, reason: str, details: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        encode_result(command_id, status, reason, at_ms=NOW, **details)


def test_decode_result_ignores_unknown_fields_and_takes_older_versions() -> None:
    body = json.loads(encode_result(CID, "accepted", at_ms=NOW))
    body.update(v=0, future_field={"a": 1})
    assert decode_result(_raw(body)) == CommandResult(CID, "accepted", "", NOW)


@pytest.mark.parametrize(
    "changes",
    [
        {"v": 3},
        {"v": "1"},
        {"v": True},
        {"v": _DELETE},
        {"id": _DELETE},  # a missing id is a null id: only for rejections
        {"id": "bad id"},
        {"id": 5},
        {"status": "ok"},
        {"status": None},
        {"status": ["done"]},
        {"status": "failed"},  # a failure without a reason
        {"reason": 5},
        {"at": None},
        {"at": "yesterday"},
        {"at": _DELETE},
        {"details": []},
        {"details": "x"},
    ],
    ids=repr,
)
def test_decode_result_rejects(changes: dict[str, Any]) -> None:
    body = json.loads(encode_result(CID, "done", at_ms=NOW))
    for key, value in changes.items():
        if value is _DELETE:
            del body[key]
        else:
            body[key] = value
    with pytest.raises(ProtocolError):
        decode_result(_raw(body))


@pytest.mark.parametrize("payload", [b"", b"[]", b"nope", b"[" * 100_000, b"\xff"], ids=repr)
def test_decode_result_rejects_non_objects(payload: bytes) -> None:
    with pytest.raises(ProtocolError):
        decode_result(payload)


# --- fuzzing ------------------------------------------------------------------


def _check(payload: bytes, now_ms: int = NOW) -> Command | CommandRejected:
    """The parser's contract: a Command that round-trips, or CommandRejected; nothing else."""
    try:
        command = parse_command(payload, now_ms)
    except CommandRejected as exc:
        assert exc.code in REASONS, exc.reason
        return exc
    assert parse_command(encode_command(command), now_ms) == command
    assert now_ms < command.expires_at_ms <= now_ms + MAX_EXPIRY_S * 1000
    if isinstance(command.args, ClipArgs):
        assert 0 < command.args.to_ms - command.args.from_ms <= MAX_CLIP_S * 1000
        assert command.args.to_ms <= now_ms
    if isinstance(command.args, HoldArgs):
        assert 0 < command.args.to_ms - command.args.from_ms <= MAX_HOLD_SPAN_S * 1000
        assert command.args.to_ms <= now_ms < command.args.until_ms
        assert command.args.until_ms <= now_ms + MAX_HOLD_DAYS * DAY_MS
    if isinstance(command.args, HoldArgs | ReleaseArgs):
        assert command.args.reason.strip() and len(command.args.reason) <= MAX_TEXT
    return command


@settings(max_examples=3000, deadline=None)
@given(st.binary(max_size=300))
@example(b'{"v":1}')
@example(b"\xef\xbb\xbf{}")
@example(b"\x00\x00\x00{")
def test_fuzz_arbitrary_bytes(payload: bytes) -> None:
    _check(payload)


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=600, deadline=None)
@given(JSON_VALUES)
def test_fuzz_arbitrary_json(value: object) -> None:
    assert isinstance(_check(json.dumps(value).encode()), CommandRejected)


# Each field of a command: mostly plausible, sometimes broken.
_LOWER = "abcdefghijklmnopqrstuvwxyz0123456789"
_UPPER = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
VALID_IDS = st.text(_LOWER + _UPPER + "_.:-", min_size=1, max_size=80)
CAMERAS = st.builds(str.__add__, st.sampled_from(_LOWER), st.text(_LOWER + "_-", max_size=62))
ODD = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
ODD_TIMES = st.sampled_from(
    [
        "2026-11-28T14:23:10.123",
        "2026-11-28T14:23:10.123+00:00",
        "2026-11-28T16:23:10+02:00Z",
        "2026-02-30T00:00:00Z",
        "2026-11-28Z",
        "20261128T142310Z",
        "2026-11-28T14:23:10.1234567Z",
        "2026-11-28 14:23:10Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59.999Z",
        "1999-12-31T23:59:59.999Z",
    ]
)


def _times(spread_ms: int) -> st.SearchStrategy[object]:
    near = st.integers(NOW - spread_ms, NOW + spread_ms).map(iso_ms)
    edges = st.sampled_from([NOW - 1, NOW, NOW + 1]).map(iso_ms)
    return near | edges | ODD_TIMES | ODD


def _clip(camera: str, to_ms: int, span_ms: int) -> dict[str, Any]:
    return {"camera": camera, "from": iso_ms(to_ms - span_ms), "to": iso_ms(to_ms)}


def _hold(camera: str, to_ms: int, span_ms: int, until_ms: int, reason: str) -> dict[str, Any]:
    return {**_clip(camera, to_ms, span_ms), "until": iso_ms(until_ms), "reason": reason}


REASON_TEXT = st.text(st.characters(exclude_categories=["Cc", "Cs"]), min_size=1, max_size=20)


GOOD_ARGS: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "clip": st.builds(
        _clip, CAMERAS, st.integers(NOW - 600_000, NOW), st.integers(1, MAX_CLIP_S * 1000)
    ),
    "snapshot": st.fixed_dictionaries({"camera": CAMERAS}),
    "test": st.fixed_dictionaries(
        {}, optional={"text": st.text(st.characters(exclude_categories=["Cc", "Cs"]), max_size=20)}
    ),
    "hold": st.builds(
        _hold,
        CAMERAS,
        st.integers(NOW - 600_000, NOW),
        st.integers(1, MAX_HOLD_SPAN_S * 1000),
        st.integers(NOW + 1, NOW + MAX_HOLD_DAYS * DAY_MS),
        REASON_TEXT,
    ),
    "release": st.fixed_dictionaries({"hold": VALID_IDS, "reason": REASON_TEXT}),
}
# Replacement values, field by field: near misses, edge cases and nonsense.
_CLIP_TIMES = _times(2 * MAX_CLIP_S * 1000)
BAD_FIELDS: dict[str, st.SearchStrategy[object]] = {
    "v": st.integers(-1, 3) | ODD,
    "id": VALID_IDS | st.text(max_size=90) | ODD,
    "type": st.sampled_from(["clip", "snapshot", "test", "hold", "release", "Clip", "reboot"])
    | ODD,
    "expires_at": _times(2 * MAX_EXPIRY_S * 1000),
    "args": st.sampled_from(list(GOOD_ARGS.values())).flatmap(lambda s: s)
    | st.builds(  # clips at the edges: span about 0 or about the limit, ending about now
        _clip,
        CAMERAS,
        st.integers(NOW - 3, NOW + 3) | st.integers(NOW - 600_000, NOW),
        st.integers(-3, 3) | st.integers(MAX_CLIP_S * 1000 - 3, MAX_CLIP_S * 1000 + 3),
    )
    | ODD,
}
BAD_ARGS: dict[str, st.SearchStrategy[object]] = {
    "camera": CAMERAS | st.text(max_size=70) | ODD,
    "from": _CLIP_TIMES,
    "to": _CLIP_TIMES,
    "text": st.text(max_size=MAX_TEXT + 2) | ODD,
    "until": _times(2 * MAX_EXPIRY_S * 1000)
    | st.sampled_from([NOW + MAX_HOLD_DAYS * DAY_MS + d for d in (-1, 0, 1)]).map(iso_ms),
    "reason": st.text(max_size=MAX_TEXT + 2) | st.sampled_from(["", " ", "x" * MAX_TEXT]) | ODD,
    "hold": VALID_IDS | st.text(max_size=90) | ODD,
    "zoom": ODD,
}


def _some(keys: list[str], skip: int) -> st.SearchStrategy[str | None]:
    """One of ``keys``, or None (nothing) ``skip`` times as often as any one key."""
    return st.sampled_from([None] * skip + keys)


@st.composite
def mutated_commands(draw: st.DrawFn) -> dict[str, Any]:
    """A valid command with a field or two replaced, dropped or added."""
    kind = draw(st.sampled_from(sorted(GOOD_ARGS)))
    body: dict[str, Any] = {
        "v": 1,
        "id": draw(VALID_IDS),
        "type": kind,
        "expires_at": iso_ms(draw(st.integers(NOW + 1, NOW + MAX_EXPIRY_S * 1000))),
        "args": draw(GOOD_ARGS[kind]),
    }
    for _ in range(2):
        key = draw(_some(sorted(BAD_FIELDS), skip=5))
        if key is not None:
            body[key] = draw(BAD_FIELDS[key])
    if isinstance(body["args"], dict):
        for _ in range(2):
            key = draw(_some(sorted(BAD_ARGS), skip=5))
            if key is not None:
                body["args"][key] = draw(BAD_ARGS[key])
        key = draw(_some(sorted(body["args"]), skip=10))
        if key is not None:
            del body["args"][key]
    key = draw(_some(sorted(body), skip=20))
    if key is not None:
        del body[key]
    if draw(_some(["extra"], skip=20)) is not None:
        body.update(draw(st.dictionaries(st.text(max_size=6), ODD, min_size=1, max_size=2)))
    return body


@settings(max_examples=2000, deadline=None)
@given(mutated_commands())
def test_fuzz_mutated_commands(body: dict[str, Any]) -> None:
    outcome = _check(json.dumps(body).encode())
    raw_id = body.get("id")
    valid_id = raw_id if isinstance(raw_id, str) and _valid_id(raw_id) else None
    if isinstance(outcome, CommandRejected):
        assert outcome.command_id == valid_id, outcome.reason
    else:
        assert outcome.id == valid_id


def _valid_id(text: str) -> bool:
    return 1 <= len(text) <= 80 and all(c.isascii() and (c.isalnum() or c in "_.:-") for c in text)


@st.composite
def valid_commands(draw: st.DrawFn) -> tuple[Command, int]:
    now_ms = draw(st.integers(MIN_TIME_MS + MAX_CLIP_S * 1000, 4_102_444_800_000))
    expires_ms = draw(st.integers(now_ms + 1, now_ms + MAX_EXPIRY_S * 1000))
    to_ms = draw(st.integers(MIN_TIME_MS + MAX_CLIP_S * 1000, now_ms))
    from_ms = to_ms - draw(st.integers(1, MAX_CLIP_S * 1000))
    text = draw(st.text(st.characters(exclude_categories=["Cc", "Cs"]), max_size=MAX_TEXT))
    reason = draw(REASON_TEXT.filter(str.strip))
    held_from = to_ms - draw(st.integers(1, min(MAX_HOLD_SPAN_S * 1000, to_ms - MIN_TIME_MS)))
    until_ms = draw(st.integers(now_ms + 1, now_ms + MAX_HOLD_DAYS * DAY_MS))
    choices: list[ClipArgs | SnapshotArgs | TestArgs | HoldArgs | ReleaseArgs] = [
        ClipArgs(draw(CAMERAS), from_ms, to_ms),
        SnapshotArgs(draw(CAMERAS)),
        TestArgs(text),
        HoldArgs(draw(CAMERAS), held_from, to_ms, until_ms, reason),
        ReleaseArgs(draw(VALID_IDS), reason),
    ]
    args = draw(st.sampled_from(choices))
    return Command(draw(VALID_IDS), expires_ms, args), now_ms


@settings(max_examples=500, deadline=None)
@given(valid_commands())
def test_fuzz_every_valid_command_is_accepted(case: tuple[Command, int]) -> None:
    command, now_ms = case
    assert parse_command(encode_command(command), now_ms) == command


# --- MQTT v5 request/response properties (issue 15) ---------------------------

TOPICS = Topics("edge", "box-1")


def test_a_station_sets_response_topic_correlation_expiry_and_content_type() -> None:
    command = Command(CID, NOW + 90_000, TestArgs())
    envelope = command_envelope(command, TOPICS, NOW)
    assert envelope == Envelope("edge/box-1/cmd/result", CID.encode(), 90, "application/json")


@pytest.mark.parametrize(
    ("expires_in_ms", "expiry_s"),
    [(1_000, 1), (1_999, 1), (59_999, 59), (MAX_EXPIRY_S * 1000, MAX_EXPIRY_S)],
)
def test_the_message_expiry_is_rounded_down_never_past_expires_at(
    expires_in_ms: int, expiry_s: int
) -> None:
    command = Command(CID, NOW + expires_in_ms, TestArgs())
    assert command_envelope(command, TOPICS, NOW).expiry_s == expiry_s


@pytest.mark.parametrize("expires_in_ms", [999, 0, -5_000])
def test_a_command_expiring_within_a_second_is_not_sent(expires_in_ms: int) -> None:
    with pytest.raises(ValueError, match="expires in under 1 s"):
        command_envelope(Command(CID, NOW + expires_in_ms, TestArgs()), TOPICS, NOW)


def test_a_run_out_message_expiry_rejects_a_command_whose_payload_is_not_expired() -> None:
    payload = _raw(_body())  # expires_at a minute ahead
    assert parse_command(payload, NOW, expiry_left_s=0.001).id == CID
    assert parse_command(payload, NOW, expiry_left_s=None).id == CID  # no expiry property
    for left in (0.0, -2.5):
        with pytest.raises(CommandRejected) as caught:
            parse_command(payload, NOW, expiry_left_s=left)
        assert caught.value.command_id == CID
        assert caught.value.code == "expired"
        assert "MQTT message expiry ran out" in caught.value.reason


def test_a_payload_rejection_comes_before_the_message_expiry() -> None:
    with pytest.raises(CommandRejected) as caught:
        parse_command(_raw(_body(type="reboot")), NOW, expiry_left_s=-1)
    assert caught.value.code == "unknown_type"


@pytest.mark.parametrize("content_type", [None, "application/json"])
def test_json_or_no_content_type_is_accepted(content_type: str | None) -> None:
    assert parse_command(_raw(_body()), NOW, content_type=content_type).id == CID


@pytest.mark.parametrize("content_type", ["text/plain", "application/cbor", "", "APPLICATION/JSON"])
def test_another_content_type_is_rejected_as_malformed_with_the_id(content_type: str) -> None:
    with pytest.raises(CommandRejected) as caught:
        parse_command(_raw(_body()), NOW, content_type=content_type)
    assert (caught.value.command_id, caught.value.code) == (CID, "malformed")
    assert "content type" in caught.value.reason


@pytest.mark.parametrize(
    "topic",
    [
        "edge/box-1/cmd/result",
        "edge/box-1/cmd/result/op-7",
        "edge/box-1/cmd/result/console.2/req:9/a/b",
    ],
)
def test_the_box_answers_on_its_own_cmd_result_or_under_it(topic: str) -> None:
    assert response_topic_problem(topic, TOPICS) == ""


@pytest.mark.parametrize(
    "topic",
    [
        "edge/box-1/events",  # its own event stream: the station would read an answer as an event
        "edge/box-1/state",
        "edge/box-1/cmd",
        "edge/box-2/cmd/result",  # another box's
        "edge/station/replies",  # elsewhere under the prefix: not in the box's ACL
        "other/box-1/cmd/result",
        "edge/box-1/cmd/results",
        "edge/box-1/cmd/result/",  # an empty level
        "edge/box-1/cmd/result/+",  # wildcards are never a topic name
        "edge/box-1/cmd/result/#",
        "edge/box-1/cmd/result/a b",
        "edge/box-1/cmd/result/a/b/c/d/e",  # more than 4 levels under it
        "",
    ],
)
def test_any_other_response_topic_is_refused(topic: str) -> None:
    assert response_topic_problem(topic, TOPICS).startswith("bad_response_topic: ")
    assert "bad_response_topic" in REASONS
