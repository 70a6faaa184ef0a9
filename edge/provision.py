"""First boot and provisioning: the box's identity, its uplink key, and the gate on the uplink.

At first boot (``edge provision first-boot``, run as root by edge-firstboot.service)
the box makes, in its configuration directory (``/etc/edge``):

- ``identity.json``: its serial (the Pi's board serial, else random) and the
  SHA-256 of its public key;
- ``tls/device.key`` (EC P-256, root:edge 0640) and ``tls/device.csr``, the
  certificate request the installer hands to the central station;
- ``setup-code``: the one-time code of the technician page (root:edge 0640).

The station signs the request; ``edge provision install --cert --ca --account``
checks that the certificate is for this box's key, signed by the given authority
and valid now, then stores it with the account in ``provisioned.json``.

:func:`check` is the gate: a box that has an identity but is not provisioned
(or whose config does not match what was provisioned) does not start its
uplink. It still records every alarm in its outbox, and says why on the web
page (status section ``provisioning``) and in the journal. A box with no
``identity.json`` (a development machine, the demo, a hand-made install) is
"unmanaged": its uplink runs as configured.
"""

from __future__ import annotations

import contextlib
import grp
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import TypeAdapter, ValidationError

from edge.config import EdgeConfig
from edge.config.schema import Account
from edge.errors import EdgeError

SERIAL_FILES = (
    Path("/sys/firmware/devicetree/base/serial-number"),
    Path("/proc/device-tree/serial-number"),
)
SETUP_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
State = Literal["unmanaged", "unprovisioned", "provisioned"]


class ProvisionError(EdgeError):
    """Provisioning material that cannot be made, read or accepted."""


@dataclass(frozen=True)
class Paths:
    """Where provisioning material lives, under the configuration directory."""

    root: Path

    identity: Path = field(init=False)
    key: Path = field(init=False)
    csr: Path = field(init=False)
    cert: Path = field(init=False)
    ca: Path = field(init=False)
    setup_code: Path = field(init=False)
    provisioned: Path = field(init=False)

    def __post_init__(self) -> None:
        tls = self.root / "tls"
        for name, path in (
            ("identity", self.root / "identity.json"),
            ("key", tls / "device.key"),
            ("csr", tls / "device.csr"),
            ("cert", tls / "device.crt"),
            ("ca", tls / "station-ca.pem"),
            ("setup_code", self.root / "setup-code"),
            ("provisioned", self.root / "provisioned.json"),
        ):
            object.__setattr__(self, name, path)


@dataclass(frozen=True)
class Provisioning:
    """What the gate decided, for the uplink, the journal and the web page."""

    state: State
    problems: tuple[str, ...] = ()
    serial: str | None = None
    directory: Path | None = None

    @property
    def uplink_allowed(self) -> bool:
        return self.state != "unprovisioned"

    def summary(self) -> dict[str, Any]:
        paths = Paths(self.directory) if self.directory is not None else None
        return {
            "state": self.state,
            "uplink_allowed": self.uplink_allowed,
            "problems": list(self.problems),
            "serial": self.serial,
            "csr_file": str(paths.csr) if paths else None,
            "setup_code_file": str(paths.setup_code) if paths else None,
        }


NOT_CHECKED = Provisioning("unmanaged", ("not checked yet",))


def managed_dir(env: dict[str, str] | None = None) -> Path | None:
    """systemd's ``$CONFIGURATION_DIRECTORY`` (``/etc/edge``), or None outside a unit."""
    value = (env if env is not None else os.environ).get("CONFIGURATION_DIRECTORY")
    return Path(value.split(":", 1)[0]) if value else None


# -- first boot ------------------------------------------------------------


def board_serial(files: tuple[Path, ...] = SERIAL_FILES) -> str | None:
    """The Pi's board serial from the device tree, or None on another machine."""
    for path in files:
        with contextlib.suppress(OSError):
            text = path.read_bytes().rstrip(b"\0\n").decode("ascii", "replace").strip().lower()
            if text and text.strip("0"):
                return text[-16:]
    return None


def setup_code() -> str:
    """A one-time code for the technician page: 12 characters, easy to type."""
    raw = "".join(secrets.choice(SETUP_ALPHABET) for _ in range(12))
    return f"{raw[:4]}-{raw[4:8]}-{raw[8:]}"


def first_boot(paths: Paths, group: str | None, serial: str | None = None) -> dict[str, Any]:
    """Make the identity, key, request and setup code, once; return the identity.

    Idempotent: an existing identity is returned as it is and nothing is
    overwritten. Files are written under a private umask, then given to
    ``group`` (the service's) read-only where the service needs them.
    """
    if paths.identity.exists():
        return read_identity(paths)
    gid = _gid(group)
    serial = serial or board_serial() or secrets.token_hex(8)
    device = f"edge-{serial}"
    paths.key.parent.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device)]))
        .sign(key, hashes.SHA256())
    )
    _write(paths.key, key_pem, 0o640, gid)
    _write(paths.csr, csr.public_bytes(serialization.Encoding.PEM), 0o644, None)
    _write(paths.setup_code, (setup_code() + "\n").encode(), 0o640, gid)
    identity = {
        "serial": serial,
        "device": device,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "public_key_sha256": _spki_sha256(key.public_key()),
    }
    # Written last: its presence means the rest is complete.
    _write(paths.identity, (json.dumps(identity, indent=2) + "\n").encode(), 0o644, None)
    return identity


def read_identity(paths: Paths) -> dict[str, Any]:
    return _read_json(paths.identity, "identity")


# -- provisioning by the station ------------------------------------------


def install(
    paths: Paths, cert_pem: bytes, ca_pem: bytes, account: str, now: datetime | None = None
) -> dict[str, Any]:
    """Accept the station's certificate and account for this box; raise what is wrong."""
    identity = read_identity(paths)
    try:
        TypeAdapter(Account).validate_python(account)
    except ValidationError as exc:
        raise ProvisionError(f"account {account!r}: {exc.errors()[0]['msg']}") from exc
    cert = _load_cert(cert_pem, "the certificate")
    try:
        cas = x509.load_pem_x509_certificates(ca_pem)
    except ValueError as exc:
        raise ProvisionError(f"the CA file is not PEM certificates: {exc}") from exc
    if _spki_sha256(cert.public_key()) != identity["public_key_sha256"]:
        raise ProvisionError(
            "the certificate is not for this box's key "
            f"(sign {paths.csr} of serial {identity['serial']}, not another box's request)"
        )
    if not any(_issued_by(cert, ca) for ca in cas):
        raise ProvisionError("the certificate is not signed by the given CA")
    problem = _validity(cert, now or datetime.now(UTC))
    if problem:
        raise ProvisionError(problem)
    gid = paths.key.stat().st_gid
    _write(paths.cert, cert.public_bytes(serialization.Encoding.PEM), 0o644, None)
    _write(paths.ca, ca_pem, 0o644, None)
    record = {
        "account": account,
        "serial": identity["serial"],
        "subject": cert.subject.rfc4514_string(),
        "not_after": cert.not_valid_after_utc.isoformat(),
        "cert_sha256": hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
        "provisioned_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    _write(paths.provisioned, (json.dumps(record, indent=2) + "\n").encode(), 0o640, gid)
    return record


def config_hints(paths: Paths) -> list[str]:
    """The edge.toml lines a provisioned box needs (printed by ``edge provision install``)."""
    return [
        f'uplink.ca_file = "{paths.ca}"',
        f'uplink.cert_file = "{paths.cert}"',
        f'uplink.key_file = "{paths.key}"',
    ]


# -- the gate ---------------------------------------------------------------


def check(directory: Path | None, cfg: EdgeConfig, now: datetime | None = None) -> Provisioning:
    """May the uplink start? Everything that stops it, in words an installer can act on."""
    if directory is None or not (Paths(directory).identity.exists()):
        return Provisioning("unmanaged", directory=directory)
    paths = Paths(directory)
    try:
        identity = read_identity(paths)
    except ProvisionError as exc:
        return Provisioning("unprovisioned", (str(exc),), directory=directory)
    serial = str(identity.get("serial"))
    problems = _problems(paths, identity, cfg, now or datetime.now(UTC))
    state: State = "unprovisioned" if problems else "provisioned"
    return Provisioning(state, tuple(problems), serial, directory)


def _problems(paths: Paths, identity: dict[str, Any], cfg: EdgeConfig, now: datetime) -> list[str]:
    if not paths.provisioned.exists():
        return [
            f"not provisioned: the station's certificate and account are not installed; "
            f"send {paths.csr} (serial {identity.get('serial')}) to the station, then run "
            "edge provision install --cert FILE --ca FILE --account ACCOUNT"
        ]
    try:
        record = _read_json(paths.provisioned, "provisioning record")
    except ProvisionError as exc:
        return [str(exc)]
    problems = []
    if record.get("account") != cfg.station.account:
        problems.append(
            f"station.account is {cfg.station.account!r} in the config but the station "
            f"provisioned account {record.get('account')!r}"
        )
    up = cfg.uplink
    if not up.tls:
        problems.append("uplink.broker must be mqtts:// (TLS) on a provisioned box")
    for key, have, want in (
        ("cert_file", up.cert_file, paths.cert),
        ("key_file", up.key_file, paths.key),
    ):
        if have != want:
            problems.append(f'uplink.{key} must be "{want}" (set by provisioning), not {have}')
    try:
        cert = _load_cert(paths.cert.read_bytes(), str(paths.cert))
    except (OSError, ProvisionError) as exc:
        problems.append(f"{paths.cert}: {exc}")
        return problems
    if _spki_sha256(cert.public_key()) != identity.get("public_key_sha256"):
        problems.append(f"{paths.cert} is not for this box's key ({paths.key})")
    validity = _validity(cert, now)
    if validity:
        problems.append(validity)
    return problems


# -- helpers -----------------------------------------------------------------


def _load_cert(pem: bytes, what: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise ProvisionError(f"{what} is not a PEM certificate: {exc}") from exc


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _validity(cert: x509.Certificate, now: datetime) -> str | None:
    if now < cert.not_valid_before_utc:
        return f"the certificate is valid only from {cert.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
    if now > cert.not_valid_after_utc:
        return f"the certificate expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    return None


def _spki_sha256(public_key: Any) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProvisionError(f"{path}: cannot read the {what}: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ProvisionError(f"{path}: the {what} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ProvisionError(f"{path}: the {what} is not a JSON object")
    return data


def _gid(group: str | None) -> int | None:
    if group is None:
        return None
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise ProvisionError(
            f"group {group!r} does not exist (run image-build/install.sh)"
        ) from exc


def _write(path: Path, data: bytes, mode: int, gid: int | None) -> None:
    """Atomically: a private temporary file, fsynced, given its group and mode, renamed."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
        if gid is not None:
            os.fchown(out.fileno(), -1, gid)
        os.fchmod(out.fileno(), mode)
    tmp.replace(path)
