#!/bin/bash
# First boot: grow the data partition (label EDGE_DATA) to the end of the card.
#
# Run once by edge-firstboot.service, before the box starts. The image built with
# rpi-image-gen (see image-build/README.md) has three partitions: boot, root and a
# small ext4 data partition labelled EDGE_DATA, mounted on /var/lib/edge; growing
# it to fill the card leaves root at its built size (A/B ready). An image built with
# pi-gen has no data partition: there Raspberry Pi OS grows the root file system by
# itself at first boot and this script only says so.
#
# Usage: expand-data.sh [LABEL]   (default EDGE_DATA)

set -euo pipefail

LABEL=${1:-EDGE_DATA}
say() { printf 'expand-data: %s\n' "$*"; }

device=$(blkid --label "$LABEL" 2>/dev/null || true)
if [ -z "$device" ]; then
    say "no partition labelled $LABEL: nothing to grow (the root file system holds the data)"
    exit 0
fi
disk_name=$(lsblk --noheadings --output PKNAME "$device" | head -n1)
part_number=$(cat "/sys/class/block/$(basename "$device")/partition")
if [ -z "$disk_name" ] || [ -z "$part_number" ]; then
    say "cannot tell the disk of $device: not growing it"
    exit 0
fi
disk="/dev/$disk_name"
command -v growpart >/dev/null || { say "growpart missing (package cloud-guest-utils): not growing $device"; exit 0; }

# growpart exits 1 with NOCHANGE when the partition already fills the disk.
if out=$(growpart "$disk" "$part_number" 2>&1); then
    say "grew $device on $disk: $out"
elif printf '%s' "$out" | grep -q NOCHANGE; then
    say "$device already fills $disk"
else
    say "growpart $disk $part_number failed: $out"
    exit 1
fi
resize2fs "$device"
say "$device resized: $(lsblk --noheadings --output SIZE "$device" | head -n1)"
