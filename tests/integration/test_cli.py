"""The ``edge`` command line as an installer meets it: real subprocesses, exit codes, output."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from edge import __version__
from edge.station.store import StationStore
from tests.conftest import DEMO_CONFIG, REPO, edge_cmd


def edge(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        edge_cmd(*args), capture_output=True, text=True, timeout=30, cwd=REPO, check=False
    )


def broken_config(tmp_path: Path) -> Path:
    """The demo config with three independent mistakes in three sections."""
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    for old, new in (
        ('id = "demo-box-01"', 'id = "Demo Box"'),
        ("heartbeat_s = 30", "heartbeat_s = 1"),
        ("pin = 22", "pin = 40"),
    ):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = tmp_path / "broken.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_version() -> None:
    result = edge("--version")
    assert result.returncode == 0
    assert result.stdout == f"edge {__version__}\n"


def test_check_config_accepts_the_demo_config() -> None:
    result = edge("check-config", str(DEMO_CONFIG))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{DEMO_CONFIG}: OK")
    assert "device demo-box-01" in lines[0]
    assert "7 zones, 7 inputs" in lines[0]


def test_check_config_names_every_mistake_with_file_and_key(tmp_path: Path) -> None:
    path = broken_config(tmp_path)
    result = edge("check-config", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 3, result.stderr
    expected = [
        (f"{path}: device.id = 'Demo Box': ", "must be 1-63 characters"),
        (f"{path}: supervision.heartbeat_s = 1: ", "greater than or equal to 5"),
        (f"{path}: inputs[2](name='in3').pin = 40: ", "less than or equal to 27"),
    ]
    for line, (start, rule) in zip(sorted(lines), sorted(expected), strict=True):
        assert line.startswith(start), line
        assert rule in line, line
    assert "Traceback" not in result.stderr


def test_check_config_of_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    result = edge("check-config", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"{path}: cannot read: No such file or directory\n"


def test_check_config_of_a_toml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "syntax.toml"
    path.write_text('[device]\nid = "box\n', encoding="utf-8")
    result = edge("check-config", str(path))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{path}: TOML syntax error: ")
    assert len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_check_config_of_too_deep_nesting(tmp_path: Path) -> None:
    path = tmp_path / "deep.toml"
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    path.write_text(text + "x = " + "[" * 500 + "]" * 500 + "\n", encoding="utf-8")
    result = edge("check-config", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"{path}: nesting is too deep: more than 32 tables or lists inside each other\n"
    )


def test_check_config_of_an_unquoted_date(tmp_path: Path) -> None:
    path = tmp_path / "date.toml"
    text = DEMO_CONFIG.read_text(encoding="utf-8")
    path.write_text(text.replace('id = "demo-box-01"', "id = 2024-01-01"), encoding="utf-8")
    result = edge("check-config", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"{path}: device.id = 2024-01-01: must be text in quotes\n"


def test_check_config_of_a_file_saved_with_a_byte_order_mark(tmp_path: Path) -> None:
    path = tmp_path / "bom.toml"
    path.write_text(DEMO_CONFIG.read_text(encoding="utf-8"), encoding="utf-8-sig")
    result = edge("check-config", str(path))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith(
        f"{path}: the file starts with a byte-order mark (BOM), which TOML does not allow: "
        'save it as "UTF-8" without BOM'
    )


def test_config_schema_is_a_strict_json_schema() -> None:
    result = edge("config-schema")
    assert result.returncode == 0, result.stderr
    schema = json.loads(result.stdout)
    assert {"device", "station", "uplink", "zones", "inputs"} <= set(schema["properties"])
    assert set(schema["required"]) == {"device", "station", "uplink"}
    assert schema["additionalProperties"] is False
    sections = schema["$defs"]
    for name in ("DeviceConfig", "StationConfig", "UplinkConfig", "ZoneConfig", "InputConfig"):
        assert sections[name]["additionalProperties"] is False, name
    assert sections["InputConfig"]["properties"]["pin"]["maximum"] == 27
    assert '"additionalProperties": false' in result.stdout


def test_run_with_a_broken_config_exits_2_without_a_traceback(tmp_path: Path) -> None:
    path = broken_config(tmp_path)
    state = tmp_path / "state"
    result = edge("run", "--config", str(path), "--state-dir", str(state))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith(f"{path}: ")]
    assert len(lines) == 3, result.stderr
    assert not state.exists()  # nothing was started


def test_station_events_of_an_empty_store_prints_nothing(tmp_path: Path) -> None:
    db = tmp_path / "station.sqlite"
    store = StationStore(db)
    store.open()
    store.close()
    for extra in ((), ("--json",)):
        result = edge("station", "events", "--db", str(db), *extra)
        assert result.returncode == 0, result.stderr
        assert result.stdout == ""
        assert result.stderr == ""


def test_station_events_of_a_missing_store_is_an_error(tmp_path: Path) -> None:
    db = tmp_path / "typo.sqlite"
    result = edge("station", "events", "--db", str(db))
    assert result.returncode == 1
    assert "no station store here" in result.stderr
    assert not db.exists()  # a mistyped path creates nothing
