"""What a model is judged against on the same test rows: baselines, stacking and references.

- transparent baselines, fitted on the model's own training rows: an RFM heuristic (churn,
  purchase), last-period revenue (LTV) and BG/NBD + Gamma-Gamma (``churnkit[clv]``);
- the model refitted with BG/NBD outputs as extra features (``--stack-bgnbd``);
- on simulated data, the simulator's references (:data:`REFERENCES`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from churnkit.contracts import CLASSIFIER_KINDS, LABEL
from churnkit.errors import ChurnkitError
from churnkit.models import baselines as b
from churnkit.simulate.truth import OBSERVABLE_SUFFIX, TRUTH_OF_KIND

REFERENCES = {"truth": "", "observable": OBSERVABLE_SUFFIX}
"""The simulator's references and their truth-column suffixes: ``truth`` knows each user's
latent state; ``observable`` is the Bayes filter of it from the log (true traits known),
what a perfect model of the log could reach."""


def baseline_scores(
    kind: str, horizon: int, fit_X: pd.DataFrame, fit_y: np.ndarray, test_X: pd.DataFrame,
    bgnbd: bool | None, notes: list[str],
) -> dict[str, np.ndarray]:
    """Scores of the transparent baselines on the test rows, fitted on the same train rows."""
    out: dict[str, np.ndarray] = {}
    if kind in CLASSIFIER_KINDS:
        out["rfm"] = b.RecencyRFMBaseline(kind=kind).fit(fit_X, fit_y).predict_proba(test_X)[:, 1]
    else:
        out["last_period"] = b.LastPeriodRevenue(horizon_days=horizon).fit(fit_X).predict(test_X)
    if bgnbd is False:
        return out
    try:
        # unsupervised: fitted on the customers' summaries at the test cutoff itself
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = b.BGNBDBaseline(horizon_days=horizon).fit(test_X)
            if kind == "purchase":
                out["bgnbd"] = model.predict_proba(test_X)[:, 1]
            elif kind == "churn":
                # a customer-base model speaks of purchases: P(alive) is its closest notion
                out["bgnbd"] = 1.0 - model.transform(test_X)["bgnbd_p_alive"].fillna(0.0).to_numpy()
            else:
                out["bgnbd"] = model.predict(test_X)
    except ChurnkitError as err:
        if bgnbd:
            raise
        notes.append(f"BG/NBD baseline skipped: {err}")
    return out


def stacked_scores(
    make: Callable[[dict[str, Any]], Any], params: dict[str, Any], horizon: int,
    df: pd.DataFrame, names: list[str], fit: np.ndarray, calib: np.ndarray, test: np.ndarray,
    predict: Callable[[Any, pd.DataFrame], np.ndarray],
) -> np.ndarray:
    """Test scores of the model refitted, same parameters, with BG/NBD outputs as features.

    ``make`` builds the estimator for the features plus :data:`baselines.BGNBD_FEATURES`.
    One BG/NBD fit per cutoff on that cutoff's summaries, so the extra features are as
    point-in-time as the rest: a test row's never saw its outcome window.
    """
    used = fit | calib | test
    part = df.loc[used, [*names, "cutoff"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extra = b.bgnbd_features(part, horizon)
    X = pd.concat([part[names], extra[list(b.BGNBD_OUTPUTS)].astype("float64")], axis=1)
    y = df.loc[used, LABEL].to_numpy("float64")
    f, c, t = fit[used], calib[used], test[used]
    model = make(dict(params)).fit(X[f], y[f], eval_set=(X[c], y[c]) if c.any() else None)
    return predict(model, X[t].reset_index(drop=True))


def truth_scores(truth: pd.DataFrame | None, test: pd.DataFrame, kind: str, horizon: int) -> dict[str, np.ndarray]:
    """The simulator's references (:data:`REFERENCES`) for the test rows, those it has."""
    if truth is None:
        return {}
    columns = {ref: TRUTH_OF_KIND[kind] + suffix for ref, suffix in REFERENCES.items()}
    columns = {ref: col for ref, col in columns.items() if col in truth.columns}
    t = truth[(truth["horizon_days"] == horizon) & truth.get("window_complete", True)]
    t = t.assign(cutoff=pd.to_datetime(t["cutoff"], utc=True))
    keys = test[["user_id", "cutoff"]].assign(cutoff=pd.to_datetime(test["cutoff"], utc=True))
    merged = keys.merge(t[["user_id", "cutoff", *columns.values()]], on=["user_id", "cutoff"], how="left")
    out = {ref: merged[col].to_numpy("float64") for ref, col in columns.items()}
    return {ref: v for ref, v in out.items() if np.isnan(v).mean() <= 0.01}
