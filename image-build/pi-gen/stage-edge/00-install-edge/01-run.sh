#!/bin/bash -e
# pi-gen: install the edge gateway into the image with the same script as a manual
# install (image-build/install.sh). build-image.sh has put the sources, the aarch64
# wheels and the update public key in files/edge-src/ next to this script.
# shellcheck disable=SC2154  # ROOTFS_DIR comes from pi-gen
src="files/edge-src"
[ -d "$src/wheels" ] || { echo "no $src/wheels: run image-build/build-image.sh" >&2; exit 1; }
rm -rf "${ROOTFS_DIR}/tmp/edge-src"
cp -a "$src" "${ROOTFS_DIR}/tmp/edge-src"

# on_chroot is pi-gen's: runs its standard input as a script inside the image.
on_chroot << CHROOT
set -e
keys=()
for key in /tmp/edge-src/update-keys/*.pem; do keys+=(--update-key "\$key"); done
/tmp/edge-src/image-build/install.sh --wheels /tmp/edge-src/wheels --pi --no-start "\${keys[@]}"
rm -rf /tmp/edge-src
CHROOT
