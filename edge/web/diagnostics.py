"""Diagnostics: the box's recent log lines and a zip bundle for the support desk.

Neither ever holds a secret. Lines logged with ``extra=logs.SECRET`` (the setup
code) are not kept at all; and, in case a secret slips into some other line,
everything served is scrubbed of the secrets the page knows (setup code, API
token, password hash, keys) and of anything shaped like a private key or a
password hash (:func:`scrub`).
"""

from __future__ import annotations

import io
import json
import logging
import platform
import re
import sys
import zipfile
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from typing import Any

from edge.logs import is_secret

LOG_LINES = 5000
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "[redacted]"
MIN_SECRET = 8  # a shorter value would blank ordinary words; real secrets are longer
PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
PASSWORD_HASH = re.compile(r"scrypt\$\d+\$\d+\$\d+\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+")
Secrets = Callable[[], Iterable[str]]


class LogRing(logging.Handler):
    """Keeps the last ``size`` formatted records in memory (the page's log view),
    except secret ones; :meth:`text` is scrubbed of ``secrets()``."""

    def __init__(self, size: int = LOG_LINES, secrets: Secrets = tuple) -> None:
        super().__init__(logging.INFO)
        self.lines: deque[str] = deque(maxlen=size)
        self.secrets = secrets
        self.setFormatter(logging.Formatter(FORMAT))
        self.addFilter(lambda record: not is_secret(record))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)

    def text(self) -> str:
        text = "\n".join(self.lines) + ("\n" if self.lines else "")
        return scrub(text, self.secrets())


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with each secret (as is, and as JSON writes it), every PEM private
    key and every password hash replaced by ``[redacted]``."""
    forms = {s for s in secrets if len(s) >= MIN_SECRET}
    forms |= {json.dumps(s)[1:-1] for s in forms}
    for secret in sorted(forms, key=len, reverse=True):  # a longer one may hold a shorter
        text = text.replace(secret, REDACTED)
    text = PRIVATE_KEY.sub(REDACTED, text)
    return PASSWORD_HASH.sub(REDACTED, text)


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
    secrets: Iterable[str] = (),
) -> bytes:
    """A zip of the redacted config, the status, recent events, versions and logs,
    each member scrubbed of ``secrets``."""
    secrets = list(secrets)
    members = {
        "config-redacted.toml": config_text,
        "status.json": json.dumps(status, indent=2, default=str),
        "events.json": json.dumps(events, indent=2, default=str),
        "versions.json": json.dumps(versions(), indent=2),
        "logs.txt": logs,
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in members.items():
            z.writestr(name, scrub(text, secrets))
    return out.getvalue()
