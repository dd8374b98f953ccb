"""Every evaluation figure renders headless and is written as a non-empty PNG."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from churnkit.reports import plots


def _data(n: int = 400):
    rng = np.random.default_rng(0)
    p = rng.beta(2, 5, n)
    y = (rng.random(n) < p).astype(float)
    revenue = y * rng.gamma(2.0, 15.0, n)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.random(n), "c": np.where(rng.random(n) < 0.1, np.nan, 1.0)})
    C = pd.DataFrame({"a": X["a"] * 0.5, "b": -X["b"], "c": 0.01 * rng.normal(size=n), "bias": 0.2})
    return y, p, revenue, X, C


def test_all_figures_are_written(tmp_path):
    y, p, revenue, X, C = _data()
    scores = {"model": p, "noise": np.random.default_rng(1).random(len(p))}
    figs = plots.classifier_figures(y, scores, name="churn")
    figs |= plots.ltv_figures(revenue, {"model": revenue * 0.8 + 1, "flat": np.ones(len(p))}, name="ltv")
    figs["importance"] = plots.feature_importance(pd.Series({"a": 3.0, "b": 1.0, "c": 0.5}))
    figs["shap"] = plots.shap_summary(C, X)
    assert all(isinstance(f, Figure) for f in figs.values())
    paths = plots.save_all(figs, tmp_path / "plots")
    assert len(paths) == len(figs) == 9
    for path in paths:
        assert path.suffix == ".png" and path.stat().st_size > 1000
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_degenerate_inputs_still_render(tmp_path):
    y = np.zeros(50)
    figs = plots.classifier_figures(y, {"flat": np.full(50, 0.1)})
    figs["deciles"] = plots.ltv_deciles(np.zeros(50), np.zeros(50))
    assert len(plots.save_all(figs, tmp_path)) == 5


def test_no_pyplot_state_is_left_behind():
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    y, p, *_ = _data(100)
    plots.roc_curves(y, {"m": p})
    assert plt.get_fignums() == before


def test_qini_draws_each_arms_curve_and_its_random_line():
    from churnkit.campaigns.uplift import qini_curve

    rng = np.random.default_rng(2)
    curves = []
    for arm in ("mens", "womens"):
        t = rng.integers(0, 2, 300)
        y = (rng.random(300) < 0.1 + 0.1 * t).astype(float)
        curves.append(qini_curve(rng.random(300), t, y).assign(variant=arm, learner="T"))
    fig = plots.qini(pd.concat(curves, ignore_index=True))
    lines = fig.axes[0].get_lines()
    assert len(lines) == 5  # two curves, two random lines, the zero line
    assert lines[0].get_ydata()[-1] == lines[1].get_ydata()[-1]  # the random line ends where the curve does
