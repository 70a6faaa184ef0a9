"""First boot, the station's certificate, and the gate on the uplink (edge/provision.py).

Certificates come from a real CA made with the ``cryptography`` package in the
test; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge import provision
from edge.config import parse
from edge.config.schema import EdgeConfig
from edge.provision import Paths, ProvisionError

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


class CA:
    def __init__(self, cn: str = "station CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(_name(cn))
            .issuer_name(_name(cn))
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(NOW - timedelta(days=1))
            .not_valid_after(NOW + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def sign(self, csr_pem: bytes, days: int = 365, start: datetime = NOW) -> bytes:
        csr = x509.load_pem_x509_csr(csr_pem)
        cert = (
            x509.CertificateBuilder()
            .subject_name(csr.subject)
            .issuer_name(self.cert.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start - timedelta(days=1))
            .not_valid_after(start + timedelta(days=days))
            .sign(self.key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)


def _config(
    paths: Paths, account: str = "4F21", broker: str = "mqtts://st.example:8883"
) -> EdgeConfig:
    text = f"""
[device]
id = "box-1"
[station]
account = "{account}"
[uplink]
broker = "{broker}"
ca_file = "{paths.ca}"
cert_file = "{paths.cert}"
key_file = "{paths.key}"
"""
    return parse(text, "test.toml")


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    p = Paths(tmp_path / "etc-edge")
    provision.first_boot(p, None, serial="00000000c0ffee42")
    return p


def test_first_boot_makes_private_material_once(paths: Paths) -> None:
    identity = json.loads(paths.identity.read_text())
    assert identity["serial"] == "00000000c0ffee42"
    assert identity["device"] == "edge-00000000c0ffee42"
    assert stat.S_IMODE(paths.key.stat().st_mode) == 0o640
    assert stat.S_IMODE(paths.setup_code.stat().st_mode) == 0o640
    csr = x509.load_pem_x509_csr(paths.csr.read_bytes())
    assert csr.is_signature_valid
    assert csr.subject.rfc4514_string() == "CN=edge-00000000c0ffee42"
    code = paths.setup_code.read_text().strip()
    assert len(code) == 14 and code.count("-") == 2
    key_before = paths.key.read_bytes()
    assert provision.first_boot(paths, None) == identity  # idempotent
    assert paths.key.read_bytes() == key_before


def test_first_boot_refuses_an_unknown_group(tmp_path: Path) -> None:
    with pytest.raises(ProvisionError, match="group 'no-such-group-x' does not exist"):
        provision.first_boot(Paths(tmp_path), "no-such-group-x")
    assert not Paths(tmp_path).identity.exists()


def test_board_serial_reads_the_device_tree(tmp_path: Path) -> None:
    dt = tmp_path / "serial-number"
    dt.write_bytes(b"10000000abcdef01\0")
    assert provision.board_serial((tmp_path / "missing", dt)) == "10000000abcdef01"
    dt.write_bytes(b"0000000000000000\0")
    assert provision.board_serial((dt,)) is None


def test_unmanaged_box_runs_its_uplink(tmp_path: Path) -> None:
    cfg = _config(Paths(tmp_path))
    assert provision.check(None, cfg).uplink_allowed
    result = provision.check(tmp_path, cfg)  # no identity.json: not set up by first boot
    assert result.state == "unmanaged" and result.uplink_allowed
    assert provision.managed_dir({"CONFIGURATION_DIRECTORY": "/etc/edge"}) == Path("/etc/edge")
    assert provision.managed_dir({}) is None


def test_identity_without_station_certificate_blocks_the_uplink(paths: Paths) -> None:
    result = provision.check(paths.root, _config(paths), NOW)
    assert result.state == "unprovisioned" and not result.uplink_allowed
    assert "not provisioned" in result.problems[0]
    assert str(paths.csr) in result.problems[0]
    summary = result.summary()
    assert summary["serial"] == "00000000c0ffee42"
    assert summary["uplink_allowed"] is False
    assert summary["setup_code_file"] == str(paths.setup_code)


def test_install_then_the_gate_opens(paths: Paths) -> None:
    ca = CA()
    record = provision.install(paths, ca.sign(paths.csr.read_bytes()), ca.pem, "4F21", NOW)
    assert record["account"] == "4F21"
    assert paths.cert.exists() and paths.ca.read_bytes() == ca.pem
    result = provision.check(paths.root, _config(paths), NOW)
    assert result.problems == ()
    assert result.state == "provisioned" and result.uplink_allowed


def test_install_refuses_a_certificate_for_another_key(paths: Paths, tmp_path: Path) -> None:
    other = Paths(tmp_path / "other-box")
    provision.first_boot(other, None, serial="1111")
    ca = CA()
    with pytest.raises(ProvisionError, match="not for this box's key"):
        provision.install(paths, ca.sign(other.csr.read_bytes()), ca.pem, "4F21", NOW)
    assert not paths.provisioned.exists() and not paths.cert.exists()


def test_install_refuses_a_certificate_of_another_ca(paths: Paths) -> None:
    signer, claimed = CA("real"), CA("claimed")
    with pytest.raises(ProvisionError, match="not signed by the given CA"):
        provision.install(paths, signer.sign(paths.csr.read_bytes()), claimed.pem, "4F21", NOW)
    assert not paths.provisioned.exists()


@pytest.mark.parametrize(
    ("cert", "ca", "account", "message"),
    [
        (b"garbage", None, "4F21", "not a PEM certificate"),
        (None, b"garbage", "4F21", "not PEM certificates"),
        (None, None, "4f21", "account '4f21'"),
    ],
)
def test_install_refuses_bad_input(
    paths: Paths, cert: bytes | None, ca: bytes | None, account: str, message: str
) -> None:
    authority = CA()
    cert = cert or authority.sign(paths.csr.read_bytes())
    with pytest.raises(ProvisionError, match=message):
        provision.install(paths, cert, ca or authority.pem, account, NOW)
    assert not paths.provisioned.exists()


def test_expired_certificate_is_refused_and_blocks_the_gate(paths: Paths) -> None:
    ca = CA()
    cert = ca.sign(paths.csr.read_bytes(), days=30)
    with pytest.raises(ProvisionError, match="expired"):
        provision.install(paths, cert, ca.pem, "4F21", NOW + timedelta(days=60))
    provision.install(paths, cert, ca.pem, "4F21", NOW)
    later = provision.check(paths.root, _config(paths), NOW + timedelta(days=60))
    assert not later.uplink_allowed
    assert any("expired" in p for p in later.problems)


def test_gate_names_every_config_mismatch(paths: Paths) -> None:
    ca = CA()
    provision.install(paths, ca.sign(paths.csr.read_bytes()), ca.pem, "4F21", NOW)
    cfg = parse(
        '[device]\nid = "b"\n[station]\naccount = "9999"\n[uplink]\nbroker = "mqtt://h:1883"\n',
        "t.toml",
    )
    problems = provision.check(paths.root, cfg, NOW).problems
    text = "\n".join(problems)
    assert "station.account is '9999'" in text and "'4F21'" in text
    assert "must be mqtts://" in text
    assert f'uplink.cert_file must be "{paths.cert}"' in text
    assert f'uplink.key_file must be "{paths.key}"' in text


def test_a_corrupt_record_blocks_the_gate_with_its_path(paths: Paths) -> None:
    paths.provisioned.write_text("{not json")
    result = provision.check(paths.root, _config(paths), NOW)
    assert not result.uplink_allowed
    assert str(paths.provisioned) in result.problems[0]


def test_written_files_are_not_left_half_written(paths: Paths) -> None:
    leftovers = [p.name for p in paths.root.rglob(".*.tmp")]
    assert leftovers == []
    assert os.access(paths.identity, os.R_OK)
