"""Evaluation figures as matplotlib Figures, drawn off-screen (Agg) and never shown.

Figures are built with ``matplotlib.figure.Figure`` on an explicit Agg canvas rather than
pyplot, so nothing is registered in pyplot's global state: no window, no leak across a
long training run, safe on headless CI, and the global backend is left alone (a notebook
that imports this module keeps its inline backend and can still display the figures). Numbers come from :mod:`churnkit.metrics`, so a plot and
the metric logged beside it cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

from churnkit.metrics import (
    both_classes,
    calibration_table,
    decile_table,
    finite_pairs,
    gain_curve,
    mean_abs_shap,
)

Scores = Mapping[str, object]
"""Named score arrays drawn on one axes, e.g. {"model": p, "rfm": q, "truth": t}."""


def _figure(width: float = 6.0, height: float = 4.5) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _curves(ax, y: object, scores: Scores, curve: Any) -> None:
    """One line per named score: ``curve(y, s) -> (x, y)`` on its finite rows, when the
    labels hold both classes (the curve is undefined otherwise)."""
    for name, s in scores.items():
        yy, ss = finite_pairs(y, s)
        if both_classes(yy):
            ax.plot(*curve(yy, ss), label=name)


def roc_curves(y: object, scores: Scores, title: str = "ROC") -> Figure:
    """ROC curve per named score, with the no-skill diagonal."""
    fig, ax = _figure()
    _curves(ax, y, scores, lambda yy, ss: roc_curve(yy, ss)[:2])
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="no skill")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right")
    return fig


def pr_curves(y: object, scores: Scores, title: str = "Precision-recall") -> Figure:
    """Precision-recall curve per named score, with the base rate as no-skill line."""
    fig, ax = _figure()
    _curves(ax, y, scores, lambda yy, ss: precision_recall_curve(yy, ss)[1::-1])  # (recall, precision)
    yy = np.asarray(y, dtype="float64")
    if len(yy):
        ax.axhline(np.nanmean(yy), color="grey", linestyle=":", label="base rate")
    ax.set(xlabel="recall", ylabel="precision", title=title, ylim=(0, 1.02))
    ax.legend(loc="upper right")
    return fig


def calibration(y: object, scores: Scores, n_bins: int = 10, title: str = "Calibration") -> Figure:
    """Observed rate vs mean score in equal-mass bins, per named score."""
    fig, ax = _figure()
    for name, s in scores.items():
        t = calibration_table(y, s, n_bins)
        if not t.empty:
            ax.plot(t["mean_score"], t["observed_rate"], marker="o", label=name)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect")
    ax.set(xlabel="mean predicted probability", ylabel="observed rate", title=title)
    ax.legend(loc="upper left")
    return fig


def gain_lift(y: object, scores: Scores, title: str = "Cumulative gain and lift") -> Figure:
    """Cumulative gain (share of positives or revenue captured) and lift vs share targeted."""
    fig = Figure(figsize=(10.0, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax_gain, ax_lift = fig.subplots(1, 2)
    for name, s in scores.items():
        x, g = gain_curve(y, s)
        if np.isfinite(g).all():
            ax_gain.plot(x, g, label=name)
            keep = x >= 0.01  # the first few rows give a huge, noisy lift
            ax_lift.plot(x[keep], g[keep] / x[keep], label=name)
    ax_gain.plot([0, 1], [0, 1], color="grey", linestyle=":", label="random")
    ax_lift.axhline(1.0, color="grey", linestyle=":", label="random")
    ax_gain.set(xlabel="share of users targeted", ylabel="share captured", title="Cumulative gain")
    ax_lift.set(xlabel="share of users targeted", ylabel="lift", title="Lift", xlim=(0.01, 1))
    ax_gain.legend(loc="lower right")
    ax_lift.legend(loc="upper right")
    fig.suptitle(title)
    return fig


def ltv_deciles(y: object, pred: object, title: str = "LTV by predicted decile") -> Figure:
    """Mean predicted vs mean actual revenue per predicted decile (1 = top)."""
    fig, ax = _figure()
    t = decile_table(y, pred)
    x = np.arange(len(t))
    ax.bar(x - 0.2, t["mean_pred"], width=0.4, label="predicted")
    ax.bar(x + 0.2, t["mean_actual"], width=0.4, label="actual")
    ax.set_xticks(x, [str(d) for d in t["decile"]])
    ax.set(xlabel="predicted decile (1 = highest)", ylabel="mean revenue", title=title)
    ax.legend()
    return fig


def feature_importance(importance: Mapping[str, float] | pd.Series, top: int = 20, title: str = "Feature importance (gain)") -> Figure:
    """Horizontal bars of the ``top`` features by importance (e.g. LightGBM total gain)."""
    s = pd.Series(importance, dtype="float64").sort_values(ascending=False).head(top)[::-1]
    fig, ax = _figure(7.0, max(3.0, 0.28 * len(s) + 1.2))
    ax.barh(s.index.astype(str), s.to_numpy())
    ax.set(xlabel="gain", title=title)
    return fig


def shap_summary(
    contributions: pd.DataFrame, X: pd.DataFrame, top: int = 15, max_points: int = 2000, seed: int = 0,
    title: str = "SHAP summary",
) -> Figure:
    """Beeswarm-like summary: per feature, each row's contribution coloured by its value.

    Plain matplotlib (shap's own plot draws on pyplot's global figure). Features are
    ordered by mean |contribution|; a ``bias`` column is ignored; values are coloured by
    their percentile within the feature (grey = missing). Rows are subsampled to
    ``max_points`` to keep the PNG light.
    """
    C = contributions.drop(columns=[c for c in ("bias",) if c in contributions.columns])
    names = list(mean_abs_shap(C).head(top).index)[::-1]
    rng = np.random.default_rng(seed)
    rows = np.arange(len(C)) if len(C) <= max_points else rng.choice(len(C), max_points, replace=False)
    fig, ax = _figure(7.5, max(3.0, 0.35 * len(names) + 1.2))
    sc = None
    for i, name in enumerate(names):
        c = C[name].to_numpy(dtype="float64")[rows]
        v = X[name].to_numpy(dtype="float64")[rows] if name in X.columns else np.full(len(rows), np.nan)
        colour = pd.Series(v).rank(pct=True).to_numpy()
        jitter = rng.uniform(-0.3, 0.3, len(rows))
        miss = ~np.isfinite(colour)
        ax.scatter(c[miss], i + jitter[miss], s=4, color="lightgrey")
        sc = ax.scatter(c[~miss], i + jitter[~miss], s=4, c=colour[~miss], cmap="coolwarm", vmin=0, vmax=1)
    ax.axvline(0.0, color="grey", linewidth=0.8)
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="contribution (model's raw scale)", title=title)
    if sc is not None:
        fig.colorbar(sc, ax=ax, label="feature value (percentile)")
    return fig


def classifier_figures(y: object, scores: Scores, name: str = "") -> dict[str, Figure]:
    """ROC, PR, calibration and gain/lift for named probability scores."""
    prefix = f"{name}_" if name else ""
    return {
        f"{prefix}roc": roc_curves(y, scores),
        f"{prefix}pr": pr_curves(y, scores),
        f"{prefix}calibration": calibration(y, scores),
        f"{prefix}gain_lift": gain_lift(y, scores),
    }


def ltv_figures(y: object, preds: Scores, name: str = "") -> dict[str, Figure]:
    """Gain/lift for named LTV predictions and a decile chart for each."""
    prefix = f"{name}_" if name else ""
    figs = {f"{prefix}gain_lift": gain_lift(y, preds, title="Cumulative revenue captured")}
    for label, pred in preds.items():
        figs[f"{prefix}deciles_{label}"] = ltv_deciles(y, pred, title=f"LTV by predicted decile: {label}")
    return figs


def save_all(figures: Mapping[str, Figure], folder: str | Path, dpi: int = 110) -> list[Path]:
    """Write each figure to ``folder/<name>.png`` (folder created) and return the paths."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, fig in figures.items():
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
        path = out / f"{safe}.png"
        fig.savefig(path, dpi=dpi, bbox_inches="tight")
        paths.append(path)
    return paths


def cohort_heatmap(matrix: pd.DataFrame, title: str, grain: str = "week", last: int | None = 12,
                   periods: int | None = 13, share: bool = True) -> Figure:
    """Cohorts (rows, the latest ``last``; None: all) x periods since the start (the first
    ``periods``), each cell written in: a share retained (``share``) or an amount."""
    m = matrix.iloc[-last if last else 0:, :periods]
    values = m.to_numpy(dtype="float64")
    fig = Figure(figsize=(0.55 * max(m.shape[1], 4) + 1.5, 0.32 * max(m.shape[0], 3) + 1))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    top = 1.0 if share else float(np.nanmax(values)) if np.isfinite(values).any() else 1.0
    ax.imshow(values, aspect="auto", cmap="Blues", vmin=0, vmax=top or 1.0)
    ax.set_xticks(range(m.shape[1]), [str(c) for c in m.columns])
    ax.set_yticks(range(m.shape[0]), [str(pd.Timestamp(i).date()) if not isinstance(i, str) else i for i in m.index])
    ax.set_xlabel(f"{grain}s since the cohort's start")
    ax.set_title(title, fontsize=10)
    for (i, j), v in np.ndenumerate(values):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.0%}" if share else f"{v:,.0f}", ha="center", va="center", fontsize=6,
                    color="white" if v > 0.5 * (top or 1.0) else "black")
    return fig


def forest(rows: pd.DataFrame, title: str = "Effects with 95% intervals") -> Figure:
    """One line per metric x variant: the relative effect (%) and its interval, so metrics of
    different units sit on one axis; a dashed line at no effect."""
    n = len(rows)
    fig = Figure(figsize=(6.4, 0.42 * max(n, 2) + 1.1))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    y = np.arange(n)[::-1]
    mid = rows["rel_effect"].to_numpy("float64") * 100
    lo = rows["rel_ci_low"].to_numpy("float64") * 100
    hi = rows["rel_ci_high"].to_numpy("float64") * 100
    colour = np.where(lo > 0, "#1f7a3d", np.where(hi < 0, "#b3261e", "#5b6b7c"))
    for i in range(n):
        ax.plot([lo[i], hi[i]], [y[i], y[i]], color=colour[i], lw=2)
        ax.plot(mid[i], y[i], "o", color=colour[i], ms=5)
    ax.axvline(0, color="grey", ls="--", lw=0.8)
    labels = [f"{m} ({v})" for m, v in zip(rows["metric"], rows["variant"], strict=True)]
    ax.set_yticks(y, labels)
    ax.set_xlabel("relative effect vs control (%)")
    ax.set_title(title, fontsize=10)
    return fig


def cumulative_effect(curve: pd.DataFrame, title: str = "Effect on 'active at least once' as the window runs") -> Figure:
    """The effect (percentage points) on the share active within d days, with each day's 95%
    interval, per variant."""
    fig, ax = _figure(6.4, 3.2)
    for variant, g in curve.groupby("variant", sort=True):
        d = g["day"].to_numpy()
        ax.fill_between(d, g["ci_low"] * 100, g["ci_high"] * 100, alpha=0.2)
        ax.plot(d, g["effect"] * 100, lw=1.8, label=str(variant))
    ax.axhline(0, color="grey", ls="--", lw=0.8)
    ax.set(xlabel="days since assignment", ylabel="effect (points)", title=title)
    ax.legend(fontsize=8)
    return fig


def qini(curve: pd.DataFrame, title: str = "Qini curves on the held-out split") -> Figure:
    """Per treatment arm, the model's Qini curve (incremental responders among the top
    fraction targeted) against the random line to the same end point."""
    fig, ax = _figure(6.4, 3.8)
    for i, (variant, g) in enumerate(curve.groupby("variant", sort=True)):
        colour = f"C{i}"
        x = g["fraction_targeted"].to_numpy() * 100
        learner = g["learner"].iloc[0] if "learner" in g else "model"
        ax.plot(x, g["incremental_gain"], lw=1.8, color=colour, label=f"{variant} ({learner}-learner)")
        ax.plot(x, g["random"], lw=1, ls="--", color=colour, label=f"{variant}: random")
    ax.axhline(0, color="grey", lw=0.6)
    ax.set(xlabel="customers targeted, highest predicted uplift first (%)", ylabel="incremental responders",
           title=title)
    ax.legend(fontsize=8)
    return fig


def budget_curve(budget: pd.DataFrame, value: str, title: str = "What each ranking buys, by budget") -> Figure:
    """Incremental outcome of contacting the top share of users by each ranking (one line per
    ranking): the budget curve of a targeting policy."""
    fig, ax = _figure(6.4, 3.8)
    for i, (ranking, g) in enumerate(budget.groupby("ranking", sort=False)):
        g = g.sort_values("budget_share")
        x = np.r_[0.0, g["budget_share"].to_numpy() * 100]
        ax.plot(x, np.r_[0.0, g[value].to_numpy()], marker="o", ms=3, lw=1.8 if ranking == "uplift" else 1.2,
                ls="--" if ranking == "random" else "-", color=f"C{i}", label=str(ranking).replace("_", " "))
    ax.axhline(0, color="grey", lw=0.6)
    ax.set(xlabel="users contacted (% of the campaign's users)", ylabel=value.replace("_", " "), title=title)
    ax.legend(fontsize=8)
    return fig
