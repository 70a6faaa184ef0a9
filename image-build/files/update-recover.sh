#!/bin/bash
# Boot-time guard of "edge update": roll back an update whose trial never ended.
#
# "edge update install" writes /opt/edge/update-pending before it switches
# /opt/edge/venv to the new release, and removes it once the new release has
# reported healthy to systemd (or after it rolled back). If the box lost power or
# the updater was killed during the trial, the file is still there at the next
# boot: edge-update-recover.service runs this script before edge.service and puts
# the previous release back. It is plain shell on purpose: it must not depend on
# the Python code of the release it distrusts.
#
# Usage: update-recover.sh [PREFIX]   (default /opt/edge)

set -euo pipefail

PREFIX=${1:-/opt/edge}
PENDING="$PREFIX/update-pending"
say() { printf 'update-recover: %s\n' "$*"; }

[ -f "$PENDING" ] || { say "no update pending"; exit 0; }

field() { sed -n "s/^$1=//p" "$PENDING" | head -n1; }
previous=$(field previous)
candidate=$(field candidate)

case "$previous" in
    "$PREFIX"/releases/*) ;;
    *) say "update-pending names no previous release under $PREFIX/releases ($previous): left as is"; exit 1 ;;
esac
if [ ! -x "$previous/bin/edge" ]; then
    say "previous release $previous is gone: cannot roll back"
    exit 1
fi
ln -sfn "$previous" "$PREFIX/venv.new"
mv -T "$PREFIX/venv.new" "$PREFIX/venv"
rm -f "$PENDING"
say "the trial of $candidate did not finish: rolled back to $previous"
