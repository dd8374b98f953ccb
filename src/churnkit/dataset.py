"""Training sets: the cutoff grid, who is eligible, features plus label, and the manifest.

``build_training_set`` and ``features_as_of`` share :func:`eligible_features`, so a user is
scored on exactly the rows and columns a model was trained on.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from churnkit import __version__
from churnkit.config import ProblemConfig, load_yaml
from churnkit.errors import ChurnkitError
from churnkit.features.build import KEYS, FeatureFrame, discover_levels, feature_frame
from churnkit.features.context import cutoff_table
from churnkit.features.spec import feature_names
from churnkit.labels import LABEL, attach_labels
from churnkit.warehouse import data_end, fingerprint
from churnkit.workspace import Workspace, replace_path, staging_dir

REPO_CONFIGS = Path(__file__).resolve().parents[2] / "configs"
CUTOFF_DTYPE = "datetime64[us, UTC]"


# --------------------------------------------------------------------------- problems


def problem_search_path() -> list[Path]:
    return [Path.cwd() / "configs" / "problems", REPO_CONFIGS / "problems"]


def load_problem(name_or_path: str) -> ProblemConfig:
    """A YAML path, or a name looked up in ./configs/problems then the repo's configs/."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return load_yaml(p, ProblemConfig)
    for folder in problem_search_path():
        candidate = folder / f"{name_or_path}.yaml"
        if candidate.exists():
            return load_yaml(candidate, ProblemConfig)
    known = sorted({f.stem for d in problem_search_path() if d.is_dir() for f in d.glob("*.yaml")})
    raise ChurnkitError(f"unknown problem '{name_or_path}'; known: {', '.join(known) or 'none'}")


# --------------------------------------------------------------------------- cutoffs


def resolve_cutoffs(problem: ProblemConfig, first_day: dt.date, end: dt.date) -> list[dt.date]:
    """Cutoffs whose outcome window ``[c, c + H)`` ends by ``end`` and that follow some data."""
    grid, h = problem.cutoffs, dt.timedelta(days=problem.horizon_days)
    step = dt.timedelta(days=grid.step_days)
    latest = end - h
    if grid.dates is not None:
        cuts = sorted(set(grid.dates))
        late = [c for c in cuts if c > latest]
        if late:
            raise ChurnkitError(
                f"cutoff {late[0]} has an incomplete {problem.horizon_days}-day outcome window: data ends {end}"
            )
    else:
        last = min(grid.end, latest) if grid.end else latest
        if grid.start is not None:
            cuts = []
            c = grid.start
            while c <= last:
                cuts.append(c)
                c += step
        else:
            cuts = sorted(last - k * step for k in range(grid.count or 12))
        cuts = [c for c in cuts if c > first_day]
    if not cuts:
        raise ChurnkitError(
            f"problem '{problem.name}': no cutoff with a complete {problem.horizon_days}-day outcome window "
            f"(data covers {first_day} .. {end - dt.timedelta(days=1)})"
        )
    early = [c for c in cuts if c <= first_day]
    if early:
        raise ChurnkitError(f"cutoff {early[0]} is not after the first event day {first_day}")
    return cuts


# --------------------------------------------------------------------------- frames


def eligible_features(
    events: ir.Table,
    users: ir.Table | None,
    problem: ProblemConfig,
    cutoffs: list[dt.date],
    attribute_levels: dict[str, list[str]] | None,
) -> FeatureFrame:
    """Features of users eligible at each cutoff: signed up, active in the look-back, with
    at least ``min_history_days`` of history."""
    ff = feature_frame(
        events,
        cutoff_table(cutoffs),
        users,
        selection=problem.features,
        activity=problem.activity,
        lookback_days=problem.lookback_days,
        attribute_levels=attribute_levels,
    )
    t = ff.table
    keep = (t.recent_activity > 0) & t.signed_up
    if problem.min_history_days > 0:
        keep = keep & (t.history_days.fill_null(-1.0) >= problem.min_history_days)
    ff.table = t.filter(keep).select(*KEYS, *ff.names)
    return ff


def build_training_set(
    events: ir.Table, users: ir.Table | None, problem: ProblemConfig, *, fp: dict[str, Any] | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The problem's training set over its cutoff grid, and its manifest.

    ``fp``: the events' :func:`fingerprint` when the caller already has it (a full scan).
    """
    fp = fp or fingerprint(events)
    end = data_end(fp)
    cutoffs = resolve_cutoffs(problem, pd.Timestamp(fp["first_ts"]).date(), end)
    levels = discover_levels(users) if "attributes" in problem.features.families else {}
    ff = eligible_features(events, users, problem, cutoffs, levels)
    labelled = attach_labels(ff.table, ff.daily, cutoff_table(cutoffs), problem.kind, problem.horizon_days)
    df = labelled.select(*KEYS, *ff.names, LABEL).order_by(["cutoff", "user_id"]).to_pandas()
    df[ff.names + [LABEL]] = df[ff.names + [LABEL]].astype("float64")
    df["cutoff"] = df["cutoff"].astype(CUTOFF_DTYPE)  # engines differ (DuckDB us, Spark ns)
    per_cutoff = df.groupby("cutoff")[LABEL].agg(["size", "mean"]).reset_index()
    manifest = {
        "churnkit_version": __version__,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "problem": json.loads(problem.model_dump_json()),
        "label": {"name": LABEL, "kind": problem.kind, "horizon_days": problem.horizon_days},
        "keys": KEYS,
        "features": [s.to_dict() for s in ff.specs],
        "attribute_levels": levels,
        "cutoffs": [str(c) for c in cutoffs],
        "data": fp | {"end_exclusive": str(end)},
        "rows": len(df),
        "per_cutoff": [
            {"cutoff": pd.Timestamp(r.cutoff).date().isoformat(), "rows": int(r.size), "label_mean": float(r.mean)}
            for r in per_cutoff.itertuples()
        ],
    }
    return df, manifest


def features_as_of(
    events: ir.Table, users: ir.Table | None, manifest: dict[str, Any], as_of: dt.date
) -> pd.DataFrame:
    """Features at one cutoff for the users eligible then, with a training set's columns."""
    problem = ProblemConfig.model_validate(manifest["problem"])
    ff = eligible_features(events, users, problem, [as_of], manifest.get("attribute_levels") or {})
    expected = feature_names(manifest)
    if ff.names != expected:
        missing = sorted(set(expected) - set(ff.names))
        extra = sorted(set(ff.names) - set(expected))
        raise ChurnkitError(f"features differ from the manifest: missing {missing}, extra {extra}")
    df = ff.table.order_by("user_id").to_pandas()
    df[expected] = df[expected].astype("float64")
    df["cutoff"] = df["cutoff"].astype(CUTOFF_DTYPE)
    return df


# --------------------------------------------------------------------------- files


def default_dataset_path(ws: Workspace, problem: str) -> Path:
    return ws.root / "datasets" / f"{problem}.parquet"


def manifest_path(dataset: Path) -> Path:
    return dataset.with_suffix(".manifest.json")


def write_training_set(df: pd.DataFrame, manifest: dict[str, Any], out: Path) -> tuple[Path, Path]:
    """Parquet plus a JSON manifest beside it, both moved into place only when complete."""
    out = Path(out)
    with staging_dir(out.parent) as tmp:
        pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp / "data.parquet", compression="zstd")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
        replace_path(tmp / "data.parquet", out)
        replace_path(tmp / "manifest.json", manifest_path(out))
    return out, manifest_path(out)


def read_manifest(dataset: Path) -> dict[str, Any]:
    path = manifest_path(Path(dataset))
    if not path.exists():
        raise ChurnkitError(f"no manifest beside {dataset} (expected {path})")
    return json.loads(path.read_text())


def features_for_events(
    events: pd.DataFrame, users: pd.DataFrame | None, manifest: dict[str, Any], as_of: dt.date
) -> pd.DataFrame:
    """Features from events held in memory (one user's recent log, as the service gets it).

    Same path as batch scoring: the frames become Ibis memtables and go through
    :func:`features_as_of`.
    """
    from churnkit.warehouse import events_memtable, users_memtable

    return features_as_of(events_memtable(events), users_memtable(users), manifest, as_of)
