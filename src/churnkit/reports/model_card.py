"""The model card of one registered version, from plain data: what it is for, what it learnt
from, how it did on its test rows against the baselines, and how it has held up since.

Pure: a problem config, frames and dicts in; dicts, figures (PNG data URIs) and the HTML
out (``flows.model_card`` gathers the inputs, writes the file and logs it). Every sentence
about use and limits is built from the problem's settings and the stored numbers, so a card
says what this model is, not what a template assumed.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from churnkit.config import ProblemConfig
from churnkit.config.problems import ActivityEvents
from churnkit.contracts import LABEL
from churnkit.metrics import bootstrap_interval, classifier_metrics, ltv_metrics, mean_abs_shap
from churnkit.reports.html import png, render
from churnkit.reports.plots import (
    calibration,
    feature_importance,
    gain_lift,
    ltv_deciles,
    shap_summary,
)

DPI = 80
"""PNG resolution: six charts stay well inside the size budget."""
SHAP_ROWS = 500
"""Test rows SHAP is computed on (a seeded sample when there are more). TreeSHAP is the card's
slow part: 2,000 rows took 12 s of a 20 s card on the demo's models, 500 take a quarter."""
N_BOOT = 1000
LEVEL = 0.95
SCORE_PREFIX = "score_"

CLASSIFIER_COLUMNS = ("roc_auc", "pr_auc", "log_loss", "brier", "ece", "lift_top10", "capture_top10", "mean_pred",
                      "base_rate")
LTV_COLUMNS = ("gini_norm", "spearman", "decile_mape", "rmse", "mae", "mean_pred", "mean_actual", "coverage",
               "mean_width")

# --------------------------------------------------------------------------- what it is for


def activity_text(activity: ActivityEvents) -> str:
    """``any event but push_sent, refund`` / ``session, view``: what counts as activity."""
    if activity.include is not None:
        kept = [e for e in activity.include if e not in activity.exclude]
        return ", ".join(kept) or "no event"
    return f"any event but {', '.join(activity.exclude)}" if activity.exclude else "any event"


def population_text(problem: ProblemConfig) -> str:
    """Who the model scores: the eligibility rule in words (``datasets.eligibility``)."""
    text = f"users active ({activity_text(problem.activity)}) in the {problem.lookback_days} days before the as-of date"
    if problem.min_history_days:
        text += f", first active at least {problem.min_history_days} days before it"
    return text


def target_text(problem: ProblemConfig) -> str:
    """What the score is, in words (the label of ``datasets.labels``)."""
    h = problem.horizon_days
    return {
        "churn": f"the probability that a user has no activity ({activity_text(problem.activity)}) in the {h} days "
                 "from the as-of date",
        "purchase": f"the probability that a user makes at least one purchase in the {h} days from the as-of date",
        "revenue": f"a user's revenue (purchases net of refunds, floored at 0) in the {h} days from the as-of date, "
                   "with a low-high interval",
        "uplift": f"how much a contact changes a user's {problem.uplift.outcome if problem.uplift else 'outcome'} "
                  f"within {h} days",
    }[problem.kind]


_USES = {
    "churn": (("rank users by their risk of going silent, to choose who goes on retention and recall lists and "
              "in which order"), ("retention and CRM operators building risk and recall lists; analysts sizing "
              "the users at risk")),
    "purchase": (("rank users by their chance to buy, to choose who receives a conversion offer or push and to "
                 "forecast buyers"), "campaign operators targeting offers; analysts forecasting buyers"),
    "revenue": (("rank and tier users by expected value (value at risk, budgets per tier), and forecast revenue of "
                "groups of users"), "operators setting value tiers and budgets; analysts forecasting revenue"),
    "uplift": ("choose whom a campaign should contact: the users it moves most",
               "campaign operators with a contact budget"),
}


def intended_use(problem: ProblemConfig) -> dict[str, Any]:
    """What the model predicts, what for, for whom, and what it is not for."""
    purpose, audience = _USES[problem.kind]
    h = problem.horizon_days
    not_for = [
        (f"users outside its population: it learnt only from {population_text(problem)}; anyone else "
        "(new, long silent, or not yet signed up) gets no reliable score (scoring flags them outside the population)"),
        f"horizons other than {h} days: it says nothing about the next {2 * h} days or the next quarter",
        ("decisions about one person without a human review (credit, pricing, access, anything with legal or "
        "similarly significant effect): scores rank groups of users, they do not establish facts about anyone"),
    ]
    if problem.kind in ("churn", "purchase"):
        not_for.append("reading the probability as an exact rate for a small group: check the calibration chart "
                       "and the monitoring section first")
    if problem.kind == "revenue":
        not_for.append("an individual's exact revenue: most users' interval is wide; totals over groups are what "
                       "it gets right")
    return {"predicts": target_text(problem), "purpose": purpose, "audience": audience,
            "population": population_text(problem), "not_for": not_for, "description": problem.description}


def problem_definition(problem: ProblemConfig) -> list[tuple[str, str]]:
    """(term, value) rows: kind, windows, activity, eligibility, cutoff grid, features."""
    grid = problem.cutoffs
    if grid.dates:
        cutoffs = ", ".join(d.isoformat() for d in grid.dates)
    else:
        parts = [f"every {grid.step_days} days"]
        parts.append(f"from {grid.start}" if grid.start else f"{grid.count} cutoffs" if grid.count else "")
        parts.append(f"to {grid.end}" if grid.end else "ending at the latest cutoff whose outcome window is complete")
        cutoffs = ", ".join(p for p in parts if p)
    rows = [("kind", problem.kind), ("predicts", target_text(problem)),
            ("look-back", f"{problem.lookback_days} days"), ("horizon", (f"{problem.horizon_days} days, "
             "[cutoff, cutoff + horizon)")),
            ("activity", activity_text(problem.activity)), ("eligible", population_text(problem)),
            ("cutoff grid", cutoffs), ("feature families", ", ".join(problem.features.families))]
    if problem.features.exclude:
        rows.append(("features excluded", ", ".join(problem.features.exclude)))
    return rows


# --------------------------------------------------------------------------- what it learnt from


def data_window(data: Mapping[str, Any], per_cutoff: Sequence[Mapping[str, Any]], plan: Mapping[str, Any] | None,
                cutoffs: Sequence[str]) -> dict[str, Any]:
    """The events' fingerprint, the training and test cutoffs and each cutoff's rows and label rate."""
    test = list((plan or {}).get("test") or [])
    train = list((plan or {}).get("final_train") or [c for c in cutoffs if c not in test])
    return {"fingerprint": dict(data), "train_from": train[0] if train else None,
            "train_to": train[-1] if train else None, "n_train": len(train), "test": test,
            "per_cutoff": [{**dict(c), "role": "test" if c["cutoff"] in test else "training" if c["cutoff"] in train
                            else "not used"} for c in per_cutoff]}


def feature_groups(features: Sequence[Mapping[str, Any]], dropped: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Features grouped by family (in the model's order), and those dropped at build."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for f in features:
        groups.setdefault(f.get("family") or "other", []).append(
            {"name": f["name"], "description": f.get("description", ""), "unit": f.get("unit", "")})
    return {"families": [{"family": k, "features": v} for k, v in groups.items()],
            "n": len(features), "dropped": [dict(d) for d in dropped]}


# --------------------------------------------------------------------------- how it did


def score_names(test: pd.DataFrame) -> list[str]:
    """The model's and every baseline's and reference's score columns, without ``_low``/``_high``."""
    return [c[len(SCORE_PREFIX):] for c in test.columns
            if c.startswith(SCORE_PREFIX) and not c.endswith(("_low", "_high"))]


def metrics_table(test: pd.DataFrame, kind: str, headline: str, references: Sequence[str] = (), *,
                 n_boot: int = N_BOOT, seed: int = 0) -> dict[str, Any]:
    """Every score on the test rows (``score_<name>`` columns): its metrics, and the headline
    with a bootstrap interval (users resampled; one seed, so every score is judged on the same
    draws and the same card gives the same numbers)."""
    y = test[LABEL].to_numpy("float64")
    users = test["user_id"].astype(str).to_numpy()
    columns = CLASSIFIER_COLUMNS if kind in ("churn", "purchase") else LTV_COLUMNS
    rows = []
    for name in score_names(test):
        s = test[SCORE_PREFIX + name].to_numpy("float64")
        if kind in ("churn", "purchase"):
            m = classifier_metrics(y, s)
        else:
            low, high = (test.get(f"{SCORE_PREFIX}{name}_{part}") for part in ("low", "high"))
            m = ltv_metrics(y, s, low, high) if low is not None and high is not None else ltv_metrics(y, s)
        ci = bootstrap_interval(y, s, headline, groups=users, n_boot=n_boot, level=LEVEL, seed=seed)
        role = "model" if name == "model" else "reference" if name in references else "baseline"
        rows.append({"name": name, "role": role, "n": m["n"], "headline": m.get(headline, np.nan),
                     "low": ci["low"], "high": ci["high"], **{c: m.get(c, np.nan) for c in columns}})
    return {"headline": headline, "level": LEVEL, "n_boot": n_boot, "rows": rows,
            "columns": [c for c in columns if c != headline and any(np.isfinite(r[c]) for r in rows)],
            "n_rows": len(test), "n_users": int(pd.Series(users).nunique())}


def performance_figures(test: pd.DataFrame, kind: str, best: str | None) -> dict[str, str]:
    """Calibration and gain/lift (classifiers) or deciles and revenue captured (revenue), of
    the model against the best baseline (and the simulator's truth when there is one)."""
    y = test[LABEL].to_numpy("float64")
    names = [n for n in ("model", best, "truth") if n and SCORE_PREFIX + n in test.columns]
    scores = {n: test[SCORE_PREFIX + n].to_numpy("float64") for n in names}
    if kind in ("churn", "purchase"):
        return {"calibration": png(calibration(y, scores, title="Calibration on the test rows"), DPI),
                "gain": png(gain_lift(y, scores), DPI)}
    return {"deciles": png(ltv_deciles(y, scores["model"], title="Revenue by predicted decile (model)"), DPI),
            "gain": png(gain_lift(y, scores, title="Cumulative revenue captured"), DPI)}


def shap_section(source: str, *, contributions: pd.DataFrame | None = None, X: pd.DataFrame | None = None,
                 importance: pd.Series | None = None, image: bytes | None = None, note: str = "",
                 seed: int = 0) -> dict[str, Any]:
    """The explanation shown: SHAP of the test rows (``contributions`` and ``X``), the run's
    stored SHAP chart (``image``, PNG bytes) or the model's gain importance; ``source`` says which."""
    top: list[dict[str, Any]] = []
    figure = None
    if contributions is not None and X is not None:
        top = [{"feature": k, "value": float(v)} for k, v in mean_abs_shap(contributions).head(15).items()]
        figure = png(shap_summary(contributions, X, max_points=SHAP_ROWS, seed=seed,
                                  title="SHAP summary on the test rows"), DPI)
    elif image is not None:
        figure = "data:image/png;base64," + base64.b64encode(image).decode("ascii")
    elif importance is not None:
        top = [{"feature": k, "value": float(v)} for k, v in importance.head(15).items()]
        figure = png(feature_importance(importance), DPI)
    return {"source": source, "figure": figure, "top": top, "note": note}


# --------------------------------------------------------------------------- how it held up


HISTORY_COLUMNS = ("as_of", "status", "users", "expected_value", "realised_value", "drop", "features_drifted",
                   "drifted_features", "retrain_advised", "why")


def monitoring(history: pd.DataFrame | None, drift: pd.DataFrame | None, headline: str,
               test_value: float) -> dict[str, Any] | None:
    """Realised performance since release (one row per monitored scoring run of this
    version, with a chart) and the latest drift; None when it was never monitored."""
    if history is None or history.empty:
        return None
    h = history.sort_values("as_of").reset_index(drop=True)
    rows = [{c: _plain(r.get(c)) for c in HISTORY_COLUMNS} for r in h.to_dict("records")]
    latest = rows[-1]
    drifted = None
    if drift is not None and not drift.empty:
        d = drift.copy()
        order = ["drifted", "psi"] if "psi" in d.columns else ["drifted"]
        d = d.sort_values(order, ascending=False, na_position="last")
        keep = [c for c in ("feature", "psi", "p_value", "missing_then", "missing_now", "out_of_range", "rows",
                            "driver_rank", "drifted", "why") if c in d.columns]
        drifted = {"rows": [{c: _plain(v) for c, v in r.items()} for r in d[keep].head(20).to_dict("records")],
                   "columns": keep, "n": len(d), "n_drifted": int(d["drifted"].fillna(False).astype(bool).sum())}
    return {"rows": rows, "latest": latest, "drift": drifted, "headline": headline,
            "chart": png(_history_chart(h, headline, test_value), DPI)}


def _plain(v: Any) -> Any:
    if isinstance(v, (pd.Timestamp,)):
        return v.date().isoformat()
    if isinstance(v, np.generic):
        return v.item()
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return None
    return v


def _history_chart(h: pd.DataFrame, headline: str, test_value: float) -> Figure:
    """The headline at test (a line), expected before outcomes and realised after, per run."""
    fig = Figure(figsize=(6.4, 3.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    x = pd.to_datetime(h["as_of"])
    tv = pd.to_numeric(h.get("test_value", pd.Series(test_value, index=h.index)), errors="coerce")
    ax.plot(x, tv.fillna(test_value), color="grey", ls="--", lw=1, label="at test")
    for col, label in (("expected_value", "expected from the scores"), ("realised_value", "realised")):
        if col in h.columns:
            v = pd.to_numeric(h[col], errors="coerce")
            if v.notna().any():
                ax.plot(x[v.notna()], v[v.notna()], marker="o", ms=4, label=label)
    ax.set(xlabel="as-of date", ylabel=headline, title=f"{headline} since release")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return fig


# --------------------------------------------------------------------------- what it cannot do


def known_limits(problem: ProblemConfig, metrics: Mapping[str, Any], comparison: Mapping[str, Any],
                 notes: Sequence[str], dropped: Sequence[Mapping[str, Any]], profile_version: int | None,
                 coverage: tuple[float, float] | None = None, monitored: Mapping[str, Any] | None = None) -> list[str]:
    """One line per fact that limits what the scores can be used for."""
    out = [f"Population: scores only {population_text(problem)}.",
           f"Horizon: {problem.horizon_days} days from the as-of date; nothing beyond it."]
    model = next((r for r in metrics.get("rows", []) if r["name"] == "model"), None)
    if model is not None:
        width = model["high"] - model["low"]
        out.append(f"Test set: {metrics['n_rows']:,} rows of {metrics['n_users']:,} users; the {metrics['headline']} of "
                   f"{model['headline']:.3f} is known to within a {metrics['level']:.0%} interval "
                   f"{model['low']:.3f} to {model['high']:.3f} (width {width:.3f}).")
    if comparison:
        verdict = ("better than" if comparison["low"] > 0 else "worse than" if comparison["high"] < 0
                   else "not distinguishable from")
        out.append(f"Against the best baseline ({comparison['baseline']}): {comparison['metric']} "
                   f"{comparison['estimate']:+.3f} ({comparison['level']:.0%} interval {comparison['low']:+.3f} to "
                   f"{comparison['high']:+.3f}): {verdict} it on the test rows.")
    out += [f"Training note: {n}." for n in notes]
    if dropped and not any("dropped at build" in n for n in notes):
        out.append(f"Dropped at build (constant or empty in training): {', '.join(d['name'] for d in dropped)}.")
    if profile_version is not None and profile_version < 2:
        out.append(f"Its population profile is version {profile_version}, without distribution bins: drift is "
                   "judged by range and missing shares only, not by PSI.")
    if coverage is not None and np.isfinite(coverage[0]):
        realised, nominal = coverage
        out.append(f"Revenue interval: covers {realised:.0%} of test users' realised revenue (nominal {nominal:.0%}).")
    if monitored is None:
        out.append("Not monitored yet: nothing is known of its performance after release.")
    return out


def model_card_html(context: dict[str, Any]) -> str:
    return render("model_card.html.j2", **context)
