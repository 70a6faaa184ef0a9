"""Signed update bundles: a tar of wheels with an ed25519-signed manifest.

A bundle is an uncompressed tar (the wheels are compressed already) holding

- ``manifest.json``: format, package, version, for every other member its
  SHA-256 and size, and ``lock``: the text of the lock the dependency wheels
  were downloaded with (``image-build/box.lock``: pins and SHA-256 per wheel);
- ``manifest.sig``: the raw 64-byte ed25519 signature of ``manifest.json``'s bytes;
- ``wheels/*.whl``: the edge-gateway wheel of that version and its dependencies,
  built for the box (aarch64 on a Pi), so the box installs offline.

Verification trusts nothing in the tar before the signature checks out against
one of the public keys in ``/etc/edge/update-keys/*.pem``; then every member
must be listed, a plain file under ``wheels/`` with a safe name, and hash to
what the manifest says. Every dependency wheel must then be one the signed lock
names (same package, version and SHA-256), and every package of the lock must
have its wheel in the bundle; the lock is written beside the wheels as
``box.lock``. Anything else refuses the whole bundle.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edge.errors import EdgeError

MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
FORMAT = 1
PACKAGE = "edge-gateway"
WHEEL_PREFIX = "edge_gateway-"
MAX_MANIFEST_BYTES = 1 << 20
CHUNK = 1 << 20
LOCK = "box.lock"  # the lock's name beside the extracted wheels
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


class BundleError(EdgeError):
    """A bundle that is not signed by a trusted key, or not what its manifest says."""


@dataclass(frozen=True)
class Manifest:
    version: str
    files: dict[str, dict[str, Any]]
    created_at: str
    lock: str = ""


@dataclass(frozen=True)
class Locked:
    """One package of a lock: its pinned version and the SHA-256 of its allowed files."""

    version: str
    hashes: frozenset[str]


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them (``Foo_bar`` is ``foo-bar``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> dict[str, Locked]:
    """A pip lock (``name==version`` lines with ``--hash=sha256:...``), by canonical name.

    Raises BundleError on a requirement that is not pinned with ``==`` or has no hash.
    """
    locked: dict[str, Locked] = {}
    for line in text.replace("\\\n", " ").splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        pin, _, rest = line.partition(" ")
        name, sep, version = pin.partition("==")
        hashes = frozenset(_HASH.findall(rest))
        if not sep or not name or not version or not hashes:
            raise BundleError(f"lock: {pin!r} is not pinned with == and hashed")
        if canonical(name) in locked:
            raise BundleError(f"lock: {name} is pinned twice")
        locked[canonical(name)] = Locked(version, hashes)
    return locked


def check_locked(files: dict[str, dict[str, Any]], lock: dict[str, Locked]) -> None:
    """Every dependency wheel is one the lock names; every locked package has a wheel."""
    seen = set()
    for member, meta in files.items():
        wheel = Path(member).name
        if wheel.startswith(WHEEL_PREFIX):
            continue
        name, version = _wheel_pin(wheel)
        pinned = lock.get(name)
        if pinned is None:
            raise BundleError(f"{wheel}: {name} is not in the lock")
        if version != pinned.version or meta["sha256"] not in pinned.hashes:
            raise BundleError(f"{wheel}: not the file the lock pins ({name}=={pinned.version})")
        seen.add(name)
    missing = sorted(f"{n}=={lock[n].version}" for n in set(lock) - seen)
    if missing:
        raise BundleError(f"locked packages without a wheel in the bundle: {', '.join(missing)}")


def keygen(private: Path, public: Path) -> None:
    """A new signing key pair: PKCS#8 private key (0600) and SubjectPublicKeyInfo PEM."""
    if private.exists():
        raise BundleError(f"{private} exists: not overwriting a signing key")
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    private.touch(mode=0o600)
    private.write_bytes(pem)
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def version_of(wheel: Path) -> str:
    """The version in an edge-gateway wheel's file name (PEP 427)."""
    if not (wheel.name.startswith(WHEEL_PREFIX) and wheel.suffix == ".whl"):
        raise BundleError(f"{wheel.name}: not an edge_gateway-*.whl")
    return wheel.name.split("-")[1]


def build(paths: list[Path], private_key: Path, out: Path) -> Manifest:
    """Write a signed bundle of the wheels in ``paths`` (exactly one of them edge-gateway's)
    and the one lock among them (``*.lock``) that every other wheel must match."""
    locks = [p for p in paths if p.suffix == ".lock"]
    wheels = [p for p in paths if p.suffix != ".lock"]
    if len(locks) != 1:
        raise BundleError(
            f"a bundle needs the lock its wheels were downloaded with (image-build/{LOCK}), "
            f"given once; got {len(locks)}"
        )
    try:
        lock = locks[0].read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BundleError(f"{locks[0]}: cannot read the lock: {exc}") from exc
    edge = [w for w in wheels if w.name.startswith(WHEEL_PREFIX)]
    if len(edge) != 1:
        raise BundleError(f"a bundle needs exactly one edge_gateway-*.whl, got {len(edge)}")
    names = [w.name for w in wheels]
    if len(set(names)) != len(names):
        raise BundleError("two wheels with the same file name")
    key = _private_key(private_key)
    files = {f"wheels/{w.name}": {"sha256": _sha256(w), "size": w.stat().st_size} for w in wheels}
    try:
        check_locked(files, parse_lock(lock))
    except BundleError as exc:
        raise BundleError(f"{locks[0]}: {exc}") from None
    created = datetime.now(UTC).isoformat(timespec="seconds")
    body = {
        "format": FORMAT,
        "package": PACKAGE,
        "version": version_of(edge[0]),
        "created_at": created,
        "files": files,
        "lock": lock,
    }
    manifest = json.dumps(body, indent=2, sort_keys=True).encode()
    tmp = out.with_name(out.name + ".tmp")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, MANIFEST, manifest)
        _add_bytes(tar, SIGNATURE, key.sign(manifest))
        for wheel in wheels:
            tar.add(wheel, arcname=f"wheels/{wheel.name}", recursive=False)
    tmp.replace(out)
    return Manifest(version_of(edge[0]), files, created, lock)


def trusted_keys(directory: Path) -> list[Ed25519PublicKey]:
    """Every ``*.pem`` ed25519 public key in ``directory``; at least one is required."""
    keys = []
    for path in sorted(directory.glob("*.pem")):
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except (OSError, ValueError) as exc:
            raise BundleError(f"{path}: not a PEM public key: {exc}") from exc
        if not isinstance(key, Ed25519PublicKey):
            raise BundleError(f"{path}: not an ed25519 public key")
        keys.append(key)
    if not keys:
        raise BundleError(f"no trusted update key (*.pem) in {directory}: refusing every bundle")
    return keys


def open_bundle(bundle: Path, keys: list[Ed25519PublicKey], dest: Path) -> Manifest:
    """Verify ``bundle`` and extract its wheels into ``dest``; raise on any doubt."""
    try:
        tar = tarfile.open(bundle, "r:")  # noqa: SIM115 (closed by the with below)
    except (OSError, tarfile.TarError) as exc:
        raise BundleError(f"{bundle}: not a bundle (uncompressed tar): {exc}") from exc
    with tar:
        members = {m.name: m for m in tar.getmembers()}
        manifest_bytes = _member_bytes(tar, members, MANIFEST)
        signature = _member_bytes(tar, members, SIGNATURE)
        if not any(_signed(k, signature, manifest_bytes) for k in keys):
            raise BundleError(f"{bundle}: the signature does not match any trusted update key")
        manifest = _parse_manifest(manifest_bytes)
        extra = set(members) - set(manifest.files) - {MANIFEST, SIGNATURE}
        if extra:
            raise BundleError(f"{bundle}: members not in the manifest: {sorted(extra)}")
        dest.mkdir(parents=True, exist_ok=True)
        for name, meta in manifest.files.items():
            _extract(tar, members.get(name), name, meta, dest)
    (dest / LOCK).write_text(manifest.lock, encoding="utf-8")
    return manifest


def _parse_manifest(data: bytes) -> Manifest:
    try:
        body = json.loads(data)
        if body["format"] != FORMAT or body["package"] != PACKAGE:
            raise BundleError(f"manifest: format {body['format']} of {body['package']!r}")
        files = body["files"]
        version = str(body["version"])
        for name, meta in files.items():
            base = name.removeprefix("wheels/")
            if name == base or "/" in base or base.startswith(".") or not base.endswith(".whl"):
                raise BundleError(f"manifest: unsafe or unexpected member name {name!r}")
            if not isinstance(meta["sha256"], str) or not isinstance(meta["size"], int):
                raise BundleError(f"manifest: bad entry for {name!r}")
        edge = [n for n in files if n.startswith("wheels/" + WHEEL_PREFIX)]
        if len(edge) != 1 or version_of(Path(edge[0])) != version:
            raise BundleError(f"manifest: version {version} has no matching edge_gateway wheel")
        lock = body.get("lock")
        if not isinstance(lock, str):
            raise BundleError("manifest: no lock (a bundle made before image-build/box.lock)")
        check_locked(files, parse_lock(lock))
        return Manifest(version, files, str(body.get("created_at", "")), lock)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BundleError(f"manifest: not a valid manifest: {exc!r}") from exc


def _extract(
    tar: tarfile.TarFile,
    member: tarfile.TarInfo | None,
    name: str,
    meta: dict[str, Any],
    dest: Path,
) -> None:
    if member is None or not member.isfile():
        raise BundleError(f"{name}: listed in the manifest but not a file in the bundle")
    if member.size != meta["size"]:
        raise BundleError(f"{name}: {member.size} bytes, the manifest says {meta['size']}")
    source = tar.extractfile(member)
    assert source is not None  # a regular file always has one
    target = dest / Path(name).name
    digest = hashlib.sha256()
    with source, target.open("wb") as out:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    if digest.hexdigest() != meta["sha256"]:
        target.unlink()
        raise BundleError(f"{name}: SHA-256 does not match the signed manifest")


def _wheel_pin(wheel: str) -> tuple[str, str]:
    """(canonical name, version) from a wheel's file name (PEP 427)."""
    parts = wheel.removesuffix(".whl").split("-")
    if len(parts) not in (5, 6):
        raise BundleError(f"{wheel}: not a wheel's file name")
    return canonical(parts[0]), parts[1]


def _member_bytes(tar: tarfile.TarFile, members: dict[str, tarfile.TarInfo], name: str) -> bytes:
    member = members.get(name)
    if member is None or not member.isfile() or member.size > MAX_MANIFEST_BYTES:
        raise BundleError(f"no {name} in the bundle (or not a small regular file)")
    source = tar.extractfile(member)
    assert source is not None
    with source:
        return source.read()


def _signed(key: Ed25519PublicKey, signature: bytes, data: bytes) -> bool:
    try:
        key.verify(signature, data)
    except InvalidSignature:
        return False
    return True


def _private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise BundleError(f"{path}: cannot load the signing key: {exc}") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise BundleError(f"{path}: not an ed25519 private key")
    return key


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
