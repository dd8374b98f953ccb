"""Time-ordered backtest plans: which cutoffs train, validate and test a model.

Rows at one cutoff carry a label measured over ``[cutoff, cutoff + H)``. A model validated
or tested at cutoff ``v`` may only learn from cutoffs ``t`` with ``t + H <= v``: otherwise
its training labels would describe the same days it is judged on (the *gap rule*). Splits
are never random: the test is always the latest cutoffs, each validation block is later
than its training cutoffs, and the windows grow forward in time (expanding window).
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churnkit.errors import ChurnkitError

CutoffLike = dt.date | dt.datetime | pd.Timestamp | np.datetime64 | str


@dataclass(frozen=True)
class Fold:
    """One backtest fold: fit on ``train``, early-stop/calibrate/score on ``valid``."""

    train: tuple[dt.date, ...]
    valid: tuple[dt.date, ...]


@dataclass(frozen=True)
class BacktestPlan:
    """Cutoff roles for one training set.

    ``folds`` are for tuning and model selection; ``test`` (the latest cutoffs) is touched
    once, by a model fitted on ``final_train``. Every date in ``final_train`` and in the
    folds' validation blocks satisfies the gap rule against every test cutoff.
    """

    cutoffs: tuple[dt.date, ...]
    horizon_days: int
    folds: tuple[Fold, ...]
    test: tuple[dt.date, ...]
    final_train: tuple[dt.date, ...]

    def describe(self) -> str:
        """One line per role, for logs and run descriptions."""
        lines = [f"horizon {self.horizon_days} days, {len(self.cutoffs)} cutoffs"]
        for i, f in enumerate(self.folds):
            lines.append(
                f"fold {i}: train {len(f.train)} cutoffs {_span(f.train)}, valid {_span(f.valid)}"
            )
        lines.append(f"final: train {len(self.final_train)} cutoffs {_span(self.final_train)}")
        lines.append(f"test: {_span(self.test)}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (ISO dates), e.g. for an MLflow artefact."""
        iso = lambda ds: [d.isoformat() for d in ds]
        return {
            "horizon_days": self.horizon_days,
            "cutoffs": iso(self.cutoffs),
            "folds": [{"train": iso(f.train), "valid": iso(f.valid)} for f in self.folds],
            "final_train": iso(self.final_train),
            "test": iso(self.test),
        }


def _span(ds: Sequence[dt.date]) -> str:
    if not ds:
        return "(none)"
    return ds[0].isoformat() if len(ds) == 1 else f"{ds[0].isoformat()}..{ds[-1].isoformat()}"


def to_date(value: CutoffLike) -> dt.date:
    """A cutoff as a calendar date (cutoffs are midnight UTC by contract)."""
    if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
        return value
    ts = pd.Timestamp(value)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC")
    return ts.date()


def normalise_cutoffs(cutoffs: Iterable[CutoffLike]) -> tuple[dt.date, ...]:
    """Sorted unique dates."""
    return tuple(sorted({to_date(c) for c in cutoffs}))


def usable_before(cutoffs: Sequence[dt.date], v: dt.date, horizon_days: int) -> tuple[dt.date, ...]:
    """Cutoffs whose label window ``[t, t + H)`` ends by ``v``: the gap rule."""
    h = dt.timedelta(days=horizon_days)
    return tuple(t for t in cutoffs if t + h <= v)


def plan_backtest(
    cutoffs: Iterable[CutoffLike],
    horizon_days: int,
    n_folds: int = 3,
    n_test: int = 1,
    *,
    n_valid: int = 1,
    min_train: int = 1,
) -> BacktestPlan:
    """Expanding-window folds over the cutoffs before the test, honouring the gap rule.

    The latest ``n_test`` cutoffs are the test. Cutoffs whose label windows end by the
    first test cutoff form the development pool (and ``final_train``); its latest
    ``n_folds * n_valid`` cutoffs become ``n_folds`` validation blocks of ``n_valid`` each,
    oldest first. Each fold trains on every pool cutoff whose window ends by its first
    validation cutoff, and needs at least ``min_train`` of them.
    """
    if horizon_days < 1:
        raise ChurnkitError(f"backtest: horizon_days must be at least 1 (got {horizon_days})")
    for name, value, low in (("n_folds", n_folds, 1), ("n_test", n_test, 1),
                             ("n_valid", n_valid, 1), ("min_train", min_train, 1)):
        if value < low:
            raise ChurnkitError(f"backtest: {name} must be at least {low} (got {value})")
    cuts = normalise_cutoffs(cutoffs)
    if len(cuts) <= n_test:
        raise _too_few(cuts, horizon_days, n_folds, n_test, n_valid, min_train)
    test = cuts[-n_test:]
    pool = usable_before(cuts[:-n_test], test[0], horizon_days)
    n_val = n_folds * n_valid
    if len(pool) <= n_val:
        raise _too_few(cuts, horizon_days, n_folds, n_test, n_valid, min_train)
    folds = []
    for k in range(n_folds):
        start = len(pool) - n_val + k * n_valid
        valid = pool[start : start + n_valid]
        train = usable_before(pool[:start], valid[0], horizon_days)
        if len(train) < min_train:
            raise _too_few(cuts, horizon_days, n_folds, n_test, n_valid, min_train)
        folds.append(Fold(train=train, valid=valid))
    return BacktestPlan(
        cutoffs=cuts, horizon_days=horizon_days, folds=tuple(folds), test=test, final_train=pool
    )


def cutoffs_needed(
    step_days: int, horizon_days: int, n_folds: int = 3, n_test: int = 1, n_valid: int = 1,
    min_train: int = 1,
) -> int:
    """Fewest cutoffs on a regular ``step_days`` grid that give a plan.

    Two gaps of ``ceil(H / step)`` steps (train -> first validation, pool -> test) minus the
    overlap of their end points, plus the blocks themselves.
    """
    g = math.ceil(horizon_days / step_days)
    return n_test + 2 * g + n_folds * n_valid + min_train - 2


def _too_few(
    cuts: Sequence[dt.date], h: int, n_folds: int, n_test: int, n_valid: int, min_train: int
) -> ChurnkitError:
    steps = [(b - a).days for a, b in itertools.pairwise(cuts)]
    step = int(np.median(steps)) if steps else 7
    need = cutoffs_needed(step, h, n_folds, n_test, n_valid, min_train)
    regular = len(set(steps)) <= 1
    return ChurnkitError(
        f"backtest needs {'' if regular else 'about '}{need} cutoffs {step} days apart for a "
        f"{h}-day horizon with {n_folds} fold(s), {n_test} test cutoff(s) and no overlapping "
        f"label windows; got {len(cuts)} (add cutoffs or lower n_folds)"
    )


def rows(df: pd.DataFrame, cutoffs: Iterable[CutoffLike], column: str = "cutoff") -> np.ndarray:
    """Boolean mask of the rows of ``df`` whose cutoff is one of ``cutoffs``."""
    if column not in df.columns:
        raise ChurnkitError(f"training set has no '{column}' column")
    wanted = pd.DatetimeIndex(pd.to_datetime(list(normalise_cutoffs(cutoffs)))).tz_localize("UTC")
    days = pd.to_datetime(df[column], utc=True).dt.normalize()
    return days.isin(wanted).to_numpy()
