"""``edge station events | show | export | devices | alarms | bridge`` on a real store."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from edge.__main__ import main
from edge.station.inbound import EventReceived, HeartbeatReceived, StateReceived
from edge.station.store import StationStore
from tests.conftest import edge_cmd
from tests.unit.test_station_store import T0, blob, chunks, event_message


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "station.sqlite"
    store = StationStore(path)
    store.open()
    alarm = event_message("ev-alarm", "gw-1", 1)
    other = event_message("ev-other", "gw-2", 1)
    later = event_message("ev-later", "gw-1", 2)
    later = type(later)(
        type(later.event)(**{**vars(later.event), "occurred_at_ms": T0 + 3_600_000}),
        later.seq,
        later.device,
        later.account,
        later.sent_at_ms,
        later.historical,
    )
    store.commit([EventReceived("gw-1", alarm), EventReceived("gw-2", other)], T0)
    store.commit([EventReceived("gw-1", later)], T0 + 3_600_000)
    store.commit(chunks(blob(300), media_id="still-1", event_id="ev-alarm"), T0)
    store.commit([StateReceived("gw-1", "online", 20, 90), HeartbeatReceived("gw-1", 20)], T0)
    store.close()
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["station", *args])
    out, err = capsys.readouterr()
    return code, out, err


def ids(out: str) -> list[str]:
    return [json.loads(line)["id"] for line in out.splitlines()]


def test_events_filter_by_device_kind_and_time(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["events", "--db", str(db), "--json"]
    assert ids(run(capsys, *base)[1]) == ["ev-later", "ev-alarm", "ev-other"]
    assert ids(run(capsys, *base, "--device", "gw-2")[1]) == ["ev-other"]
    assert ids(run(capsys, *base, "--kind", "restore")[1]) == []
    assert len(ids(run(capsys, *base, "--kind", "alarm")[1])) == 3
    since = "2026-11-28T14:53:10Z"  # half an hour after T0
    assert ids(run(capsys, *base, "--since", since)[1]) == ["ev-later"]
    assert ids(run(capsys, *base, "--until", since)[1]) == ["ev-alarm", "ev-other"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "--since 'yesterday': not an ISO 8601 time"),
        (["--since", "2h", "--until", "3h"], "--since must be before --until"),
        (["--limit", "0"], "--limit 0: must be at least 1"),
    ],
)
def test_events_bad_arguments_are_clear_errors(
    db: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    code, out, err = run(capsys, "events", "--db", str(db), *args)
    assert code == 2 and out == "" and message in err


def test_show_one_event_with_its_media(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "show", "--db", str(db), "ev-alarm")
    shown = json.loads(out)
    assert code == 0 and shown["event"]["id"] == "ev-alarm" and shown["deliveries"] == 1
    assert [(m["media_id"], m["size"]) for m in shown["media"]] == [("still-1", 300)]
    code, _, err = run(capsys, "show", "--db", str(db), "ev-nope")
    assert code == 1 and "no event 'ev-nope'" in err


def test_export_copies_and_verifies(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "out"
    code, out, _ = run(capsys, "export", "--db", str(db), "ev-alarm", "--to", str(target))
    assert code == 0 and "still-1.jpg" in out
    data = (target / "still-1.jpg").read_bytes()
    assert hashlib.sha256(data).hexdigest() == hashlib.sha256(blob(300)).hexdigest()
    code, _, err = run(capsys, "export", "--db", str(db), "ev-other", "--to", str(target))
    assert code == 1 and "no complete media" in err


def test_devices_and_alarms(db: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "devices", "--db", str(db), "--json")
    (device,) = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    assert (device["device"], device["state"], device["lost_after_s"]) == ("gw-1", "online", 90)
    code, out, _ = run(capsys, "devices", "--db", str(db))
    assert code == 0 and out.startswith("gw-1") and "online" in out and "outbox -" in out
    assert run(capsys, "alarms", "--db", str(db)) == (0, "", "")


def test_missing_store_and_bad_bridge_arguments(
    tmp_path: Path, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "devices", "--db", str(tmp_path / "none.sqlite"))
    assert code == 1 and "no station store here" in err
    key = tmp_path / "key"
    key.write_text("abcd")
    args = ["bridge", "--db", str(db), "--receiver", "nowhere", "--account", "12g"]
    code, _, err = run(capsys, *args, "--key-file", str(key), "--video-base", "http://x/[1]")
    assert code == 2
    assert "--receiver 'nowhere': must be host:port" in err
    assert "--account '12g'" in err and "need 32, 48 or 64" in err and "--video-base" in err


def test_run_on_postgresql_needs_a_media_folder() -> None:
    result = subprocess.run(
        edge_cmd("station", "run", "--db", "postgresql://station@127.0.0.1:1/station"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "a PostgreSQL station store needs a media folder" in result.stderr


def test_share_group_needs_postgresql(tmp_path: Path) -> None:
    db = str(tmp_path / "s.sqlite")
    result = subprocess.run(
        edge_cmd("station", "run", "--db", db, "--share-group", "g"),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "--share-group needs a shared PostgreSQL --db" in result.stderr
