"""edge diag event and dc09: the payload the uplink sends and the frames the DC-09 bridge
sends for an event, read back by the box's and the bridge's own decoders; bad frames."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.__main__ import main
from edge.dc09 import codec
from edge.protocol.events import decode_event, event_record
from tests.conftest import REPO

KEY = "000102030405060708090a0b0c0d0e0f1011121314151617"  # AES-192
CONFIG = str(REPO / "config" / "demo.toml")


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> list[dict]:
    assert main(args) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_zone_alarm_as_mqtt_and_dc09(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key = tmp_path / "key"
    key.write_text(KEY + "\n")
    args = ["diag", "event", "--config", CONFIG, "--zone", "fire", "--at", "2026-11-28T03:04:05Z"]
    assert main([*args, "--seq", "42", "--key-file", str(key), "--video-base", "https://cms"]) == 0
    out, err = capsys.readouterr()
    assert "alarm 1110/FA: 5 message(s)" in err
    rows = [json.loads(line) for line in out.splitlines()]
    mqtt = rows[0]
    assert mqtt["topic"] == "edge/demo-box-01/events"
    message = decode_event(mqtt["text"].encode())  # the station's own decoder
    assert message.seq == 42 and message.account == "1234"
    assert (message.event.codes.cid, message.event.codes.sia) == ("1110", "FA")
    frames = {(r["format"], r["encrypted"]): r["text"] for r in rows[1:]}
    assert len(frames) == 4
    for (fmt, encrypted), text in frames.items():
        frame = codec.decode(text.encode(), bytes.fromhex(KEY) if encrypted else None)
        assert (frame.ident, frame.seq, frame.account, frame.encrypted) == (
            fmt,
            42,
            "1234",
            encrypted,
        )
        assert frame.extended == (f"Vhttps://cms/events/{message.event.id}",)
        assert frame.timestamp is not None and frame.timestamp.isoformat().startswith(
            "2026-11-28T03:04:05"
        )
    assert codec.decode(frames[("SIA-DCS", False)].encode()).data == "#1234|Nri1/FA010"
    assert codec.decode(frames[("ADM-CID", False)].encode()).data == "#1234|1110 01 010"


def test_event_record_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A stored event (as `edge station show --json` gives it) dumps to the same payload."""
    base = ["diag", "event", "--config", CONFIG]
    first = run([*base, "--zone", "front-door", "--restore", "--armed", "no"], capsys)
    event = decode_event(first[0]["text"].encode()).event
    record = tmp_path / "event.json"
    record.write_text(json.dumps({"event": event_record(event)}))
    again = run([*base, "--record", str(record)], capsys)
    assert again[0]["text"] == first[0]["text"]
    assert decode_event(again[0]["text"].encode()).event.kind.value == "restore"


def test_decode_a_frame(capsys: pytest.CaptureFixture[str]) -> None:
    frame = codec.Frame("ADM-CID", 7, account="ABC1", data="#ABC1|1130 01 001")
    text = codec.encode(frame).decode()
    rows = run(["diag", "dc09", text], capsys)
    assert rows == [
        {
            "crc": text[1:5],
            "crc_ok": True,
            "ident": "ADM-CID",
            "seq": 7,
            "receiver": None,
            "line": "0",
            "account": "ABC1",
            "encrypted": False,
            "data": "#ABC1|1130 01 001",
            "extended": [],
            "timestamp": None,
        }
    ]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        ('0000002A"SIA-DCS"0001L0#1234[#1234|Nri1/BA001]', "CRC 0000 does not match"),
        ("garbage, not a frame", "no CRC and length"),
        ("zz", "too short"),
    ],
)
def test_bad_frame_is_a_clear_error(
    frame: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["diag", "dc09", frame]) == 1
    assert message in capsys.readouterr().err


def test_encrypted_frame_needs_the_right_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = codec.Frame("SIA-DCS", 1, account="1234", data="#1234|Nri1/BA001", encrypted=True)
    text = codec.encode(frame, bytes.fromhex(KEY), pad=lambda n: "P" * n).decode()
    assert main(["diag", "dc09", text]) == 1
    assert "no key" in capsys.readouterr().err
    wrong = tmp_path / "wrong"
    wrong.write_text("ff" * 24)
    assert main(["diag", "dc09", text, "--key-file", str(wrong)]) == 1
    assert "wrong key" in capsys.readouterr().err
    short = tmp_path / "short"
    short.write_text("abcd")
    assert main(["diag", "dc09", text, "--key-file", str(short)]) == 2
    assert "--key-file" in capsys.readouterr().err


def test_unknown_zone_and_bad_record(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["diag", "event", "--config", CONFIG, "--zone", "attic"]) == 2
    assert "--zone 'attic'" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"kind": "alarm", "cid": "9999"}')
    assert main(["diag", "event", "--config", CONFIG, "--record", str(bad)]) == 1
    assert "malformed event: KeyError('condition')" in capsys.readouterr().err
