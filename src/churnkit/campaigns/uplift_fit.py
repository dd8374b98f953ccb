"""Fit an uplift problem: choose the meta-learner on validation users, judge it on held-out
campaigns.

- The latest ``holdout_campaigns`` campaigns are the test: the model never sees them, as it
  will never have seen the next campaign it targets.
- Within the earlier campaigns a share of *users* (all their rows) is the validation set;
  every learner of ``model.learners`` is fitted on the rest and the best Qini coefficient
  on validation wins; the winner is refitted on all earlier campaigns.
- The test reports the Qini coefficient and AUUC with bootstrap intervals, uplift@k, and,
  for any other ranking given (churn risk, value at risk), the incremental outcome each
  would have bought at each budget, estimated from the randomised arms (and from the true
  individual effects when the data are simulated).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from churnkit.campaigns.uplift import (
    UpliftModel,
    auuc,
    bootstrap_interval,
    qini_coefficient,
    qini_curve,
    uplift_at_k,
)
from churnkit.campaigns.uplift_set import TREATMENT
from churnkit.config import ProblemConfig
from churnkit.contracts import LABEL
from churnkit.errors import ChurnkitError

BINARY_OUTCOMES = ("retained", "converted")
BUDGETS = (0.02, 0.05, 0.1, 0.2, 0.3)
"""Shares of the held-out campaigns' users contacted in the budget comparison."""
UPLIFT = "uplift"
"""The score column: each user's estimated effect of being contacted."""


@dataclass
class UpliftFit:
    outcome: str
    model: UpliftModel
    learner: str
    validation: dict[str, float]
    """Qini coefficient on the validation users, per learner tried."""
    train_campaigns: list[str]
    test_campaigns: list[str]
    metrics: dict[str, float]
    curve: pd.DataFrame
    """The Qini curve on the held-out campaigns."""
    budget: pd.DataFrame
    """Per ranking and budget share: users contacted, incremental outcome (estimated from
    the arms; true when known)."""
    test: pd.DataFrame
    """The held-out rows with their ``uplift`` score."""
    notes: list[str] = field(default_factory=list)


def campaign_order(df: pd.DataFrame) -> list[str]:
    """Campaigns by their first assignment, earliest first."""
    first = df.groupby("campaign_id")["assigned_ts"].min().sort_values(kind="mergesort")
    return [str(c) for c in first.index]


def split_campaigns(df: pd.DataFrame, holdout: int) -> tuple[list[str], list[str]]:
    order = campaign_order(df)
    if len(order) <= holdout:
        raise ChurnkitError(
            f"uplift: {len(order)} campaign(s) ({', '.join(order) or 'none'}) and {holdout} held out for the test: "
            f"at least {holdout + 1} randomised campaigns are needed")
    return order[:-holdout], order[-holdout:]


def _validation_users(users: pd.Series, share: float, seed: int) -> np.ndarray:
    unique = np.sort(users.unique())
    rng = np.random.default_rng(seed)
    chosen = rng.random(unique.size) < share
    return users.isin(unique[chosen]).to_numpy()


def fit_uplift(
    df: pd.DataFrame, features: Sequence[str], problem: ProblemConfig, *, seed: int = 0,
    true_effect: pd.Series | None = None, rankings: Mapping[str, pd.Series] | None = None,
    n_boot: int = 200,
) -> UpliftFit:
    """Choose, refit and judge the problem's uplift model on its rows (see the module doc).

    ``true_effect`` and each of ``rankings`` are indexed like ``df``; only their held-out
    rows are read (a ranking may be null elsewhere)."""
    if problem.uplift is None:
        raise ChurnkitError(f"{problem.name} is not an uplift problem")
    settings = problem.model
    outcome = "binary" if problem.uplift.outcome in BINARY_OUTCOMES else "continuous"
    train_ids, test_ids = split_campaigns(df, problem.uplift.holdout_campaigns)
    train = df[df["campaign_id"].isin(train_ids)]
    test = df[df["campaign_id"].isin(test_ids)].copy()
    X = train[list(features)]
    t, y = train[TREATMENT].to_numpy(), train[LABEL].to_numpy("float64")
    valid = _validation_users(train["user_id"], settings.validation_share, seed)
    params = settings.params or None

    def model(learner: str) -> UpliftModel:
        return UpliftModel(learner=learner, outcome=outcome, base_params=params, random_state=seed)

    best, scores = choose_learner(settings.learners, model, (X[~valid], t[~valid], y[~valid]),
                                  (X[valid], t[valid], y[valid]))
    final = model(best).fit(X, t, y)

    test[UPLIFT] = final.predict(test[list(features)])
    s, tt, yt = test[UPLIFT].to_numpy(), test[TREATMENT].to_numpy(), test[LABEL].to_numpy("float64")
    metrics = held_out_metrics(s, tt, yt, n_boot, seed)
    notes = []
    if true_effect is not None:
        truth = true_effect.loc[test.index].to_numpy("float64")
        test["true_effect"] = truth
        metrics |= _truth_metrics(s, truth, tt, yt)
    ranks = {UPLIFT: test[UPLIFT]} | {k: v.loc[test.index] for k, v in (rankings or {}).items()}
    budget = budget_table(ranks, test, seed)
    if (test[UPLIFT] < 0).any():
        notes.append(f"{(test[UPLIFT] < 0).mean():.0%} of held-out users have a negative estimated effect "
                     "(a contact would put them off): targeting leaves them out")
    return UpliftFit(problem.uplift.outcome, final, best, scores, train_ids, test_ids, metrics, qini_curve(s, tt, yt), budget, test, notes)


Part = tuple[pd.DataFrame, np.ndarray, np.ndarray]


def choose_learner(learners: Sequence[str], make: Callable[[str], UpliftModel], fit: Part,
                   valid: Part) -> tuple[str, dict[str, float]]:
    """The learner with the best Qini coefficient on ``valid`` after fitting on ``fit``
    (ties and failures: the first listed); the one learner when only one is given."""
    if len(learners) == 1:
        return learners[0], {learners[0]: float("nan")}
    scores = {name: qini_coefficient(make(name).fit(*fit).predict(valid[0]), valid[1], valid[2])
              for name in learners}
    best = max(scores, key=lambda k: (np.nan_to_num(scores[k], nan=-np.inf), -list(learners).index(k)))
    return best, scores


def held_out_metrics(s: np.ndarray, t: np.ndarray, y: np.ndarray, n_boot: int, seed: int) -> dict[str, float]:
    """How a ranking ``s`` does on held-out users: Qini coefficient and AUUC with bootstrap
    intervals, uplift among the top 10/20/30%, the arms' average effect."""
    q, q_low, q_high = bootstrap_interval(qini_coefficient, s, t, y, n=n_boot, seed=seed)
    a, a_low, a_high = bootstrap_interval(auuc, s, t, y, n=n_boot, seed=seed)
    out = {"qini": q, "qini_low": q_low, "qini_high": q_high, "auuc": a, "auuc_low": a_low, "auuc_high": a_high,
           "test_rows": float(len(s)), "test_treated": float(t.sum()),
           "average_effect": float(y[t == 1].mean() - y[t == 0].mean())}
    for k in (0.1, 0.2, 0.3):
        try:
            out[f"uplift_at_{int(k * 100)}"] = uplift_at_k(s, t, y, k)
        except ChurnkitError:  # the top k holds one arm only (tiny test sets)
            out[f"uplift_at_{int(k * 100)}"] = float("nan")
    return out


def _truth_metrics(s: np.ndarray, truth: np.ndarray, t: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """How close the estimates are to the simulator's individual effects."""
    oracle = qini_coefficient(truth, t, y)
    return {"true_effect_correlation": float(np.corrcoef(s, truth)[0, 1]),
            "true_effect_rank_correlation": float(pd.Series(s).corr(pd.Series(truth), method="spearman")),
            "oracle_qini": oracle, "share_of_oracle_qini": qini_coefficient(s, t, y) / oracle if oracle else float("nan")}


def budget_table(rankings: Mapping[str, pd.Series], rows: pd.DataFrame, seed: int,
                 budgets: Sequence[float] = BUDGETS) -> pd.DataFrame:
    """Per ranking (highest first) and budget share: the users contacted, and the
    incremental outcome bought. ``estimated``: the treated-minus-control mean among them
    times their number (from the randomised arms); ``true``: the sum of their true
    individual effects when ``rows`` has ``true_effect``. ``random`` is added as a ranking."""
    rng = np.random.default_rng(seed)
    ranks = dict(rankings) | {"random": pd.Series(rng.random(len(rows)), index=rows.index)}
    t, y = rows[TREATMENT].to_numpy(), rows[LABEL].to_numpy("float64")
    truth = rows["true_effect"].to_numpy("float64") if "true_effect" in rows else None
    out = []
    for name, score in ranks.items():
        order = np.argsort(-score.to_numpy("float64"), kind="mergesort")
        for b in budgets:
            top = order[: max(1, round(b * len(rows)))]
            tt, yy = t[top], y[top]
            est = float((yy[tt == 1].mean() - yy[tt == 0].mean()) * len(top)) if 0 < tt.sum() < len(top) else np.nan
            out.append({"ranking": name, "budget_share": b, "contacts": len(top), "estimated_incremental": est,
                        "true_incremental": float(truth[top].sum()) if truth is not None else np.nan})
    return pd.DataFrame(out)
