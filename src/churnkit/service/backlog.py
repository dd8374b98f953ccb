"""Load shedding for ``/score_features`` without BentoML's adaptive batcher.

A large request (more than ``CHURNKIT_INLINE_ROWS`` rows) is scored in a bounded pool of
worker threads. Before it joins, its expected wait is estimated from what is already
admitted: the rows of the large requests waiting for or holding a thread, times a running
estimate of the seconds one row takes in a thread, shared by the threads. When that passes
the budget (``CHURNKIT_BATCH_LATENCY_MS``) the request is shed: 503 with ``Retry-After``.
All bookkeeping runs on the event loop (no lock); only the scoring runs in threads.
"""

from __future__ import annotations

from dataclasses import dataclass

SMOOTHING = 0.2
"""Weight of the newest measurement in the running seconds-per-row estimate."""


@dataclass
class Backlog:
    """Rows admitted to the worker pool and not yet done, and the seconds one row takes."""

    threads: int
    budget_s: float
    rows: int = 0
    requests: int = 0
    s_per_row: float = 0.0
    """Measured in the thread (scoring only), so under contention it includes the sharing of
    the cores: rows ahead x this / threads is then about the wall time to clear them."""

    def expected_wait_s(self) -> float:
        """Seconds a request admitted now would wait for a thread (0 while one is free)."""
        if self.requests < self.threads:
            return 0.0
        return self.rows * self.s_per_row / self.threads

    def admit(self, rows: int) -> float | None:
        """Count ``rows`` in and return None, or return the expected wait (s) when it passes
        the budget, counting nothing: the caller sheds the request."""
        wait = self.expected_wait_s()
        if wait > self.budget_s:
            return wait
        self.rows += rows
        self.requests += 1
        return None

    def done(self, rows: int, seconds: float | None) -> None:
        """An admitted request left the pool; ``seconds`` its scoring time (None: failed)."""
        self.rows -= rows
        self.requests -= 1
        if seconds is not None and rows > 0:
            now = seconds / rows
            self.s_per_row = now if self.s_per_row == 0.0 else self.s_per_row + SMOOTHING * (now - self.s_per_row)
