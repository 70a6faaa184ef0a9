"""Event ids: UUIDv7 (RFC 9562), unique and strictly increasing within the process."""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator

import pytest

from edge import model
from edge.model import new_event_id

T0 = 1_795_875_790_123  # 2026-11-28T14:23:10.123Z


@pytest.fixture(autouse=True)
def fresh_generator(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Isolate each test from ids other tests made in this process."""
    monkeypatch.setattr(model, "_last_ms", 0)
    monkeypatch.setattr(model, "_counter", 0)
    yield


def _ms_of(event_id: str) -> int:
    return uuid.UUID(event_id).int >> 80


def _check_v7(event_id: str) -> uuid.UUID:
    value = uuid.UUID(event_id)
    assert value.version == 7
    assert value.variant == uuid.RFC_4122
    assert str(value) == event_id  # canonical, lower-case, hyphenated form
    return value


def test_is_a_uuid_version_7_with_rfc_variant() -> None:
    event_id = new_event_id(T0)
    value = _check_v7(event_id)
    assert (value.int >> 76) & 0xF == 7
    assert (value.int >> 62) & 0b11 == 0b10


def test_embeds_the_given_millisecond() -> None:
    assert _ms_of(new_event_id(T0)) == T0
    assert _ms_of(new_event_id(T0 + 1)) == T0 + 1
    assert _ms_of(new_event_id(T0 + 86_400_000)) == T0 + 86_400_000


def test_embedded_ms_is_big_endian_prefix_of_the_string() -> None:
    # The first 12 hex digits are the 48-bit timestamp, so string order is time order.
    event_id = new_event_id(T0)
    assert int(event_id.replace("-", "")[:12], 16) == T0


def test_ten_thousand_ids_in_one_millisecond_strictly_increase() -> None:
    ids = [new_event_id(T0) for _ in range(10_000)]
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert len(set(ids)) == len(ids)
    for event_id in ids:
        _check_v7(event_id)
    stamps = [_ms_of(i) for i in ids]
    assert stamps[0] == T0
    # Exhausting the 12-bit counter may borrow the next milliseconds, but only a few.
    assert stamps == sorted(stamps)
    assert stamps[-1] - T0 <= 3


def test_ids_strictly_increase_across_milliseconds() -> None:
    ids = [new_event_id(T0 + ms) for ms in range(200) for _ in range(50)]
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert len(set(ids)) == len(ids)
    assert _ms_of(ids[0]) == T0
    assert _ms_of(ids[-1]) == T0 + 199


def test_first_id_of_each_new_millisecond_carries_that_millisecond() -> None:
    for ms in range(T0, T0 + 100):
        first = new_event_id(ms)
        new_event_id(ms)
        assert _ms_of(first) == ms


def test_clock_going_back_still_increases() -> None:
    before = [new_event_id(T0) for _ in range(10)]
    after = [new_event_id(T0 - 5_000) for _ in range(10)]
    later = new_event_id(T0 - 4_000)
    ids = [*before, *after, later]
    assert all(a < b for a, b in itertools.pairwise(ids))
    assert len(set(ids)) == len(ids)
    # The time in the id does not go back with the clock.
    assert all(_ms_of(i) >= T0 for i in ids)
    # When the clock passes the last time again, ids carry the real time again.
    recovered = new_event_id(T0 + 1)
    assert recovered > later
    assert _ms_of(recovered) == T0 + 1


def test_clock_going_back_after_counter_exhaustion() -> None:
    ids = [new_event_id(T0) for _ in range(5_000)]
    ids += [new_event_id(T0 - 1) for _ in range(5_000)]
    ids += [new_event_id(T0 + 1) for _ in range(100)]
    assert all(a < b for a, b in itertools.pairwise(ids))


def test_unique_across_threads() -> None:
    results: list[list[str]] = [[] for _ in range(4)]

    def make(out: list[str]) -> None:
        out.extend(new_event_id(T0) for _ in range(2_500))

    threads = [threading.Thread(target=make, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [i for out in results for i in out]
    assert len(set(every)) == 10_000
    for out in results:  # each thread sees its own ids increase
        assert all(a < b for a, b in itertools.pairwise(out))


def test_random_bits_vary() -> None:
    # The 62 random bits must actually vary (not a constant or a counter).
    ids = [new_event_id(T0 + n) for n in range(64)]
    tails = {uuid.UUID(i).int & ((1 << 62) - 1) for i in ids}
    assert len(tails) == 64
