"""Signed update bundles and the trial's verdict (edge/update/bundle.py, trial.py).

Bundles are real tar files signed with real ed25519 keys; the wheels in them
are stand-in files (the verification does not look inside a wheel), locked by a
lock written here in pip's format (as ``make lock`` writes image-build/box.lock,
whose own checks are in tests/unit/test_lock.py). The full
install-try-rollback path on a real root file system is in test_image_rootfs.py.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from edge.update import bundle
from edge.update.bundle import BundleError
from edge.update.trial import Observation, TrialState, judge, run_trial


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    (tmp_path / "trusted").mkdir()
    bundle.keygen(tmp_path / "signing.pem", tmp_path / "trusted" / "vendor.pem")
    return tmp_path


def _wheels(tmp_path: Path, version: str = "1.2.3") -> list[Path]:
    folder = tmp_path / "wheels"
    folder.mkdir(exist_ok=True)
    edge = folder / f"edge_gateway-{version}-py3-none-any.whl"
    edge.write_bytes(b"edge wheel " * 1000)
    dep = folder / "paho_mqtt-2.2.0-py3-none-any.whl"
    dep.write_bytes(b"paho wheel")
    return [edge, dep]


def _lock(tmp_path: Path, pins: dict[str, tuple[str, bytes]]) -> Path:
    """A lock in pip's format: name==version and the SHA-256 of the allowed file(s)."""
    lines = ["# a lock as make lock writes it"]
    for name, (version, data) in pins.items():
        other = hashlib.sha256(b"the same wheel for the other architecture").hexdigest()
        lines += [f"{name}=={version} \\", f"    --hash=sha256:{other} \\"]
        lines += [f"    --hash=sha256:{hashlib.sha256(data).hexdigest()}", "    # via edge-gateway"]
    path = tmp_path / "box.lock"
    path.write_text("\n".join(lines) + "\n")
    return path


PAHO = {"paho-mqtt": ("2.2.0", b"paho wheel")}


def _build(tmp_path: Path, keys: Path) -> Path:
    out = tmp_path / "edge.bundle"
    bundle.build([*_wheels(tmp_path), _lock(tmp_path, PAHO)], keys / "signing.pem", out)
    return out


def _rewrite(src: Path, dst: Path, change: dict[str, bytes | None]) -> None:
    """Copy a bundle, replacing (bytes) or dropping (None) members, adding new ones."""
    with tarfile.open(src) as old, tarfile.open(dst, "w") as new:
        for member in old.getmembers():
            data = old.extractfile(member).read()  # type: ignore[union-attr]
            if member.name in change:
                data = change.pop(member.name)  # type: ignore[assignment]
                if data is None:
                    continue
            member.size = len(data)
            new.addfile(member, io.BytesIO(data))
        for name, data in change.items():
            info = tarfile.TarInfo(name)
            info.size = len(data or b"")
            new.addfile(info, io.BytesIO(data or b""))


def test_a_signed_bundle_verifies_and_extracts(tmp_path: Path, keys: Path) -> None:
    path = _build(tmp_path, keys)
    manifest = bundle.open_bundle(path, bundle.trusted_keys(keys / "trusted"), tmp_path / "out")
    assert manifest.version == "1.2.3"
    got = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert got == [
        "box.lock",
        "edge_gateway-1.2.3-py3-none-any.whl",
        "paho_mqtt-2.2.0-py3-none-any.whl",
    ]
    assert (tmp_path / "out" / got[1]).read_bytes() == b"edge wheel " * 1000
    assert (tmp_path / "out" / "box.lock").read_text() == (tmp_path / "box.lock").read_text()
    assert manifest.lock == (tmp_path / "box.lock").read_text()


@pytest.mark.parametrize(
    ("pins", "message"),
    [
        ({"paho-mqtt": ("2.2.0", b"another paho wheel")}, "not the file the lock pins"),
        ({"paho-mqtt": ("2.1.0", b"paho wheel")}, r"not the file the lock pins \(paho-mqtt==2.1.0"),
        ({"pydantic": ("2.14.3", b"x")}, "paho-mqtt is not in the lock"),
        ({**PAHO, "av": ("18.1.0", b"x")}, "without a wheel in the bundle: av==18.1.0"),
    ],
)
def test_a_bundle_holds_exactly_the_locked_wheels(
    tmp_path: Path, keys: Path, pins: dict[str, tuple[str, bytes]], message: str
) -> None:
    with pytest.raises(BundleError, match=message):
        bundle.build(
            [*_wheels(tmp_path), _lock(tmp_path, pins)], keys / "signing.pem", tmp_path / "b"
        )
    assert not (tmp_path / "b").exists()


def test_a_bundle_needs_its_lock_and_a_lock_is_pinned_and_hashed(
    tmp_path: Path, keys: Path
) -> None:
    with pytest.raises(BundleError, match="needs the lock its wheels were downloaded with"):
        bundle.build(_wheels(tmp_path), keys / "signing.pem", tmp_path / "b")
    loose = tmp_path / "loose.lock"
    loose.write_text("paho-mqtt>=2 --hash=sha256:" + "0" * 64 + "\n")
    with pytest.raises(BundleError, match="'paho-mqtt>=2' is not pinned with == and hashed"):
        bundle.build([*_wheels(tmp_path), loose], keys / "signing.pem", tmp_path / "b")
    loose.write_text("paho-mqtt==2.2.0\n")
    with pytest.raises(BundleError, match="not pinned with == and hashed"):
        bundle.build([*_wheels(tmp_path), loose], keys / "signing.pem", tmp_path / "b")


def test_an_unknown_key_is_refused(tmp_path: Path, keys: Path) -> None:
    path = _build(tmp_path, keys)
    (tmp_path / "rogue").mkdir()
    bundle.keygen(tmp_path / "rogue.pem", tmp_path / "rogue" / "rogue.pem")
    with pytest.raises(BundleError, match="does not match any trusted update key"):
        bundle.open_bundle(path, bundle.trusted_keys(tmp_path / "rogue"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"wheels/paho_mqtt-2.2.0-py3-none-any.whl": b"paho whee!"}, "SHA-256 does not match"),
        ({"wheels/paho_mqtt-2.2.0-py3-none-any.whl": b"longer payload"}, "the manifest says"),
        ({"wheels/evil.whl": b"x"}, "members not in the manifest"),
        ({"wheels/paho_mqtt-2.2.0-py3-none-any.whl": None}, "not a file in the bundle"),
        ({"manifest.sig": None}, "no manifest.sig"),
        ({"manifest.sig": b"\0" * 64}, "does not match any trusted update key"),
    ],
)
def test_a_tampered_bundle_is_refused(
    tmp_path: Path, keys: Path, change: dict[str, bytes | None], message: str
) -> None:
    good = _build(tmp_path, keys)
    bad = tmp_path / "bad.bundle"
    _rewrite(good, bad, dict(change))
    with pytest.raises(BundleError, match=message):
        bundle.open_bundle(bad, bundle.trusted_keys(keys / "trusted"), tmp_path / "out")


def test_a_manifest_with_a_path_escape_is_refused_even_when_signed(
    tmp_path: Path, keys: Path
) -> None:
    """A signing key is not a licence to write outside the extraction folder."""
    key = serialization.load_pem_private_key((keys / "signing.pem").read_bytes(), None)
    manifest = json.dumps(
        {
            "format": 1,
            "package": "edge-gateway",
            "version": "1.2.3",
            "files": {"wheels/../../etc/x.whl": {"sha256": "0", "size": 1}},
            "lock": "",
        }
    ).encode()
    path = tmp_path / "escape.bundle"
    with tarfile.open(path, "w") as tar:
        for name, data in (("manifest.json", manifest), ("manifest.sig", key.sign(manifest))):  # type: ignore[union-attr, call-arg]
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(BundleError, match="unsafe or unexpected member name"):
        bundle.open_bundle(path, bundle.trusted_keys(keys / "trusted"), tmp_path / "out")


@pytest.mark.parametrize(
    ("lock", "message"),
    [
        (None, "no lock"),
        ("paho-mqtt==2.2.0 --hash=sha256:" + "0" * 64, "not the file the lock pins"),
    ],
)
def test_a_box_refuses_a_signed_bundle_its_lock_does_not_cover(
    tmp_path: Path, keys: Path, lock: str | None, message: str
) -> None:
    """Signed by a trusted key, but without a lock or with a wheel the lock does not pin."""
    key = serialization.load_pem_private_key((keys / "signing.pem").read_bytes(), None)
    members = {f"wheels/{w.name}": w.read_bytes() for w in _wheels(tmp_path)}
    files = {
        name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        for name, data in members.items()
    }
    body = {"format": 1, "package": "edge-gateway", "version": "1.2.3", "files": files}
    if lock is not None:
        body["lock"] = lock
    manifest = json.dumps(body).encode()
    members = {"manifest.json": manifest, "manifest.sig": key.sign(manifest), **members}  # type: ignore[union-attr, call-arg]
    path = tmp_path / "unlocked.bundle"
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(BundleError, match=message):
        bundle.open_bundle(path, bundle.trusted_keys(keys / "trusted"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_bad_inputs_are_named(tmp_path: Path, keys: Path) -> None:
    (tmp_path / "not-a-tar").write_bytes(b"hello")
    with pytest.raises(BundleError, match="not a bundle"):
        bundle.open_bundle(tmp_path / "not-a-tar", bundle.trusted_keys(keys / "trusted"), tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="no trusted update key"):
        bundle.trusted_keys(tmp_path / "empty")
    with pytest.raises(BundleError, match="exactly one edge_gateway"):
        lock = _lock(tmp_path, PAHO)
        bundle.build([*_wheels(tmp_path)[1:], lock], keys / "signing.pem", tmp_path / "b")
    with pytest.raises(BundleError, match="not overwriting a signing key"):
        bundle.keygen(keys / "signing.pem", tmp_path / "x.pem")


# -- the trial's verdict -------------------------------------------------------

TIMEOUT, SETTLE = 60.0, 10.0


def _steps(observations: list[tuple[float, Observation]], old_pid: int | None = 100) -> TrialState:
    state = TrialState(0.0, old_pid)
    for now, obs in observations:
        state = judge(state, obs, now, TIMEOUT, SETTLE)
    return state


def up(pid: int) -> Observation:
    return Observation(True, False, pid, "active/running")


def test_healthy_after_staying_up_for_the_settle_time() -> None:
    state = _steps([(1, up(100)), (2, up(200)), (8, up(200)), (12, up(200))])
    assert state.verdict == "healthy"
    assert _steps([(2, up(200)), (11, up(200))]).verdict == "waiting"


def test_the_old_process_still_running_is_not_the_new_release() -> None:
    assert _steps([(1, up(100)), (30, up(100))]).verdict == "waiting"
    state = _steps([(1, up(100)), (61, up(100))])
    assert state.verdict == "failed" and "never reported ready" in state.reason


def test_a_restart_after_ready_fails_the_trial() -> None:
    state = _steps([(2, up(200)), (5, up(300))])
    assert state.verdict == "failed" and "restarted" in state.reason
    stopped = _steps([(2, up(200)), (5, Observation(False, False, None, "activating"))])
    assert stopped.verdict == "failed" and "stopped" in stopped.reason


def test_a_failed_unit_fails_at_once() -> None:
    state = _steps([(1, Observation(False, True, None, "failed/failed, result exit-code"))])
    assert state.verdict == "failed" and "exit-code" in state.reason


def test_run_trial_drives_a_manager_until_a_verdict() -> None:
    class Scripted:
        def __init__(self) -> None:
            self.restarts = 0
            self.seen = [Observation(False, False, None, "activating"), up(7), up(7), up(7)]

        def main_pid(self) -> int | None:
            return 5

        def restart(self) -> None:
            self.restarts += 1

        def observe(self) -> Observation:
            return self.seen.pop(0) if len(self.seen) > 1 else self.seen[0]

        def stop(self) -> None:
            pass

    clock = iter(float(s) for s in range(0, 100, 5))
    manager = Scripted()
    state = run_trial(
        manager, TIMEOUT, SETTLE, monotonic=lambda: next(clock), sleep=lambda _s: None
    )
    assert manager.restarts == 1
    assert state.verdict == "healthy"
