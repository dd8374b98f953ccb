"""The one catalogue of where each artefact lives inside a workspace folder.

Every command reads and writes through these names, so no step decides a path of its own
(the Kedro catalogue idea): steps get data, the flows get paths from here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

LIST_KINDS = ("risk", "recall")


@dataclass(frozen=True)
class Workspace:
    """One folder: events, quarantine, users, datasets, scores, lists and the MLflow store."""

    root: Path

    def __post_init__(self) -> None:
        # notebooks pass a string; every path below is built with ``/``
        object.__setattr__(self, "root", Path(self.root))

    # -- ingest ------------------------------------------------------------------

    @property
    def events_dir(self) -> Path:
        return self.root / "events"

    def events_glob(self) -> str:
        return str(self.events_dir / "**" / "*.parquet")

    @property
    def users_path(self) -> Path:
        return self.root / "users.parquet"

    @property
    def ingest_dir(self) -> Path:
        return self.root / "ingest"

    @property
    def quarantine_path(self) -> Path:
        return self.ingest_dir / "quarantine.parquet"

    @property
    def summary_path(self) -> Path:
        return self.ingest_dir / "summary.json"

    @property
    def simulation_dir(self) -> Path:
        return self.root / "simulation"

    @property
    def truth_path(self) -> Path:
        """The simulator's truth, when the workspace holds a simulation."""
        return simulation_files(self.simulation_dir, ["truth"])["truth"]

    # -- datasets -----------------------------------------------------------------

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    def dataset_path(self, problem: str) -> Path:
        return self.datasets_dir / f"{problem}.parquet"

    # -- scores and lists -----------------------------------------------------------

    @property
    def scores_dir(self) -> Path:
        return self.root / "scores"

    def scores_path(self, as_of: dt.date) -> Path:
        return self.scores_dir / f"scores_{as_of.isoformat()}.parquet"

    def latest_scores(self) -> Path | None:
        """The scores file with the latest as-of date (ISO dates sort), if any."""
        found = sorted(self.scores_dir.glob("scores_*.parquet"))
        return found[-1] if found else None

    @property
    def lists_dir(self) -> Path:
        return self.root / "lists"

    def list_path(self, kind: str, as_of: dt.date, fmt: str) -> Path:
        return self.lists_dir / f"{kind}_{as_of.isoformat()}.{fmt}"

    # -- MLflow -----------------------------------------------------------------------

    @property
    def mlflow_db(self) -> Path:
        """The embedded tracking store; its artefacts live in ``mlartifacts`` beside it."""
        return self.root / "mlflow.db"


def simulation_files(folder: Path, tables: list[str] | tuple[str, ...]) -> dict[str, Path]:
    """Where a simulation written to ``folder`` keeps each table (``<name>.parquet``) and its
    parameters and counts (``meta``: ``simulation.json``)."""
    return {name: Path(folder) / f"{name}.parquet" for name in tables} | {"meta": Path(folder) / "simulation.json"}


def manifest_path(dataset: Path) -> Path:
    """A training set's manifest sits beside it, wherever it was written."""
    return Path(dataset).with_suffix(".manifest.json")


def scores_meta_path(scores: Path) -> Path:
    """Versions, RFM thresholds and the summary of a scoring run, beside its scores."""
    return Path(scores).with_suffix(".json")


def scores_as_of(scores: Path) -> str:
    """The as-of date in a scores file's name (``scores_<date>.parquet``), as written."""
    return Path(scores).stem.removeprefix("scores_")
