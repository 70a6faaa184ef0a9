"""Edges from another thread into the loop: bounded, one wake-up per batch."""

from __future__ import annotations

import asyncio
import threading

from edge.inputs.relay import EdgeRelay
from edge.model import ZoneChanged


def edge(i: int) -> ZoneChanged:
    return ZoneChanged("in1", "z", i % 2 == 0, i / 1000, i)


async def test_edges_from_a_thread_arrive_in_order_in_few_batches() -> None:
    batches: list[tuple[int, int]] = []
    got: list[ZoneChanged] = []
    done = asyncio.Event()

    def deliver(changes: list[ZoneChanged], dropped: int) -> None:
        batches.append((len(changes), dropped))
        got.extend(changes)
        if len(got) == 5000:
            done.set()

    relay = EdgeRelay(asyncio.get_running_loop(), deliver)
    thread = threading.Thread(target=lambda: [relay.push(edge(i)) for i in range(5000)])
    thread.start()
    await asyncio.wait_for(done.wait(), 5)
    thread.join()
    assert got == [edge(i) for i in range(5000)]
    assert all(dropped == 0 for _n, dropped in batches)
    assert len(batches) < 5000  # one wake-up per batch, not per edge


async def test_a_full_buffer_drops_and_counts() -> None:
    delivered: list[tuple[int, int]] = []
    relay = EdgeRelay(asyncio.get_running_loop(), lambda c, d: delivered.append((len(c), d)), 10)
    for i in range(25):  # all pushed before the loop runs the flush
        relay.push(edge(i))
    await asyncio.sleep(0)
    assert delivered == [(10, 15)]
    relay.push(edge(99))
    await asyncio.sleep(0)
    assert delivered[-1] == (1, 0)  # the next batch starts clean
