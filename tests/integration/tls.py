"""Test PKI and a TLS mosquitto run from the production templates in config/mosquitto/.

``make_ca``, ``make_server_cert`` and ``make_client_cert`` call the ``openssl``
CLI the way config/mosquitto/README.md tells installers to (EC P-256 keys, CN =
identity, serverAuth/clientAuth key usages), with a short validity.
``start_tls_broker`` renders config/mosquitto/broker.conf into a temporary file,
replacing only the lines listed in ``TEST_OVERRIDES`` (port, certificate paths,
persistence directory, ACL path, pid file, log destination), and starts
mosquitto with it on a free loopback port.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import re
import secrets
import shutil
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import REPO, free_port, wait_for

TEMPLATE_DIR = REPO / "config" / "mosquitto"
BROKER_TEMPLATE = TEMPLATE_DIR / "broker.conf"
ACL_TEMPLATE = TEMPLATE_DIR / "acl"
HOST = "127.0.0.1"
DAYS = 2

# One openssl configuration for every certificate: the sections are chosen with
# -extensions. No dependency on the system's openssl.cnf.
_OPENSSL_CNF = """\
[req]
distinguished_name = dn
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = {san}
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
"""
_EC_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def _openssl(*args: str) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        pytest.fail("the openssl CLI is not installed")
    done = subprocess.run([exe, *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.fail(f"openssl {' '.join(args)} failed:\n{done.stderr}")


def _cnf(directory: Path, san: str = "DNS:localhost") -> Path:
    path = directory / "openssl.cnf"
    path.write_text(_OPENSSL_CNF.format(san=san))
    return path


@dataclass(frozen=True)
class CertKey:
    """A PEM certificate and its unencrypted PEM key."""

    cn: str
    cert: Path
    key: Path


@dataclass(frozen=True)
class CA:
    cert: Path
    key: Path
    directory: Path


def make_ca(directory: Path, name: str = "Edge Test CA") -> CA:
    """A self-signed CA (EC P-256) in ``directory``/ca.{crt,key}."""
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "ca.crt", directory / "ca.key"
    _openssl(
        "req", "-x509", "-new", *_EC_KEY, "-keyout", str(key), "-out", str(cert),
        "-days", str(DAYS), "-subj", f"/CN={name}",
        "-config", str(_cnf(directory)), "-extensions", "ca",
    )  # fmt: skip
    return CA(cert, key, directory)


def _issue(ca: CA, cn: str, stem: str, section: str, san: str = "DNS:localhost") -> CertKey:
    cert, key = ca.directory / f"{stem}.crt", ca.directory / f"{stem}.key"
    csr = ca.directory / f"{stem}.csr"
    cnf = _cnf(ca.directory, san)
    _openssl(
        "req", "-new", *_EC_KEY, "-keyout", str(key), "-out", str(csr),
        "-subj", f"/CN={cn}", "-config", str(cnf),
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(csr), "-CA", str(ca.cert), "-CAkey", str(ca.key),
        "-set_serial", f"0x{secrets.token_hex(16)}", "-days", str(DAYS), "-out", str(cert),
        "-extfile", str(cnf), "-extensions", section,
    )  # fmt: skip
    csr.unlink()
    return CertKey(cn, cert, key)


def make_server_cert(
    ca: CA,
    cn: str = "localhost",
    ips: tuple[str, ...] = (HOST,),
    dns: tuple[str, ...] = ("localhost",),
) -> CertKey:
    """The broker's certificate, valid for ``ips`` and ``dns`` names (subjectAltName)."""
    san = ", ".join([*(f"IP:{ip}" for ip in ips), *(f"DNS:{name}" for name in dns)])
    return _issue(ca, cn, "server", "server", san)


def make_client_cert(ca: CA, cn: str) -> CertKey:
    """A client certificate whose CN (= MQTT username for the broker) is ``cn``."""
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", cn):
        raise ValueError(f"unsafe CN for a file name: {cn!r}")
    return _issue(ca, cn, f"client-{cn}", "client")


# -- broker ---------------------------------------------------------------------

# The directives of broker.conf that a test run replaces; each must appear
# exactly once, uncommented, in the template (broker.conf's header says so).
TEST_OVERRIDES = (
    "listener",
    "cafile",
    "certfile",
    "keyfile",
    "pid_file",
    "persistence_location",
    "acl_file",
    "log_dest",
)


def template_setting(name: str, template: Path = BROKER_TEMPLATE) -> str:
    """The value of the single uncommented ``name`` line of ``template``."""
    values = [
        line.split(None, 1)[1].strip() if len(line.split(None, 1)) > 1 else ""
        for line in template.read_text().splitlines()
        if line.split(None, 1)[:1] == [name]
    ]
    if len(values) != 1:
        raise ValueError(f"{template}: expected one {name!r} line, found {len(values)}")
    return values[0]


def render_broker_conf(template: str, replacements: dict[str, str]) -> str:
    """``template`` with each directive in ``replacements`` replaced by ``name value``."""
    out: list[str] = []
    seen: dict[str, int] = dict.fromkeys(replacements, 0)
    for line in template.splitlines():
        name = line.split(None, 1)[:1]
        if name and name[0] in replacements:
            seen[name[0]] += 1
            out.append(f"{name[0]} {replacements[name[0]]}")
        else:
            out.append(line)
    wrong = {name: count for name, count in seen.items() if count != 1}
    if wrong:
        raise ValueError(f"broker.conf: these directives must appear exactly once: {wrong}")
    return "\n".join(out) + "\n"


@dataclass
class TlsBroker:
    host: str
    port: int
    directory: Path
    conf: Path
    acl: Path
    log: Path
    persistence_dir: Path
    ca: CA
    server: CertKey
    proc: subprocess.Popen[bytes] = field(repr=False)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_tls_broker(
    directory: Path,
    ca: CA,
    server: CertKey | None = None,
    port: int | None = None,
    acl_text: str | None = None,
    extra_lines: tuple[str, ...] = (),
) -> TlsBroker:
    """Start mosquitto with config/mosquitto/broker.conf and acl on ``HOST``:``port``.

    ``acl_text`` replaces the ACL template's text; ``extra_lines`` are appended
    to the rendered configuration, i.e. to the TLS listener's section.
    """
    exe = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(exe).exists():
        pytest.fail("mosquitto is not installed: run `make test`, which installs it")
    directory.mkdir(parents=True, exist_ok=True)
    server = server or make_server_cert(ca)
    persistence_dir = directory / "persistence"
    persistence_dir.mkdir(exist_ok=True)
    acl = directory / "acl"
    acl.write_text(ACL_TEMPLATE.read_text() if acl_text is None else acl_text)
    # free_port() only finds a port that was free a moment ago: if someone else
    # takes it first, mosquitto cannot bind; try another one.
    for _attempt in range(1 if port else 3):
        broker = _launch(exe, directory, ca, server, port or free_port(), acl, extra_lines)
        if broker is not None:
            return broker
    pytest.fail(f"mosquitto could not bind a free port: {directory}")


def _launch(
    exe: str,
    directory: Path,
    ca: CA,
    server: CertKey,
    port: int,
    acl: Path,
    extra_lines: tuple[str, ...],
) -> TlsBroker | None:
    """mosquitto listening on ``port``; None if the port was taken meanwhile."""
    persistence_dir = directory / "persistence"
    conf = directory / f"mosquitto-{port}.conf"
    overrides = {
        "listener": f"{port} {HOST}",
        "cafile": str(ca.cert),
        "certfile": str(server.cert),
        "keyfile": str(server.key),
        "pid_file": str(directory / "mosquitto.pid"),
        "persistence_location": f"{persistence_dir}/",
        "acl_file": str(acl),
        "log_dest": "stderr",
    }
    assert tuple(overrides) == TEST_OVERRIDES
    rendered = render_broker_conf(BROKER_TEMPLATE.read_text(), overrides)
    # As root, mosquitto would switch to the "mosquitto" user, which cannot read
    # the test's private temporary directory; as anyone else this line is ignored.
    user = pwd.getpwuid(os.geteuid()).pw_name
    conf.write_text(rendered + "\n".join([f"user {user}", *extra_lines]) + "\n")
    log = directory / f"mosquitto-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([exe, "-c", str(conf)], stdout=out, stderr=subprocess.STDOUT)
    broker = TlsBroker(HOST, port, directory, conf, acl, log, persistence_dir, ca, server, proc)

    def up_or_exited() -> bool:
        if proc.poll() is not None:
            return True
        # Only mosquitto's own word proves that *it* listens on the port (a
        # connection could reach whoever took the port); it logs this line once
        # its listeners are bound.
        if not re.search(r"mosquitto version \S+ running", broker.log_text()):
            return False
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.2):
            return True
        return False

    try:
        wait_for(up_or_exited, 10, "mosquitto (TLS) to listen")
    except BaseException:
        broker.stop()
        raise
    if proc.poll() is None:
        return broker
    if "Address already in use" in broker.log_text():
        return None
    pytest.fail(f"mosquitto exited ({proc.returncode}): {broker.log_text()}")
