"""Write the locks of what goes onto a box (``make lock``; asks PyPI).

- ``image-build/box.lock``: edge-gateway's dependencies as pyproject.toml pins
  them, every package resolved to one version, with the SHA-256 of its wheels
  for CPython 3.11 on Linux x86_64 (CI, the root file system test) and aarch64
  (the Pi). ``install.sh``, ``build-image.sh`` and update bundles install or
  ship exactly these files, so an image built next month has the same bytes.
- ``image-build/box-tests.lock``: pytest and hypothesis (pinned in the test
  extra) and what they need, to run the unit tests on a box's own release (the
  arm64 root file system test); packages both locks share have the same pins.

Not locked, on purpose: numpy and setuptools are the system's (Debian bookworm's
python3-numpy, which python3-picamera2 is built against, and the venv's own
setuptools); the resolution holds them at those versions, so a dependency that
needs another numpy fails here, not on a box. psycopg is the station extra.

uv resolves (pip cannot resolve for another platform than its own); each
platform is resolved on its own and both must give the same pins. Only the
hashes of wheels a box or CI can install are kept (not sdists, not other
platforms), and a package without a wheel for either platform is an error.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BOX_LOCK = REPO / "image-build" / "box.lock"
TESTS_LOCK = REPO / "image-build" / "box-tests.lock"
PYTHON = "3.11"
PLATFORMS = {"x86_64": "x86_64-manylinux_2_36", "aarch64": "aarch64-manylinux_2_36"}  # bookworm
SYSTEM = {"numpy": "1.24.2", "setuptools": "66.1.1"}  # bookworm's; never from a lock
RUNNER = ("pytest", "pytest-asyncio", "pytest-timeout", "hypothesis")

BOX_HEADER = f"""\
# What goes onto a box: edge-gateway's dependencies as pyproject.toml pins them,
# with the SHA-256 of their wheels for CPython {PYTHON} on Linux x86_64 and aarch64.
# Written by `make lock` (image-build/lock.py); do not edit by hand.
# Not here, on purpose: numpy and setuptools, the system's (Debian bookworm's
# python3-numpy {SYSTEM["numpy"]}, the venv's setuptools {SYSTEM["setuptools"]});
# psycopg (the station extra).
# Used by image-build/install.sh and build-image.sh, and signed into update bundles:
#   pip install --require-hashes --no-index --find-links WHEELS -r box.lock
"""
TESTS_HEADER = f"""\
# The unit tests' own tools (pytest, hypothesis: the test extra's pins) for a box's
# release, with the SHA-256 of their wheels for CPython {PYTHON} on Linux x86_64 and
# aarch64; packages also in box.lock have the same pins. Written by `make lock`
# (image-build/lock.py); do not edit by hand. Used by tests/integration/test_arm64_rootfs.py.
"""


def main() -> int:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        print("lock: uv not found: make setup installs it (the test extra)", file=sys.stderr)
        return 2
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    runner = [r for r in project["optional-dependencies"]["test"] if _name(r) in RUNNER]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        system = work / "system.txt"
        system.write_text("".join(f"{n}=={v}\n" for n, v in SYSTEM.items()), encoding="utf-8")
        box = _lock(uv, REPO, ["pyproject.toml"], [system])
        BOX_LOCK.write_text(BOX_HEADER + box, encoding="utf-8")
        (work / "box-tests.in").write_text("\n".join(runner) + "\n", encoding="utf-8")
        pins = work / "box.lock"  # its pins only, as constraints: shared packages agree
        pins.write_text("".join(f"{p}\n" for p in _pins(box)), encoding="utf-8")
        tests = _lock(uv, work, ["box-tests.in"], [system, pins])
        TESTS_LOCK.write_text(TESTS_HEADER + tests, encoding="utf-8")
    for path in (BOX_LOCK, TESTS_LOCK):
        print(f"{path.relative_to(REPO)}: {len(_pins(path.read_text()))} packages")
    return 0


def _lock(uv: str, cwd: Path, inputs: list[str], constraints: list[Path]) -> str:
    """The lock text (no header): the same pins on every platform, only their wheels' hashes."""
    texts: dict[str, str] = {}
    wheels: dict[str, dict[str, set[str]]] = {}
    for arch, platform in PLATFORMS.items():
        argv = [uv, "pip", "compile", *inputs, "--quiet", "--no-header", "--python-version", PYTHON]
        argv += ["--python-platform", platform]
        for path in constraints:
            argv += ["--constraint", str(path.relative_to(cwd) if path.parent == cwd else path)]
        for name in SYSTEM:
            argv += ["--no-emit-package", name]
        texts[arch] = _run([*argv, "--generate-hashes"], cwd)
        pylock = tomllib.loads(_run([*argv, "--format", "pylock.toml"], cwd))
        wheels[arch] = {
            _canonical(p["name"]): {w["hashes"]["sha256"] for w in p.get("wheels", [])}
            for p in pylock["packages"]
        }
    if len(set(texts.values())) != 1:
        raise SystemExit(f"lock: x86_64 and aarch64 resolve to different pins:\n{texts}")
    for arch, found in wheels.items():
        missing = sorted(name for name, hashes in found.items() if not hashes)
        if missing:
            raise SystemExit(
                f"lock: no {arch} wheel for {', '.join(missing)}: a box installs wheels"
            )
    allowed = {name: wheels["x86_64"][name] | wheels["aarch64"][name] for name in wheels["x86_64"]}
    return _keep_hashes(texts["x86_64"], allowed)


def _keep_hashes(text: str, allowed: dict[str, set[str]]) -> str:
    """uv's requirements text with only the allowed hashes of each package."""
    out: list[str] = []
    name = ""
    for line in text.replace("\\\n", "\n").splitlines():
        stripped = line.strip()
        if stripped.startswith("--hash=sha256:"):
            if stripped.removeprefix("--hash=sha256:") in allowed[name]:
                out.append(f"    {stripped}")
            continue
        if line and not line.startswith((" ", "#")):
            name = _canonical(line.split("==")[0])
        out.append(line.rstrip())
    # Continuation marks: on a pin and on each hash but the last of its package.
    for i, line in enumerate(out):
        if i + 1 < len(out) and out[i + 1].strip().startswith("--hash="):
            out[i] = f"{line} \\"
    return "\n".join(out) + "\n"


def _pins(text: str) -> list[str]:
    return [line.split()[0] for line in text.splitlines() if line and line[0] not in " #"]


def _name(requirement: str) -> str:
    return _canonical(requirement.split("==")[0].split(";")[0].strip())


def _canonical(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def _run(argv: list[str], cwd: Path) -> str:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"lock: {' '.join(argv[:4])} ... failed:\n{result.stderr}")
    return result.stdout


if __name__ == "__main__":
    sys.exit(main())
