"""Load shedding for /score_features: the expected wait of a large request, from what is admitted."""

from __future__ import annotations

from churnkit.service.backlog import SMOOTHING, Backlog


def test_a_free_thread_means_no_wait_and_nothing_is_shed():
    b = Backlog(threads=2, budget_s=0.001, s_per_row=1.0)
    assert b.admit(1000) is None
    assert b.admit(1000) is None  # two threads, two requests: each had a thread
    assert b.requests == 2 and b.rows == 2000


def test_a_request_is_shed_when_the_rows_ahead_pass_the_budget_and_counts_nothing():
    b = Backlog(threads=2, budget_s=1.0, s_per_row=0.001)
    assert b.admit(1000) is None and b.admit(1000) is None
    assert b.expected_wait_s() == 2000 * 0.001 / 2
    assert b.admit(1000) is None  # exactly at the budget: admitted
    b = Backlog(threads=2, budget_s=0.5, s_per_row=0.001)
    b.admit(1000), b.admit(1000)
    assert b.admit(500) == 1.0
    assert b.requests == 2 and b.rows == 2000


def test_done_releases_and_learns_seconds_per_row():
    b = Backlog(threads=1, budget_s=10.0)
    b.admit(100)
    b.done(100, 0.5)
    assert (b.rows, b.requests, b.s_per_row) == (0, 0, 0.005)
    b.admit(100)
    b.done(100, 1.5)
    assert b.s_per_row == 0.005 + SMOOTHING * (0.015 - 0.005)
    b.admit(100)
    b.done(100, None)  # failed: released, nothing learnt
    assert (b.rows, b.requests) == (0, 0) and b.s_per_row == 0.005 + SMOOTHING * (0.015 - 0.005)


def test_no_estimate_yet_sheds_nothing():
    b = Backlog(threads=1, budget_s=0.0)
    for _ in range(5):
        assert b.admit(1000) is None
