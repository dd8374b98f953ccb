"""CDNOW (master file): churnkit's purchase and value models against BG/NBD + Gamma-Gamma.

The BTYD set-up: calibration 1997-01-01..1997-09-30, holdout the next 39 weeks
(1997-10-01..1998-06-30), every customer of the Q1-1997 cohort scored at 1997-10-01.

A time-honest LightGBM cannot learn a 39-week horizon inside 39 weeks of calibration data
(no training cutoff has a complete 39-week label window before the holdout starts), so the
models learn a 13-week horizon from weekly cutoffs whose windows end by 1997-10-01 and are
judged on how they *rank* customers for the 39-week holdout: ROC-AUC / PR-AUC for "buys
again in the holdout", normalized Gini / Spearman for holdout revenue. Ranking metrics do
not care about the horizon's scale; BG/NBD is scored on its own 39-week predictions.
The baselines are the ones every training report carries (``training.comparisons``), with
the paired bootstrap interval of the model minus the best of them (customers resampled).

    .venv/bin/python bench/bench_cdnow.py          # needs the clv extra (pymc-marketing)
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from churnkit.config import IngestSettings, ProblemConfig, load_source
from churnkit.datasets.build import build_training_set
from churnkit.events.ingest import ingest
from churnkit.io.warehouse import duckdb_connection, workspace_events
from churnkit.io.workspace import Workspace
from churnkit.metrics import compare_table, decile_table
from churnkit.models.classifier import PropensityClassifier
from churnkit.models.ltv import LTVModel
from churnkit.models.outputs import model_outputs
from churnkit.training.comparisons import RFM_FAMILY, BaselineRows, baseline_scores
from churnkit.training.evaluation import compare_with_best, comparison_text
from churnkit.training.fit import metrics_for

TEST = dt.date(1997, 10, 1)
HOLDOUT_DAYS = 273
TRAIN_H = 91
TRAIN_CUTOFFS = [TEST - dt.timedelta(days=TRAIN_H + 7 * k) for k in range(21)][::-1]
FAMILIES = ["rfm", "windows", "trends", "gaps"]


def problem(name: str, kind: str, horizon: int, dates: list[dt.date]) -> ProblemConfig:
    return ProblemConfig.model_validate({
        "name": name, "kind": kind, "lookback_days": 400, "horizon_days": horizon,
        "cutoffs": {"dates": dates}, "features": {"families": FAMILIES},
    })


def level_errors(y, pred) -> tuple[float, list[float]]:
    """Predicted over realised revenue, minus 1: in total and per predicted decile."""
    t = decile_table(y, pred)
    return float(pred.sum() / y.sum() - 1), (t["mean_pred"] / t["mean_actual"] - 1).round(4).tolist()


def main() -> None:
    cdnow = ROOT.parent / "shared" / "data" / "cdnow" / "CDNOW_master.txt"
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp))
        ingest([cdnow], load_source("cdnow_master"), ws, as_of=None, settings=IngestSettings())
        events = workspace_events(duckdb_connection(), ws)
        sets = {}
        for kind in ("purchase", "revenue"):
            train, man = build_training_set(events, None, problem(f"cd_{kind}", kind, TRAIN_H, TRAIN_CUTOFFS))
            test, _ = build_training_set(events, None, problem(f"cd_{kind}_test", kind, HOLDOUT_DAYS, [TEST]))
            rfm = [f.name for f in man.features if f.family == RFM_FAMILY]
            sets[kind] = (train, test, man.feature_names, rfm)
        # the level at the horizon the model learns: the holdout's first 13 weeks
        test13, _ = build_training_set(events, None, problem("cd_revenue_13w", "revenue", TRAIN_H, [TEST]))
        sets["revenue_13w"] = (sets["revenue"][0], test13, *sets["revenue"][2:])
    t0 = time.perf_counter()
    reports = {}
    models = {}
    for kind, make in (("purchase", lambda: PropensityClassifier(random_state=1)), ("revenue", lambda: LTVModel(random_state=1)),
                       ("revenue_13w", None)):
        train, test, names, rfm = sets[kind]
        horizon = TRAIN_H if kind == "revenue_13w" else HOLDOUT_DAYS
        kind, label = kind.split("_")[0], kind
        last = train.cutoff.max()
        fit, calib = train[train.cutoff <= last - pd.Timedelta(days=TRAIN_H)], train[train.cutoff == last]
        model = models[kind] = models.get(kind) or make().fit(fit[names], fit.label, eval_set=(calib[names], calib.label))
        # learnt on 13-week labels: scaled to the 39-week holdout (ranking metrics ignore it)
        scale = 1.0 if kind == "purchase" else horizon / TRAIN_H
        scores = {"model": model_outputs(model, test[names], kind)["score"] * scale}
        rows = BaselineRows(fit[names], fit.label.to_numpy("float64"), calib[names], calib.label.to_numpy("float64"),
                            test[names], test.cutoff.to_numpy())
        base = baseline_scores(kind, horizon, rows, rfm, bgnbd=True, seed=1)
        for name in ("lgbm_rfm", "linear_rfm"):  # learnt on 13-week labels too
            if name in base.scores:
                base.scores[name] = base.scores[name] * scale
        scores |= base.scores
        y = test.label.to_numpy("float64")
        metrics = metrics_for(kind, y, scores)
        comparison = compare_with_best(kind, y, scores, metrics, list(base.scores), test.user_id.to_numpy(), seed=1)
        deciles = {n: level_errors(y, s) for n, s in scores.items()} if kind == "revenue" else {}
        reports[label] = (len(test), metrics, comparison, base, deciles)
    wall = time.perf_counter() - t0
    keep = {"purchase": ["n", "base_rate", "mean_pred", "roc_auc", "pr_auc", "ece", "lift_top10", "capture_top10"],
            "revenue": ["n", "mean_actual", "mean_pred", "gini_norm", "spearman", "decile_mape", "rmse", "mae"]}
    title = {"purchase": "buys again in the 39-week holdout", "revenue": "holdout revenue (39 weeks)",
             "revenue_13w": "holdout revenue, first 13 weeks (the horizon the models learn; BTYD at 13 weeks)"}
    print(f"customers scored at {TEST}: {reports['purchase'][0]:,}; fit + score {wall:.1f} s")
    for label, (_, metrics, comparison, base, deciles) in reports.items():
        kind = label.split("_")[0]
        print(f"\n{title[label]}\n" + compare_table(metrics).loc[keep[kind]].to_string(float_format=lambda v: f"{v:.4f}"))
        print(comparison_text(comparison))
        for name, (total, per_decile) in deciles.items():
            print(f"  {name}: predicted/realised - 1, total {total:+.3f}; per predicted decile (1 = top) "
                  + " ".join(f"{e:+.2f}" for e in per_decile))
        for name, info in base.info.items():
            print(f"  {name}: {json.dumps(info, default=str)}")
        for note in base.notes:
            print(f"  note: {note}")


if __name__ == "__main__":
    main()
