"""Every word of the workstation is in both catalogues: each ``data-i18n`` key of its pages
and each key its scripts name, and every word the station writes itself (the main
courante's lines, the CSV's columns). Keys are never glued together in a script, so
that this test sees them all."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge import i18n
from edge.station import courante, triage, videoreq
from edge.station.courante import Entry
from edge.station.web.exports import COLUMNS
from tests.conftest import REPO

STATIC = REPO / "edge" / "station" / "web" / "static"
ATTRIBUTE = re.compile(r'data-i18n(?:-[a-z-]+)?="([^"]+)"')
LITERAL = re.compile(r"""["'`]((?:station|common|lang|unit)\.[a-z0-9_.]+)["'`]""")
KEYS = r"(?:station|common|lang|unit)\."
SENTENCE = re.compile(rf"""(?<![a-z_])text:\s*["'](?!{KEYS})[A-Za-zÀ-ÿ]{{3,}}""")
GLUED = re.compile(r"""["'`](?:station|common|lang|unit)\.[a-z0-9_.]*\.["'`]\s*\+""")


def page_files() -> list[Path]:
    files = sorted([*STATIC.glob("*.html"), *STATIC.glob("*.js")])
    assert {f.name for f in files} >= {"operator.html", "operator.js", "detail.js", "admin.js",
                                        "courante.html", "courante.js", "login.html"}  # fmt: skip
    return files


def used_keys(path: Path) -> set[str]:
    text = path.read_text(encoding="utf-8")
    return set(ATTRIBUTE.findall(text)) | set(LITERAL.findall(text))


@pytest.mark.parametrize("lang", i18n.LANGS)
def test_every_key_the_pages_use_is_in_the_catalogue(lang: str) -> None:
    words = i18n.catalogue(lang)
    missing = {f"{p.name}: {k}" for p in page_files() for k in used_keys(p) if k not in words}
    assert not missing, sorted(missing)


def test_no_key_is_glued_together_and_no_sentence_is_written_in_a_script() -> None:
    for path in page_files():
        text = path.read_text(encoding="utf-8")
        assert not GLUED.findall(text), path.name
        if path.suffix == ".js":  # a text node written in code would be a sentence
            assert not SENTENCE.search(text), path.name


def test_the_pages_use_many_keys() -> None:
    """The scan finds the keys (a broken pattern would find none and pass)."""
    assert len(set().union(*(used_keys(p) for p in page_files()))) > 200


SAMPLES = {
    "opened": {"category": "fire", "alarm": "ev-1"},
    "restored": {"ref": "hall:130"},
    "release": {"holder": "alice"},
    "transfer": {"to": "bob", "from": "alice"},
    "instruction": {"category": "fire", "step": 0, "label": "Appeler les pompiers"},
    "call": {"contact": "Paul", "phone": "+33 6", "result": "reached"},
    "dispatch": {"to": "guard"},
    "inform": {"to": "police"},
    "on_site": {"who": "fire_brigade"},
    "outcome": {"code": "real"},
    "media_view": {"device": "gw-1", "media_id": "m-1", "kind": "still"},
    "request": {"type": "clip", "camera": "porch", "seconds": 30, "command": "ws-1"},
    "answer": {"command": "ws-1", "status": "done"},
    "closed": {"restored": False},
    "site": {"site": "shop", "change": "created"},
}


@pytest.mark.parametrize("lang", i18n.LANGS)
def test_every_courante_line_and_export_column_is_in_words(lang: str) -> None:
    words = i18n.catalogue(lang)
    for action in courante.ACTIONS:
        entry = Entry(1, 0, "alice", "inc", None, None, action, SAMPLES.get(action, {}), "", None)
        line = courante.describe(lang, entry)
        assert line and "{" not in line and "station." not in line, (action, line)
        assert f"station.action.{action}" in words
    vocabulary = [
        *(f"station.category.{c.value}" for c in triage.Category),
        *(f"station.outcome.{o}" for o in triage.OUTCOMES),
        *(f"station.dispatch.{d}" for d in triage.DISPATCH),
        *(f"station.call.{c}" for c in triage.CALL_RESULTS),
        *(f"station.request.status.{s}" for s in (*videoreq.FINAL, "sent", "accepted")),
        *(f"station.export.{c}" for c in COLUMNS),
        "station.courante.system",
        "station.media.kind.still",
        "station.media.kind.clip",
    ]
    assert [k for k in vocabulary if k not in words] == []
    assert courante.describe(lang, Entry(1, 0, "a", None, None, None, "closed",
                                         {"restored": True}, "", None)) != courante.describe(
        lang, Entry(1, 0, "a", None, None, None, "closed", {"restored": False}, "", None)
    )  # fmt: skip
