"""The read-ahead thread: order kept, errors surface in the consumer, early stop ends the reader."""

from __future__ import annotations

import threading
import time

import pytest

from churnkit.events.pipeline import prefetch


def test_order_is_kept():
    assert list(prefetch(iter(range(100)), depth=3)) == list(range(100))


def test_reader_error_is_raised_in_consumer():
    def items():
        yield 1
        raise ValueError("boom")

    got = []
    with pytest.raises(ValueError, match="boom"):
        got.extend(prefetch(items()))  # extend keeps what arrived before the error
    assert got == [1]


def test_consumer_stopping_early_stops_the_reader():
    produced = []

    def items():
        for i in range(10_000):
            produced.append(i)
            yield i

    before = threading.active_count()
    for x in prefetch(items(), depth=2):
        if x == 3:
            break
    time.sleep(0.05)
    assert threading.active_count() == before
    assert len(produced) < 20  # bounded read-ahead, not the whole input


def test_behind_runs_calls_in_order_and_close_waits_for_them():
    from churnkit.events.pipeline import Behind

    done: list[int] = []
    worker = Behind("test", depth=2)
    for i in range(50):
        worker.submit(lambda k: (time.sleep(0.001), done.append(k)), i)
    worker.close()
    assert done == list(range(50))
    worker.close()  # a second close is harmless


def test_behind_failure_stops_later_calls_and_is_raised():
    from churnkit.events.pipeline import Behind

    done: list[int] = []

    def work(k: int) -> None:
        if k == 3:
            raise ValueError("bad part")
        done.append(k)

    worker = Behind("test", depth=1)
    with pytest.raises(ValueError, match="bad part"):
        for i in range(20):
            worker.submit(work, i)
        worker.close()
    worker.close()  # raised once; the thread is gone
    assert done == [0, 1, 2]
