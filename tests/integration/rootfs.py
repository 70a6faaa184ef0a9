"""A Debian bookworm root file system to install the box into, and wheels to install.

- :func:`base_tarball`: ``mmdebstrap --mode=unshare --variant=minbase`` (amd64,
  or arm64 under emulation; only what install.sh needs, and any test tools),
  cached under ``$EDGE_IMAGE_CACHE`` or ``~/.cache/edge-image/`` so repeated
  runs skip it (amd64 about 40 s cold; arm64 about 5 min with ffmpeg).
- :func:`emulation`: qemu-user registered with binfmt_misc (fix-binary flag, so
  the interpreter also works inside the chroot), for a foreign architecture.
- :func:`locked_wheels`: the wheels a lock (``image-build/box.lock``) pins, for
  CPython 3.11 on Linux x86_64 or aarch64, downloaded with pip's hash checking
  (cached by the lock's bytes).
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
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BOX_LOCK = REPO / "image-build" / "box.lock"
TESTS_LOCK = REPO / "image-build" / "box-tests.lock"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
# What install.sh needs that minbase lacks; the rest (venv, user, units) it does itself.
INCLUDE = ("python3", "python3-venv", "python3-numpy", "systemd", "passwd")
MACHINE = {"amd64": "x86_64", "arm64": "aarch64"}  # Debian's architecture: the kernel's name
BINFMT = Path("/proc/sys/fs/binfmt_misc")
GLIBC_MINOR = 36  # bookworm's glibc 2.36: the manylinux wheels a box can install


def cache_dir() -> Path:
    base = os.environ.get("EDGE_IMAGE_CACHE") or str(Path.home() / ".cache" / "edge-image")
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def base_tarball(arch: str = "amd64", tools: tuple[str, ...] = ()) -> Path:
    """The cached bookworm tarball of ``arch`` with INCLUDE and ``tools``, made on first use.

    A foreign ``arch`` runs its maintainer scripts under qemu-user: call
    :func:`emulation` first.
    """
    include = (*INCLUDE, *tools)
    key = hashlib.sha256(" ".join((SUITE, MIRROR, *include)).encode()).hexdigest()[:12]
    tarball = cache_dir() / f"{SUITE}-{arch}-minbase-{key}.tar"
    if tarball.exists():
        return tarball
    tmp = tarball.with_suffix(".tmp.tar")
    argv = [
        "mmdebstrap",
        "--mode=unshare",
        "--variant=minbase",
        f"--architectures={arch}",
        f"--include={','.join(include)}",
        SUITE,
        str(tmp),
        MIRROR,
    ]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=2400, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"mmdebstrap failed:\n{result.stderr[-3000:]}")
    tmp.replace(tarball)
    return tarball


def emulation(arch: str) -> str | None:
    """Let ``arch`` programs run here through qemu-user; None when they do, else why not.

    Idempotent: mounts binfmt_misc if needed and registers qemu-user-static's own
    entry (``/usr/lib/binfmt.d/qemu-<machine>.conf``, flags OPF) unless one is there.
    The F flag opens the interpreter once, at registration, so it also works inside a
    chroot that has no qemu of its own. Needs root.
    """
    machine = MACHINE[arch]
    if os.uname().machine == machine:
        return None
    entry = BINFMT / f"qemu-{machine}"
    conf = Path(f"/usr/lib/binfmt.d/qemu-{machine}.conf")
    if not (BINFMT / "register").exists():
        mount = ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)]
        done = subprocess.run(mount, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            return f"cannot mount binfmt_misc on {BINFMT}: {done.stderr.strip()}"
    if not entry.exists():
        if not conf.is_file():
            return f"no {conf}: install qemu-user-static (make setup)"
        try:
            (BINFMT / "register").write_text(conf.read_text(encoding="ascii").strip())
        except OSError as exc:  # another process may have registered it meanwhile
            if not entry.exists():
                return f"cannot register {conf} with binfmt_misc: {exc}"
    lines = entry.read_text(encoding="ascii").splitlines()
    flags = next((line.split()[1] for line in lines if line.startswith("flags:")), "")
    if lines[0] != "enabled" or "F" not in flags:
        return f"{entry} is {lines[0]} with flags {flags!r}: needs enabled and F (fix binary)"
    if shutil.which("arch-test") is None:
        return "no arch-test: mmdebstrap needs it for a foreign architecture (make setup)"
    check = subprocess.run(["arch-test", arch], capture_output=True, text=True, check=False)
    if check.stdout.strip() != f"{arch}: ok":
        return f"{arch} programs do not run here: arch-test says {check.stdout.strip()!r}"
    return None


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


def locked_wheels(dest: Path, lock: Path = BOX_LOCK, machine: str = "x86_64") -> list[Path]:
    """The wheels ``lock`` pins for CPython 3.11 on a bookworm ``machine``, copied to ``dest``.

    Downloaded as pip does it for a box's image (``--require-hashes``: only the
    files the lock names) on a miss, and cached by the lock's bytes.
    """
    key = hashlib.sha256(lock.read_bytes() + machine.encode()).hexdigest()[:12]
    cached = cache_dir() / f"wheels-{machine}-{key}"
    if not cached.is_dir():
        tmp = cache_dir() / f"wheels-{machine}-{key}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        # pip does not widen a manylinux_2_Y tag to older ones: name each, best first.
        platforms = [f"manylinux_2_{y}_{machine}" for y in range(GLIBC_MINOR, 16, -1)]
        argv = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(tmp)]
        argv += ["--require-hashes", "--only-binary=:all:", "--implementation", "cp"]
        argv += ["--python-version", "3.11", "-r", str(lock)]
        for platform in (*platforms, f"manylinux2014_{machine}"):
            argv += ["--platform", platform]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=900, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pip download of {lock.name} ({machine}) failed:\n{done.stderr}")
        tmp.replace(cached)
    dest.mkdir(parents=True, exist_ok=True)
    for wheel in cached.glob("*.whl"):
        shutil.copy2(wheel, dest / wheel.name)
    return sorted(dest.glob("*.whl"))
