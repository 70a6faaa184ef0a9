"""A broker behind a network path that can be cut as a pulled cable is, and mended.

The broker runs in a network namespace of its own, reached through a veth pair:
taking the pair's host end down cuts the path (no reset: the box's TCP
connection just stops being answered). Needs root and iproute2; without them
:func:`cut_path` raises :class:`Unavailable`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


class Unavailable(RuntimeError):
    """No network namespaces here (not root, or no iproute2)."""


@dataclass
class CutPath:
    namespace: str
    host_end: str
    address: str  # the broker's, inside the namespace
    port: int
    proc: subprocess.Popen[bytes]

    def cut(self) -> None:
        _ip("link", "set", self.host_end, "down")

    def mend(self) -> None:
        _ip("link", "set", self.host_end, "up")

    @property
    def url(self) -> str:
        return f"mqtt://{self.address}:{self.port}"

    def reachable(self) -> bool:
        with (
            contextlib.suppress(OSError),
            socket.create_connection((self.address, self.port), 1),
        ):
            return True
        return False


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@contextlib.contextmanager
def cut_path(folder: Path, broker_conf: str = "") -> Iterator[CutPath]:
    """A mosquitto (with ``broker_conf`` lines added) in a namespace of its own."""
    tag = uuid.uuid4().hex[:6]
    namespace, host_end, inner = f"edge-{tag}", f"vh{tag}", f"vb{tag}"
    net = f"10.{int(tag[:2], 16) % 200 + 20}.{int(tag[2:4], 16)}"
    try:
        _ip("netns", "add", namespace)
    except (subprocess.CalledProcessError, FileNotFoundError) as exc:
        raise Unavailable(f"no network namespaces here (needs root and iproute2): {exc}") from exc
    proc = None
    try:
        _ip("link", "add", host_end, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", namespace)
        _ip("addr", "add", f"{net}.1/30", "dev", host_end)
        _ip("link", "set", host_end, "up")
        for args in (
            ("addr", "add", f"{net}.2/30", "dev", inner),
            ("link", "set", inner, "up"),
            ("link", "set", "lo", "up"),
        ):
            _ip("netns", "exec", namespace, "ip", *args)
        port = 1883
        conf = folder / f"primary-{tag}.conf"
        conf.write_text(
            f"listener {port} {net}.2\nallow_anonymous true\npersistence false\n"
            f"{'user root' if os.geteuid() == 0 else ''}\n{broker_conf}\n"
        )
        exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        log = (folder / f"primary-broker-{tag}.log").open("wb")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", namespace, exe, "-c", str(conf)], stdout=log, stderr=log
        )
        path = CutPath(namespace, host_end, f"{net}.2", port, proc)
        deadline = time.monotonic() + 10
        while not path.reachable():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError("the primary broker in its namespace did not start")
            time.sleep(0.05)
        yield path
    finally:
        if proc is not None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)
        subprocess.run(["ip", "link", "del", host_end], check=False, capture_output=True)
        subprocess.run(["ip", "netns", "del", namespace], check=False, capture_output=True)
