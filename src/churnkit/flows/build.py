"""``churnkit build``: a problem's training set and manifest, written to the workspace.

Also the training set a training run uses: reused when it was built from the same events
with the same problem and feature code, rebuilt (and rewritten) otherwise.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from churnkit.config import ProblemConfig
from churnkit.datasets.build import build_training_set, eligible_features, uninformative
from churnkit.datasets.manifest import Manifest
from churnkit.datasets.span import fingerprint
from churnkit.errors import ChurnkitError
from churnkit.flows.project import Project
from churnkit.io.artifacts import read_json, write_table_with_meta
from churnkit.io.warehouse import connect
from churnkit.io.workspace import manifest_path


@dataclass(frozen=True)
class Dataset:
    """A training set, its manifest, where both are, and whether it was (re)built now."""

    frame: pd.DataFrame
    manifest: Manifest
    path: Path
    rebuilt: bool = True

    @property
    def manifest_path(self) -> Path:
        return manifest_path(self.path)


def write_dataset(df: pd.DataFrame, manifest: Manifest, out: Path) -> Path:
    """Parquet plus its manifest beside it, moved into place together."""
    path, _ = write_table_with_meta(df, manifest.to_json(), Path(out), manifest_path(out))
    return path


def read_manifest(dataset: Path) -> Manifest:
    path = manifest_path(Path(dataset))
    return Manifest.from_dict(read_json(path, f"manifest beside {dataset}"), str(path))


def build_dataset(project: Project, problem: str | ProblemConfig, *, engine: str = "duckdb",
                  out: Path | None = None) -> Dataset:
    """Build one problem's training set on ``engine`` (duckdb or spark) and write it."""
    spec = project.problem(problem)
    con = connect(engine, project.config.ingest.duckdb_memory_limit)
    events, users = project.tables(con)
    df, manifest = build_training_set(events, users, spec)
    path = write_dataset(df, manifest, Path(out) if out else project.workspace.dataset_path(spec.name))
    return Dataset(df, manifest, path)


def training_set(project: Project, problem: ProblemConfig) -> Dataset:
    """The problem's training set in the workspace, reused when events, problem definition
    and feature code are unchanged (the fingerprint is one scan), else rebuilt."""
    path = project.workspace.dataset_path(problem.name)
    con = project.connect()
    events, users = project.tables(con)
    current = fingerprint(events)
    if path.exists():
        try:
            manifest = read_manifest(path)
        except ChurnkitError:
            manifest = None
        if manifest is not None and _reusable(manifest, problem, current, events, users):
            df = pd.read_parquet(path)
            if not uninformative(df, manifest.feature_names):  # else built before features were dropped
                return Dataset(df, manifest, path, rebuilt=False)
    df, manifest = build_training_set(events, users, problem, fp=current)
    return Dataset(df, manifest, write_dataset(df, manifest, path))


def _reusable(manifest: Manifest, problem: ProblemConfig, fp: dict[str, Any], events: Any, users: Any) -> bool:
    same_problem = manifest.problem == problem
    same_data = manifest.data.fingerprint() == fp
    # the feature code may have changed since (an expression only: nothing runs)
    planned = eligible_features(events, users, problem, [dt.date.today()], manifest.attribute_levels).names
    return same_problem and same_data and manifest.kept(planned) is not None
