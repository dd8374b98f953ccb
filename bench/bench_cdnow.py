"""CDNOW (master file): churnkit's purchase and value models against BG/NBD + Gamma-Gamma.

The BTYD set-up: calibration 1997-01-01..1997-09-30, holdout the next 39 weeks
(1997-10-01..1998-06-30), every customer of the Q1-1997 cohort scored at 1997-10-01.

A time-honest LightGBM cannot learn a 39-week horizon inside 39 weeks of calibration data
(no training cutoff has a complete 39-week label window before the holdout starts), so the
models learn a 13-week horizon from weekly cutoffs whose windows end by 1997-10-01 and are
judged on how they *rank* customers for the 39-week holdout: ROC-AUC / PR-AUC for "buys
again in the holdout", normalized Gini / Spearman for holdout revenue. Ranking metrics do
not care about the horizon's scale; BG/NBD is scored on its own 39-week predictions.

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
from churnkit.metrics import classifier_metrics, compare_table, ltv_metrics
from churnkit.models.baselines import BGNBDBaseline, LastPeriodRevenue, RecencyRFMBaseline
from churnkit.models.classifier import PropensityClassifier
from churnkit.models.ltv import LTVModel

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
            sets[kind] = (train, test, man.feature_names)
    t0 = time.perf_counter()
    train, test, names = sets["purchase"]
    last = train.cutoff.max()
    fit, calib = train[train.cutoff <= last - pd.Timedelta(days=TRAIN_H)], train[train.cutoff == last]
    clf = PropensityClassifier(random_state=1).fit(fit[names], fit.label, eval_set=(calib[names], calib.label))
    rfm = RecencyRFMBaseline(kind="purchase", recency="days_since_last_purchase").fit(fit[names], fit.label)
    bg = BGNBDBaseline(horizon_days=HOLDOUT_DAYS).fit(test)
    bg_out = bg.transform(test)
    y = test.label.to_numpy()
    purchase = {
        "lightgbm": classifier_metrics(y, clf.predict_proba(test[names])[:, 1]),
        "rfm": classifier_metrics(y, rfm.predict_proba(test[names])[:, 1]),
        "bgnbd": classifier_metrics(y, bg_out["bgnbd_p_purchase"].fillna(0.0)),
    }
    train, test_r, names = sets["revenue"]
    fit, calib = train[train.cutoff <= last - pd.Timedelta(days=TRAIN_H)], train[train.cutoff == last]
    ltv = LTVModel(random_state=1).fit(fit[names], fit.label, eval_set=(calib[names], calib.label))
    yr = test_r.label.to_numpy()
    bg_r = bg.transform(test_r)
    value = {
        "lightgbm": ltv_metrics(yr, ltv.predict(test_r[names]) * HOLDOUT_DAYS / TRAIN_H),
        "last_period": ltv_metrics(yr, LastPeriodRevenue(HOLDOUT_DAYS, "revenue_90d", 90).fit(test_r).predict(test_r)),
        "bgnbd_gg": ltv_metrics(yr, bg_r["bgnbd_expected_spend"].fillna(0.0)),
    }
    wall = time.perf_counter() - t0
    keep_p = ["n", "base_rate", "roc_auc", "pr_auc", "lift_top10", "capture_top10"]
    keep_v = ["n", "mean_actual", "mean_pred", "gini_norm", "spearman", "decile_mape", "rmse", "mae"]
    print(f"customers scored at {TEST}: {len(test):,}; fit + score {wall:.1f} s; BG/NBD params {json.dumps(bg.params_)}")
    print(f"LTV model chose: {ltv.chosen_}")
    print("\nbuys again in the 39-week holdout\n" + compare_table(purchase).loc[keep_p].to_string(float_format=lambda v: f"{v:.4f}"))
    print("\nholdout revenue (39 weeks)\n" + compare_table(value).loc[keep_v].to_string(float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
