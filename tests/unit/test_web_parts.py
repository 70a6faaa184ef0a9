"""The web stage's pure parts: password hashes, lockout, sessions, PNG, metrics (the journal:
test_web_journal.py)."""

from __future__ import annotations

import json
import re
import struct
import tomllib
import zlib
from pathlib import Path

import numpy as np
import pytest

from edge import i18n, status
from edge.boxweb import config_file as boxweb
from edge.boxweb.cameras import lores_to_camera as boxes_scaled
from edge.boxweb.walk import parse_summary
from edge.codes import TABLE, Kind, ZoneType
from edge.config import load
from edge.inputs import walktest
from edge.model import ZoneChanged
from edge.web import auth, journal_media, metrics
from edge.web.png import gray_png
from tests.conftest import DEMO_API_TOKEN, DEMO_CONFIG

# -- passwords -----------------------------------------------------------------


def test_a_password_hash_verifies_only_its_password() -> None:
    line = auth.hash_password("the right password")
    assert line.startswith("scrypt$16384$8$1$")
    assert auth.verify_password("the right password", line)
    assert not auth.verify_password("the wrong password", line)
    assert not auth.verify_password("the right passworD", line)
    assert auth.hash_password("the right password") != line  # salted


@pytest.mark.parametrize(
    "stored", ["", "garbage", "md5$abc", "scrypt$x$8$1$AA==$AA==", "scrypt$16384$8$1$!!$AA=="]
)
def test_a_damaged_hash_line_never_verifies(stored: str) -> None:
    assert not auth.verify_password("anything at all", stored)


@pytest.mark.parametrize("password", ["", "short", "x" * 9, "x" * 257])
def test_password_rules(password: str) -> None:
    with pytest.raises(auth.AuthError, match="10 to 256"):
        auth.hash_password(password)


def test_the_password_file_is_private_and_replaced(tmp_path: Path) -> None:
    web = tmp_path / "web"
    assert auth.read_password(web) is None
    auth.write_password(web, "first password")
    auth.write_password(web, "second password")
    stored = auth.read_password(web)
    assert stored is not None and auth.verify_password("second password", stored)
    assert (web / "password").stat().st_mode & 0o777 == 0o600
    assert web.stat().st_mode & 0o777 == 0o700
    assert [p.name for p in web.iterdir()] == ["password"]


def test_setup_codes_are_random_and_typable() -> None:
    codes = {auth.setup_code() for _ in range(50)}
    assert len(codes) == 50
    for code in codes:
        assert len(code) == 14 and code.count("-") == 2
        assert not set(code) & set("01IO")


# -- lockout and sessions ----------------------------------------------------------


def test_lockout_per_client_doubles_and_resets_on_success() -> None:
    lock = auth.Lockout(max_failures=3, lockout_s=10)
    for _ in range(2):
        lock.failed("a", 0.0)
    assert lock.retry_after_s("a", 0.0) == 0
    lock.failed("a", 0.0)
    assert lock.retry_after_s("a", 1.0) == 9
    assert lock.retry_after_s("b", 1.0) == 0  # another client is not locked
    for _ in range(3):
        lock.failed("a", 10.0)
    assert lock.retry_after_s("a", 10.0) == 20  # second lockout: doubled
    lock.succeeded("a")
    assert lock.retry_after_s("a", 10.0) == 0


def test_lockout_box_wide_when_many_clients_guess() -> None:
    lock = auth.Lockout(max_failures=3, lockout_s=10)
    for n in range(30):  # 10 clients' worth, each below its own limit
        lock.failed(f"client-{n}", 0.0)
    assert lock.retry_after_s("fresh", 1.0) == 9
    assert lock.retry_after_s("fresh", 11.0) == 0


def test_sessions_expire_when_idle_and_are_dropped() -> None:
    sessions = auth.Sessions(idle_s=60)
    sid, session = sessions.create(0.0)
    assert sessions.get(sid, 59.0) is session  # and use refreshes it
    assert sessions.get(sid, 118.0) is session
    assert sessions.get(sid, 179.0) is None
    sid, _ = sessions.create(200.0)
    sessions.drop(sid)
    assert sessions.get(sid, 200.0) is None
    assert sessions.get(None, 0.0) is None and sessions.get("nope", 0.0) is None


def test_same_secret() -> None:
    assert auth.same_secret("abc", "abc")
    assert not auth.same_secret("abc", "abd")
    assert not auth.same_secret("", "")
    assert not auth.same_secret(None, "abc") and not auth.same_secret("abc", None)


# -- PNG and metrics -----------------------------------------------------------------


def test_gray_png_round_trips() -> None:
    gray = np.arange(48 * 32, dtype=np.uint32).reshape(32, 48).astype(np.uint8)
    data = gray_png(gray)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height, depth, colour = struct.unpack(">IIBB", data[16:26])
    assert (width, height, depth, colour) == (48, 32, 8, 0)
    idat_len = struct.unpack(">I", data[33:37])[0]
    assert data[37:41] == b"IDAT"
    raw = zlib.decompress(data[41 : 41 + idat_len])
    rows = np.frombuffer(raw, dtype=np.uint8).reshape(32, 49)
    assert (rows[:, 0] == 0).all()
    assert (rows[:, 1:] == gray).all()
    with pytest.raises(ValueError):
        gray_png(np.zeros((2, 2, 3), dtype=np.uint8))


def test_metrics_skip_missing_figures_and_escape_labels() -> None:
    text = metrics.render(
        {
            "outbox": {"depth": 3, "oldest_age_s": None},
            "uplink": {"connected": False},
            "zones": {"zones": [{"id": 'a"b', "active": False, "changes": 2}]},
            "healthy": False,
        }
    )
    lines = text.splitlines()
    assert "edge_outbox_depth 3" in lines
    assert not any(line.startswith("edge_outbox_oldest_age_seconds ") for line in lines)
    assert "edge_uplink_connected 0" in lines
    assert 'edge_zone_changes_total{zone="a\\"b"} 2' in lines
    assert "edge_healthy 0" in lines


# -- the config as the page shows it -----------------------------------------------------


def test_the_shown_config_is_valid_toml_without_secrets() -> None:
    cfg = load(DEMO_CONFIG)
    text = boxweb.to_toml(cfg.model_dump(mode="json", exclude_none=True))
    data = tomllib.loads(text)
    assert data["device"]["id"] == cfg.device.id
    assert [z["id"] for z in data["zones"]] == [z.id for z in cfg.zones]
    assert DEMO_API_TOKEN not in text and data["web"]["api_token"] == "**********"


def test_motion_boxes_are_drawn_in_the_camera_pixels() -> None:
    boxes = [[10, 20, 5, 8], [0, 0, 160, 90]]
    assert boxes_scaled(boxes, [160, 90], 640, 360) == [[40, 80, 20, 32], [0, 0, 640, 360]]
    assert boxes_scaled(boxes, None, 640, 360) == []
    assert boxes_scaled(boxes, [0, 0], 640, 360) == []


async def test_apply_refuses_a_config_it_cannot_write(tmp_path: Path) -> None:
    path = tmp_path / "edge.toml"
    path.write_text(DEMO_CONFIG.read_text())
    restarts: list[int] = []
    config = boxweb.ConfigFile(load(path), path, tmp_path / "web", lambda: restarts.append(1))
    (tmp_path / "edge.toml.tmp").mkdir()  # the new file cannot be written (even by root)
    with pytest.raises(ValueError, match="cannot write the new config"):
        await config.apply(DEMO_CONFIG.read_text().replace("Demo site", "Other site"))
    assert restarts == [] and path.read_text() == DEMO_CONFIG.read_text()
    assert not (tmp_path / "web" / boxweb.APPLY_MARKER).exists()  # no probation left behind


async def test_apply_through_the_link_writes_only_in_the_site_folder(tmp_path: Path) -> None:
    """As installed: /etc/edge/edge.toml -> site/edge.toml, only site/ writable to the box."""
    etc = tmp_path / "etc"
    (etc / "site").mkdir(parents=True)
    (etc / "site" / "edge.toml").write_text(DEMO_CONFIG.read_text())
    link = etc / "edge.toml"
    link.symlink_to("site/edge.toml")
    before = sorted(p.name for p in etc.iterdir())
    restarts: list[int] = []
    config = boxweb.ConfigFile(load(link), link, tmp_path / "web", lambda: restarts.append(1))
    new = DEMO_CONFIG.read_text().replace("Demo site", "Other site")
    await config.apply(new)
    assert restarts == [1]
    assert sorted(p.name for p in etc.iterdir()) == before  # nothing written beside the link
    assert link.is_symlink() and link.read_text() == new
    assert (etc / "site" / "edge.toml.previous").read_text() == DEMO_CONFIG.read_text()
    assert boxweb.roll_back(link, tmp_path / "web", "not healthy")
    assert link.is_symlink() and link.read_text() == DEMO_CONFIG.read_text()


def test_metrics_cover_the_status_page_s_figures_and_leave_unknowns_out() -> None:
    status = {
        "device": {"id": "gw-1", "version": "1.2.3", "boot_id": "b-1", "uptime_s": 7},
        "system": {
            "cpu_temp_c": None,  # no thermal sensor: absent
            "clock_synchronized": None,  # cannot be read: absent
            "clock_offset_ms": -12.5,
            "disk_free_bytes": 1000,
            "process_rss_bytes": 50_000_000,
            "process_cpu_s": 3.5,
        },
        "cameras": {
            "door": {
                "state": "running",
                "fps": 14.8,
                "frames": 900,
                "dropped": 2,
                "ring_bytes": 4096,
                "ring_seconds": 9.5,
            },
            "yard": {
                "state": "lost",
                "fps": 0.0,
                "frames": 10,
                "dropped": 0,
                "ring_bytes": 0,
                "ring_seconds": 0.0,
            },
        },
        "zones": {"zones": [], "armed": {"1": True}},
        "healthy": True,
    }
    lines = metrics.render(status).splitlines()
    assert 'edge_build_info{version="1.2.3",id="gw-1",boot_id="b-1"} 1' in lines
    assert "process_resident_memory_bytes 50000000" in lines
    assert "process_cpu_seconds_total 3.5" in lines
    assert "edge_disk_free_bytes 1000" in lines
    assert "edge_clock_offset_seconds -0.0125" in lines
    assert not any(
        line.startswith(("edge_cpu_temperature", "edge_clock_synchronized")) for line in lines
    )
    assert 'edge_camera_fps{camera="door"} 14.8' in lines
    assert not any(line.startswith('edge_camera_fps{camera="yard"}') for line in lines)
    assert 'edge_camera_up{camera="yard"} 0' in lines
    assert 'edge_camera_ring_bytes{camera="door"} 4096' in lines
    assert 'edge_partition_armed{partition="1"} 1' in lines
    # the exposition format: one HELP and TYPE per family, then "name{labels} number"
    families = [line.split()[2] for line in lines if line.startswith("# TYPE ")]
    assert len(families) == len(set(families))
    for line in lines:
        if not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            assert name in families
            float(line.rsplit(" ", 1)[1])


# -- the page's words --------------------------------------------------------------------

STATIC = Path(boxweb.__file__).resolve().parents[1] / "web" / "static"
KEY = re.compile(r"^(box|common|lang|unit)\.[a-z0-9_.]*[a-z0-9]$")


def _page_keys() -> tuple[set[str], set[str]]:
    """Every catalogue key the page's HTML and scripts name, and the prefixes they complete
    at run time (``t("box.kind." + e.kind)``)."""
    keys: set[str] = set()
    for html in STATIC.glob("*.html"):
        keys |= set(re.findall(r'data-i18n(?:-[a-z-]+)?="([^"]+)"', html.read_text("utf-8")))
    prefixes: set[str] = set()
    for script in STATIC.glob("*.js"):
        text = script.read_text("utf-8")
        keys |= {s for s in re.findall(r'"([a-z0-9_.]+)"', text) if KEY.match(s)}
        prefixes |= set(re.findall(r't\("([a-z0-9_.]+[._])" \+', text))
    return keys, prefixes


def _families() -> dict[str, set[str]]:
    """What each run-time prefix may be completed with: the values the box sends."""
    return {
        "box.kind.": {k.value for k in Kind},
        "box.cid.": {f"{row.cid:03d}" for row in TABLE},
        "box.zone_type.": {t.value for t in ZoneType},
        "box.provisioning.": {"provisioned", "unprovisioned", "unmanaged"},
        "box.rec.mode_": {"alarms", "motion", "continuous"},
        "box.unit.": {"B", "KiB", "MiB", "GiB", "TiB"},
        "box.wt.ended_": {"timeout", "stopped"},
        "box.route.kind_": {"mqtt", "dc09"},  # edge/routing.py's route kinds
        "box.media.lost_": set(journal_media.KINDS),
        "box.media.": {f"{s}_{k}" for s in ("coming", "here", "gone") for k in journal_media.KINDS}
        - {"here_still", "here_clip"},  # shown, not said
    }


def test_every_word_the_page_uses_is_in_both_catalogues() -> None:
    keys, prefixes = _page_keys()
    families = _families()
    assert prefixes == set(families)  # a new run-time key family is listed here too
    for prefix, endings in families.items():
        keys |= {prefix + e for e in endings}
    # and the verdicts the status view names (edge/status.py)
    status_py = Path(status.__file__).read_text("utf-8")
    keys |= set(re.findall(r'"(box\.health\.[a-z_]+)"', status_py))
    keys |= {f"box.health.zone_{z.value}" for z in status.TROUBLE_ZONES}
    assert len(keys) > 200
    for lang in i18n.LANGS:
        missing = sorted(k for k in keys if k not in i18n.catalogue(lang))
        assert missing == [], lang


def test_no_sentence_in_the_page_s_code() -> None:
    """The page's scripts hold keys; their words are in the catalogues."""
    for script in STATIC.glob("*.js"):
        text = script.read_text("utf-8")
        for literal in re.findall(r'(?:textContent|text:) *= *"([^"]{3,})"', text):
            pytest.fail(f"{script.name}: a sentence in code: {literal!r}")
    for page in ("index.html", "login.html"):
        html = (STATIC / page).read_text("utf-8")
        visible = re.sub(r"<[^>]+>", " ", html)
        assert visible.split() == [], (page, visible.split())  # all from data-i18n


# -- the walk test's result, the events' media, the config's probation ------------------


def test_a_walk_test_summary_is_read_back_into_its_lists() -> None:
    zones = {z.id: z for z in load(DEMO_CONFIG).zones}
    walk = walktest.start(zones, 100.0, 300)
    walk = walktest.observe(walk, ZoneChanged("in1", "front-door", True, 130.0, 0))
    for ended_by in ("timeout", "stopped"):
        summary = walktest.finish(walk, 400.0, ended_by)
        assert parse_summary(summary.text) == {
            "seen": ["front-door"],
            "not_seen": ["hall-pir"],
            "ended_by": ended_by,
            "duration_s": 300,
            "text": summary.text,
        }
    nothing = walktest.finish(walktest.start(zones, 0.0, 60), 60.0, "timeout")
    assert parse_summary(nothing.text)["seen"] == []  # type: ignore[index]
    assert parse_summary("periodic test report #3") is None


def test_the_media_an_event_announces() -> None:
    one = {"camera": "door", "clip_id": "c1", "still_ids": "s1 s2", "clip_pre_s": "5.00"}
    assert journal_media.announced(one) == (
        journal_media.Announced("s1", "still", "door"),
        journal_media.Announced("s2", "still", "door"),
        journal_media.Announced("c1", "clip", "door"),
    )
    two = {"a:camera": "a", "a:clip_id": "ca", "a:still_ids": "sa", "b:clip_id": "cb"}
    assert [(m.id, m.camera) for m in journal_media.announced(two)] == [
        ("sa", "a"),
        ("ca", "a"),
        ("cb", "b"),
    ]
    assert journal_media.loads(journal_media.dumps(journal_media.announced(one))) == (
        journal_media.announced(one)
    )
    assert journal_media.loads("not json") == () and journal_media.announced({}) == ()


def _probation(tmp_path: Path, answers: list[tuple[dict[str, str], bool]]) -> boxweb.Probation:
    """A config on probation whose health reads ``answers`` in turn (problems, settling)."""
    path = tmp_path / "edge.toml"
    path.write_text("new")
    (tmp_path / "edge.toml.previous").write_text("old")
    marker = tmp_path / "web"
    marker.mkdir()
    (marker / boxweb.APPLY_MARKER).write_text(
        json.dumps({"previous": str(tmp_path / "edge.toml.previous")})
    )
    state = iter(answers)
    now: list[tuple[dict[str, str], bool]] = [next(state)]

    def problems() -> dict[str, str]:
        return now[0][0]

    def settling() -> bool:
        settled = now[0][1]
        now[0] = next(state, now[0])  # each look at the box moves on
        return settled

    return boxweb.Probation(
        path, marker, 0.0, problems, lambda: None, settling, settle_max_s=0.005, poll_s=0.001
    )


@pytest.mark.parametrize(
    ("answers", "kept"),
    [
        ([({}, False)], True),  # healthy at once
        ([({}, True), ({}, True), ({}, False)], True),  # a camera starting, then running
        ([({}, True), ({"path": "no link"}, False)], False),  # connecting, then refused
        ([({"path": "no link"}, False)], False),  # a problem at once
        ([({}, True)], False),  # still starting when the wait is over
    ],
    ids=["healthy", "settles", "turns-bad", "bad", "never-settles"],
)
async def test_probation_waits_for_what_is_starting_not_for_problems(
    tmp_path: Path, answers: list[tuple[dict[str, str], bool]], kept: bool
) -> None:
    probation = _probation(tmp_path, answers)
    assert await probation.run() is kept
    assert (tmp_path / "edge.toml").read_text() == ("new" if kept else "old")
    assert not probation.pending()
