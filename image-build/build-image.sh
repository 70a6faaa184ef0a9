#!/bin/bash
# Build the SD-card image: Raspberry Pi OS Lite (bookworm, arm64) + the edge gateway.
#
# On a networked Debian/Ubuntu builder, arm64 or x86-64 (x86-64 needs
# qemu-user-static and binfmt-support; pi-gen's build-docker.sh needs Docker):
#
#   image-build/build-image.sh --update-key keys/vendor.pem [--pi-gen DIR] [--docker]
#
# Steps: 1. wheels for the Pi (aarch64, CPython 3.11): the edge-gateway wheel built
# here, its dependencies downloaded as the manylinux aarch64 wheels image-build/box.lock
# pins (pip checks each file's SHA-256); 2. pi-gen (branch
# "arm64") cloned into build/pi-gen unless --pi-gen names a checkout; 3. our stage
# (image-build/pi-gen/stage-edge) and config copied in, with the sources, wheels and
# update key in the stage's files/; 4. pi-gen's build.sh (as root) or build-docker.sh.
# The image lands in build/pi-gen/deploy/ as edge-gateway-*.img.xz.
# FIRST_USER_PASS must be set in the environment (the installer's password).

set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD="$REPO/build"
PIGEN=""
DOCKER=0
KEYS=()
PIGEN_URL=https://github.com/RPi-Distro/pi-gen.git
PIGEN_BRANCH=arm64

die() { printf 'build-image: error: %s\n' "$*" >&2; exit 1; }

while [ $# -gt 0 ]; do
    case "$1" in
        --update-key) KEYS+=("${2:?}"); shift 2 ;;
        --pi-gen) PIGEN=${2:?}; shift 2 ;;
        --docker) DOCKER=1; shift ;;
        -h|--help) sed -n '2,16s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"; exit 0 ;;
        *) die "unknown option $1" ;;
    esac
done
[ "${#KEYS[@]}" -gt 0 ] || die "--update-key FILE is required: boxes must trust at least one update key"
[ -n "${FIRST_USER_PASS:-}" ] || die "set FIRST_USER_PASS (the installer's password) in the environment"

# ---- 1. wheels for the Pi -----------------------------------------------------
wheels="$BUILD/wheels-aarch64"
rm -rf "$wheels" && mkdir -p "$wheels"
python3 -m pip wheel --no-deps --wheel-dir "$wheels" "$REPO"
# The dependencies exactly as image-build/box.lock pins them (versions and SHA-256), as
# aarch64 wheels for bookworm's glibc 2.36 (pip does not widen a manylinux_2_Y tag to
# older ones: each is named, best first). Not numpy (Debian's python3-numpy) nor the
# "pi" extra: picamera2 and lgpio come from the Pi archive (python3-picamera2,
# python3-lgpio), seen through --system-site-packages; a PyPI copy would shadow them.
platforms=()
for minor in $(seq 36 -1 17); do platforms+=(--platform "manylinux_2_${minor}_aarch64"); done
python3 -m pip download --dest "$wheels" --no-deps --require-hashes --only-binary=:all: \
    "${platforms[@]}" --platform manylinux2014_aarch64 \
    --python-version 3.11 --implementation cp -r "$REPO/image-build/box.lock"

# ---- 2. pi-gen ----------------------------------------------------------------
if [ -z "$PIGEN" ]; then
    PIGEN="$BUILD/pi-gen"
    [ -d "$PIGEN/.git" ] || git clone --depth 1 --branch "$PIGEN_BRANCH" "$PIGEN_URL" "$PIGEN"
fi

# ---- 3. our stage ---------------------------------------------------------------
rm -rf "$PIGEN/stage-edge"
cp -a "$REPO/image-build/pi-gen/stage-edge" "$PIGEN/stage-edge"
cp "$REPO/image-build/pi-gen/config" "$PIGEN/config"
files="$PIGEN/stage-edge/00-install-edge/files/edge-src"
mkdir -p "$files/update-keys"
cp -a "$REPO/systemd" "$REPO/config" "$REPO/image-build" "$files/"
cp -a "$wheels" "$files/wheels"
for key in "${KEYS[@]}"; do cp "$key" "$files/update-keys/"; done
printf 'FIRST_USER_PASS=%q\n' "$FIRST_USER_PASS" >> "$PIGEN/config"

# ---- 4. build -------------------------------------------------------------------
cd "$PIGEN"
if [ "$DOCKER" = 1 ]; then
    ./build-docker.sh
else
    [ "$(id -u)" = 0 ] || die "pi-gen's build.sh runs as root (or use --docker)"
    ./build.sh
fi
ls -l "$PIGEN"/deploy/
