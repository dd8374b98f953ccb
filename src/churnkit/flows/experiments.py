"""``churnkit campaign evaluate --table FILE``: a finished experiment exported as one row per
customer, evaluated like an ingested campaign and stored the same way.

The file (CSV or Parquet, by suffix) is checked by
:func:`churnkit.campaigns.experiment.check_table`, analysed by
:func:`churnkit.campaigns.abtest.results_table` (the assignment path's table, columns and
all) and written under the workspace: ``campaigns/<id>/results.parquet`` with its JSON, the
rows it was computed from (``rows.parquet``, so the report needs nothing else) and, with an
uplift metric, the test split's Qini curves (``qini.parquet``). No events are needed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from churnkit.campaigns import experiment as ex
from churnkit.campaigns.abtest import results_table
from churnkit.errors import ChurnkitError
from churnkit.flows.campaigns import CampaignResult
from churnkit.flows.project import Project
from churnkit.io.artifacts import publish, read_json, write_parquet, write_table_with_meta
from churnkit.reports.campaign import design, figures
from churnkit.reports.campaign import uplift as uplift_section

SOURCE = "table"
"""``meta["source"]`` of a table experiment (the report renders it from what was stored)."""


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as it is (no row dropped, no value filled)."""
    path = Path(path)
    if not path.is_file():
        raise ChurnkitError(f"no experiment table at {path}")
    suffix = path.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(path, low_memory=False)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except (ValueError, OSError) as e:  # a malformed file: say which, in one line
        first = (str(e).splitlines() or [""])[0]
        raise ChurnkitError(f"cannot read {path.name}: {first}") from None
    raise ChurnkitError(f"{path.name}: expected a .csv or .parquet file")


def evaluate_table(project: Project, path: Path, *, variant_col: str, control: str,
                   metrics: Sequence[str], covariates: Sequence[str] = (),
                   campaign_id: str | None = None, uplift_metric: str | None = None,
                   features: Sequence[str] | None = None, seed: int = 0,
                   n_boot: int = 200) -> CampaignResult:
    """Evaluate one per-customer experiment table and store it as campaign ``campaign_id``
    (default: the file's stem)."""
    path = Path(path)
    cid = campaign_id or path.stem
    raw = read_table(path)
    arms = ex.check_table(raw, variant_col, control, metrics, covariates)
    if uplift_metric is not None and uplift_metric not in metrics:
        raise ChurnkitError(f"--uplift-metric {uplift_metric!r} must be one of the metrics "
                            f"({', '.join(metrics)})")
    data = ex.numeric(raw, [*metrics, *covariates])
    data[variant_col] = data[variant_col].astype(str)
    analysed, cuped = ex.cuped_covariates(data, metrics, covariates)
    settings = project.config.campaigns
    table = results_table(cid, analysed, list(metrics), control, variant_col=variant_col,
                          covariates=cuped, alpha=settings.alpha, correction=settings.correction,
                          srm_threshold=settings.srm_threshold)
    table.insert(3, "control", control)
    table["interval"] = "fixed"
    table["complete"] = True
    fitted = [c for c in covariates if data[c].std() > 0]
    notes = [] if len(fitted) < 2 else [
        (f"CUPED covariate of each metric: its OLS fit on {', '.join(fitted)} over the pooled arms "
         "(one covariate per metric, CUPAC-style)")]
    notes += [f"covariate {c!r} is constant: not used" for c in covariates if not data[c].std() > 0]
    notes.append("randomised experiment read from a table: no timestamps, so no effect over time")
    meta: dict[str, Any] = {
        "campaign_id": cid, "source": SOURCE, "table": str(path.resolve()), "sha256": _sha256(path),
        "rows": len(raw), "users": len(raw), "variant_column": variant_col, "control": control,
        "variants": arms, "arms": {v: int((data[variant_col] == v).sum()) for v in arms},
        "metrics": list(metrics), "covariates": list(covariates), "cuped": cuped,
        "complete": True, "settings": settings.model_dump(), "notes": notes,
    }
    rows = data.copy()
    curves = None
    if uplift_metric is not None:
        meta["uplift"], curves, rows["split"] = _uplift(data, variant_col, control, arms, metrics,
                                                        uplift_metric, features, seed, n_boot)
    ws = project.workspace
    results_path = ws.campaign_results_path(cid)
    qini_path = ws.campaign_qini_path(cid)
    targets = {"rows": ws.campaign_rows_path(cid)} | ({"qini": qini_path} if curves is not None else {})
    with publish(targets) as tmp:
        write_parquet(rows, tmp["rows"])
        if curves is not None:
            write_parquet(curves, tmp["qini"])
    if curves is None:
        qini_path.unlink(missing_ok=True)  # an earlier run's curves no longer describe these results
    write_table_with_meta(table, meta, results_path, results_path.with_suffix(".json"))
    return CampaignResult(cid, table, results_path, meta, rows)


def _uplift(data: pd.DataFrame, variant_col: str, control: str, arms: list[str],
            metrics: Sequence[str], metric: str, features: Sequence[str] | None, seed: int,
            n_boot: int) -> tuple[dict[str, Any], pd.DataFrame, Any]:
    """The uplift models' summary for the meta, their test-split Qini curves, the split."""
    if features is None:
        rest = [c for c in data.columns if c != variant_col and c not in metrics]
        ids = ex.identifiers(data, rest)
        chosen = [c for c in rest if c not in ids]
    else:
        unknown = [c for c in features if c not in data.columns]
        if unknown:
            raise ChurnkitError(f"feature column {unknown[0]!r} not in the table")
        clash = [c for c in features if c == variant_col or c in metrics]
        if clash:
            raise ChurnkitError(f"feature {clash[0]!r} is the variant or an outcome column")
        ids, chosen = [], list(features)
    X = ex.uplift_features(data, chosen)
    splits = ex.split(data[variant_col], seed)
    found = ex.evaluate_uplift(X, data[variant_col].reset_index(drop=True),
                               data[metric].reset_index(drop=True), control, arms[1:], splits,
                               seed=seed, n_boot=n_boot)
    summary = {"metric": metric, "features": chosen, "identifiers_ignored": ids,
               "encoded_features": list(X.columns), "split": dict(zip(("train", "validation", "test"),
                                                                       ex.SPLIT_SHARES, strict=True)),
               "seed": seed, "learners": list(ex.LEARNERS), "by_variant": [r.summary for r in found]}
    return summary, pd.concat([r.curve for r in found], ignore_index=True), splits


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stored(project: Project, campaign_id: str) -> dict[str, Any] | None:
    """A stored table experiment's results, meta, rows and Qini curves (None when the
    campaign was not evaluated from a table)."""
    results_path = project.workspace.campaign_results_path(campaign_id)
    meta_path = results_path.with_suffix(".json")
    if not meta_path.exists():
        return None
    meta = read_json(meta_path, "campaign results")
    if meta.get("source") != SOURCE:
        return None
    qini_path = project.workspace.campaign_qini_path(campaign_id)
    return {"table": pd.read_parquet(results_path), "meta": meta,
            "rows": pd.read_parquet(project.workspace.campaign_rows_path(campaign_id)),
            "qini": pd.read_parquet(qini_path) if qini_path.exists() else None}


def report_context(found: dict[str, Any]) -> dict[str, Any]:
    """The campaign report's context for a stored table experiment: design, metrics, forest
    plot and uplift from what was stored; no effect-over-time figure (a table has no
    timestamps), which the report says instead of drawing."""
    t, meta, rows = found["table"], found["meta"], found["rows"]
    arms = pd.DataFrame({"variant": rows[meta["variant_column"]].astype(str)})
    uplift = meta.get("uplift")
    return {
        "targeted": False,
        "campaign_id": meta["campaign_id"],
        "table": {"path": meta["table"], "rows": meta["rows"], "sha256": meta["sha256"],
                  "covariates": ", ".join(meta["covariates"]) or "none"},
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "design": design(arms, meta["control"], float(t["srm_p_value"].iloc[0]), bool(t["srm_failed"].iloc[0])),
        "complete": True,
        "metrics": t.to_dict("records"),
        "guardrails": [],
        "notes": meta["notes"],
        "correction": meta["settings"]["correction"],
        "figures": figures(t, pd.DataFrame()),
        "uplift": uplift_section(found["qini"], uplift["by_variant"], uplift["metric"])
        if uplift and found["qini"] is not None else None,
    }
