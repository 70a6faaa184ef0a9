"""``edge update``: install a signed bundle as a new release, try it, keep it or roll back.

1. verify the bundle against the trusted keys and extract its wheels;
2. create ``/opt/edge/releases/<version>`` next to the running release;
3. write ``/opt/edge/update-pending`` (so a power cut during the trial rolls
   back at the next boot, see image-build/files/update-recover.sh), switch
   ``/opt/edge/venv`` to the new release, restart the service;
4. the trial (:mod:`edge.update.trial`): healthy within the time limit, or not;
5. healthy: the old release becomes ``previous``, older ones are deleted;
   not healthy: switch back, restart the old release, delete the new one.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from edge.errors import EdgeError
from edge.update import bundle, release
from edge.update.release import Layout
from edge.update.trial import Manager, run_trial

log = logging.getLogger(__name__)


class UpdateFailed(EdgeError):
    """The new release did not report healthy and was rolled back."""


@dataclass(frozen=True)
class Outcome:
    version: str
    release: Path
    previous: Path | None
    reason: str


def install(
    bundle_path: Path,
    keys_dir: Path,
    layout: Layout,
    manager: Manager,
    timeout_s: float,
    settle_s: float,
    python: Path = release.SYSTEM_PYTHON,
) -> Outcome:
    """Install ``bundle_path``; raise BundleError/ReleaseError before any switch,
    UpdateFailed after a rollback."""
    keys = bundle.trusted_keys(keys_dir)
    layout.prefix.mkdir(parents=True, exist_ok=True)
    if layout.pending.exists():
        raise release.ReleaseError(
            f"{layout.pending} exists: another update is in progress or was interrupted "
            "(edge-update-recover.service rolls it back at boot)"
        )
    previous = layout.current()
    if previous is None:
        raise release.ReleaseError(f"{layout.current_link} is not a release link: install first")
    with tempfile.TemporaryDirectory(prefix=".incoming-", dir=layout.prefix) as tmp:
        manifest = bundle.open_bundle(bundle_path, keys, Path(tmp))
        log.info("bundle %s verified: edge-gateway %s", bundle_path, manifest.version)
        new = release.create(layout, manifest.version, Path(tmp), python)
    log.info("release %s created; trying it (limit %g s)", new, timeout_s)
    release.write_pending(layout, previous, new)
    release.switch(layout, new)
    trial = run_trial(manager, timeout_s, settle_s)
    if trial.verdict == "healthy":
        release.set_previous(layout, previous)
        release.clear_pending(layout)
        for old in release.prune(layout):
            log.info("deleted old release %s", old)
        log.info("edge-gateway %s is healthy (%s): update kept", manifest.version, trial.reason)
        return Outcome(manifest.version, new, previous, trial.reason)
    log.error("edge-gateway %s failed its trial: %s; rolling back", manifest.version, trial.reason)
    _roll_back(layout, manager, previous)
    shutil.rmtree(new, ignore_errors=True)
    raise UpdateFailed(
        f"edge-gateway {manifest.version} failed its trial ({trial.reason}); "
        f"rolled back to {previous.name}"
    )


def rollback(layout: Layout, manager: Manager) -> Path:
    """Go back to the previous release by hand (``edge update rollback``)."""
    previous, current = layout.previous(), layout.current()
    if previous is None or not (previous / "bin" / "edge").exists():
        raise release.ReleaseError("no previous release to roll back to")
    _roll_back(layout, manager, previous)
    if current is not None:
        release.set_previous(layout, current)
    return previous


def _roll_back(layout: Layout, manager: Manager, previous: Path) -> None:
    release.switch(layout, previous)
    release.clear_pending(layout)
    manager.stop()
    manager.restart()
    log.warning("rolled back to %s", previous)


def status(layout: Layout) -> dict[str, str | None]:
    current, previous = layout.current(), layout.previous()
    return {
        "current": current.name if current else None,
        "previous": previous.name if previous else None,
        "pending": layout.pending.read_text(encoding="utf-8") if layout.pending.exists() else None,
    }
