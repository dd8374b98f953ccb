"""``churnkit monitor``: every stored scoring run, judged against the model that scored it.

For each scores file in the workspace (or those given) and each model that scored it (the
versions in its meta), over the users inside that model's population:

- **drift**: each feature at the run's as-of date (the scoring feature code, recomputed:
  features before the as-of never change) against the model's training profile, and the
  scores against the model's scores on its test rows (:mod:`churnkit.monitor.drift`),
  with the model's top drivers by mean |SHAP| on those users;
- **expected** performance from the calibrated scores (:mod:`churnkit.monitor.expected`);
- **realised** performance once the log reaches the outcome window's end: the training
  label code on the same users (:func:`~churnkit.datasets.labels.realised_labels`), the
  training metrics, overall and by lifecycle stage and RFM tier;
- **advice and alerts** (:mod:`churnkit.monitor.health`) into the KPI alert ledger, and
  every figure into MLflow against the model version.

A run whose outcomes are realised is final: later calls keep its row and skip the work.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnkit.config import MonitorSettings
from churnkit.contracts import (
    CLASSIFIER_KINDS,
    KIND_OF_ROLE,
    LABEL,
    ROLE_OUTPUTS,
    in_population_column,
)
from churnkit.datasets.build import scoring_features
from churnkit.datasets.labels import outcome_window_complete, realised_labels
from churnkit.datasets.manifest import Manifest
from churnkit.datasets.span import data_span
from churnkit.errors import ChurnkitError
from churnkit.flows.alerts import record
from churnkit.flows.project import Project
from churnkit.flows.train import run_predictions
from churnkit.io import tracking
from churnkit.io.artifacts import read_json, save_parquet
from churnkit.io.locks import exclusive
from churnkit.io.workspace import scores_meta_path
from churnkit.monitor import history as H
from churnkit.monitor.drift import (
    drifted_drivers,
    feature_drift,
    one_feature,
    top_drivers,
)
from churnkit.monitor.expected import expected_metrics, recalibrated
from churnkit.monitor.health import Advice, advise
from churnkit.monitor.realised import by_segment, performance, totals
from churnkit.scoring.roles import feature_key
from churnkit.training.fit import MODEL_SCORE
from churnkit.training.promotion import HEADLINE

SEGMENTS = ("lifecycle_stage", "rfm_tier")
SCORE_FEATURE = "score"
"""The drift table's row for the model's own score."""


@dataclass
class RunCheck:
    """One scoring run as one model saw it."""

    row: dict[str, Any]
    drift: pd.DataFrame
    segments: pd.DataFrame | None
    advice: Advice | None
    reused: bool = False
    """True when the stored row was final (outcomes realised) and nothing was recomputed."""


@dataclass
class MonitorOutcome:
    checks: list[RunCheck]
    history: dict[str, pd.DataFrame]
    """Problem -> its whole monitoring history (every run, sorted by as-of)."""
    folder: Path
    """Where histories, drift and segment tables were written."""
    new_alerts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def latest(self) -> dict[str, dict[str, Any]]:
        """Problem -> the history row of its latest scoring run."""
        return {p: h.iloc[-1].to_dict() for p, h in self.history.items() if len(h)}


@dataclass
class _Model:
    model: Any
    manifest: Manifest
    run_id: str | None
    drivers: list[str] | None = None
    """Top features by mean |SHAP|, on a sample of the first run's users this call judges
    (TreeSHAP is the slow part; what a model leans on changes slowly)."""
    test: pd.DataFrame | None = None
    """The training run's test rows (label, ``score_model``): what expected performance is
    calibrated on; None when neither the workspace nor the run has them."""


def read_history(project: Project, problem: str) -> pd.DataFrame:
    path = project.workspace.monitor_history_path(problem)
    return pd.read_parquet(path) if path.exists() else pd.DataFrame(columns=list(H.COLUMNS))


def scoring_runs(project: Project, given: Sequence[Path] | None = None) -> list[Path]:
    """The scores files to judge: those given, or every one in the workspace, oldest first."""
    files = [Path(p) for p in given] if given else sorted(project.workspace.scores_dir.glob("scores_*.parquet"))
    if not files:
        raise ChurnkitError(f"no scoring runs in {project.workspace.scores_dir}: run churnkit score first")
    for f in files:
        if not f.exists():
            raise ChurnkitError(f"no scores file {f}")
        if not scores_meta_path(f).exists():
            raise ChurnkitError(f"{f.name} has no meta beside it ({scores_meta_path(f).name}); rescore that date"
                                " with churnkit score --as-of")
    return files


def monitor(project: Project, scores: Sequence[Path] | None = None, *, log_run: bool = True,
            progress: Callable[[str], None] | None = None) -> MonitorOutcome:
    """Judge every stored scoring run (or ``scores``); write history, drift and segment
    tables, alerts and MLflow figures. See the module doc."""
    say = progress or (lambda _m: None)
    settings = project.config.monitor
    files = scoring_runs(project, scores)
    project.open_tracking()
    events, users = project.tables()
    end = data_span(events).end
    models: dict[tuple[str, int], _Model] = {}
    features: dict[tuple[str, dt.date], pd.DataFrame] = {}
    histories: dict[str, pd.DataFrame] = {}
    checks: list[RunCheck] = []
    notes: list[str] = []
    for f in files:
        meta = read_json(scores_meta_path(f), "scores meta")
        as_of = dt.date.fromisoformat(meta["as_of"])
        frame: pd.DataFrame | None = None
        for role, pinned in (meta.get("versions") or {}).items():
            problem, version = str(pinned["problem"]), int(pinned["version"])
            history = histories.setdefault(problem, read_history(project, problem))
            old = _row(history, as_of, version)
            if old is not None and old["status"] == H.REALISED:
                checks.append(RunCheck(old, _stored(project.workspace.drift_path(problem, as_of)),
                                       _stored(project.workspace.realised_segments_path(problem, as_of)), None,
                                       reused=True))
                continue
            say(f"{problem} v{version} on {as_of}")
            key = (problem, version)
            if key not in models:
                loaded = tracking.load_model(problem, version=version)
                if not loaded.manifest:
                    raise ChurnkitError(f"{problem} v{version} has no feature manifest; it cannot be monitored")
                with tempfile.TemporaryDirectory(prefix="churnkit-monitor-") as tmp:
                    test, _, _ = run_predictions(project, problem, loaded.run_id, Path(tmp))
                models[key] = _Model(loaded.model, Manifest.from_dict(loaded.manifest, f"{problem} v{version}"),
                                     loaded.run_id, test=test)
            frame = pd.read_parquet(f) if frame is None else frame
            fkey = (feature_key(models[key].manifest), as_of)
            if fkey not in features:  # models that compute features alike share one pass
                features = {fkey: scoring_features(events, users, models[key].manifest, as_of)}
            check = check_run(models[key], role, problem, version, f.name, as_of, frame, features[fkey], events,
                              end, settings)
            checks.append(check)
            histories[problem] = _upsert(history, check.row)
            _write_run(project, problem, as_of, check)
            if log_run:
                _log(problem, version, check)
    breaches = [b for c in checks if c.advice for b in c.advice.breaches]
    new: list[str] = []
    if breaches:
        _, new = record(project, breaches, {b.rule: "day" for b in breaches})
    for problem, history in histories.items():
        path = project.workspace.monitor_history_path(problem)
        with exclusive(path.with_name(".lock"), "monitor history"):
            save_parquet(history, path)
    if not checks:
        notes.append("the scores files name no model versions")
    return MonitorOutcome(checks, histories, project.workspace.monitor_dir, new, notes)


def check_run(m: _Model, role: str, problem: str, version: int, name: str, as_of: dt.date, scores: pd.DataFrame,
              features: pd.DataFrame, events: Any, end: dt.date, settings: MonitorSettings) -> RunCheck:
    """One model on one scoring run (its scores file and the scoring features at its as-of):
    drift, expected and realised performance, advice."""
    spec = m.manifest.problem
    kind = spec.kind if spec.kind in (*CLASSIFIER_KINDS, "revenue") else KIND_OF_ROLE[role]
    headline = HEADLINE[kind][0]
    score_col = ROLE_OUTPUTS[role]["score"]
    inside = scores[in_population_column(role)].fillna(False).astype(bool) if in_population_column(role) in scores \
        else scores[score_col].notna()
    rows = scores.loc[inside & scores[score_col].notna()].reset_index(drop=True)
    ids = rows["user_id"].astype(str)
    p = rows[score_col].to_numpy("float64")

    features = features.set_index(features["user_id"].astype(str)).reindex(ids)
    reference, reference_day = m.manifest.drift_reference()
    names = [n for n in m.manifest.feature_names if n in reference.features]
    aged = {n: float((as_of - reference_day).days) for n in m.manifest.ageing} if reference_day else {}
    if m.drivers is None:
        sample = features[m.manifest.feature_names].dropna(how="all")
        sample = sample.sample(min(len(sample), settings.sample_rows), random_state=0)
        m.drivers = top_drivers(m.model.contributions(sample.reset_index(drop=True)), settings.drivers) \
            if len(sample) else None
    drift = feature_drift(reference, features.reset_index(drop=True), names, m.drivers or (), settings, aged)
    score_row = one_feature(SCORE_FEATURE, m.manifest.score_profile, p, settings) \
        if m.manifest.score_profile is not None else None
    test_value = float((m.manifest.test_metrics or {}).get("model", {}).get(headline, np.nan))
    horizon = spec.horizon_days
    row: dict[str, Any] = {
        "as_of": as_of.isoformat(), "checked_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "problem": problem, "role": role, "kind": kind, "version": version,
        "scores_file": name, "users": len(rows), "headline": headline, "test_value": test_value,
        "features_checked": len(drift), "features_drifted": int(drift["drifted"].sum()),
        "drifted_features": ", ".join(drift.loc[drift["drifted"], "feature"]),
        "drifted_drivers": ", ".join(drifted_drivers(drift)),
        "score_psi": float(score_row["psi"]) if score_row else np.nan,
        "score_drifted": bool(score_row["drifted"]) if score_row else False,
        "expected_value": np.nan, "status": H.AWAITING,
        "outcomes_on": (as_of + dt.timedelta(days=horizon)).isoformat(),
        "realised_value": np.nan, "predicted_total": np.nan, "realised_total": np.nan,
    }
    if kind in CLASSIFIER_KINDS:
        calibrated = m.test is not None and MODEL_SCORE in m.test
        believed = recalibrated(p, m.test[MODEL_SCORE], m.test[LABEL]) if calibrated else p
        expected = expected_metrics(believed, p)
        row["expected_recalibrated"] = calibrated
        row["expected_value"] = expected[headline]
        row |= {f"expected_{k}": v for k, v in expected.items() if k != "n"}
    segments = None
    if outcome_window_complete(as_of, horizon, end) and len(rows):
        y = realised_labels(events, spec, as_of, ids)
        realised = performance(kind, y, p)
        row |= {f"realised_{k}": v for k, v in realised.items()}
        row["realised_value"] = realised.get(headline, np.nan)
        row["predicted_total"], row["realised_total"] = totals(y, p)
        row["status"] = H.REALISED
        segments = by_segment(kind, headline, y, rows[score_col],
                              {c: rows[c] for c in SEGMENTS if c in rows and rows[c].notna().any()})
    last_cutoff = max(m.manifest.cutoff_dates, default=None)
    row["in_training"] = bool(last_cutoff is not None and as_of < last_cutoff + dt.timedelta(days=horizon))
    now = row["realised_value"] if row["status"] == H.REALISED else row["expected_value"]
    row["value_now"] = now
    row["drop"] = test_value - now if np.isfinite(now) else np.nan
    table = pd.concat([drift, pd.DataFrame([score_row])], ignore_index=True) if score_row else drift
    advice = advise(row, drift, settings)
    row["retrain_advised"], row["why"] = advice.retrain, advice.why
    return RunCheck(row, table, segments, advice)


def _row(history: pd.DataFrame, as_of: dt.date, version: int) -> dict[str, Any] | None:
    hit = history[(history["as_of"] == as_of.isoformat()) & (history["version"].astype(int) == version)] \
        if len(history) else history
    return hit.iloc[-1].to_dict() if len(hit) else None


def _upsert(history: pd.DataFrame, row: dict[str, Any]) -> pd.DataFrame:
    """The history with ``row`` replacing an earlier row of the same run and version (a date
    rescored by another version keeps both); ordered by as-of, then when judged."""
    same = (history["as_of"] == row["as_of"]) & (history["version"].astype(int) == int(row["version"])) \
        if len(history) else None
    keep = history[~same] if same is not None else history
    new = pd.DataFrame([row])
    out = pd.concat([keep, new], ignore_index=True) if len(keep) else new
    first = [c for c in H.COLUMNS if c in out.columns]
    out = out[first + sorted(c for c in out.columns if c not in first)]
    return out.sort_values(["as_of", "checked_at"], kind="mergesort").reset_index(drop=True)


def _stored(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path) if path.exists() else pd.DataFrame()


def _write_run(project: Project, problem: str, as_of: dt.date, check: RunCheck) -> None:
    ws = project.workspace
    save_parquet(check.drift, ws.drift_path(problem, as_of))
    if check.segments is not None:
        save_parquet(check.segments, ws.realised_segments_path(problem, as_of))


def _log(problem: str, version: int, check: RunCheck) -> None:
    """The run's figures into its monitoring run, linked to the version's logged model; the
    version's ``monitor.*`` tags say where it stands now."""
    row = check.row
    numbers = {k: v for k, v in row.items() if k.startswith(("expected_", "realised_"))
               or k in ("users", "test_value", "features_checked", "features_drifted", "score_psi", "drop",
                        "predicted_total", "realised_total")}
    numbers["retrain_advised"] = float(bool(row["retrain_advised"]))
    with tracking.monitoring_run(problem, version, row["as_of"]):
        tracking.log_metrics(numbers, model_id=tracking.version_model_id(problem, version))
        tracking.set_tags({"churnkit.monitor.status": row["status"], "churnkit.monitor.why": row["why"]})
        tracking.log_json(check.drift.to_dict("records"), "monitor/drift.json")
        if check.segments is not None:
            tracking.log_json(check.segments.to_dict("records"), "monitor/segments.json")
    tracking.set_version_tags(problem, version, {
        "monitor.as_of": row["as_of"], "monitor.status": row["status"],
        f"monitor.{row['headline']}": row["value_now"],
        "monitor.retrain_advised": bool(row["retrain_advised"]), "monitor.why": row["why"]})
