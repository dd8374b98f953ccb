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
from churnkit.metrics import compare_table
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
    t0 = time.perf_counter()
    reports = {}
    for kind, make in (("purchase", lambda: PropensityClassifier(random_state=1)), ("revenue", lambda: LTVModel(random_state=1))):
        train, test, names, rfm = sets[kind]
        last = train.cutoff.max()
        fit, calib = train[train.cutoff <= last - pd.Timedelta(days=TRAIN_H)], train[train.cutoff == last]
        model = make().fit(fit[names], fit.label, eval_set=(calib[names], calib.label))
        # learnt on 13-week labels: scaled to the 39-week holdout (ranking metrics ignore it)
        scale = 1.0 if kind == "purchase" else HOLDOUT_DAYS / TRAIN_H
        scores = {"model": model_outputs(model, test[names], kind)["score"] * scale}
        rows = BaselineRows(fit[names], fit.label.to_numpy("float64"), calib[names], calib.label.to_numpy("float64"),
                            test[names], test.cutoff.to_numpy())
        base = baseline_scores(kind, HOLDOUT_DAYS, rows, rfm, bgnbd=True, seed=1)
        if "lgbm_rfm" in base.scores:
            base.scores["lgbm_rfm"] = base.scores["lgbm_rfm"] * scale
        scores |= base.scores
        y = test.label.to_numpy("float64")
        metrics = metrics_for(kind, y, scores)
        comparison = compare_with_best(kind, y, scores, metrics, list(base.scores), test.user_id.to_numpy(), seed=1)
        reports[kind] = (len(test), metrics, comparison, base)
    wall = time.perf_counter() - t0
    keep = {"purchase": ["n", "base_rate", "mean_pred", "roc_auc", "pr_auc", "ece", "lift_top10", "capture_top10"],
            "revenue": ["n", "mean_actual", "mean_pred", "gini_norm", "spearman", "decile_mape", "rmse", "mae"]}
    title = {"purchase": "buys again in the 39-week holdout", "revenue": "holdout revenue (39 weeks)"}
    print(f"customers scored at {TEST}: {reports['purchase'][0]:,}; fit + score {wall:.1f} s")
    for kind, (_, metrics, comparison, base) in reports.items():
        print(f"\n{title[kind]}\n" + compare_table(metrics).loc[keep[kind]].to_string(float_format=lambda v: f"{v:.4f}"))
        print(comparison_text(comparison))
        for name, info in base.info.items():
            print(f"  {name}: {json.dumps(info, default=str)}")
        for note in base.notes:
            print(f"  note: {note}")


if __name__ == "__main__":
    main()
