"""A Debian bookworm root file system to install the box into, and wheels to install.

- :func:`base_tarball`: ``mmdebstrap --mode=unshare --variant=minbase`` (amd64,
  only what install.sh needs), cached under ``$EDGE_IMAGE_CACHE`` or
  ``~/.cache/edge-image/`` so repeated runs skip the download (about 40 s cold).
- :func:`build_wheel`: the edge-gateway wheel, built from a copy of the source
  tree (the shared working tree stays clean), optionally with another version
  and a deliberately broken ``edge run``.
- :func:`in_root`: a command inside the root file system, in its own mount and
  PID namespaces (proc and /dev mounted there only, gone when it ends).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What install.sh needs that minbase lacks; the rest (venv, user, units) it does itself.
INCLUDE = ("python3", "python3-venv", "systemd", "passwd")


def cache_dir() -> Path:
    base = os.environ.get("EDGE_IMAGE_CACHE") or str(Path.home() / ".cache" / "edge-image")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def base_tarball() -> Path:
    """The cached bookworm tarball, made with mmdebstrap on first use."""
    key = hashlib.sha256(" ".join((SUITE, MIRROR, *INCLUDE)).encode()).hexdigest()[:12]
    tarball = cache_dir() / f"{SUITE}-amd64-minbase-{key}.tar"
    if tarball.exists():
        return tarball
    tmp = tarball.with_suffix(".tmp.tar")
    argv = [
        "mmdebstrap",
        "--mode=unshare",
        "--variant=minbase",
        "--architectures=amd64",
        f"--include={','.join(INCLUDE)}",
        SUITE,
        str(tmp),
        MIRROR,
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"mmdebstrap failed:\n{result.stderr[-3000:]}")
    tmp.replace(tarball)
    return tarball


def extract(tarball: Path, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-xf", str(tarball), "-C", str(root)], check=True, timeout=300)


def in_root(root: Path, *argv: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` chrooted into ``root`` (as root), with /proc and /dev there."""
    script = 'mount --rbind /dev "$0/dev" && exec chroot "$0" "$@"'
    cmd = ["unshare", "--mount", "--pid", "--fork", f"--mount-proc={root}/proc"]
    cmd += ["/bin/sh", "-c", script, str(root), *argv]
    env = {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
        # systemd tools log to the journal or kmsg when not on a TTY: keep them on stderr.
        "SYSTEMD_LOG_TARGET": "console",
        "SYSTEMD_LOG_COLOR": "0",
    }
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )


def _source_copy(dest: Path, version: str | None, broken: bool) -> Path:
    src = dest / "src"
    shutil.copytree(REPO / "edge", src / "edge", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "README.md", src / "README.md")
    pyproject = (REPO / "pyproject.toml").read_text(encoding="utf-8")
    if version is not None:
        lines = pyproject.splitlines(keepends=True)
        index = next(i for i, line in enumerate(lines) if line.startswith("version = "))
        lines[index] = f'version = "{version}"\n'
        pyproject = "".join(lines)
    (src / "pyproject.toml").write_text(pyproject, encoding="utf-8")
    if broken:
        app = src / "edge" / "app.py"
        app.write_text(
            app.read_text(encoding="utf-8")
            + '\nraise RuntimeError("deliberately broken release (update rollback test)")\n',
            encoding="utf-8",
        )
    return src


def build_wheel(dest: Path, version: str | None = None, broken: bool = False) -> Path:
    """The edge-gateway wheel of a copy of the source tree; its path in ``dest``."""
    work = dest / f"build-{version or 'head'}{'-broken' if broken else ''}"
    src = _source_copy(work, version, broken)
    out = work / "dist"
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(out)]
    subprocess.run([*pip, str(src)], check=True, timeout=600, capture_output=True)
    (wheel,) = out.glob("edge_gateway-*.whl")
    target = dest / wheel.name
    shutil.copy2(wheel, target)
    return target


def dependency_wheels(dest: Path) -> list[Path]:
    """Wheels of every runtime dependency, cached by the pinned list (PyPI on a miss)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    key = hashlib.sha256("\n".join(sorted(project["dependencies"])).encode()).hexdigest()[:12]
    cached = cache_dir() / f"wheels-{key}"
    if not cached.is_dir():
        tmp = cache_dir() / f"wheels-{key}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        src = _source_copy(tmp / "build", None, False)
        pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(tmp / "w")]
        subprocess.run([*pip, str(src)], check=True, timeout=900, capture_output=True)
        for wheel in (tmp / "w").glob("edge_gateway-*.whl"):
            wheel.unlink()  # only the dependencies: each test brings its own edge wheel
        (tmp / "w").replace(cached)
        shutil.rmtree(tmp, ignore_errors=True)
    dest.mkdir(parents=True, exist_ok=True)
    for wheel in cached.glob("*.whl"):
        shutil.copy2(wheel, dest / wheel.name)
    return sorted(dest.glob("*.whl"))
