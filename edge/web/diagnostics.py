"""Diagnostics: the box's recent log lines and a zip bundle for the support desk."""

from __future__ import annotations

import io
import json
import logging
import platform
import sys
import zipfile
from collections import deque
from collections.abc import Mapping
from importlib import metadata
from typing import Any

LOG_LINES = 5000
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class LogRing(logging.Handler):
    """Keeps the last ``size`` formatted records in memory (the page's log view)."""

    def __init__(self, size: int = LOG_LINES) -> None:
        super().__init__(logging.INFO)
        self.lines: deque[str] = deque(maxlen=size)
        self.setFormatter(logging.Formatter(FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)

    def text(self) -> str:
        return "\n".join(self.lines) + ("\n" if self.lines else "")


def versions() -> dict[str, str]:
    found = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("edge-gateway", "aiohttp", "pydantic", "paho-mqtt", "gpiozero", "numpy"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def bundle(
    config_text: str,
    status: Mapping[str, Any],
    events: list[dict[str, object]],
    logs: str,
) -> bytes:
    """A zip of the redacted config, the status, recent events, versions and logs."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("config-redacted.toml", config_text)
        z.writestr("status.json", json.dumps(status, indent=2, default=str))
        z.writestr("events.json", json.dumps(events, indent=2, default=str))
        z.writestr("versions.json", json.dumps(versions(), indent=2))
        z.writestr("logs.txt", logs)
    return out.getvalue()
