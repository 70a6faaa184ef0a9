"""The pages' words: one catalogue per language (French by default, English), shared by
the technician's page and the operator's workstation.

``<lang>/*.json`` beside this file (``common.json``, ``box.json`` for the
technician's page, ``station.json`` for the operator's workstation) map keys
(``box.overview.title``, ``station.queue.take``) to text, with ``{name}``
placeholders; a language's catalogue is their union (a key in two files is an
error). Code holds keys,
never sentences; :func:`problems` checks that every language has every key with
the same placeholders (a test runs it). The pages load their catalogue from
``/i18n/<lang>.json`` and ``i18n.js`` (beside this file) puts the words in place
and formats times (local time, the offset on hover) and durations. Pure: no
aiohttp, no stage.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
from importlib import resources
from pathlib import Path
from typing import Any

LANGS = ("fr", "en")
DEFAULT = "fr"
COOKIE = "lang"
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@functools.cache
def catalogue(lang: str) -> dict[str, str]:
    """The words of ``lang`` (KeyError for a language there is no catalogue of)."""
    if lang not in LANGS:
        raise KeyError(lang)
    words: dict[str, str] = {}
    folder = resources.files("edge.i18n").joinpath(lang)
    for part in sorted(folder.iterdir(), key=lambda p: p.name):
        if not part.name.endswith(".json"):
            continue
        more: dict[str, str] = json.loads(part.read_text(encoding="utf-8"))
        twice = sorted(set(words) & set(more))
        if twice:
            raise ValueError(f"i18n/{lang}/{part.name}: keys already elsewhere: {twice}")
        words.update(more)
    return words


def script() -> str:
    """``i18n.js``: the pages' side of the catalogues."""
    return resources.files("edge.i18n").joinpath("i18n.js").read_text(encoding="utf-8")


def choose(asked: str | None, cookie: str | None) -> str:
    """The page's language: asked for (``?lang=``), else remembered (cookie), else French."""
    for lang in (asked, cookie):
        if lang in LANGS:
            return str(lang)
    return DEFAULT


def t(lang: str, key: str, **values: Any) -> str:
    """A word on the server side (e-mails, exports): the key itself when missing."""
    text = catalogue(lang).get(key) or catalogue(DEFAULT).get(key) or key
    return text.format(**values) if values else text


def time_zone(etc: Path = Path("/etc")) -> str | None:
    """The machine's IANA time zone (``Europe/Paris``), for the pages' clocks; None when
    it cannot be told (then the browser's own zone is used)."""
    env = os.environ.get("TZ", "").lstrip(":")
    if "/" in env and not env.startswith("/"):
        return env
    with contextlib.suppress(OSError):
        name = (etc / "timezone").read_text(encoding="utf-8").strip()
        if name:
            return name
    try:
        target = str((etc / "localtime").readlink())
    except OSError:
        return None
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else None


def bundle(lang: str) -> dict[str, Any]:
    """What ``/i18n/<lang>.json`` answers: the language, the time zone, the words."""
    return {"lang": lang, "time_zone": time_zone(), "words": catalogue(lang)}


def problems() -> list[str]:
    """Keys missing from a language, or whose placeholders differ from French's."""
    found = []
    reference = catalogue(DEFAULT)
    for lang in LANGS:
        words = catalogue(lang)
        for key in sorted(set(reference) | set(words)):
            if key not in words:
                found.append(f"{lang}: {key} is missing")
                continue
            if key not in reference:
                found.append(f"{DEFAULT}: {key} is missing")
                continue
            if set(_PLACEHOLDER.findall(words[key])) != set(_PLACEHOLDER.findall(reference[key])):
                found.append(f"{lang}: {key} has other placeholders than {DEFAULT}")
    return found
