"""Releases side by side under /opt/edge, switched by one atomic symlink.

Layout (made by image-build/install.sh, kept by ``edge update``)::

    /opt/edge/releases/<version>/   one venv per installed version
    /opt/edge/venv -> releases/X    what edge.service runs (ExecStart=/opt/edge/venv/bin/edge)
    /opt/edge/previous -> releases/W  the release before, kept for rollback
    /opt/edge/update-pending        present only during a trial (read by update-recover.sh)
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from edge.errors import EdgeError
from edge.update.bundle import LOCK

SYSTEM_PYTHON = Path("/usr/bin/python3")
PIP_TIMEOUT_S = 900


class ReleaseError(EdgeError):
    """A release that cannot be created, found or switched to."""


@dataclass(frozen=True)
class Layout:
    prefix: Path

    @property
    def releases(self) -> Path:
        return self.prefix / "releases"

    @property
    def current_link(self) -> Path:
        return self.prefix / "venv"

    @property
    def previous_link(self) -> Path:
        return self.prefix / "previous"

    @property
    def pending(self) -> Path:
        return self.prefix / "update-pending"

    def release(self, version: str) -> Path:
        return self.releases / version

    def current(self) -> Path | None:
        return _target(self.current_link)

    def previous(self) -> Path | None:
        return _target(self.previous_link)


def _target(link: Path) -> Path | None:
    if not link.is_symlink():
        return None
    target = link.readlink()
    return target if target.is_absolute() else (link.parent / target)


def create(layout: Layout, version: str, wheels: Path, python: Path = SYSTEM_PYTHON) -> Path:
    """A new venv for ``version`` with the wheels installed offline; its path.

    The venv sees the system's site-packages (picamera2 and libcamera come from
    the Pi archive), and numpy is held at the system's version when there is one.
    """
    release = layout.release(version)
    if release in (layout.current(), layout.previous()):
        raise ReleaseError(f"version {version} is the current or previous release already")
    if release.exists():
        shutil.rmtree(release)  # a leftover of a failed or rolled back attempt
    layout.releases.mkdir(parents=True, exist_ok=True)
    try:
        _run([str(python), "-m", "venv", "--system-site-packages", str(release)], "venv")
        constraints = release / "constraints.txt"
        constraints.write_text(_system_numpy(python), encoding="utf-8")
        pip = [str(release / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-index"]
        pip += ["--no-cache-dir", "--disable-pip-version-check", "--find-links", str(wheels)]
        pip += ["--constraint", str(constraints)]
        lock = wheels / LOCK
        if lock.is_file():  # as install.sh: in hash-checking mode pip installs nothing else
            requirements = release / "requirements.txt"
            requirements.write_text(_hashed(lock, wheels, version), encoding="utf-8")
            _run([*pip, "--require-hashes", "-r", str(requirements)], "pip install")
        else:  # a bundle made before the lock: its wheels were checked by their manifest
            _run([*pip, f"edge-gateway=={version}"], "pip install")
        _run([str(release / "bin" / "python"), "-m", "compileall", "-q", str(release / "lib")], "")
        said = _run([str(release / "bin" / "edge"), "--version"], "edge --version").strip()
        if said != f"edge {version}":
            raise ReleaseError(f"the new release says {said!r}, expected 'edge {version}'")
    except ReleaseError:
        shutil.rmtree(release, ignore_errors=True)
        raise
    return release


def _hashed(lock: Path, wheels: Path, version: str) -> str:
    """The lock's pins and hashes, and the edge wheel's own (the lock leaves it out)."""
    found = sorted(wheels.glob(f"edge_gateway-{version}-*.whl"))
    if len(found) != 1:
        raise ReleaseError(f"{wheels}: expected one edge_gateway-{version} wheel, found {found}")
    digest = hashlib.sha256(found[0].read_bytes()).hexdigest()
    text = lock.read_text(encoding="utf-8").rstrip("\n")
    return f"{text}\nedge-gateway=={version} --hash=sha256:{digest}\n"


def switch(layout: Layout, release: Path) -> None:
    """Point /opt/edge/venv at ``release``, atomically (rename over the old link)."""
    _relink(layout.current_link, release)


def set_previous(layout: Layout, release: Path) -> None:
    _relink(layout.previous_link, release)


def write_pending(layout: Layout, previous: Path, candidate: Path) -> None:
    """Mark a trial in progress: update-recover.sh rolls back if it is still there at boot."""
    at = datetime.now(UTC).isoformat(timespec="seconds")
    text = f"previous={previous}\ncandidate={candidate}\nstarted={at}\n"
    tmp = layout.pending.with_name(".update-pending.tmp")
    with tmp.open("w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(layout.pending)


def clear_pending(layout: Layout) -> None:
    layout.pending.unlink(missing_ok=True)


def prune(layout: Layout) -> list[Path]:
    """Delete every release but the current and the previous one; what was deleted."""
    keep = {layout.current(), layout.previous()}
    removed = []
    for release in sorted(layout.releases.iterdir()):
        if release.is_dir() and release not in keep:
            shutil.rmtree(release)
            removed.append(release)
    return removed


def _relink(link: Path, target: Path) -> None:
    tmp = link.with_name(f".{link.name}.new")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(link)


def _system_numpy(python: Path) -> str:
    """``numpy==X`` when the system interpreter has numpy (picamera2 is built against it)."""
    result = subprocess.run(
        [str(python), "-c", "import numpy; print(numpy.__version__)"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    return f"numpy=={result.stdout.strip()}\n" if result.returncode == 0 else ""


def _run(argv: list[str], what: str) -> str:
    try:
        result = subprocess.run(
            argv, capture_output=True, text=True, check=False, timeout=PIP_TIMEOUT_S
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ReleaseError(f"{what or argv[0]}: {exc}") from exc
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise ReleaseError(f"{what or argv[0]} failed ({result.returncode}): " + " | ".join(tail))
    return result.stdout
