"""Overlap the steps of an ingest: a reader thread runs ahead by a bounded number of chunks
(:func:`prefetch`), and a writer thread stages what validation accepted (:class:`Behind`).

Arrow and DuckDB release the GIL in their kernels, so tokenising the next block and hashing
and writing the previous one while the current one is mapped and validated keeps both cores
busy. ``depth`` bounds how many chunks wait in between, so memory stays bounded. An exception
in a helper thread is re-raised in the main one; a consumer that stops early stops the reader.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
_DONE = object()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def prefetch(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    q: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer, which re-raises
            put(_Failure(err))

    worker = threading.Thread(target=produce, name="churnkit-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = q.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.error
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()


class Behind:
    """Runs submitted calls in order on one thread, at most ``depth`` waiting; ``close()``
    waits for them all. The first call that fails stops the rest, and its exception is
    raised by the next ``submit`` or by ``close``."""

    def __init__(self, name: str, depth: int = 2) -> None:
        self._q: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._failed = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._q.get()
            if item is _DONE:
                return
            if not self._failed:
                fn, args = item  # type: ignore[misc]
                try:
                    fn(*args)
                except BaseException as err:  # noqa: BLE001 - handed to the caller, which re-raises
                    self._error, self._failed = err, True

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self._raise()
        self._q.put((fn, args))

    def close(self) -> None:
        """Wait for every submitted call; raise the first failure."""
        if self._thread.is_alive():
            self._q.put(_DONE)
            self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            err, self._error = self._error, None
            raise err
