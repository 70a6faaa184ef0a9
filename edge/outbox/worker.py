"""One thread that owns the outbox's SQLite connection, with an urgent lane.

Everything runs on this one thread, in order within its lane; the urgent lane
(event commits) always goes before the normal one (leases, acks, media files,
figures). So an alarm is never queued behind a clip being written and fsynced:
it waits at most for the one job already running.
"""

from __future__ import annotations

import collections
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")
Job = tuple[Callable[[], Any], "Future[Any]"]


class LaneWorker:
    def __init__(self, name: str) -> None:
        self._urgent: collections.deque[Job] = collections.deque()
        self._normal: collections.deque[Job] = collections.deque()
        self._ready = threading.Condition()
        self._closing = False
        self._thread = threading.Thread(target=self._work, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[[], T], urgent: bool = False) -> Future[T]:
        future: Future[T] = Future()
        with self._ready:
            if self._closing:
                raise RuntimeError("worker is shut down")
            (self._urgent if urgent else self._normal).append((fn, future))
            self._ready.notify()
        return future

    def shutdown(self) -> None:
        """Run what is queued, then stop the thread."""
        with self._ready:
            self._closing = True
            self._ready.notify()
        self._thread.join()

    def _work(self) -> None:
        while True:
            with self._ready:
                while not (self._urgent or self._normal or self._closing):
                    self._ready.wait()
                if self._urgent:
                    fn, future = self._urgent.popleft()
                elif self._normal:
                    fn, future = self._normal.popleft()
                else:
                    return  # closing and nothing left
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn()
            except BaseException as exc:  # noqa: BLE001 (handed to the caller's future)
                future.set_exception(exc)
            else:
                future.set_result(result)
