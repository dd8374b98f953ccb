"""The one catalogue of where each artefact lives inside a workspace folder.

Every command reads and writes through these names, so no step decides a path of its own
(the Kedro catalogue idea): steps get data, the flows get paths from here.

Ingested data (events, users and campaign assignments tables, quarantine, summary) lives in a version folder,
``data/v-<time>-<id>/``, named by the one-line pointer ``data/CURRENT``. An ingest builds a
new version beside the current one and commits by replacing the pointer, a single atomic
rename: a reader sees the old data or the new, never a mix, whenever a writer is killed.
A workspace from before versions (``events/`` at the root) is read as it is.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

LIST_KINDS = ("risk", "recall")
STAGING_PREFIX = ".staging-"
VERSION_PREFIX = "v-"


@dataclass(frozen=True)
class Workspace:
    """One folder: events, quarantine, users, campaign assignments, datasets, scores, lists and
    the MLflow store."""

    root: Path

    def __post_init__(self) -> None:
        # notebooks pass a string; every path below is built with ``/``
        object.__setattr__(self, "root", Path(self.root))

    # -- ingested data (versioned) ---------------------------------------------------

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def current_pointer(self) -> Path:
        return self.data_dir / "CURRENT"

    @property
    def lock_path(self) -> Path:
        """Held by the one process writing the workspace's data (see ``io.locks``)."""
        return self.root / ".churnkit.lock"

    def current_data(self) -> Path | None:
        """The committed version folder, or None before the first versioned ingest."""
        try:
            name = self.current_pointer.read_text().strip()
        except FileNotFoundError:
            return None
        return self.data_dir / name if name else None

    def new_data_version(self) -> Path:
        """A fresh version folder name (not created), sorting after earlier ones."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
        return self.data_dir / f"{VERSION_PREFIX}{stamp}-{uuid.uuid4().hex[:6]}"

    def commit_data(self, version: Path) -> None:
        """Make ``version`` the current data: one atomic replace of the pointer."""
        tmp = self.data_dir / f".CURRENT-{uuid.uuid4().hex[:8]}"
        tmp.write_text(version.name + "\n")
        os.replace(tmp, self.current_pointer)

    def _data(self) -> Path:
        return self.current_data() or self.root

    @property
    def events_dir(self) -> Path:
        return data_layout(self._data())["events"]

    def events_glob(self) -> str:
        return str(self.events_dir / "**" / "*.parquet")

    @property
    def users_path(self) -> Path:
        return data_layout(self._data())["users"]

    @property
    def assignments_path(self) -> Path:
        """Campaign assignments (exposures) as ingested: one row per user and campaign."""
        return data_layout(self._data())["assignments"]

    @property
    def quarantine_path(self) -> Path:
        return data_layout(self._data())["quarantine"]

    @property
    def summary_path(self) -> Path:
        return data_layout(self._data())["summary"]

    @property
    def simulation_dir(self) -> Path:
        return self.root / "simulation"

    @property
    def campaign_truth_path(self) -> Path:
        """The simulator's campaigns with each user's true individual effect."""
        return simulation_files(self.simulation_dir, ["assignments"])["assignments"]

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

    @property
    def problems_dir(self) -> Path:
        """Copies of the problem YAMLs commands were given by path, by problem name, so
        later commands (promote, score) find the problem by its name."""
        return self.root / "problems"

    def problem_path(self, problem: str) -> Path:
        return self.problems_dir / f"{problem}.yaml"

    # -- training runs ----------------------------------------------------------------

    def run_dirs(self) -> list[Path]:
        """Every training run's workspace folder (``runs/<problem>/<run_id>``)."""
        return sorted(p for p in (self.root / "runs").glob("*/*") if p.is_dir())

    def run_dir(self, problem: str, run_id: str) -> Path:
        """What a training run keeps in the workspace beside its MLflow run."""
        return self.root / "runs" / problem / run_id

    def test_predictions_path(self, problem: str, run_id: str) -> Path:
        """A training run's test rows: keys, label, the model's and every baseline's score
        (its evaluation, :func:`evaluation_path`, beside it)."""
        return self.run_dir(problem, run_id) / "test_predictions.parquet"

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

    # -- KPIs -------------------------------------------------------------------------

    @property
    def kpis_dir(self) -> Path:
        return self.root / "kpis"

    def kpi_path(self, grain: str, segments: bool = False) -> Path:
        """One table per grain (``day``, ``week``, ``month``), and one by segment; its
        definitions beside it."""
        return self.kpis_dir / f"kpis_{grain}{'_segments' if segments else ''}.parquet"

    def cohort_path(self, start: str, measure: str, grain: str) -> Path:
        """A cohort table: users by ``start`` (first_purchase ...), ``measure`` per ``grain``."""
        return self.kpis_dir / f"cohorts_{start}_{measure}_{grain}.parquet"

    # -- alerts -----------------------------------------------------------------------

    @property
    def alerts_dir(self) -> Path:
        return self.root / "alerts"

    @property
    def alerts_path(self) -> Path:
        """The alert ledger: one row per alert, kept across runs."""
        return self.alerts_dir / "ledger.parquet"

    @property
    def alerts_lock(self) -> Path:
        return self.alerts_dir / ".lock"

    # -- reports ----------------------------------------------------------------------

    @property
    def reports_dir(self) -> Path:
        return self.root / "reports"

    def report_path(self, kind: str, period: dt.date) -> Path:
        """A self-contained HTML report (``weekly``: the week starting ``period``)."""
        return self.reports_dir / f"{kind}_{period.isoformat()}.html"

    def campaign_report_path(self, campaign_id: str) -> Path:
        """A campaign's report, beside its results."""
        return self.campaign_results_path(campaign_id).with_name("report.html")

    @property
    def campaigns_dir(self) -> Path:
        return self.root / "campaigns"

    def campaign_results_path(self, campaign_id: str) -> Path:
        """One campaign's A/B results (one row per metric x variant); what they came from beside it."""
        safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(campaign_id))
        return self.campaigns_dir / safe / "results.parquet"

    def campaign_rows_path(self, campaign_id: str) -> Path:
        """The per-customer rows a table experiment was evaluated on (its report reads them)."""
        return self.campaign_results_path(campaign_id).with_name("rows.parquet")

    def campaign_qini_path(self, campaign_id: str) -> Path:
        """A campaign's Qini curves on its held-out split, one per treatment arm."""
        return self.campaign_results_path(campaign_id).with_name("qini.parquet")

    # -- model monitoring -------------------------------------------------------------

    @property
    def monitor_dir(self) -> Path:
        return self.root / "monitor"

    def monitor_history_path(self, problem: str) -> Path:
        """One row per scoring run a problem's model scored: drift, expected and realised
        performance, advice (columns: ``churnkit.monitor.history.COLUMNS``)."""
        return self.monitor_dir / problem / "history.parquet"

    def drift_path(self, problem: str, as_of: dt.date | str) -> Path:
        """Per-feature (and per-score) drift of one scoring run against the model's training profile."""
        return self.monitor_dir / problem / f"drift_{_day(as_of)}.parquet"

    def realised_segments_path(self, problem: str, as_of: dt.date | str) -> Path:
        """Realised vs predicted of one scoring run by lifecycle stage and RFM tier."""
        return self.monitor_dir / problem / f"segments_{_day(as_of)}.parquet"

    def model_card_path(self, problem: str, version: int) -> Path:
        """A model version's card (self-contained HTML)."""
        return self.reports_dir / f"model_{problem}_v{version}.html"

    # -- MLflow -----------------------------------------------------------------------

    @property
    def mlflow_db(self) -> Path:
        """The embedded tracking store; its artefacts live in ``mlartifacts`` beside it."""
        return self.root / "mlflow.db"


def _day(as_of: dt.date | str) -> str:
    return as_of.isoformat() if isinstance(as_of, dt.date) else str(as_of)


def data_layout(version: Path) -> dict[str, Path]:
    """Where one data version keeps each of its parts (the same layout a workspace from
    before versions had at its root)."""
    return {"events": version / "events", "users": version / "users.parquet",
            "assignments": version / "assignments.parquet",
            "quarantine": version / "ingest" / "quarantine.parquet", "summary": version / "ingest" / "summary.json",
            "keys": version / "ingest" / "row_keys"}


def simulation_files(folder: Path, tables: list[str] | tuple[str, ...]) -> dict[str, Path]:
    """Where a simulation written to ``folder`` keeps each table (``<name>.parquet``) and its
    parameters and counts (``meta``: ``simulation.json``)."""
    return {name: Path(folder) / f"{name}.parquet" for name in tables} | {"meta": Path(folder) / "simulation.json"}


def manifest_path(dataset: Path) -> Path:
    """A training set's manifest sits beside it, wherever it was written."""
    return Path(dataset).with_suffix(".manifest.json")


def evaluation_path(test_predictions: Path) -> Path:
    """The evaluation (comparison, calibration, notes) beside a run's test predictions."""
    return Path(test_predictions).with_name("evaluation.json")


def scores_meta_path(scores: Path) -> Path:
    """Versions, RFM thresholds and the summary of a scoring run, beside its scores."""
    return Path(scores).with_suffix(".json")


def scores_as_of(scores: Path) -> str:
    """The as-of date in a scores file's name (``scores_<date>.parquet``), as written."""
    return Path(scores).stem.removeprefix("scores_")
