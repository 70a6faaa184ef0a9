"""Sites from a TOML or JSON file, validated like the box's config (file, key path, value,
rule), and what a box puts in an alarm's ``extra`` read for the operator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.errors import ConfigError
from edge.station import extras, sites
from tests.conftest import REPO

GOOD = """
[[sites]]
id = "shop"
name = "Boulangerie Martin"
address = "12 rue de la Paix, 75002 Paris"
latitude = 48.8686
longitude = 2.3314
devices = ["gw-1"]

[sites.instructions]
fire = ["Appeler les pompiers (18)", "Appeler le gérant"]
default = ["Lever le doute par la vidéo"]

[[sites.contacts]]
name = "Paul Martin"
role = "keyholder"
phone = "+33 6 12 34 56 78"
"""


def test_a_toml_file_a_json_file_and_one_site_at_the_top_level(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD)
    (site,) = sites.parse_file(tmp_path / "a.toml")
    assert (site.id, site.latitude, site.devices) == ("shop", 48.8686, ("gw-1",))
    assert site.steps("fire") == ["Appeler les pompiers (18)", "Appeler le gérant"]
    assert site.steps("intrusion") == ["Lever le doute par la vidéo"]  # the default ones
    (tmp_path / "b.json").write_text(json.dumps({"id": "depot", "name": "Dépôt"}))
    (depot,) = sites.parse_file(tmp_path / "b.json")
    assert (depot.id, depot.contacts, depot.steps("fire")) == ("depot", (), [])


def test_the_demo_site_file_is_valid() -> None:
    (site,) = sites.parse_file(REPO / "config" / "demo-site.toml")
    assert site.devices == ("demo-box-01",)
    assert site.steps("fire") and site.contacts


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("latitude = 48.8686", "", "sites[0](id='shop'): latitude and longitude go together"),
        ("latitude = 48.8686", "latitude = 98.0",
         "sites[0](id='shop').latitude = 98.0: Input should be less than or equal to 90"),
        ('role = "keyholder"', 'role = "cook"',
         "sites[0](id='shop').contacts[0](name='Paul Martin').role = 'cook': must be "),
        ('phone = "+33 6 12 34 56 78"', 'phone = "call me"',
         "sites[0](id='shop').contacts[0](name='Paul Martin').phone = 'call me': must be a "
         "phone number"),
        ("fire = [", "blaze = [",
         "sites[0](id='shop').instructions.blaze = 'blaze': must be 'fire', 'panic'"),
        ('id = "shop"', 'id = "Shop 1"',
         "sites[0](id='Shop 1').id = 'Shop 1': must be 1-63 characters"),
        ('name = "Boulangerie Martin"', 'name = "  "',
         "sites[0](id='shop').name = '  ': must not be empty"),
        ('devices = ["gw-1"]', 'devices = "gw-1"',
         "sites[0](id='shop').devices = 'gw-1': must be a list"),
    ],
)  # fmt: skip
def test_every_problem_names_the_file_the_key_the_value_and_the_rule(
    tmp_path: Path, old: str, new: str, message: str
) -> None:
    path = tmp_path / "a.toml"
    path.write_text(GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError) as caught:
        sites.parse_file(path)
    got = [m.replace(str(path), "a.toml") for m in caught.value.messages]
    assert any(m.startswith("a.toml: " + message) for m in got), got


def test_a_box_is_on_one_site_and_ids_are_unique(tmp_path: Path) -> None:
    twice = GOOD + GOOD.replace('id = "shop"', 'id = "shop2"')
    (tmp_path / "a.toml").write_text(twice + GOOD)
    with pytest.raises(ConfigError) as caught:
        sites.parse_file(tmp_path / "a.toml")
    text = "\n".join(caught.value.messages)
    assert "sites[1](id='shop2').devices[0] = 'gw-1': already on site 'shop'" in text
    assert "sites[2](id='shop').id = 'shop': another site has this id" in text
    (tmp_path / "b.toml").write_text("not = [toml")
    with pytest.raises(ConfigError, match="syntax error"):
        sites.parse_file(tmp_path / "b.toml")


# -- what the box puts in extra --------------------------------------------------------


def test_one_camera_s_video_and_evidence_as_the_box_writes_them() -> None:
    extra = {
        "camera": "entrance", "clip_id": "c1", "clip_event": "ev-0", "clip_pre_s": "5.00",
        "clip_post_s": "5.00", "clip_start_ms": "1000", "still_ids": "s1 s2 s3",
        "still_offsets_s": "-1 0 1", "motion_camera": "entrance", "motion_seen": "true",
        "motion_frames": "12", "motion_areas": "door,yard", "motion_boxes": "1,2,3,4;5,6,7,8",
        "motion_last_at": "2026-11-28T14:23:10.123Z",
    }  # fmt: skip
    (video,) = extras.videos(extra)
    assert (video.camera, video.clip_id, video.clip_event, video.pre_s, video.start_ms) == (
        "entrance", "c1", "ev-0", 5.0, 1000,
    )  # fmt: skip
    assert video.stills == (("s1", -1.0), ("s2", 0.0), ("s3", 1.0))
    assert video.media_ids() == ["s1", "s2", "s3", "c1"]
    (seen,) = extras.evidence(extra)
    assert seen.as_dict() == {
        "camera": "entrance", "seen": True, "frames": 12, "areas": ["door", "yard"],
        "boxes": [[1, 2, 3, 4], [5, 6, 7, 8]], "last_at": "2026-11-28T14:23:10.123Z",
        "person": None, "person_confidence": None, "person_box": None,
    }  # fmt: skip


def test_the_box_s_person_check_is_read_and_a_garbled_answer_left_out() -> None:
    extra = {
        "porch:motion_seen": "true", "porch:motion_person": "yes",
        "porch:motion_person_confidence": "0.83", "porch:motion_person_box": "10,20,30,60",
        "yard:motion_seen": "true", "yard:motion_person": "no",
        "yard:motion_person_confidence": "0.10", "yard:motion_person_box": "",
        "gate:motion_seen": "true", "gate:motion_person": "",
        "shed:motion_seen": "true", "shed:motion_person": "perhaps",
        "shed:motion_person_confidence": "7", "shed:motion_person_box": "1,2",
    }  # fmt: skip
    found = {e.camera: e for e in extras.evidence(extra)}
    assert (found["porch"].person, found["porch"].person_confidence) == (True, 0.83)
    assert found["porch"].as_dict()["person_box"] == [10, 20, 30, 60]
    assert (found["yard"].person, found["yard"].person_box) == (False, None)
    assert found["gate"].person is None  # the check had not looked yet
    shed = found["shed"]
    assert (shed.person, shed.person_confidence, shed.person_box) == (None, None, None)


def test_several_cameras_prefix_their_keys_and_a_garbled_value_is_left_out() -> None:
    extra = {
        "porch:camera": "porch", "porch:clip_id": "c1", "porch:clip_pre_s": "oops",
        "porch:still_ids": "s1", "yard:camera": "yard", "yard:still_ids": "s2 s3",
        "yard:still_offsets_s": "0", "porch:motion_seen": "false", "yard:motion_seen": "maybe",
        "yard:motion_boxes": "1,2,3", "reason": "armed",
    }  # fmt: skip
    videos = {v.camera: v for v in extras.videos(extra)}
    assert videos["porch"].pre_s is None and videos["porch"].clip_id == "c1"
    assert videos["yard"].stills == (("s2", 0.0), ("s3", None))
    evidence = {e.camera: e for e in extras.evidence(extra)}
    assert (evidence["porch"].seen, evidence["yard"].seen, evidence["yard"].boxes) == (
        False, None, (),
    )  # fmt: skip
    assert extras.cameras(extra) == ["porch", "yard"]
