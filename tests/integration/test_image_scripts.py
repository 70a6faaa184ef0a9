"""Every shell script of the image recipe passes shellcheck, and the units the
install script copies all exist (``make lint`` runs shellcheck too)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGE_BUILD = REPO / "image-build"


def _scripts() -> list[Path]:
    found = [p for p in IMAGE_BUILD.rglob("*") if p.is_file() and p.name.endswith(".sh")]
    return sorted([*found, IMAGE_BUILD / "pi-gen" / "config"])


def test_every_script_passes_shellcheck() -> None:
    exe = shutil.which("shellcheck")
    if exe is None:
        pytest.fail("shellcheck is not installed: run `make test`, which installs it")
    scripts = _scripts()
    assert len(scripts) >= 6
    result = subprocess.run(
        [exe, *map(str, scripts)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_scripts_are_executable_and_strict() -> None:
    for script in _scripts():
        if script.name == "config":
            continue
        assert script.stat().st_mode & 0o111, f"{script} is not executable"
        head = script.read_text(encoding="utf-8").splitlines()[:40]
        assert head[0].startswith("#!/bin/bash"), f"{script}: not a bash script"
        assert any(re.match(r"set -euo pipefail|#!/bin/bash -e", line) for line in head), (
            f"{script}: does not stop at the first error"
        )


def test_install_script_installs_units_that_exist() -> None:
    text = (IMAGE_BUILD / "install.sh").read_text(encoding="utf-8")
    (units,) = re.findall(r"for unit in ([^;]+); do", text)
    for unit in units.split():
        assert (REPO / "systemd" / unit).is_file(), f"install.sh installs a missing unit {unit}"
    assert sorted(p.name for p in (REPO / "systemd").glob("*.service")) == sorted(units.split())
