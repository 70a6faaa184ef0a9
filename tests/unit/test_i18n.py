"""The pages' catalogues (edge/i18n): every key in every language with the same
placeholders, French by default, the time zone read as the machine has it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge import i18n

ROOT = Path(__file__).resolve().parents[2]


def test_every_language_has_every_key_with_the_same_placeholders() -> None:
    assert i18n.problems() == []


def test_a_missing_key_or_placeholder_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    words = {"fr": {"a": "x {n}", "b": "y"}, "en": {"a": "x"}}
    monkeypatch.setattr(i18n, "catalogue", lambda lang: words[lang])
    assert i18n.problems() == ["en: a has other placeholders than fr", "en: b is missing"]


def test_french_unless_english_is_asked_or_remembered() -> None:
    assert i18n.choose(None, None) == "fr"
    assert i18n.choose("en", None) == "en"
    assert i18n.choose(None, "en") == "en"
    assert i18n.choose("de", "en") == "en"  # no German: the remembered one
    assert i18n.choose("xx", "yy") == "fr"
    assert i18n.t("en", "common.error", message="disk") == "Error: disk"
    assert i18n.t("fr", "common.error", message="disque") == "Erreur : disque"
    assert i18n.t("en", "no.such.key") == "no.such.key"


def test_time_zone_from_tz_timezone_or_the_localtime_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TZ", raising=False)
    assert i18n.time_zone(tmp_path) is None
    zoneinfo = tmp_path / "usr/share/zoneinfo/Europe/Paris"
    zoneinfo.parent.mkdir(parents=True)
    zoneinfo.write_bytes(b"TZif")
    (tmp_path / "localtime").symlink_to(zoneinfo)
    assert i18n.time_zone(tmp_path) == "Europe/Paris"
    (tmp_path / "timezone").write_text("America/Martinique\n")
    assert i18n.time_zone(tmp_path) == "America/Martinique"
    monkeypatch.setenv("TZ", ":Europe/Brussels")
    assert i18n.time_zone(tmp_path) == "Europe/Brussels"


def test_the_catalogues_are_json_objects_of_text() -> None:
    for lang in i18n.LANGS:
        for part in (ROOT / "edge" / "i18n" / lang).glob("*.json"):
            words = json.loads(part.read_text("utf-8"))
            assert all(isinstance(k, str) and isinstance(v, str) and v for k, v in words.items())
            prefix = {
                "common.json": ("common.", "unit.", "lang."),
                "box.json": ("box.",),
                "station.json": ("station.",),
            }[part.name]
            assert all(k.startswith(prefix) for k in words), part  # each page its own keys
