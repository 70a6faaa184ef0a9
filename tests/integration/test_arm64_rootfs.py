"""The box on the Pi's platform: an arm64 Debian bookworm under emulation.

A minimal arm64 bookworm root file system (mmdebstrap, its programs run by
qemu-user through binfmt_misc, cached like the amd64 one) gets the box
installed by ``image-build/install.sh`` as on a Pi: the system's Python 3.11,
Debian's python3-numpy 1.24.2, and the aarch64 wheels ``image-build/box.lock``
pins (OpenCV, PyAV, cryptography, pydantic-core...), hashes checked. Then the
unit tests of zones, outbox, motion, video and protocol (every
``tests/unit/test_{zones,outbox*,motion_*,video_*,protocol*}.py``) run inside
it, on the installed release itself, with pytest and hypothesis from
``image-build/box-tests.lock``. ffmpeg is in the root file system only because
the video tests check each clip with ffprobe; a box has none. The few tests
known to fail here (KNOWN, each with its reason) are reported, not hidden.

Cost on the CI machine (2 cores, x86_64), measured with
``time pytest tests/integration/test_arm64_rootfs.py``: see README.md, "What
must be checked on a real Pi". Cold (empty cache, as a new CI machine) the root
file system dominates: mmdebstrap runs every maintainer script under emulation.
"""

from __future__ import annotations

import os
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import rootfs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(3600),
    pytest.mark.skipif(os.geteuid() != 0, reason="binfmt_misc, chroot and namespaces need root"),
    pytest.mark.skipif(shutil.which("mmdebstrap") is None, reason="needs mmdebstrap (make setup)"),
]

ARCH = "arm64"
TOOLS = ("ffmpeg",)  # the video tests' ffprobe and ffmpeg; not on a box
INBOX = "/tmp/edge-src"  # the tests' REPO inside the root: its parent holds shared/
UNITS = (
    "test_zones.py",
    "test_outbox*.py",
    "test_motion_*.py",
    "test_video_*.py",
    "test_protocol*.py",
)
# Known to fail here, each with its reason: they still run, and each one's result is
# reported as a warning (one paced by the wall clock may pass on a quiet machine and fail
# on a busy one; one that keeps passing is to be taken off this list); any other failure
# fails the step.
KNOWN = {
    "tests/unit/test_video_audio.py::test_a_microphone_is_heard_in_the_clip": (
        "paced by the wall clock (a live tone in real time, frames 0.1 s apart): under "
        "emulation encoding is ten times slower than on a Pi and the clip runs 3.2 s for 2.5 s"
    ),
}
FOOTAGE = rootfs.REPO.parent / "shared" / "data" / "video"  # third-party clips, when present
VENV = "/opt/edge/venv/bin"


def unit_modules() -> list[str]:
    found = {p for pattern in UNITS for p in (rootfs.REPO / "tests" / "unit").glob(pattern)}
    return sorted(f"tests/unit/{p.name}" for p in found)


def run(root: Path, *argv: str, timeout: float = 1800) -> str:
    result = rootfs.in_root(root, *argv, timeout=timeout)
    assert result.returncode == 0, (
        f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout[-6000:]}\n"
        f"{result.stderr[-6000:]}"
    )
    return result.stdout


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    why = rootfs.emulation(ARCH)
    if why is not None:
        pytest.skip(f"cannot run arm64 programs here: {why}")
    work = tmp_path_factory.mktemp("arm64")
    tarball = rootfs.base_tarball(ARCH, TOOLS)
    path = work / "root"
    rootfs.extract(tarball, path)
    inbox = path / INBOX.lstrip("/")
    for part in ("systemd", "config", "image-build"):
        shutil.copytree(rootfs.REPO / part, inbox / part)
    rootfs.locked_wheels(inbox / "wheels", rootfs.BOX_LOCK, "aarch64")
    rootfs.locked_wheels(inbox / "wheels", rootfs.TESTS_LOCK, "aarch64")
    rootfs.build_wheel(inbox / "wheels")
    # The tests and what they read, never edge/'s code: the installed release runs.
    shutil.copytree(
        rootfs.REPO / "tests",
        inbox / "tests",
        ignore=shutil.ignore_patterns("__pycache__", "bench", "browser", "integration"),
    )
    shutil.copy2(rootfs.REPO / "pyproject.toml", inbox / "pyproject.toml")  # pytest's settings
    (inbox / "edge" / "protocol").mkdir(parents=True)
    shutil.copy2(rootfs.REPO / "edge/protocol/PROTOCOL.md", inbox / "edge/protocol/PROTOCOL.md")
    if FOOTAGE.is_dir():
        shutil.copytree(FOOTAGE, path / "tmp/shared/data/video")
    run(path, f"{INBOX}/image-build/install.sh", "--wheels", f"{INBOX}/wheels", "--no-apt")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_box_installs_on_arm64_with_debian_numpy(root: Path) -> None:
    probe = (
        "import platform, sys, numpy, cv2, av, cryptography, pydantic_core, edge; "
        "print(platform.machine(), sys.version.split()[0], numpy.__version__, numpy.__file__, "
        "cv2.__version__, av.__version__, edge.__file__)"
    )
    said = run(root, "/bin/sh", "-c", f'cd {INBOX} && exec {VENV}/python -c "$0"', probe)
    machine, python, numpy, numpy_file, cv2, av, edge = said.split()
    assert machine == "aarch64"
    assert python.startswith("3.11.")
    assert numpy == "1.24.2" and numpy_file.startswith("/usr/lib/python3/dist-packages/")
    assert (cv2, av) == ("4.11.0", "18.1.0")
    assert edge.startswith("/opt/edge/venv/lib/")  # the release's, not the tests' folder (cwd)
    assert run(root, f"{VENV}/edge", "--version").strip() == "edge 0.1.0"
    assert "OK" in run(root, f"{VENV}/edge", "check-config", "/etc/edge/edge.toml")
    # Every wheel pip installed is an aarch64 one (or pure Python), none built here.
    wheels = run(root, "/bin/sh", "-c", f"cat {VENV}/../lib/python3.11/site-packages/*/WHEEL")
    tags = {line.split(": ", 1)[1] for line in wheels.splitlines() if line.startswith("Tag: ")}
    assert all(tag.endswith(("aarch64", "-any")) for tag in tags), tags


def test_unit_tests_of_zones_outbox_motion_video_protocol_pass_on_arm64(root: Path) -> None:
    run(
        root,
        f"{VENV}/pip",
        "install",
        "--quiet",
        "--no-index",
        "--no-cache-dir",
        "--require-hashes",
        "--find-links",
        f"{INBOX}/wheels",
        "-r",
        f"{INBOX}/image-build/box-tests.lock",
    )
    modules = unit_modules()
    assert len(modules) >= 10, modules
    # Under emulation code runs about ten times slower: a test's own limit is 600 s, not 120.
    pytest_argv = ["-m", "pytest", "-p", "no:cacheprovider", "-q", "-o", "timeout=600", *modules]
    script = f'cd {INBOX} && exec {VENV}/python "$@"'
    result = rootfs.in_root(root, "/bin/sh", "-c", script, "sh", *pytest_argv, timeout=3000)
    out = result.stdout
    assert result.returncode in (0, 1), f"pytest exit {result.returncode}:\n{out[-6000:]}"
    summary = out.strip().splitlines()[-1]
    assert " passed" in summary and "error" not in summary, out[-6000:]
    print(f"arm64 ({len(modules)} modules): {summary}")
    failed = {line.split()[1] for line in out.splitlines() if line.startswith("FAILED ")}
    assert failed <= set(KNOWN), f"failed on arm64: {sorted(failed - set(KNOWN))}\n{out[-8000:]}"
    for node, why in KNOWN.items():
        if node in failed:
            warnings.warn(f"arm64: {node} fails (known: {why})", stacklevel=1)
        elif any(node.startswith(f"{m}::") for m in modules):
            warnings.warn(f"arm64: {node} passed this time (known: {why})", stacklevel=1)
    # Skipped only: what root cannot test (directory permissions), and the third-party
    # footage when shared/data/video is absent.
    allowed = ("root ignores directory permissions", "footage not present", "not present in")
    skipped = [line for line in out.splitlines() if "SKIPPED" in line]
    assert all(any(a in line for a in allowed) for line in skipped), skipped
