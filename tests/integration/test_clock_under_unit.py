"""The clock figures of the status, read under the system-call filter of
systemd/edge.service.

systemd is not PID 1 on a development machine or in CI, so no transient unit can
be started. The filter is built the way systemd builds it instead: the unit's
own SystemCallFilter= lines (allow-list minus deny-lists, groups expanded by
``systemd-analyze syscall-filter`` of the installed systemd), its
SystemCallErrorNumber= (or a kill with SIGSYS when there is none) and the @clock
group that ProtectClock=yes refuses with EPERM. It is loaded with libseccomp,
then a fresh Python starts under it (a filter outlives execve) and reads the
clock as the status page does.

Not covered here: the rest of the unit's sandbox (namespaces, read-only mounts,
the user, capabilities, MemoryDenyWriteExecute=), and a real systemd-timesyncd.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO

UNIT = REPO / "systemd" / "edge.service"
SYSTEMD_ANALYZE = shutil.which("systemd-analyze")
LIBSECCOMP = ctypes.util.find_library("seccomp")

pytestmark = [
    pytest.mark.systemd,
    pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed"),
    pytest.mark.skipif(LIBSECCOMP is None, reason="libseccomp is not installed"),
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="seccomp is Linux only"),
]


def _groups() -> dict[str, list[str]]:
    """``@group -> members`` (calls and nested groups) of the installed systemd."""
    assert SYSTEMD_ANALYZE is not None
    out = subprocess.run(
        [SYSTEMD_ANALYZE, "syscall-filter", "--no-pager"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in out.splitlines():
        word = line.strip()
        if line.startswith("@"):
            current = groups.setdefault(word, [])
        elif line.startswith("#"):
            current = None  # the closing list of calls in no group
        elif current is not None and word and not word.startswith("#"):
            current.append(word)
    return groups


def _expand(names: list[str], groups: dict[str, list[str]]) -> set[str]:
    calls: set[str] = set()
    for name in names:
        calls |= _expand(groups[name], groups) if name.startswith("@") else {name}
    return calls


def _unit_filter() -> dict[str, Any]:
    """The unit's system-call filter: allowed calls, the refusal's errno (None: SIGSYS)."""
    settings = [line.partition("=") for line in UNIT.read_text().splitlines()]
    filters = [value.split() for key, _, value in settings if key == "SystemCallFilter"]
    errno_name = next((v for k, _, v in settings if k == "SystemCallErrorNumber"), None)
    protect_clock = any(k == "ProtectClock" and v == "yes" for k, _, v in settings)
    groups = _groups()
    assert filters and not filters[0][0].startswith("~"), "the unit starts with an allow-list"
    allowed: set[str] = set()
    for words in filters:
        if words[0].startswith("~"):
            allowed -= _expand([words[0][1:], *words[1:]], groups)
        else:
            allowed |= _expand(words, groups)
    if protect_clock:
        allowed -= _expand(["@clock"], groups)
    return {"allowed": sorted(allowed), "errno": errno_name, "protect_clock": protect_clock}


# Runs in a child: load the filter with libseccomp, then exec Python under it.
SANDBOX = r"""
import ctypes, errno, json, os, sys
spec = json.loads(sys.argv[1])
lib = ctypes.CDLL(spec["libseccomp"], use_errno=True)
lib.seccomp_init.restype = ctypes.c_void_p
ALLOW, KILL_PROCESS = 0x7FFF0000, 0x80000000
refuse = KILL_PROCESS if spec["errno"] is None else 0x00050000 | getattr(errno, spec["errno"])
ctx = ctypes.c_void_p(lib.seccomp_init(ctypes.c_uint32(refuse)))
for name in spec["allowed"]:
    nr = lib.seccomp_syscall_resolve_name(name.encode())
    if nr != -1:  # a call of another architecture
        lib.seccomp_rule_add(ctx, ctypes.c_uint32(ALLOW), ctypes.c_int(nr), ctypes.c_uint(0))
if lib.seccomp_load(ctx) != 0:
    sys.exit("seccomp_load failed")
os.execv(sys.executable, [sys.executable, "-c", spec["reader"], sys.argv[1]])
"""

# Runs under the filter: what the status page would show, and proof the filter is on.
READER = r"""
import ctypes, ctypes.util, json, sys, time
from pathlib import Path
spec = json.loads(sys.argv[1])
from edge import sysinfo as status
libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
tx = status._Timex()
direct = libc.adjtimex(ctypes.byref(tx))
verdict = status.clock_sync(time.time(), Path(spec["timesync_dir"]))
print(json.dumps({
    "adjtimex": [direct, ctypes.get_errno()],
    "synchronized": verdict.synchronized,
    "source": verdict.source,
    "offset_ms": verdict.offset_ms,
}))
"""


def _read_under_the_unit(
    timesync_dir: Path, **override: object
) -> subprocess.CompletedProcess[str]:
    assert LIBSECCOMP is not None
    spec = {
        **_unit_filter(),
        "libseccomp": LIBSECCOMP,
        "reader": READER,
        "timesync_dir": str(timesync_dir),
        **override,
    }
    return subprocess.run(
        [sys.executable, "-c", SANDBOX, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )


def test_the_unit_refuses_clock_calls_with_eperm_not_sigsys() -> None:
    spec = _unit_filter()
    assert spec["protect_clock"] is True  # the hardening stays
    assert spec["errno"] == "EPERM"
    allowed = set(spec["allowed"])
    assert "adjtimex" not in allowed and "clock_adjtime" not in allowed
    assert {"openat", "newfstatat", "statx", "read"} & allowed


def test_timesyncd_flag_is_read_under_the_unit(tmp_path: Path) -> None:
    run_dir = tmp_path / "timesync"
    run_dir.mkdir()
    (run_dir / "synchronized").touch()
    result = _read_under_the_unit(run_dir)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["adjtimex"] == [-1, 1]  # EPERM: the filter is really on
    assert (seen["synchronized"], seen["source"]) == (True, "timesyncd")
    assert seen["offset_ms"] is None


def test_a_stale_flag_under_the_unit_is_not_synchronized(tmp_path: Path) -> None:
    run_dir = tmp_path / "timesync"
    run_dir.mkdir()
    flag = run_dir / "synchronized"
    flag.touch()
    old = time.time() - 24 * 3600
    os.utime(flag, (old, old))
    result = _read_under_the_unit(run_dir)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert (seen["synchronized"], seen["source"]) == (False, "timesyncd")


def test_nothing_readable_under_the_unit_is_unknown_not_a_crash(tmp_path: Path) -> None:
    result = _read_under_the_unit(tmp_path / "no-timesyncd")
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout)
    assert seen["adjtimex"] == [-1, 1]
    assert (seen["synchronized"], seen["source"], seen["offset_ms"]) == (None, None, None)


def test_the_filter_kills_with_sigsys_without_an_errno(tmp_path: Path) -> None:
    """The harness itself: without SystemCallErrorNumber= a refused call is fatal."""
    result = _read_under_the_unit(tmp_path, errno=None)
    assert result.returncode == -signal.SIGSYS, (result.returncode, result.stderr)
    assert result.stdout == ""
