"""Shared fixtures: a real mosquitto on a free loopback port, configs, processes."""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# fixtures every module may use without importing them: the station stores (make_store)
pytest_plugins = ["tests.stores"]

REPO = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO / "config" / "demo.toml"
DEMO_API_TOKEN = "demo-api-token-for-simulated-boxes-only"  # config/demo.toml [web] api_token
BOX_AUTH = {"Authorization": f"Bearer {DEMO_API_TOKEN}"}  # for a box's web API


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], object], timeout_s: float = 10.0, what: str = "") -> None:
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what or predicate}")


@dataclass
class Broker:
    host: str
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def start_broker(tmp: Path, port: int | None = None) -> Broker:
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        pytest.fail("mosquitto is not installed: run `make test`, which installs it")
    port = port or free_port()
    conf = tmp / f"mosquitto-{port}.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "set_tcp_nodelay true\n"
        "log_dest stderr\nlog_type error\nlog_type warning\n"
    )
    log = tmp / f"mosquitto-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([exe, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    broker = Broker("127.0.0.1", port, proc, log)

    def listening() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"mosquitto exited: {log.read_text()}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        return False

    wait_for(listening, 10, "mosquitto to listen")
    return broker


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = start_broker(tmp_path)
    yield b
    b.stop()


def edge_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge", *args]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Start ``edge`` subprocesses whose output goes to files; stop them all at the end."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, *args: str) -> subprocess.Popen[bytes]:
        out = (tmp_path / f"{name}.log").open("wb")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            edge_cmd(*args), stdout=out, stderr=subprocess.STDOUT, cwd=REPO, env=env
        )
        procs.append(proc)
        return proc

    yield start
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB file system of its own for the box's state folder."""
    where = tmp_path / "state"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m,mode=0755", "tmpfs", str(where)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {done.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    """Write a ballast file until the file system refuses one more byte."""
    ballast = disk / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        for block in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * block)
    finally:
        os.close(fd)
    try:
        with (disk / "probe").open("wb") as f:
            f.write(b"x")
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    else:
        pytest.fail("the ballast did not fill the disk")
    finally:
        (disk / "probe").unlink(missing_ok=True)
    return ballast
