"""The install script, first boot and updates, in a real Debian bookworm root file system.

A minimal bookworm (mmdebstrap, amd64, cached) gets the box installed by
``image-build/install.sh`` exactly as the image recipe and a manual install do
it: the wheels image-build/box.lock pins (x86_64 here), installed offline with
their hashes checked, Debian's numpy, the units, the example config. Then, inside
it (chroot): ``edge --version``, ``edge check-config``, ``systemd-analyze
verify`` on the installed units, the service user's groups and the files'
owners; first boot; and ``edge update`` from signed bundles, to a good version,
to a deliberately broken one (rolled back), with an untrusted signature
(refused), and the boot-time recovery of an interrupted trial.

systemd is not running in the chroot, so the update's trial uses the direct
manager: the updater starts ``edge run`` itself and reads its READY=1 over
NOTIFY_SOCKET, as systemd would. The systemctl path is for the real box.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration import rootfs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(os.geteuid() != 0, reason="chroot and mount namespaces need root"),
    pytest.mark.skipif(shutil.which("mmdebstrap") is None, reason="needs mmdebstrap (make setup)"),
]

INBOX = "/tmp/edge-src"  # where the install inputs are copied inside the root
TRIAL_CONFIG = """\
[device]
id = "trial-box"

[station]
account = "1234"

[uplink]
broker = "mqtt://127.0.0.1:9"

[gpio]
backend = "mock"

[[zones]]
id = "fire"
name = "Fire"
type = "fire"
number = 1

[[inputs]]
name = "in1"
pin = 17
zone = "fire"

[web]
enabled = false
"""


@dataclass
class Root:
    path: Path
    host_dir: Path  # wheels, keys and bundles on the host side

    def run(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return rootfs.in_root(self.path, *argv)

    def ok(self, *argv: str) -> str:
        result = self.run(*argv)
        assert result.returncode == 0, (
            f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
        return result.stdout

    def put(self, source: Path, name: str) -> str:
        """Copy a host file into the root; its path inside."""
        target = self.path / INBOX.lstrip("/") / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
        return f"{INBOX}/{name}"


def _edge_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge", *args]


def _host(*args: str) -> None:
    """``edge ARGS`` on the host (keygen, bundle); fail with its message."""
    result = subprocess.run(_edge_cli(*args), capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"edge {' '.join(args[:2])} failed: {result.stderr}"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Root]:
    work = tmp_path_factory.mktemp("image")
    tarball = rootfs.base_tarball()
    wheels = work / "wheels"
    rootfs.locked_wheels(wheels)
    rootfs.build_wheel(wheels)
    keys = work / "keys"
    keys.mkdir()
    _host(
        "update",
        "keygen",
        "--private",
        str(keys / "signing.pem"),
        "--public",
        str(keys / "vendor.pem"),
    )
    path = work / "root"
    rootfs.extract(tarball, path)
    inbox = path / INBOX.lstrip("/")
    inbox.mkdir(parents=True)
    for part in ("systemd", "config", "image-build"):
        shutil.copytree(rootfs.REPO / part, inbox / part)
    shutil.copytree(wheels, inbox / "wheels")
    shutil.copy2(keys / "vendor.pem", inbox / "vendor.pem")
    yield Root(path, work)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def installed(root: Root) -> Root:
    out = root.ok(
        f"{INBOX}/image-build/install.sh",
        "--wheels",
        f"{INBOX}/wheels",
        "--update-key",
        f"{INBOX}/vendor.pem",
    )
    assert "done: edge-gateway 0.1.0" in out
    return root


def test_install_script_sets_up_a_working_box(installed: Root) -> None:
    r = installed
    assert r.ok("/opt/edge/venv/bin/edge", "--version").strip() == "edge 0.1.0"
    checked = r.ok("/opt/edge/venv/bin/edge", "check-config", "/etc/edge/edge.toml")
    assert "/etc/edge/edge.toml: OK" in checked

    units = [
        f"/etc/systemd/system/{u}"
        for u in ("edge.service", "edge-firstboot.service", "edge-update-recover.service")
    ]
    verify = r.run("systemd-analyze", "verify", *units)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert (verify.stdout + verify.stderr).strip() == ""
    for unit in ("edge.service", "edge-firstboot.service", "edge-update-recover.service"):
        assert (r.path / "etc/systemd/system/multi-user.target.wants" / unit).is_symlink()

    # The service user: a system account in exactly its own group, gpio and video.
    groups = set(r.ok("id", "-nG", "edge").split())
    assert groups == {"edge", "gpio", "video"}
    assert r.ok("getent", "passwd", "edge").strip().endswith(":/var/lib/edge:/usr/sbin/nologin")

    # Config readable by the service's group only; the venv sees the system packages.
    assert r.ok("readlink", "/etc/edge/edge.toml").strip() == "site/edge.toml"
    assert r.ok("stat", "-c", "%U:%G %a", "/etc/edge/site/edge.toml").strip() == "root:edge 660"
    assert r.ok("stat", "-c", "%U:%G %a", "/etc/edge/site").strip() == "root:edge 770"
    assert r.ok("stat", "-c", "%U:%G %a", "/etc/edge").strip() == "root:edge 750"
    cfg = (r.path / "opt/edge/releases/0.1.0/pyvenv.cfg").read_text()
    assert "include-system-site-packages = true" in cfg
    numpy = r.ok("/opt/edge/venv/bin/python", "-c", "import numpy; print(numpy.__file__)")
    assert numpy.startswith("/usr/lib/python3/dist-packages/")  # Debian's, not a wheel
    # psycopg is the station's (extra station), not a box's; the station's CLI says so.
    assert r.run("/opt/edge/venv/bin/python", "-c", "import psycopg").returncode != 0
    pg = r.run("/opt/edge/venv/bin/edge", "station", "events", "--db", "postgresql://st/db")
    assert pg.returncode == 1, pg.stdout + pg.stderr
    assert "needs psycopg, which is not installed" in pg.stderr
    assert "pip install 'edge-gateway[station]'" in pg.stderr
    assert os.readlink(r.path / "opt/edge/venv") == "/opt/edge/releases/0.1.0"
    journald = (r.path / "etc/systemd/journald.conf.d/50-edge.conf").read_text()
    assert "Storage=volatile" in journald


def test_install_script_is_idempotent_and_keeps_the_config(installed: Root) -> None:
    r = installed
    config = r.path / "etc/edge/edge.toml"
    config.write_text(config.read_text() + "\n# changed by the installer\n")
    out = r.ok(f"{INBOX}/image-build/install.sh", "--wheels", f"{INBOX}/wheels")
    assert "keeping the existing /etc/edge/edge.toml" in out
    assert "# changed by the installer" in config.read_text()
    assert r.ok("/opt/edge/venv/bin/edge", "--version").strip() == "edge 0.1.0"
    assert set(r.ok("id", "-nG", "edge").split()) == {"edge", "gpio", "video"}


def test_install_script_refuses_bad_input(installed: Root) -> None:
    r = installed
    missing = r.run(f"{INBOX}/image-build/install.sh", "--wheels", "/nowhere")
    assert missing.returncode != 0
    assert "--wheels /nowhere: no such folder" in missing.stderr
    empty = r.run(
        "/bin/sh",
        "-c",
        f"mkdir -p /tmp/empty && {INBOX}/image-build/install.sh --wheels /tmp/empty",
    )
    assert empty.returncode != 0
    assert "exactly one edge_gateway-*.whl (found 0)" in empty.stderr
    # A dependency wheel that is not the file the lock pins (same name, other bytes).
    forged = r.path / "tmp/forged"
    shutil.copytree(r.path / INBOX.lstrip("/") / "wheels", forged)
    (paho,) = forged.glob("paho_mqtt-*.whl")
    paho.write_bytes(paho.read_bytes() + b"\0")
    refused = r.run(f"{INBOX}/image-build/install.sh", "--wheels", "/tmp/forged")
    assert refused.returncode != 0
    assert "DO NOT MATCH THE HASHES" in refused.stderr
    assert "a wheel missing or not the one" in refused.stdout
    # Nothing was lost: the box still runs the same release.
    assert r.ok("/opt/edge/venv/bin/edge", "--version").strip() == "edge 0.1.0"


def test_first_boot_makes_identity_key_and_blocks_the_uplink(installed: Root) -> None:
    r = installed
    assert "nothing to grow" in r.ok("/opt/edge/libexec/expand-data.sh")
    out = r.ok(
        "/opt/edge/venv/bin/edge",
        "provision",
        "first-boot",
        "--dir",
        "/etc/edge",
        "--group",
        "edge",
    )
    assert "identity made" in out
    assert r.ok("stat", "-c", "%U:%G %a", "/etc/edge/tls/device.key").strip() == "root:edge 640"
    assert r.ok("stat", "-c", "%U:%G %a", "/etc/edge/setup-code").strip() == "root:edge 640"
    csr = (
        r.ok("openssl", "req", "-in", "/etc/edge/tls/device.csr", "-noout", "-subject")
        if (r.path / "usr/bin/openssl").exists()
        else ""
    )
    assert csr == "" or "CN = edge-" in csr
    again = r.ok("/opt/edge/venv/bin/edge", "provision", "first-boot", "--dir", "/etc/edge")
    assert "identity already made" in again

    status = r.run(
        "/opt/edge/venv/bin/edge",
        "provision",
        "status",
        "--dir",
        "/etc/edge",
        "--config",
        "/etc/edge/edge.toml",
    )
    assert status.returncode == 3, status.stdout + status.stderr
    assert '"state": "unprovisioned"' in status.stdout
    assert "not provisioned" in status.stdout

    # The station signs the request; the installer installs its answer; the gate opens.
    cert, ca = _station_signs((r.path / "etc/edge/tls/device.csr").read_bytes())
    (r.host_dir / "box.crt").write_bytes(cert)
    (r.host_dir / "ca.pem").write_bytes(ca)
    installed_cert = r.ok(
        "/opt/edge/venv/bin/edge",
        "provision",
        "install",
        "--dir",
        "/etc/edge",
        "--cert",
        r.put(r.host_dir / "box.crt", "box.crt"),
        "--ca",
        r.put(r.host_dir / "ca.pem", "ca.pem"),
        "--account",
        "4F21",
    )
    assert "provisioned: account 4F21" in installed_cert
    status = r.run(
        "/opt/edge/venv/bin/edge",
        "provision",
        "status",
        "--dir",
        "/etc/edge",
        "--config",
        "/etc/edge/edge.toml",
    )
    assert status.returncode == 0, status.stdout + status.stderr
    assert '"state": "provisioned"' in status.stdout


def _station_signs(csr_pem: bytes) -> tuple[bytes, bytes]:
    """A station CA signing the box's request: (certificate, CA certificate), PEM."""
    from datetime import UTC, datetime, timedelta

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "station CA")])
    now = datetime.now(UTC)
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    csr = x509.load_pem_x509_csr(csr_pem)
    cert = (
        x509.CertificateBuilder()
        .subject_name(csr.subject)
        .issuer_name(name)
        .public_key(csr.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=30))
        .sign(key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    return cert.public_bytes(pem), ca.public_bytes(pem)


def _bundle(r: Root, version: str, *, broken: bool = False, key: str = "signing.pem") -> str:
    wheels = r.host_dir / f"bundle-{version}"
    edge = rootfs.build_wheel(wheels, version, broken)
    deps = [w for w in (r.host_dir / "wheels").glob("*.whl") if not w.name.startswith("edge_")]
    out = r.host_dir / f"edge-{version}.bundle"
    _host(
        "update",
        "bundle",
        "--key",
        str(r.host_dir / "keys" / key),
        "--out",
        str(out),
        str(edge),
        *map(str, deps),
        str(rootfs.BOX_LOCK),
    )
    return r.put(out, out.name)


def _update(r: Root, bundle: str) -> subprocess.CompletedProcess[str]:
    trial = r.path / "tmp/trial.toml"
    trial.write_text(TRIAL_CONFIG)
    return r.run(
        "/opt/edge/venv/bin/edge",
        "update",
        "install",
        bundle,
        "--manager",
        "direct",
        "--config",
        "/tmp/trial.toml",
        "--state-dir",
        "/tmp/trial-state",
        "--timeout-s",
        "90",
        "--settle-s",
        "3",
    )


def test_update_to_a_good_version_then_a_broken_one_rolls_back(installed: Root) -> None:
    r = installed
    releases = r.path / "opt/edge/releases"

    good = _update(r, _bundle(r, "0.1.1"))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "updated to edge-gateway 0.1.1" in good.stdout
    assert r.ok("/opt/edge/venv/bin/edge", "--version").strip() == "edge 0.1.1"
    assert os.readlink(r.path / "opt/edge/previous") == "/opt/edge/releases/0.1.0"
    assert not (r.path / "opt/edge/update-pending").exists()
    # installed in pip's hash-checking mode: the signed lock's pins, and the edge wheel's
    wanted = (releases / "0.1.1" / "requirements.txt").read_text().splitlines()
    assert wanted[-1].startswith("edge-gateway==0.1.1 --hash=sha256:")
    locked = rootfs.BOX_LOCK.read_text().splitlines()
    assert wanted[:-1] == locked  # the signed lock itself, as pinned and hashed

    bad = _update(r, _bundle(r, "0.1.2", broken=True))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "edge-gateway 0.1.2 failed its trial" in bad.stderr
    assert "deliberately broken release" in bad.stderr  # the failed trial's own log
    assert "rolled back to 0.1.1" in bad.stderr
    assert r.ok("/opt/edge/venv/bin/edge", "--version").strip() == "edge 0.1.1"
    assert not (releases / "0.1.2").exists()
    assert not (r.path / "opt/edge/update-pending").exists()
    assert sorted(p.name for p in releases.iterdir()) == ["0.1.0", "0.1.1"]


def test_update_refuses_a_bundle_signed_by_an_unknown_key(installed: Root) -> None:
    r = installed
    before = os.readlink(r.path / "opt/edge/venv")
    keys = r.host_dir / "keys"
    if not (keys / "rogue.pem").exists():
        _host(
            "update",
            "keygen",
            "--private",
            str(keys / "rogue.pem"),
            "--public",
            str(keys / "rogue.pub.pem"),
        )
    result = _update(r, _bundle(r, "0.1.3", key="rogue.pem"))
    assert result.returncode == 1
    assert "does not match any trusted update key" in result.stderr
    assert os.readlink(r.path / "opt/edge/venv") == before
    assert not (r.path / "opt/edge/releases/0.1.3").exists()


def test_boot_recovers_from_an_interrupted_trial(installed: Root) -> None:
    r = installed
    current = os.readlink(r.path / "opt/edge/venv")
    previous = os.readlink(r.path / "opt/edge/previous")
    # What the updater leaves behind when the power goes during a trial.
    (r.path / "opt/edge/update-pending").write_text(
        f"previous={previous}\ncandidate={current}\nstarted=2026-01-01T00:00:00+00:00\n"
    )
    out = r.ok("/opt/edge/libexec/update-recover.sh", "/opt/edge")
    assert "rolled back to" in out
    assert os.readlink(r.path / "opt/edge/venv") == previous
    assert not (r.path / "opt/edge/update-pending").exists()
    assert "no update pending" in r.ok("/opt/edge/libexec/update-recover.sh")
