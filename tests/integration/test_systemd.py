"""Checks of the box's systemd unit, systemd/edge.service.

- ``systemd-analyze verify`` accepts the unit without a warning about it;
- ``systemd-analyze security --offline=true`` rates its exposure at 2.5 or lower;
- the unit keeps the settings the application relies on (Type=notify and the
  watchdog, restart policy, state/config directories, device access to GPIO and
  the camera) and the core of its hardening.

The systemd-analyze tests skip when the tool is missing; the set-up of the
machine installs systemd (the container does not run it as PID 1, which
``verify`` and ``security --offline`` do not need).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

UNIT = Path(__file__).resolve().parents[2] / "systemd" / "edge.service"
UNIT_NAME = UNIT.name
MAX_EXPOSURE = 2.5

# What the installed unit runs; the tests swap only this line.
INSTALLED_EXEC_START = "ExecStart=/opt/edge/venv/bin/edge run --config /etc/edge/edge.toml"

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
needs_systemd_analyze = pytest.mark.skipif(
    SYSTEMD_ANALYZE is None,
    reason="systemd-analyze is not installed (the machine set-up installs the systemd package)",
)


def _run_analyze(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert SYSTEMD_ANALYZE is not None
    env = {
        **os.environ,
        "SYSTEMD_PAGER": "cat",
        "SYSTEMD_COLORS": "0",
        "SYSTEMD_LOG_COLOR": "0",
        "LC_ALL": "C.UTF-8",
    }
    return subprocess.run(
        [SYSTEMD_ANALYZE, "--no-pager", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        encoding="utf-8",
        errors="replace",
        timeout=60,
        check=False,
    )


def _exec_start_for_this_machine() -> str:
    """An ExecStart= line equivalent to the installed one, runnable here.

    /opt/edge/venv does not exist on a development machine or in CI, and
    ``verify`` rejects an ExecStart= whose program is missing. Use the console
    script of the venv the tests run in, or the interpreter with ``-m edge`` when
    the script is not installed yet.
    """
    script = Path(sys.executable).parent / "edge"
    if script.is_file() and os.access(script, os.X_OK):
        argv = [str(script)]
    else:
        argv = [sys.executable, "-m", "edge"]
    # systemd unquotes "..." words and expands "%" specifiers in ExecStart=.
    words = [f'"{a}"' if re.search(r"\s", a) else a for a in argv]
    words = [w.replace("%", "%%") for w in words]
    return "ExecStart=" + " ".join([*words, "run", "--config", "/etc/edge/edge.toml"])


def _render_unit(tmp_path: Path) -> Path:
    """Copy the unit into tmp_path with only the ExecStart= line changed.

    User=edge, Group=edge and SupplementaryGroups=gpio video are kept as they are:
    ``systemd-analyze verify`` does not resolve users or groups (checked with
    systemd 252 on a machine with no "edge" user and no "gpio" group: no message),
    so there is no need to swap them.
    """
    lines = UNIT.read_text(encoding="utf-8").splitlines()
    assert lines.count(INSTALLED_EXEC_START) == 1, (
        f"{UNIT} must contain exactly one line {INSTALLED_EXEC_START!r}"
    )
    replacement = _exec_start_for_this_machine()
    rendered = [replacement if line == INSTALLED_EXEC_START else line for line in lines]
    target = tmp_path / UNIT_NAME
    target.write_text("\n".join(rendered) + "\n", encoding="utf-8")
    return target


def _parse_unit(text: str) -> dict[str, dict[str, list[str]]]:
    """Parse a unit file the way systemd reads it, keeping repeated keys.

    Returns section -> key -> values in order. An empty assignment resets the
    list (systemd's rule for list settings such as CapabilityBoundingSet=), and
    is kept as a single "" so that "set to empty" can be told from "absent".
    """
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"assignment outside a section: {raw!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not a key=value line: {raw!r}"
        key, value = key.strip(), value.strip()
        if value == "":
            current[key] = [""]
        else:
            values = current.setdefault(key, [])
            if values == [""]:
                values.clear()
            values.append(value)
    return sections


def _one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit.get(section, {}).get(key)
    assert values, f"[{section}] {key}= is not set"
    assert len(values) == 1, f"[{section}] {key}= is set more than once: {values}"
    return values[0]


@pytest.mark.systemd
@needs_systemd_analyze
def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    unit = _render_unit(tmp_path)
    result = _run_analyze("verify", str(unit), cwd=tmp_path)
    output = result.stdout + result.stderr
    # The host may have its own broken units; only messages about ours count.
    ours = [line for line in output.splitlines() if UNIT_NAME in line]
    assert result.returncode == 0, f"systemd-analyze verify failed:\n{output}"
    assert ours == [], "systemd-analyze verify complained about the unit:\n" + "\n".join(ours)


@pytest.mark.systemd
@needs_systemd_analyze
def test_unit_exposure_is_low(tmp_path: Path) -> None:
    help_text = _run_analyze("--help", cwd=tmp_path).stdout
    if "--offline" not in help_text:
        pytest.skip("this systemd-analyze has no --offline (needs systemd 250 or later)")
    unit = _render_unit(tmp_path)
    result = _run_analyze("security", "--offline=true", str(unit), cwd=tmp_path)
    output = result.stdout + result.stderr
    match = re.search(
        r"Overall exposure level for \S+:\s*(\d+(?:\.\d+)?)",
        output,
    )
    assert match, f"no 'Overall exposure level' line in:\n{output}"
    exposure = float(match.group(1))
    assert exposure <= MAX_EXPOSURE, (
        f"exposure {exposure} is above {MAX_EXPOSURE}; what is not hardened:\n"
        + "\n".join(line for line in output.splitlines() if line.startswith("✗"))
    )


@pytest.mark.systemd
def test_unit_keeps_what_the_application_relies_on() -> None:
    unit = _parse_unit(UNIT.read_text(encoding="utf-8"))
    service = "Service"

    # Readiness and the watchdog: edge/health.py sends READY=1 and WATCHDOG=1.
    assert _one(unit, service, "Type") == "notify"
    assert _one(unit, service, "NotifyAccess") == "main"
    watchdog = _one(unit, service, "WatchdogSec")
    assert re.fullmatch(r"[1-9]\d*s?", watchdog), f"WatchdogSec={watchdog} is not a positive time"

    # Restart policy, and a bounded restart loop.
    assert _one(unit, service, "Restart") == "on-failure"
    assert _one(unit, service, "RestartSec")
    assert _one(unit, "Unit", "StartLimitIntervalSec")
    assert _one(unit, "Unit", "StartLimitBurst")
    assert _one(unit, service, "TimeoutStopSec")

    # What runs, as whom, and where its data lives ($STATE_DIRECTORY).
    assert f"ExecStart={_one(unit, service, 'ExecStart')}" == INSTALLED_EXEC_START
    assert _one(unit, service, "User") == "edge"
    assert _one(unit, service, "Group") == "edge"
    groups = " ".join(unit[service].get("SupplementaryGroups", [])).split()
    assert {"gpio", "video"} <= set(groups)
    assert _one(unit, service, "StateDirectory") == "edge"
    assert _one(unit, service, "ConfigurationDirectory") == "edge"
    assert "PYTHONUNBUFFERED=1" in " ".join(unit[service].get("Environment", [])).split()

    # lgpio creates its notification FIFOs in the working directory: it must be
    # a directory the service may write to.
    runtime = _one(unit, service, "RuntimeDirectory")
    assert _one(unit, service, "WorkingDirectory") in {f"/run/{runtime}", f"%t/{runtime}"}


@pytest.mark.systemd
def test_unit_hardening_keeps_gpio_and_camera_reachable() -> None:
    unit = _parse_unit(UNIT.read_text(encoding="utf-8"))
    service = unit["Service"]

    def value(key: str) -> str | None:
        values = service.get(key)
        return values[-1] if values else None

    assert value("ProtectSystem") == "strict"
    assert value("ProtectHome") == "yes"
    assert value("PrivateTmp") == "yes"
    assert value("NoNewPrivileges") == "yes"
    assert value("CapabilityBoundingSet") == ""
    assert value("AmbientCapabilities") == ""
    assert value("UMask") == "0027"

    # PrivateDevices=yes would hide /dev/gpiochip* and the camera nodes; the unit
    # uses a closed device policy with an explicit allow list instead.
    assert value("PrivateDevices") in {None, "no", "false"}
    assert value("DevicePolicy") == "closed"
    allowed = {}
    for entry in service.get("DeviceAllow", []):
        device, _, access = entry.partition(" ")
        allowed[device] = access or "rwm"
    assert "r" in allowed.get("char-gpiochip", "") and "w" in allowed["char-gpiochip"]
    assert "r" in allowed.get("char-video4linux", "") and "w" in allowed["char-video4linux"]

    # gpiozero reads the board revision from /proc/cpuinfo or /proc/device-tree.
    assert value("ProcSubset") in {None, "all"}
    families = set(" ".join(service.get("RestrictAddressFamilies", [])).split())
    assert families == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"}
