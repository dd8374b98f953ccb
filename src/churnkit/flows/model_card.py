"""``churnkit report model``: the card of one registered model version, as one
self-contained HTML file in the workspace and an artefact of the version's training run."""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnkit import __version__
from churnkit.datasets.folds import rows
from churnkit.datasets.manifest import Manifest
from churnkit.errors import ChurnkitError
from churnkit.flows.project import Project
from churnkit.flows.train import run_predictions
from churnkit.io import tracking
from churnkit.io.workspace import manifest_path
from churnkit.monitor.expected import CAVEAT
from churnkit.reports.model_card import (
    SHAP_ROWS,
    data_window,
    feature_groups,
    intended_use,
    known_limits,
    metrics_table,
    model_card_html,
    monitoring,
    performance_figures,
    problem_definition,
    shap_section,
)
from churnkit.training.comparisons import REFERENCES
from churnkit.training.promotion import HEADLINE

ARTIFACT_DIR = "model_card"
ARTIFACT_FILE = "model_card.html"
"""Where the card lands in the training run: ``model_card/model_card.html``."""
SEED = 0


@dataclass
class ModelCardOutcome:
    path: Path
    version: int
    context: dict[str, Any]


def card_version(problem: str, version: int | None) -> int:
    """``version`` if given (checked), else the champion, else the latest version."""
    if version is not None:
        return tracking.resolve_version(problem, None, version)
    tracking.registered_model(problem)  # "no registered model ...; run churnkit train"
    found = tracking.aliases(problem).get(tracking.CHAMPION)
    if found is not None:
        return found
    known = tracking.versions(problem)
    if not known:
        raise ChurnkitError(f"{tracking.model_name(problem)} has no version; run churnkit train --problem {problem}")
    return max(known)


def explanation(project: Project, loaded: tracking.LoadedModel, manifest: Manifest, test: pd.DataFrame | None,
                tmp: Path) -> dict[str, Any]:
    """SHAP of a seeded sample of the test rows when the workspace's training set is the
    model's; else the run's stored SHAP chart; else the model's gain importance."""
    dataset = project.workspace.dataset_path(manifest.problem.name)
    why = "the workspace has no training set for this problem"
    if dataset.exists() and manifest_path(dataset).exists():
        built = Manifest.model_validate_json(manifest_path(dataset).read_text(encoding="utf-8"))
        if built.feature_names != manifest.feature_names or built.data.fingerprint() != manifest.data.fingerprint():
            why = "the workspace's training set was rebuilt from other data or features since this version"
        else:
            df = pd.read_parquet(dataset)
            cutoffs = list((manifest.plan or {}).get("test") or [])
            if not cutoffs and test is not None:
                cutoffs = sorted({str(pd.Timestamp(c).date()) for c in test["cutoff"]})
            X = df.loc[rows(df, cutoffs), manifest.feature_names].reset_index(drop=True)
            if len(X) > SHAP_ROWS:
                X = X.sample(SHAP_ROWS, random_state=SEED).reset_index(drop=True)
            if len(X) and hasattr(loaded.model, "contributions"):
                return shap_section("shap", contributions=loaded.model.contributions(X), X=X, seed=SEED,
                                    note=f"Mean |SHAP| of the model's raw output on {len(X):,} test rows at "
                                         f"{', '.join(cutoffs)} (from the workspace's training set, whose manifest "
                                         "matches this version's), largest first.")
            why = "no test rows in the workspace's training set"
    if loaded.run_id:
        got = tracking.download_artifact(loaded.run_id, "plots/shap_summary.png", tmp)
        if got is not None:
            return shap_section("run artefact", image=got.read_bytes(),
                                note=f"The SHAP summary drawn at training (the run's plots/shap_summary.png): {why}.")
    if hasattr(loaded.model, "feature_importance"):
        return shap_section("importance", importance=loaded.model.feature_importance(),
                            note=f"No SHAP values: {why}, and the run has no SHAP chart. Shown instead: the "
                                 "model's LightGBM gain per feature (how much each feature's splits reduced the loss).")
    return shap_section("none", note=f"No explanation: {why}.")


def history(project: Project, problem: str, version: int) -> tuple[pd.DataFrame | None, pd.DataFrame | None]:
    """This version's monitoring rows, and the drift table of its latest one."""
    path = project.workspace.monitor_history_path(problem)
    if not path.exists():
        return None, None
    h = pd.read_parquet(path)
    h = h[pd.to_numeric(h["version"], errors="coerce") == version]
    if h.empty:
        return None, None
    latest = str(h.sort_values("as_of")["as_of"].iloc[-1])[:10]
    drift = project.workspace.drift_path(problem, latest)
    return h, pd.read_parquet(drift) if drift.exists() else None


def model_card(project: Project, problem: str, version: int | None = None, out: Path | None = None) -> ModelCardOutcome:
    """Gather one version's card (default: the champion, else the latest version), write it
    (default ``Workspace.model_card_path``) and log it to the version's training run."""
    name = project.problem_name(problem)
    project.open_tracking()
    number = card_version(name, version)
    loaded = tracking.load_model(name, version=number)
    label = f"{tracking.model_name(name)} v{number}"
    if loaded.manifest is None:
        raise ChurnkitError(f"{label} has no feature manifest: it was not registered by churnkit train")
    manifest = Manifest.from_dict(loaded.manifest, label)
    p = manifest.problem
    if p.kind == "uplift":
        raise ChurnkitError(f"{label} is an uplift model: its card is the campaign report of its held-out campaigns"
                            " (churnkit report campaign ID); model cards cover churn, purchase and revenue models")
    metric, _floor = HEADLINE[p.kind]
    tags = tracking.version_tags(name, number)
    alias = ", ".join(a for a, v in sorted(tracking.aliases(name).items()) if v == number)
    missing: list[str] = []
    with tempfile.TemporaryDirectory(prefix="churnkit-card-") as tmp_dir:
        tmp = Path(tmp_dir)
        test, evaluation, where = run_predictions(project, name, loaded.run_id, tmp)
        if test is None:
            missing.append(f"{where} (neither in the workspace nor in the run)")
        table = metrics_table(test, p.kind, metric, list(REFERENCES), seed=SEED) if test is not None else None
        comparison = evaluation.get("comparison") or {}
        best = comparison.get("baseline")
        figures = performance_figures(test, p.kind, best) if test is not None else {}
        shap = explanation(project, loaded, manifest, test, tmp)
    if shap["source"] != "shap":
        missing.append("SHAP values of the test rows")
    hist, drift = history(project, name, number)
    test_value = float((manifest.test_metrics or {}).get("model", loaded.metrics).get(metric, np.nan))
    monitored = monitoring(hist, drift, metric, test_value)
    coverage = None
    if p.kind == "revenue" and table is not None:
        q = getattr(loaded.model, "quantiles", None)
        model_row = next(r for r in table["rows"] if r["name"] == "model")
        if q is not None and "coverage" in model_row:
            coverage = (float(model_row["coverage"]), float(q[1]) - float(q[0]))
    notes = list(evaluation.get("notes") or [])
    profile = manifest.population_profile
    context = {
        "problem": name, "description": p.description, "kind": p.kind, "version": number, "alias": alias,
        "registered_name": tracking.model_name(name),
        "registered_at": tracking.version_created(name, number).strftime("%Y-%m-%d %H:%M UTC"),
        "champion_since": tags.get("churnkit.champion_since", ""),
        "decisions": [f"{d.get('at', '')}: {d.get('action', '')} v{d.get('challenger', d.get('to'))} "
                      f"{'promoted' if d.get('promoted') else 'rejected'}: {d.get('reason', '')}"
                      for d in tracking.promotion_history(name)
                      if number in (d.get("challenger"), d.get("to"), d.get("from"))],
        "run_id": loaded.run_id or "-", "trained_with": manifest.churnkit_version, "churnkit_version": __version__,
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "use": intended_use(p), "definition": problem_definition(p),
        "data": data_window(manifest.data.fingerprint(), [c.model_dump() for c in manifest.per_cutoff], manifest.plan,
                            manifest.cutoffs),
        "features": feature_groups([f.model_dump() for f in manifest.features],
                                   [d.model_dump() for d in manifest.dropped_features]),
        "metrics": table, "stored_metrics": dict(sorted(loaded.metrics.items())), "comparison": comparison,
        "figures": figures, "shap": shap, "monitored": monitored, "test_value": test_value, "caveat": CAVEAT,
        "test_source": where if test is not None else None,
        "limits": known_limits(p, table or {}, comparison, notes, [d.model_dump() for d in manifest.dropped_features],
                               profile.version if profile is not None else None, coverage, monitored),
        "missing": missing,
    }
    path = out or project.workspace.model_card_path(name, number)
    path.parent.mkdir(parents=True, exist_ok=True)
    html = model_card_html(context)
    tmp_path = path.with_suffix(".tmp")
    tmp_path.write_text(html, encoding="utf-8")
    tmp_path.replace(path)
    if loaded.run_id:
        with tempfile.TemporaryDirectory(prefix="churnkit-card-") as tmp_dir:
            staged = Path(tmp_dir) / ARTIFACT_FILE
            staged.write_text(html, encoding="utf-8")
            tracking.log_artifact_to(loaded.run_id, staged, ARTIFACT_DIR)
    return ModelCardOutcome(path, number, context)

