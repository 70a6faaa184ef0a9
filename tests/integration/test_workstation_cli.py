"""``edge station site check | load | list | show | remove`` and ``edge station courante``."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from edge.__main__ import main
from edge.station import courante
from edge.station.store import StationStore
from tests.conftest import REPO
from tests.deskkit import T0, event, file

SITE = REPO / "config" / "demo-site.toml"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "station.sqlite"
    store = StationStore(path)
    store.open()
    store.close()
    return path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_a_site_file_is_checked_loaded_listed_shown_and_removed(
    db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(capsys, "station", "site", "check", str(SITE))[:2] == (
        0, f"{SITE}: OK, 1 site(s): boulangerie-martin\n",
    )  # fmt: skip
    bad = tmp_path / "bad.toml"
    bad.write_text(SITE.read_text().replace('role = "guard"', 'role = "cook"'))
    code, _, err = run(capsys, "station", "site", "check", str(bad))
    assert code == 2
    assert err.startswith(f"{bad}: sites[0](id='boulangerie-martin').contacts[2](name=")
    assert ".role = 'cook': must be 'keyholder', 'guard'" in err
    code, out, _ = run(capsys, "station", "site", "load", str(SITE), "--db", str(db), "--by", "sam")
    assert (code, out) == (0, "site boulangerie-martin created: Boulangerie Martin (1 box(es))\n")
    code, out, _ = run(capsys, "station", "site", "load", str(SITE), "--db", str(db), "--by", "sam")
    assert "updated" in out
    code, out, _ = run(capsys, "station", "site", "list", "--db", str(db), "--json")
    assert [json.loads(line)["devices"] for line in out.splitlines()] == [["demo-box-01"]]
    code, out, _ = run(capsys, "station", "site", "show", "boulangerie-martin", "--db", str(db))
    assert json.loads(out)["contacts"][0]["name"] == "Paul Martin (gérant)"
    assert run(capsys, "station", "site", "show", "nope", "--db", str(db))[0] == 1
    assert run(capsys, "station", "site", "remove", "boulangerie-martin", "--db", str(db),
               "--by", "sam")[0] == 0  # fmt: skip
    store = StationStore(db)
    store.open()
    try:
        with store.read() as tx:
            lines = courante.page(tx, courante.Filter(), None, 10)
    finally:
        store.close()
    assert [(e.operator, e.detail["change"]) for e in lines] == [
        ("sam", "created"), ("sam", "updated"), ("sam", "removed"),
    ]  # fmt: skip


def test_the_main_courante_as_csv_on_stdout(
    db: Path, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    store = StationStore(db)
    store.open()
    file(store, event("a1", 1), at_ms=T0)
    store.close()
    assert main(["station", "courante", "--db", str(db), "--lang", "en"]) == 0
    out = capsysbinary.readouterr().out
    rows = list(csv.reader(io.StringIO(out.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Time", "Operator", "Site"]
    assert [(r[1], r[4], r[5]) for r in rows[1:]] == [
        ("Station", "Opened", "Incident opened: Intrusion")
    ]
    assert main(["station", "courante", "--db", str(db), "--since", "1m"]) == 0
    assert capsysbinary.readouterr().out.count(b"\r\n") == 1  # nothing in the last minute
