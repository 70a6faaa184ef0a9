#!/bin/bash -e
# pi-gen: start this stage from the root file system of the previous one (stage2, Lite).
if [ ! -d "${ROOTFS_DIR}" ]; then
    copy_previous
fi
