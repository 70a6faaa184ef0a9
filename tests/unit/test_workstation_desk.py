"""The workstation's back-end on SQLite and PostgreSQL: incidents filed as events are
stored, the queue's order, take in charge (one holder, atomic across connections),
restores, escalation, the close rules and the append-only main courante."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from edge.codes import Condition
from edge.errors import NotFound, StorageError
from edge.station import courante, filing, incidents, sites, triage, views
from edge.station.inbound import MediaLostReceived, StateReceived
from edge.station.incidents import Refused
from edge.station.store import StationStore
from tests.deskkit import T0, event, file, operators, video_extra
from tests.postgres import postgres  # noqa: F401 (fixture)
from tests.stores import MakeStore


@pytest.fixture
def store(make_store: MakeStore) -> Iterator[StationStore]:
    s = make_store()
    s.open()
    operators(s)
    yield s
    s.close()


def queue(store: StationStore, now_ms: int = T0, escalate_s: float = 60) -> list[dict[str, Any]]:
    with store.read() as db:
        return list(views.queue(db, now_ms, escalate_s)["rows"])


def tx(store: StationStore, fn: Callable[..., Any], *args: Any) -> Any:
    with store.transaction() as db:
        return fn(db, *args)


def lines(store: StationStore, incident_id: str) -> list[tuple[str, str]]:
    with store.read() as db:
        return [(e.operator, e.action) for e in courante.of_incident(db, incident_id)]


# -- pure rules ----------------------------------------------------------------------


def test_the_priority_ladder_and_what_is_filed_where() -> None:
    order = [c.value for c in sorted(triage.Category, key=triage.PRIORITY.__getitem__)]
    assert order == ["fire", "panic", "intrusion", "tamper", "technical", "device_lost"]
    cid = "1130"
    assert triage.filing("alarm", "fire", "k", "1110") == triage.Alarm(
        triage.Category.FIRE, "k:110"
    )
    assert triage.filing("alarm", "holdup", "t", "1122").category is triage.Category.PANIC  # type: ignore[union-attr]
    assert triage.filing("trouble", "ac_loss", "m", "1301").category is triage.Category.TECHNICAL  # type: ignore[union-attr]
    assert triage.filing("restore", "burglary", "hall", "3130") == triage.Restore("hall:130")
    for kind in ("arm", "disarm", "test", "motion"):
        assert triage.filing(kind, "open_close", None, cid) is None
    assert triage.close_problem(None, 0, "") == "no_outcome"
    assert triage.close_problem("real", 1, "  ") == "not_restored"
    assert triage.close_problem("real", 1, "site checked by the guard") is None
    assert triage.close_problem("false_cause", 0, "") is None
    assert not triage.escalated(None, T0, T0 + 59_999, 60)
    assert triage.escalated(None, T0, T0 + 60_000, 60)
    assert not triage.escalated("alice", T0, T0 + 600_000, 60)


# -- filing and the queue -------------------------------------------------------------


def test_the_queue_is_by_priority_then_age_and_keeps_out_restores_arming_and_tests(
    store: StationStore,
) -> None:
    kinds = [Condition.AC_LOSS, Condition.BURGLARY, Condition.SENSOR_TAMPER, Condition.FIRE,
             Condition.PANIC, Condition.HOLDUP]  # fmt: skip
    for n, condition in enumerate(kinds):  # one box (so one site) each, a second apart
        file(store, event(f"ev-{n}", 1, condition, device=f"gw-{n}"), at_ms=T0 + n * 1000)
    file(store, event("arm", 2, Condition.OPEN_CLOSE, restore=True, device="gw-9"),
         event("test", 3, Condition.MANUAL_TEST, device="gw-9"),
         event("rst", 4, Condition.BURGLARY, restore=True, device="gw-9"))  # fmt: skip
    with store.transaction() as db:  # the station's own alarm, too
        filing.file(db, [filing.of_station("lost-1", "gw-8", True, T0 - 5000)], T0 - 5000)
    rows = queue(store)
    assert [(r["category"], r["top"]["alarm_id"]) for r in rows] == [
        ("fire", "ev-3"), ("panic", "ev-4"), ("panic", "ev-5"), ("intrusion", "ev-1"),
        ("tamper", "ev-2"), ("technical", "ev-0"), ("device_lost", "lost-1"),
    ]  # fmt: skip
    assert all(r["holder"] is None and not r["closed"] for r in rows)


def test_alarms_of_one_site_are_one_incident_that_takes_the_most_urgent_priority(
    store: StationStore,
) -> None:
    with store.transaction() as db:
        sites.put(db, sites.parse_site({"id": "shop", "name": "Shop",
                                        "devices": ["gw-1", "gw-2"]}), "sam", T0)  # fmt: skip
    file(store, event("a1", 1, Condition.BURGLARY, device="gw-1"))
    file(store, event("a2", 1, Condition.FIRE, device="gw-2"), at_ms=T0 + 1000)
    file(store, event("a3", 2, Condition.BURGLARY, device="gw-1"), at_ms=T0 + 2000)
    (row,) = queue(store)
    assert (row["site"], row["alarms"], row["category"], row["top"]["alarm_id"]) == (
        "Shop", 3, "fire", "a2",
    )  # fmt: skip
    assert row["opened_ms"] == T0  # its age: since the first alarm
    file(store, event("a1", 1, Condition.BURGLARY, device="gw-1"))  # a resend: filed once
    assert queue(store)[0]["alarms"] == 3


def test_a_restore_brings_back_to_normal_only_the_alarms_of_its_zone_before_it(
    store: StationStore,
) -> None:
    file(store, event("a1", 1), event("f1", 2, Condition.FIRE))
    file(store, event("r1", 3, restore=True))
    file(store, event("a2", 4))  # the same zone trips again after its restore
    (row,) = queue(store)
    incident_id = row["id"]
    with store.read() as db:
        detail = views.incident(db, incident_id, T0, 60)
    assert detail is not None
    restored = {a["id"]: a["restored_ms"] is not None for a in detail["alarms"]}
    assert restored == {"a1": True, "f1": False, "a2": False}
    assert row["unrestored"] == 2
    file(store, event("r2", 5, restore=True), event("fr", 6, Condition.FIRE, restore=True))
    assert queue(store)[0]["unrestored"] == 0
    assert [a for _, a in lines(store, incident_id)] == ["opened"] + ["restored"] * 3


# -- take in charge ----------------------------------------------------------------


def test_one_holder_a_second_take_is_told_who_holds_it(store: StationStore) -> None:
    file(store, event("a1", 1))
    incident_id = queue(store)[0]["id"]
    tx(store, incidents.take, incident_id, "alice", T0 + 1000)
    with pytest.raises(Refused) as refused:
        tx(store, incidents.take, incident_id, "bob", T0 + 1100)
    assert (refused.value.code, refused.value.params) == ("held", {"holder": "alice"})
    tx(store, incidents.take, incident_id, "alice", T0 + 1200)  # her own: nothing happens
    with pytest.raises(Refused) as refused:
        tx(store, incidents.release, incident_id, "bob", "operator", T0 + 1300)
    assert refused.value.code == "not_holder"
    tx(store, incidents.transfer, incident_id, "alice", "operator", "bob", T0 + 1400)
    assert queue(store)[0]["holder"] == "bob"
    tx(store, incidents.release, incident_id, "sam", "supervisor", T0 + 1500)  # a supervisor
    row = queue(store)[0]
    assert (row["holder"], row["waiting_ms"]) == (None, T0 + 1500)  # waits anew
    with pytest.raises(NotFound):
        tx(store, incidents.take, "no-such-incident", "alice", T0)
    assert lines(store, incident_id) == [
        ("", "opened"), ("alice", "take"), ("alice", "transfer"), ("sam", "release"),
    ]  # fmt: skip


def race(
    store: StationStore,
    who: str,
    incident_id: str,
    go: threading.Barrier,
    results: dict[str, str],
) -> None:
    go.wait()
    try:
        tx(store, incidents.take, incident_id, who, T0)
        results[who] = "taken"
    except Refused as exc:
        results[who] = f"{exc.code}:{exc.params['holder']}"


def test_two_operators_racing_on_two_connections_one_gets_it(make_store: MakeStore) -> None:
    first, second = make_store(), make_store()
    first.open()
    second.open()
    try:
        for round_ in range(5):
            file(first, event(f"a{round_}", round_ + 1, device=f"gw-{round_}"))
            incident_id = next(r["id"] for r in queue(first) if r["holder"] is None)
            results: dict[str, str] = {}
            go = threading.Barrier(2)
            threads = [
                threading.Thread(target=race, args=(s, w, incident_id, go, results))
                for s, w in ((first, "alice"), (second, "bob"))
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join(10)
            winner = next(w for w, r in results.items() if r == "taken")
            loser = "bob" if winner == "alice" else "alice"
            assert results == {winner: "taken", loser: f"held:{winner}"}
            with first.read() as db:
                takes = [e for e in courante.of_incident(db, incident_id) if e.action == "take"]
            assert [e.operator for e in takes] == [winner]
    finally:
        first.close()
        second.close()


# -- escalation ----------------------------------------------------------------------


def test_an_incident_nobody_takes_escalates_once(store: StationStore) -> None:
    file(store, event("a1", 1))
    incident_id = queue(store)[0]["id"]
    assert tx(store, incidents.escalate_due, T0 + 59_000, 60) == []
    assert not queue(store, T0 + 59_000)[0]["escalated"]
    assert tx(store, incidents.escalate_due, T0 + 60_000, 60) == [incident_id]
    assert tx(store, incidents.escalate_due, T0 + 90_000, 60) == []  # once
    assert queue(store, T0 + 60_000)[0]["escalated"]
    tx(store, incidents.take, incident_id, "alice", T0 + 61_000)
    assert not queue(store, T0 + 200_000)[0]["escalated"]
    tx(store, incidents.release, incident_id, "alice", "operator", T0 + 300_000)
    assert tx(store, incidents.escalate_due, T0 + 330_000, 60) == []  # its timer starts again
    assert tx(store, incidents.escalate_due, T0 + 360_000, 60) == [incident_id]
    assert [a for _, a in lines(store, incident_id)].count("escalated") == 2


# -- closing ---------------------------------------------------------------------------


def test_closing_needs_an_outcome_and_the_restore_or_a_written_reason(
    store: StationStore,
) -> None:
    file(store, event("f1", 1, Condition.FIRE))
    incident_id = queue(store)[0]["id"]
    tx(store, incidents.take, incident_id, "alice", T0 + 1000)
    with pytest.raises(Refused) as refused:
        tx(store, incidents.close, incident_id, "alice", "operator", "", T0 + 2000)
    assert refused.value.code == "no_outcome"
    with pytest.raises(Refused):
        tx(store, incidents.set_outcome, incident_id, "alice", "operator", "maybe", "", T0)
    tx(store, incidents.set_outcome, incident_id, "alice", "operator", "real", "toast", T0 + 3000)
    with pytest.raises(Refused) as refused:
        tx(store, incidents.close, incident_id, "alice", "operator", "   ", T0 + 4000)
    assert (refused.value.code, refused.value.params) == ("not_restored", {"unrestored": "1"})
    with pytest.raises(Refused) as refused:
        tx(store, incidents.close, incident_id, "bob", "operator", "", T0 + 4000)
    assert refused.value.code == "not_holder"
    file(store, event("f1r", 2, Condition.FIRE, restore=True), at_ms=T0 + 5000)
    tx(store, incidents.close, incident_id, "alice", "operator", "", T0 + 6000)
    assert queue(store) == []
    with pytest.raises(Refused) as refused:
        tx(store, incidents.take, incident_id, "bob", T0 + 7000)
    assert refused.value.code == "closed"
    file(store, event("f2", 3, Condition.FIRE), at_ms=T0 + 8000)  # a new one: a new incident
    (row,) = queue(store)
    assert row["id"] != incident_id


def test_a_close_without_return_to_normal_keeps_its_reason(store: StationStore) -> None:
    file(store, event("a1", 1))
    incident_id = queue(store)[0]["id"]
    tx(store, incidents.take, incident_id, "alice", T0)
    tx(store, incidents.set_outcome, incident_id, "alice", "operator", "technical", "", T0)
    tx(store, incidents.close, incident_id, "alice", "operator", " detector faulty ", T0 + 1)
    with store.read() as db:
        last = courante.of_incident(db, incident_id)[-1]
    assert (last.action, last.detail, last.text) == ("closed", {"restored": False},
                                                     "detector faulty")  # fmt: skip


# -- the main courante -----------------------------------------------------------------


def test_the_main_courante_refuses_every_update_and_delete(store: StationStore) -> None:
    file(store, event("a1", 1))
    incident_id = queue(store)[0]["id"]
    tx(store, incidents.act, incident_id, "bob", "operator", "comment", {}, T0, "typo here")
    with store.read() as db:
        wrong = courante.of_incident(db, incident_id)[-1]
    for sql in ("UPDATE courante SET text = 'rewritten'", "DELETE FROM courante",
                f"DELETE FROM courante WHERE id = {wrong.id}"):  # fmt: skip
        with pytest.raises(StorageError, match="append-only"), store.transaction() as db:
            db.execute(sql)
    if store.backend.dialect == "postgresql":
        with pytest.raises(StorageError, match="append-only"), store.transaction() as db:
            db.execute("TRUNCATE courante")
    # a correction is a new line naming the one it corrects
    tx(store, incidents.act, incident_id, "bob", "operator", "correction", {}, T0 + 1,
       "no typo meant", wrong.id)  # fmt: skip
    with store.read() as db:
        entries = courante.of_incident(db, incident_id)
    assert [(e.action, e.text, e.corrects) for e in entries[1:]] == [
        ("comment", "typo here", None), ("correction", "no typo meant", wrong.id),
    ]  # fmt: skip


def test_no_code_path_updates_or_deletes_a_courante_line() -> None:
    root = Path(__file__).resolve().parents[2] / "edge"
    for path in root.rglob("*.py"):
        text = path.read_text().upper()
        for verb in ("UPDATE COURANTE", "DELETE FROM COURANTE", "TRUNCATE COURANTE"):
            assert verb not in text, path


def test_the_courante_reads_in_pages_by_time(store: StationStore) -> None:
    file(store, event("a1", 1))
    incident_id = queue(store)[0]["id"]
    for n in range(25):
        tx(store, incidents.act, incident_id, "bob", "operator", "comment", {}, T0 + n, f"c{n}")
    where = courante.Filter(T0 + 5, T0 + 20, operator="bob")
    got: list[str] = []
    after = None
    with store.read() as db:
        while page := courante.page(db, where, after, 4):
            got += [e.text for e in page]
            after = (page[-1].at_ms, page[-1].id)
    assert got == [f"c{n}" for n in range(5, 20)]


# -- device lost, media, the feed -----------------------------------------------------


def test_a_lost_box_is_an_incident_its_return_a_restore(store: StationStore) -> None:
    store.commit([StateReceived("gw-1", "online", 30, 90)], T0)
    store.supervise(T0 + 60_000, T0)
    assert queue(store) == []
    store.supervise(T0 + 91_000, T0)
    (row,) = queue(store)
    assert (row["category"], row["unrestored"], row["top"]["kind"]) == ("device_lost", 1,
                                                                        "device_lost")  # fmt: skip
    store.commit([StateReceived("gw-1", "online", 30, 90)], T0 + 95_000)
    store.supervise(T0 + 96_000, T0)
    assert queue(store, T0 + 96_000)[0]["unrestored"] == 0


def test_a_box_on_no_site_shows_what_its_birth_said(store: StationStore) -> None:
    from edge.protocol import BoxSite

    store.commit([StateReceived("gw-1", "online", site=BoxSite("Shop", "1 rue X", 1.5, 2.5))], T0)
    file(store, event("a1", 1))
    (row,) = queue(store)
    assert (row["site_key"], row["site"]) == ("box:gw-1", "Shop")
    with store.read() as db:
        detail = views.incident(db, row["id"], T0, 60)
    assert detail is not None
    site = detail["site"]
    assert (site["linked"], site["address"], site["latitude"], site["longitude"]) == (
        False, "1 rue X", 1.5, 2.5,
    )  # fmt: skip


def test_the_feed_gives_what_changed_since_a_version(store: StationStore) -> None:
    with store.read() as db:
        start = views.changed(db, 0, T0, 60)["v"]
    file(store, event("a1", 1, extra=video_extra("a1")))
    with store.read() as db:
        first = views.changed(db, start, T0, 60)
    ((row,),) = [first["rows"]]
    assert row["media"] == {"expected": 6, "ready": 0, "lost": 0}
    tx(store, incidents.take, row["id"], "alice", T0)
    with store.read() as db:
        second = views.changed(db, first["v"], T0, 60)
        assert views.changed(db, second["v"], T0, 60)["rows"] == []
    assert [r["holder"] for r in second["rows"]] == ["alice"]


def test_one_batch_files_alarms_and_restores_in_the_order_they_came(
    store: StationStore,
) -> None:
    file(store, event("a1", 1), event("r1", 2, restore=True), event("a2", 3),
         event("b1", 1, device="gw-2"), event("f1", 4, Condition.FIRE))  # fmt: skip
    rows = {r["site_key"]: r for r in queue(store)}
    one = rows["box:gw-1"]
    assert (one["alarms"], one["unrestored"], one["category"], one["top"]["alarm_id"]) == (
        3, 2, "fire", "f1",
    )  # fmt: skip
    assert (rows["box:gw-2"]["alarms"], rows["box:gw-2"]["unrestored"]) == (1, 1)
    with store.read() as db:
        detail = views.incident(db, one["id"], T0, 60)
    assert detail is not None
    assert {a["id"]: a["restored_ms"] is not None for a in detail["alarms"]} == {
        "a1": True, "a2": False, "f1": False,
    }  # fmt: skip
    # a restore for an incident closed meanwhile, in a batch with a new alarm of the site
    two = rows["box:gw-2"]["id"]
    tx(store, incidents.take, two, "alice", T0)
    tx(store, incidents.set_outcome, two, "alice", "operator", "doubtful", "", T0)
    tx(store, incidents.close, two, "alice", "operator", "no restore yet", T0)
    file(store, event("b1r", 2, restore=True, device="gw-2"), event("b2", 3, device="gw-2"))
    (again,) = [r for r in queue(store) if r["site_key"] == "box:gw-2"]
    assert again["id"] != two and (again["alarms"], again["unrestored"]) == (1, 1)
    with store.read() as db:
        closed = db.execute("SELECT unrestored FROM incidents WHERE id = ?", (two,)).fetchone()
    assert closed[0] == 0


def test_media_the_box_says_are_lost_are_shown_with_why(store: StationStore) -> None:
    file(store, event("a1", 1, extra=video_extra("a1")))
    with store.read() as db:
        start = views.changed(db, 0, T0, 60)["v"]
    why = "not recorded: the box stopped before this clip was complete"
    store.commit([MediaLostReceived("gw-1", "a1", "a1-clip", "clip", why)], T0 + 1000)
    (row,) = queue(store)
    assert row["media"] == {"expected": 6, "ready": 0, "lost": 1}
    with store.read() as db:
        assert [r["id"] for r in views.changed(db, start, T0, 60)["rows"]] == [row["id"]]
        detail = views.incident(db, row["id"], T0, 60)
    assert detail is not None
    (clip,) = [m for m in detail["alarms"][0]["media"] if m["media_id"] == "a1-clip"]
    assert (clip["state"], clip["kind"], clip["reason"]) == ("lost", "clip", why)
