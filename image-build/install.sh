#!/bin/bash
# Install the edge gateway on a Debian bookworm / Raspberry Pi OS system.
#
# The ONE install step: the SD-card image recipe (image-build/pi-gen/) runs it
# inside the image being built, an installer runs it on an existing Raspberry Pi
# OS, and the root-filesystem test (tests/integration/test_image_rootfs.py) runs it
# in a Debian chroot. It is idempotent: a second run with the same wheels only
# re-creates the release and re-installs the units; it never overwrites
# /etc/edge/edge.toml nor the device's identity and keys.
#
# What it does, in order:
#   1. Debian packages: python3, python3-venv, python3-numpy, systemd; on a Raspberry Pi OS also
#      python3-picamera2 and python3-lgpio (Pi archive) and cloud-guest-utils
#      (growpart, for the first-boot data partition expansion). Only missing ones.
#   2. The groups gpio and video (Raspberry Pi OS has them; created if missing) and
#      the system user "edge", member of exactly those two.
#   3. A release: /opt/edge/releases/<version>, a venv made with
#      --system-site-packages (so the Pi archive's picamera2/libcamera bindings are
#      visible), the wheel and its dependencies installed offline from --wheels,
#      each one the lock pins (image-build/box.lock: version and SHA-256; pip's
#      --require-hashes refuses any other file), numpy held at the system's version
#      (Debian's: picamera2's compiled helpers are built against it; the lock leaves
#      numpy out), then byte-compiled (/opt is
#      read-only to the service). /opt/edge/venv is a symlink to the current
#      release; "edge update" switches it, /opt/edge/previous keeps the one before.
#   4. /opt/edge/libexec: the first-boot and update-recovery helpers.
#   5. /etc/edge (root:edge 0750): edge.toml (-> site/edge.toml, site/ writable by the
#      service) from the example when absent, tls/,
#      update-keys/ with the public keys trusted for update bundles.
#   6. The units (edge.service, edge-firstboot.service, edge-update-recover.service),
#      a journald drop-in that keeps the journal in RAM (no log writes on the SD
#      card), and "systemctl enable". On a running system (not a chroot, not an
#      image build) it also starts them, unless --no-start.
#
# Usage: install.sh --wheels DIR [--lock FILE] [--config FILE] [--update-key FILE]...
#                   [--no-apt] [--no-start] [--pi | --no-pi]

set -euo pipefail

SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=/opt/edge
ETC=/etc/edge
USER_NAME=edge
WHEELS=""
LOCK="$SRC/image-build/box.lock"
CONFIG="$SRC/config/edge.example.toml"
UPDATE_KEYS=()
APT=1
START=auto
PI=auto

say() { printf 'install: %s\n' "$*"; }
die() { printf 'install: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n 's/^# Usage: //p' "${BASH_SOURCE[0]}"
    exit "${1:-0}"
}

while [ $# -gt 0 ]; do
    case "$1" in
        --wheels) WHEELS=${2:?--wheels needs a folder}; shift 2 ;;
        --lock) LOCK=${2:?--lock needs a file}; shift 2 ;;
        --config) CONFIG=${2:?--config needs a file}; shift 2 ;;
        --update-key) UPDATE_KEYS+=("${2:?--update-key needs a file}"); shift 2 ;;
        --no-apt) APT=0; shift ;;
        --no-start) START=0; shift ;;
        --pi) PI=1; shift ;;
        --no-pi) PI=0; shift ;;
        -h|--help) usage 0 ;;
        *) printf 'install: unknown option %s\n' "$1" >&2; usage 2 ;;
    esac
done

[ "$(id -u)" = 0 ] || die "run as root (sudo $0 ...)"
[ -n "$WHEELS" ] || die "--wheels DIR is required (a folder with edge_gateway-*.whl and its dependencies)"
[ -d "$WHEELS" ] || die "--wheels $WHEELS: no such folder"
[ -f "$LOCK" ] || die "--lock $LOCK: no such file (image-build/box.lock, written by make lock)"
[ -f "$CONFIG" ] || die "--config $CONFIG: no such file"
for key in "${UPDATE_KEYS[@]}"; do
    [ -f "$key" ] || die "--update-key $key: no such file"
done

# The edge wheel, and its version from the file name (PEP 427: name-version-...).
shopt -s nullglob
edge_wheels=("$WHEELS"/edge_gateway-*.whl)
shopt -u nullglob
[ "${#edge_wheels[@]}" = 1 ] || die "$WHEELS must hold exactly one edge_gateway-*.whl (found ${#edge_wheels[@]})"
VERSION=$(basename "${edge_wheels[0]}" | cut -d- -f2)
case "$VERSION" in
    ''|*/*|.*) die "cannot read a version from ${edge_wheels[0]}" ;;
esac

if [ "$PI" = auto ]; then
    if [ -e /etc/rpi-issue ] || grep -qs raspberrypi /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; then
        PI=1
    else
        PI=0
    fi
fi

# A system booted with systemd (not a chroot, not an image being built).
booted() { [ -d /run/systemd/system ] && ! systemd-detect-virt --chroot --quiet 2>/dev/null; }

# ---- 1. Debian packages -----------------------------------------------------
packages=(python3 python3-venv python3-numpy systemd passwd)
if [ "$PI" = 1 ]; then
    packages+=(python3-picamera2 python3-lgpio cloud-guest-utils e2fsprogs)
fi
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    [ "$APT" = 1 ] || die "missing Debian packages (and --no-apt given): ${missing[*]}"
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# ---- 2. groups and the service user -----------------------------------------
for g in gpio video; do
    getent group "$g" >/dev/null || { say "creating group $g"; groupadd --system "$g"; }
done
if ! getent passwd "$USER_NAME" >/dev/null; then
    say "creating system user $USER_NAME"
    useradd --system --user-group --home-dir /var/lib/edge --no-create-home \
        --shell /usr/sbin/nologin --comment "edge alarm gateway" "$USER_NAME"
fi
# Exactly these supplementary groups, nothing more (no sudo, no adm, no dialout).
usermod --groups gpio,video "$USER_NAME"

# ---- 3. the release ---------------------------------------------------------
release="$PREFIX/releases/$VERSION"
install -d -m 0755 "$PREFIX" "$PREFIX/releases" "$PREFIX/libexec"
aside=""
if [ -e "$release" ]; then
    aside="$release.aside.$$"
    mv "$release" "$aside"
fi
restore_aside() {
    rm -rf "$release"
    if [ -n "$aside" ]; then mv "$aside" "$release"; fi
}
trap restore_aside ERR
say "creating $release (edge-gateway $VERSION)"
python3 -m venv --system-site-packages "$release"
constraints="$release/constraints.txt"
: > "$constraints"
if system_numpy=$(python3 -c 'import numpy; print(numpy.__version__)' 2>/dev/null); then
    say "keeping the system's numpy $system_numpy (picamera2 is built against it)"
    echo "numpy==$system_numpy" > "$constraints"
fi
# The lock and the edge wheel itself: in hash-checking mode pip installs nothing else.
requirements="$release/requirements.txt"
edge_sha256=$(sha256sum "${edge_wheels[0]}" | cut -d' ' -f1)
{ cat "$LOCK"; printf 'edge-gateway==%s --hash=sha256:%s\n' "$VERSION" "$edge_sha256"; } > "$requirements"
if ! PIP_DISABLE_PIP_VERSION_CHECK=1 "$release/bin/pip" install --quiet --no-index --no-cache-dir \
    --require-hashes --find-links "$WHEELS" --constraint "$constraints" -r "$requirements"; then
    say "pip could not install $LOCK's wheels from $WHEELS: a wheel missing or not the one"
    say "the lock pins (its SHA-256), a dependency not in the lock (make lock), or one that"
    if [ -s "$constraints" ]; then
        say "needs another numpy than the system's $(cat "$constraints") (python3-picamera2 is built"
        say "against it); see image-build/README.md"
    else
        say "needs numpy, which the system lacks (python3-numpy); see image-build/README.md"
    fi
    false
fi
"$release/bin/python" -m compileall -q "$release/lib" >/dev/null
"$release/bin/edge" --version >/dev/null
trap - ERR
if [ -n "$aside" ]; then rm -rf "$aside"; fi

current=$(readlink "$PREFIX/venv" 2>/dev/null || true)
if [ -n "$current" ] && [ "$current" != "$release" ] && [ -d "$current" ]; then
    ln -sfn "$current" "$PREFIX/previous.new"
    mv -T "$PREFIX/previous.new" "$PREFIX/previous"
fi
ln -sfn "$release" "$PREFIX/venv.new"
mv -T "$PREFIX/venv.new" "$PREFIX/venv"
say "current release: $(readlink "$PREFIX/venv")"

# ---- 4. helpers -------------------------------------------------------------
install -m 0755 "$SRC/image-build/files/expand-data.sh" "$SRC/image-build/files/update-recover.sh" \
    "$PREFIX/libexec/"

# ---- 5. configuration -------------------------------------------------------
# /etc/edge stays read-only to the service; only site/ is writable to it (the unit's
# ReadWritePaths), so the technician's page can apply a new config (the old one kept
# beside it) but cannot touch the keys, the certificates or the update keys.
# /etc/edge/edge.toml is a link to site/edge.toml.
install -d -m 0750 -o root -g "$USER_NAME" "$ETC" "$ETC/tls"
install -d -m 0770 -o root -g "$USER_NAME" "$ETC/site"
install -d -m 0755 -o root -g root "$ETC/update-keys"
if [ -f "$ETC/edge.toml" ] && [ ! -L "$ETC/edge.toml" ] && [ ! -e "$ETC/site/edge.toml" ]; then
    mv "$ETC/edge.toml" "$ETC/site/edge.toml"  # from an install before site/
    chgrp "$USER_NAME" "$ETC/site/edge.toml"
    chmod 0660 "$ETC/site/edge.toml"
fi
if [ -e "$ETC/site/edge.toml" ]; then
    say "keeping the existing $ETC/edge.toml"
else
    install -m 0660 -o root -g "$USER_NAME" "$CONFIG" "$ETC/site/edge.toml"
    say "installed $ETC/edge.toml from $CONFIG: edit it, then run: edge check-config $ETC/edge.toml"
fi
ln -sfn site/edge.toml "$ETC/edge.toml"
for key in "${UPDATE_KEYS[@]}"; do
    install -m 0644 "$key" "$ETC/update-keys/$(basename "$key")"
done

# ---- 6. units and the journal -----------------------------------------------
for unit in edge.service edge-firstboot.service edge-update-recover.service; do
    install -m 0644 "$SRC/systemd/$unit" "/etc/systemd/system/$unit"
done
install -d -m 0755 /etc/systemd/journald.conf.d
install -m 0644 "$SRC/image-build/files/journald-edge.conf" /etc/systemd/journald.conf.d/50-edge.conf
systemctl enable edge-update-recover.service edge-firstboot.service edge.service >/dev/null 2>&1 \
    || systemctl enable edge-update-recover.service edge-firstboot.service edge.service

if [ "$START" = auto ]; then
    if booted; then START=1; else START=0; fi
fi
if [ "$START" = 1 ]; then
    systemctl daemon-reload
    systemctl start edge-firstboot.service
    systemctl restart edge.service
    say "started; follow it with: journalctl -u edge -f"
else
    say "units enabled; they start at the next boot"
fi
say "done: edge-gateway $VERSION"
