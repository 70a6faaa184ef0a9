"""The technician page's config check gives what ``edge check-config`` gives,
for the inputs TOML allows and the config does not (issue 14)."""

from __future__ import annotations

from pathlib import Path

from edge.boxweb.config_file import ConfigFile
from edge.config import load
from tests.conftest import DEMO_CONFIG


def _checker(tmp_path: Path) -> ConfigFile:
    return ConfigFile(load(DEMO_CONFIG), None, tmp_path, None)


def test_upload_nested_too_deep_is_one_problem(tmp_path: Path) -> None:
    text = DEMO_CONFIG.read_text(encoding="utf-8") + "x = " + "[" * 500 + "]" * 500 + "\n"
    assert _checker(tmp_path).check(text, "site.toml") == [
        "site.toml: nesting is too deep: more than 32 tables or lists inside each other"
    ]


def test_upload_with_an_unquoted_date_is_refused(tmp_path: Path) -> None:
    text = DEMO_CONFIG.read_text(encoding="utf-8").replace('id = "demo-box-01"', "id = 2024-01-01")
    assert _checker(tmp_path).check(text, "site.toml") == [
        "site.toml: device.id = 2024-01-01: must be text in quotes"
    ]


def test_upload_with_a_byte_order_mark_is_refused_like_the_file(tmp_path: Path) -> None:
    text = "\ufeff" + DEMO_CONFIG.read_text(encoding="utf-8")
    (message,) = _checker(tmp_path).check(text, "site.toml")
    assert message.startswith("site.toml: the file starts with a byte-order mark (BOM)")
