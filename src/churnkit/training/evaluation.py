"""How far a training report can be trusted: the model against its best baseline with an
interval, and its calibration at the test cutoff with what the data cannot support.

Pure: arrays and frames in, plain dicts and one-line notes out (``flows.train`` logs them,
the CLI prints them). The figures are the ones a person acts on, so each note carries them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from churnkit.contracts import LABEL
from churnkit.metrics import paired_bootstrap
from churnkit.training.promotion import HEADLINE

N_BOOT = 1000
LEVEL = 0.95

DRIFT_MIN = 0.05
"""A label rate that moves by at least this much (absolute) between the earliest and the
latest training cutoffs, beyond sampling noise (:data:`DRIFT_Z` standard errors), drifts."""
DRIFT_Z = 3.0
SEASON_DAYS = 31
"""A test cutoff farther than this (days of the calendar year, any year) from every
training cutoff lies in a part of the calendar the model never learnt from."""


# --------------------------------------------------------------------------- model vs baseline


def best_baseline(kind: str, metrics: Mapping[str, Mapping[str, float]], baselines: Sequence[str]) -> str | None:
    """The baseline with the best headline metric on the test rows (None when none has one)."""
    metric, _ = HEADLINE[kind]
    scored = [(metrics[n].get(metric, np.nan), n) for n in baselines if n in metrics]
    scored = [(v, n) for v, n in scored if np.isfinite(v)]
    return max(scored)[1] if scored else None


def compare_with_best(
    kind: str, y: np.ndarray, scores: Mapping[str, np.ndarray], metrics: Mapping[str, Mapping[str, float]],
    baselines: Sequence[str], users: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0,
) -> dict[str, Any]:
    """Headline metric of the model minus the best baseline's, same rows, with the paired
    bootstrap interval (users resampled); empty when there is no baseline to compare with.

    The best baseline is picked on the test rows themselves: the strongest opponent, so
    the interval errs against the model, never for it.
    """
    best = best_baseline(kind, metrics, baselines)
    if best is None:
        return {}
    metric, _ = HEADLINE[kind]
    diff = paired_bootstrap(y, scores["model"], scores[best], metric, groups=users, n_boot=n_boot,
                            level=LEVEL, seed=seed)
    return {"metric": metric, "baseline": best, "model": metrics["model"].get(metric, np.nan),
            "baseline_value": metrics[best].get(metric, np.nan), **diff}


def comparison_text(c: Mapping[str, Any]) -> str:
    """``roc_auc model - lgbm_rfm (best baseline): +0.0021, 95% interval [-0.0040, +0.0083]``."""
    if not c:
        return "no baseline to compare the model with"
    verdict = ("better" if c["low"] > 0 else "worse" if c["high"] < 0 else "no clear difference")
    return (f"{c['metric']} model - {c['baseline']} (best baseline): {c['estimate']:+.4f}, "
            f"{c['level']:.0%} interval [{c['low']:+.4f}, {c['high']:+.4f}] over {int(c['n_groups']):,} users"
            f" ({verdict})")


# --------------------------------------------------------------------------- calibration


def label_rates(df: pd.DataFrame, cutoffs: Sequence[dt.date]) -> pd.DataFrame:
    """Rows and label rate per cutoff (``cutoff``, ``rows``, ``rate``), in time order."""
    keep = df["cutoff"].dt.date.isin(set(cutoffs))
    g = df.loc[keep].groupby(df.loc[keep, "cutoff"].dt.date)[LABEL].agg(["size", "mean"])
    return pd.DataFrame({"cutoff": list(g.index), "rows": g["size"].to_numpy(), "rate": g["mean"].to_numpy()})


def label_drift(rates: pd.DataFrame) -> dict[str, Any]:
    """The label rate of the earliest third of the training cutoffs against the latest third.

    ``drifted`` when it moved by :data:`DRIFT_MIN` or more and by more than :data:`DRIFT_Z`
    standard errors: then no single calibration fits every cutoff, the test's included.
    """
    if len(rates) < 2:
        return {"drifted": False}
    k = max(1, len(rates) // 3)
    ends = []
    for part in (rates.iloc[:k], rates.iloc[-k:]):
        n = float(part["rows"].sum())
        rate = float((part["rows"] * part["rate"]).sum() / n) if n else float("nan")
        ends.append({"from": str(part["cutoff"].iloc[0]), "to": str(part["cutoff"].iloc[-1]), "rows": n, "rate": rate})
    early, late = ends
    change = late["rate"] - early["rate"]
    se = np.sqrt(sum(e["rate"] * (1 - e["rate"]) / e["rows"] for e in ends if e["rows"]))
    drifted = bool(abs(change) >= DRIFT_MIN and abs(change) > DRIFT_Z * se)
    return {"drifted": drifted, "early": early, "late": late, "change": change, "se": float(se)}


def _day_of_year_distance(a: dt.date, b: dt.date) -> int:
    d = abs(a.timetuple().tm_yday - b.timetuple().tm_yday)
    return min(d, 365 - d)


def calendar_gap(train: Sequence[dt.date], test: Sequence[dt.date]) -> dict[str, Any]:
    """Days of the calendar year (any year) from each test cutoff to the nearest training
    cutoff, the largest of them; ``outside`` when it exceeds :data:`SEASON_DAYS`."""
    if not train or not test:
        return {"outside": False}
    gap = max(min(_day_of_year_distance(t, c) for c in train) for t in test)
    return {"outside": gap > SEASON_DAYS, "days": int(gap), "train_from": str(min(train)),
            "train_to": str(max(train)), "test": [str(t) for t in test]}


def calibration_report(
    df: pd.DataFrame, train: Sequence[dt.date], test: Sequence[dt.date], model_metrics: Mapping[str, float],
    choice: Mapping[str, Any],
) -> tuple[dict[str, Any], list[str]]:
    """Calibration at the test cutoff, the label rate over the training cutoffs, the
    calendar the training covers, and the calibration chosen; with the notes to print."""
    rates = label_rates(df, train)
    drift, season = label_drift(rates), calendar_gap(train, test)
    at_test = {k: float(model_metrics.get(k, np.nan)) for k in ("mean_pred", "base_rate", "ece", "brier")}
    report = {
        "test": at_test,
        "label_rate_by_training_cutoff": {str(r.cutoff): {"rows": int(r.rows), "rate": float(r.rate)}
                                          for r in rates.itertuples()},
        "drift": drift, "calendar": season, "choice": dict(choice),
    }
    level = (f"mean predicted {at_test['mean_pred']:.3f} vs realised {at_test['base_rate']:.3f} at the test cutoff"
             f" (ECE {at_test['ece']:.3f})")
    notes = []
    if drift["drifted"]:
        e, late = drift["early"], drift["late"]
        notes.append(
            f"the label rate drifts across the training cutoffs: {e['rate']:.3f} ({e['from']}..{e['to']}) -> "
            f"{late['rate']:.3f} ({late['from']}..{late['to']}); {level}: a probability's level is not reliable"
        )
    if season["outside"]:
        notes.append(
            f"the test cutoff {', '.join(season['test'])} lies {season['days']} days of the calendar year from the "
            f"nearest training cutoff ({season['train_from']}..{season['train_to']}): that part of the year was never learnt; "
            f"{level}"
        )
    return report, notes
