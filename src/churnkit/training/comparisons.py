"""What a model is judged against on the same test rows: baselines, stacking and references.

- transparent baselines (:data:`BASELINES`), fitted on the model's own training rows:
  recency, an RFM heuristic, a logistic regression on log recency, frequency and monetary
  value and a plain LightGBM on the RFM features (churn, purchase), last-period revenue, a
  Tweedie GLM on the same logs and a plain LightGBM Tweedie (LTV), and BG/NBD + Gamma-Gamma
  (``churnkit[clv]``) with the quantity each kind asks for;
- the model refitted with BG/NBD outputs as extra features (``--stack-bgnbd``);
- on simulated data, the simulator's references (:data:`REFERENCES`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from churnkit.contracts import CLASSIFIER_KINDS, LABEL
from churnkit.errors import ChurnkitError
from churnkit.features.families import rfm
from churnkit.models import baselines as b
from churnkit.models.classifier import PropensityClassifier
from churnkit.models.linear_base import LinearBase, fit_base
from churnkit.models.ltv import TweedieLTV
from churnkit.simulate.truth import OBSERVABLE_SUFFIX, TRUTH_OF_KIND

REFERENCES = {"truth": "", "observable": OBSERVABLE_SUFFIX}
"""The simulator's references and their truth-column suffixes: ``truth`` knows each user's
latent state; ``observable`` is the Bayes filter of it from the log (true traits known),
what a perfect model of the log could reach."""

BASELINES: dict[str, str] = {
    "recency": "days since the last activity (purchase, for purchase) mapped to a probability (isotonic)",
    "rfm": "RFM heuristic: mean of recency, frequency and monetary percentiles, isotonic",
    "linear_rfm": "logistic regression (Tweedie GLM for revenue) on log recency, frequency and monetary value:"
                  " the linear base the model boosts from",
    "lgbm_rfm": "plain LightGBM (default parameters, no tuning, no linear base) on the RFM features only",
    "bgnbd": "BG/NBD at the test cutoff: P(no purchase in H) for churn, P(alive and buys in H) for purchase",
    "last_period": "revenue in the last comparable window, scaled to the horizon",
    "bgnbd_gg": "BG/NBD expected purchases in H x Gamma-Gamma expected spend",
}
"""Every baseline a report can hold, by score name."""

RFM_FAMILY = rfm.F


@dataclass(frozen=True)
class BaselineRows:
    """The model's own rows: baselines learn from its fit rows (and early-stop, calibrate
    on its calibration rows) and are scored on its test rows; ``test_cutoff`` per test row.
    BG/NBD, unsupervised, is fitted on the whole customer base at the test cutoff."""

    fit_X: pd.DataFrame
    fit_y: np.ndarray
    calib_X: pd.DataFrame
    calib_y: np.ndarray
    test_X: pd.DataFrame
    test_cutoff: np.ndarray
    customers: Callable[[], pd.DataFrame] | None = None
    """Every customer's features at the test cutoffs (with ``cutoff``), read when needed:
    what BG/NBD is fitted on."""


@dataclass
class Baselines:
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    """Per baseline what it used (columns, features, fitted parameters), for the report."""
    notes: list[str] = field(default_factory=list)


def baseline_scores(
    kind: str, horizon: int, rows: BaselineRows, rfm_features: list[str], bgnbd: bool | None, seed: int = 0,
) -> Baselines:
    """Scores of the transparent baselines on the test rows, fitted on the same train rows.

    A baseline whose columns the training set lacks (e.g. dropped as constant) is left out
    with a note, never an error: the model is still reported.
    """
    out = Baselines()
    X = rows.fit_X
    if kind in CLASSIFIER_KINDS:
        _recency_rfm(kind, rows, out)
    else:
        out.scores["last_period"] = b.LastPeriodRevenue(horizon_days=horizon).fit(X).predict(rows.test_X)
    _linear(kind, rows, out)
    _plain_lgbm(kind, rows, [f for f in rfm_features if f in X.columns], seed, out)
    if bgnbd is not False:
        _bgnbd(kind, horizon, rows, bgnbd, out)
    return out


def _recency_rfm(kind: str, rows: BaselineRows, out: Baselines) -> None:
    cols = set(rows.fit_X.columns)
    own = rfm.DAYS_SINCE_LAST_PURCHASE.name if kind == "purchase" else rfm.DAYS_SINCE_LAST_ACTIVITY.name
    recency = next((c for c in (own, rfm.DAYS_SINCE_LAST_ACTIVITY.name) if c in cols), None)
    if recency is None:
        out.notes.append("recency and RFM baselines left out: the training set has no recency feature")
        return
    parts = {"frequency": rfm.PURCHASES_TOTAL.name, "monetary": rfm.REVENUE_TOTAL.name}
    used = {k: (c if c in cols else None) for k, c in parts.items()}
    fitted = {
        "recency": b.RecencyRFMBaseline(kind=kind, recency=recency, frequency=None, monetary=None),
        "rfm": b.RecencyRFMBaseline(kind=kind, **used),
    }
    for name, est in fitted.items():
        out.scores[name] = est.fit(rows.fit_X, rows.fit_y).predict_proba(rows.test_X)[:, 1]
        out.info[name] = {"columns": [c for c in (est.recency, est.frequency, est.monetary) if c]}


def _linear(kind: str, rows: BaselineRows, out: Baselines) -> None:
    columns = LinearBase.columns_in(list(rows.fit_X.columns))
    link = "logit" if kind in CLASSIFIER_KINDS else "log"
    ok = len(columns) > 0 and (link == "log" or len(np.unique(rows.fit_y)) == 2) and np.nanmax(rows.fit_y) > 0
    later = (rows.calib_X, rows.calib_y) if len(rows.calib_y) else None
    est = fit_base(link, rows.fit_X, rows.fit_y, columns, later) if ok else None
    if est is None:
        out.notes.append("linear RFM baseline left out: the training set has no varying recency, frequency or"
                         " monetary column")
        return
    out.scores["linear_rfm"] = est.predict(rows.test_X)
    out.info["linear_rfm"] = {"link": link, "coefficients": est.describe()}


def _plain_lgbm(kind: str, rows: BaselineRows, names: list[str], seed: int, out: Baselines) -> None:
    if not names:
        out.notes.append("plain LightGBM baseline left out: the training set has no RFM feature")
        return
    ev = (rows.calib_X[names], rows.calib_y) if len(rows.calib_y) else None
    try:
        if kind in CLASSIFIER_KINDS:
            est: Any = PropensityClassifier(random_state=seed, base="none").fit(rows.fit_X[names], rows.fit_y, eval_set=ev)
            out.scores["lgbm_rfm"] = est.predict_proba(rows.test_X[names])[:, 1]
            out.info["lgbm_rfm"] = {"features": names, "calibration": est.calibration_}
        else:
            est = TweedieLTV(random_state=seed, base="none").fit(rows.fit_X[names], rows.fit_y, eval_set=ev)
            out.scores["lgbm_rfm"] = est.predict(rows.test_X[names])
            out.info["lgbm_rfm"] = {"features": names, "objective": "tweedie"}
    except ChurnkitError as err:
        out.notes.append(f"plain LightGBM baseline left out: {err}")


def _bgnbd(kind: str, horizon: int, rows: BaselineRows, required: bool | None, out: Baselines) -> None:
    """BG/NBD (and Gamma-Gamma for revenue) fitted at each test cutoff on the customer base
    there (``rows.customers``; the test rows when not given) and scored on the test rows:
    unsupervised, and a summary at a cutoff holds only earlier events.

    The whole base, not only the eligible users: a population chosen for recent activity
    has no visible dropout, and BG/NBD fitted on it finds none (a -> 0; on CDNOW's 90-day
    churn test cutoff a = 0 on the 3,808 eligible users, a = 0.46 on all 23,570 customers).
    """
    name = "bgnbd_gg" if kind not in CLASSIFIER_KINDS else "bgnbd"
    score = np.full(len(rows.test_X), np.nan)
    info: dict[str, Any] = {}
    try:
        b.require_clv()
        base = rows.customers() if rows.customers is not None else None
    except ChurnkitError as err:
        if required:
            raise
        out.notes.append(f"BG/NBD baseline left out: {err}")
        return
    for cutoff in np.unique(rows.test_cutoff):
        at = rows.test_cutoff == cutoff
        X = rows.test_X[at]
        day = str(pd.Timestamp(cutoff).date())
        fit_on, on = (base[base["cutoff"] == cutoff], "customer base") if base is not None else (X, "test rows")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = b.BGNBDBaseline(horizon_days=horizon).fit(fit_on)
                outputs = model.transform(X)
        except ChurnkitError as err:
            if required:
                raise
            out.notes.append(f"BG/NBD baseline left out at {day}: {err}")
            return
        info[day] = {"params": model.params_, "fitted_on": f"{on}, {len(fit_on):,} users"}
        bad = model.degenerate()
        parts = ["bgnbd"] + (["gamma_gamma"] if name == "bgnbd_gg" else [])
        why = [f"{p.replace('_', '-')} {bad[p]}" for p in parts if p in bad]
        if why:
            out.notes.append(f"{name} baseline left out at {day}: degenerate fit on the {on} ({len(fit_on):,} users), "
                             + "; ".join(why))
            out.info[name] = info | {"degenerate": why}
            return
        p_buy = outputs["bgnbd_p_purchase"].fillna(0.0).to_numpy()  # non-customers: no purchase
        if kind == "churn":
            score[at] = 1.0 - p_buy  # P(no purchase in H): dead, or alive and quiet
        elif kind == "purchase":
            score[at] = p_buy  # P(alive and buys within H)
        else:
            score[at] = outputs["bgnbd_expected_spend"].fillna(0.0).to_numpy()
    out.scores[name] = score
    out.info[name] = info


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
