"""The cutoff grid of a problem: which midnights a training set is built at.

A cutoff is usable only if its outcome window ``[c, c + H)`` ends by the data end (its
label is complete) and some data comes before it.
"""

from __future__ import annotations

import datetime as dt

from churnkit.config import ProblemConfig
from churnkit.datasets.span import DataSpan
from churnkit.errors import ChurnkitError


def resolve_cutoffs(problem: ProblemConfig, span: DataSpan) -> list[dt.date]:
    """Cutoffs whose outcome window ``[c, c + H)`` ends by the data end and that follow some data."""
    first_day, end = span.first, span.end
    grid, h = problem.cutoffs, dt.timedelta(days=problem.horizon_days)
    step = dt.timedelta(days=grid.step_days)
    latest = end - h
    if grid.dates is not None:
        cuts = sorted(set(grid.dates))
        late = [c for c in cuts if c > latest]
        if late:
            raise ChurnkitError(
                f"cutoff {late[0]} has an incomplete {problem.horizon_days}-day outcome window: data ends {end}"
            )
    else:
        last = min(grid.end, latest) if grid.end else latest
        if grid.start is not None:
            cuts = []
            c = grid.start
            while c <= last:
                cuts.append(c)
                c += step
        else:
            cuts = sorted(last - k * step for k in range(grid.count or 12))
        cuts = [c for c in cuts if c > first_day]
    if not cuts:
        raise ChurnkitError(
            f"problem '{problem.name}': no cutoff with a complete {problem.horizon_days}-day outcome window "
            f"(data covers {first_day} .. {end - dt.timedelta(days=1)})"
        )
    early = [c for c in cuts if c <= first_day]
    if early:
        raise ChurnkitError(f"cutoff {early[0]} is not after the first event day {first_day}")
    return cuts
