"""Scores per user at an as-of date: three champion models, reasons, RFM tier, lifecycle stage.

**Who is scored.** Every user who signed up before the as-of date and has any activity
before it (the problem's activity events), whatever the models' look-back windows say.
Risk lists need the users active now; recall lists need silent and churned users too, who
are outside every GA4 model's training population. So features are built once per
distinct feature definition with the look-back widened to "all history" (features do not
depend on the look-back; only eligibility does), every model scores every user, and
``<role>_in_population`` says whether the user is one the model was trained on (active in
its look-back, enough history). Scores outside it are extrapolations: the risk list keeps
only users inside the churn model's population; the recall list shows the flags.

**One feature path.** Batch scoring calls :func:`churnkit.dataset.features_as_of` on the
workspace tables; a single user's in-memory events go through
:func:`churnkit.dataset.features_for_events`, which is the same function on memtables.

**Reasons.** LightGBM TreeSHAP of the churn model (``pred_contrib``), turned into texts by
:func:`churnkit.explain.reason_codes` against the model's training population profile;
only contributions that push risk *up* are shown. SHAP costs far more than a prediction,
so by default it runs only for users inside the churn model's population (those a risk
list can show), in chunks of ``chunk_rows``.

Pinning: :meth:`Scorer.load` resolves each ``champion`` alias to a version number once;
a promotion while a scorer lives changes nothing for it.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnkit.config import ProblemConfig, ScoringSettings
from churnkit.errors import ChurnkitError
from churnkit.features.spec import feature_names
from churnkit.segments import RFMSegmenter, lifecycle_stage, segment_columns_missing

ROLES = ("churn", "purchase", "ltv")
KIND_OF_ROLE = {"churn": "churn", "purchase": "purchase", "ltv": "revenue"}
WIDE_LOOKBACK_DAYS = 100 * 366
"""Look-back used to select who is scored: all history."""
CONTEXT_COLUMNS = ("days_since_last_activity", "revenue_total")
"""Feature values carried into the scores for lists (how long silent, what they spent)."""

Progress = Callable[[str], None]


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class RoleModel:
    """One pinned champion: which score it gives, its version, model and manifest."""

    role: str
    problem: str
    version: int
    model: Any
    manifest: dict[str, Any]

    # cached: the service reads these per request, and a loaded manifest never changes
    @cached_property
    def features(self) -> list[str]:
        return feature_names(self.manifest)

    @property
    def profile(self) -> dict[str, Any]:
        return self.manifest.get("population_profile") or {"features": {}}

    @cached_property
    def spec(self) -> ProblemConfig:
        return ProblemConfig.model_validate(self.manifest["problem"])


def check_role_model(rm: RoleModel) -> None:
    """The model is of the role's kind and expects exactly its manifest's features."""
    name = f"{rm.role} model churnkit-{rm.problem} v{rm.version}"
    if not rm.manifest or "features" not in rm.manifest or "problem" not in rm.manifest:
        raise ChurnkitError(f"{name} has no feature manifest; retrain it with churnkit train --problem {rm.problem}")
    kind = rm.manifest.get("label", {}).get("kind") or rm.manifest["problem"].get("kind")
    if kind != KIND_OF_ROLE[rm.role]:
        raise ChurnkitError(
            f"{name} predicts '{kind}', not '{KIND_OF_ROLE[rm.role]}': check scoring.{rm.role} in the config"
        )
    expected = getattr(rm.model, "feature_names_in_", None)
    if expected is not None and list(expected) != rm.features:
        missing = sorted(set(expected) - set(rm.features))
        extra = sorted(set(rm.features) - set(expected))
        raise ChurnkitError(
            f"{name}: the feature manifest and the model disagree (model needs {missing[:5]}, "
            f"manifest adds {extra[:5]}); retrain with churnkit train --problem {rm.problem}"
        )


def scoring_manifest(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest with eligibility widened to every user with activity in all history."""
    problem = dict(manifest["problem"]) | {"lookback_days": WIDE_LOOKBACK_DAYS, "min_history_days": 0}
    return dict(manifest) | {"problem": problem}


def feature_key(manifest: Mapping[str, Any]) -> str:
    """Models whose features are computed identically share one feature pass."""
    p = manifest["problem"]
    return json.dumps(
        [p.get("features"), p.get("activity"), manifest.get("attribute_levels") or {},
         feature_names(manifest)],
        sort_keys=True, default=str,
    )


def population_mask(frame: pd.DataFrame, spec: ProblemConfig) -> pd.Series:
    """Users a model was trained on: active in its look-back and with enough history.

    Exact against :func:`churnkit.dataset.eligible_features`: a day at most ``L`` days
    before a midnight cutoff is one whose events are at most ``L`` days old. NA when the
    features needed to tell are not in the frame.
    """
    if "days_since_last_activity" not in frame.columns:
        return pd.Series(pd.NA, index=frame.index, dtype="boolean")
    since = frame["days_since_last_activity"].to_numpy("float64")
    with np.errstate(invalid="ignore"):
        inside = since <= spec.lookback_days
        if spec.min_history_days > 0:
            if "days_since_first_activity" not in frame.columns:
                return pd.Series(pd.NA, index=frame.index, dtype="boolean")
            inside &= frame["days_since_first_activity"].to_numpy("float64") >= spec.min_history_days
    return pd.Series(inside, index=frame.index, dtype="boolean")


# --------------------------------------------------------------------------- pure pieces


def in_chunks(fn: Callable[[pd.DataFrame], Any], X: pd.DataFrame, rows: int) -> list[Any]:
    return [fn(X.iloc[i : i + rows]) for i in range(0, len(X), rows)] if len(X) else []


def predict_role(rm: RoleModel, X: pd.DataFrame, chunk_rows: int) -> dict[str, np.ndarray]:
    """Model outputs in chunks: a probability, or LTV with its interval."""
    from churnkit.models.outputs import model_outputs

    classifier = rm.role in ("churn", "purchase")
    parts = in_chunks(lambda x: model_outputs(rm.model, x, classifier), X, chunk_rows)
    keys = ("p",) if classifier else ("ltv", "low", "high")
    return {k: np.concatenate([p[i] for p in parts]) if parts else np.empty(0) for i, k in enumerate(keys)}


def role_outputs(rm: RoleModel, X: pd.DataFrame, chunk_rows: int) -> dict[str, np.ndarray]:
    """A model's output columns for feature rows: ``churn_probability``,
    ``purchase_probability``, or ``predicted_ltv``/``ltv_low``/``ltv_high``."""
    pred = predict_role(rm, X[rm.features], chunk_rows)
    return {col: pred[key] for key, col in _output_names(rm.role).items()}


def churn_reasons(rm: RoleModel, X: pd.DataFrame, top: int, chunk_rows: int) -> pd.DataFrame:
    """``reason_1..top``: churn drivers that push risk up, from TreeSHAP, in chunks."""
    from churnkit.explain import reason_codes, reasons_frame

    def one(x: pd.DataFrame) -> pd.DataFrame:
        contrib = rm.model.contributions(x)
        return reasons_frame(reason_codes(x, contrib, rm.manifest, rm.profile, top=top, direction="up"), top)

    parts = in_chunks(one, X, chunk_rows)
    if not parts:
        return pd.DataFrame({f"reason_{j + 1}": pd.Series(dtype="object") for j in range(top)})
    out = pd.concat(parts, ignore_index=True)
    out.index = X.index
    return out


def segment_frame(frames: Mapping[str, pd.DataFrame], ids: pd.Index) -> pd.DataFrame | None:
    """The feature rows tiers and stages read: the first frame that has their columns."""
    for role in ROLES:
        f = frames[role]
        if not segment_columns_missing(f.columns):
            return f.set_index("user_id").reindex(ids)
    return None


def value_at_risk(churn_probability: np.ndarray, predicted_ltv: np.ndarray) -> np.ndarray:
    """Revenue expected from the user over the LTV horizon that is lost if they churn."""
    return churn_probability * predicted_ltv


def _user_ids(frames: Mapping[str, pd.DataFrame]) -> pd.Index:
    distinct = {id(f): f for f in frames.values()}
    if len(distinct) == 1:
        ids = next(iter(distinct.values()))["user_id"]
        if ids.is_unique:
            return pd.Index(ids.sort_values().to_numpy(), name="user_id")
    union: set[str] = set()
    for f in distinct.values():
        union.update(f["user_id"].tolist())
    return pd.Index(sorted(union), name="user_id")


def _as_of_of(frames: Mapping[str, pd.DataFrame], ids: pd.Index, as_of: dt.date | None) -> Any:
    if as_of is not None:
        return pd.Timestamp(as_of).date()
    for f in frames.values():
        if "cutoff" in f.columns and len(f):
            cut = f.drop_duplicates("user_id").set_index("user_id")["cutoff"].reindex(ids)
            return pd.to_datetime(cut, utc=True).dt.date.to_numpy()
    return None


# --------------------------------------------------------------------------- the scorer


class Scorer:
    """The three champion models, loaded once and pinned; scores batches or single users.

    ``segmenter`` holds the RFM cut points. Without one the first batch fits them on the
    buyers it scores and keeps them, so later calls (single users included) use the same
    thresholds; a scoring run stores them (``segmenter.to_dict()``) beside its scores.
    """

    def __init__(
        self,
        models: Mapping[str, RoleModel],
        settings: ScoringSettings | None = None,
        segmenter: RFMSegmenter | None = None,
    ):
        missing = [r for r in ROLES if r not in models]
        if missing:
            raise ChurnkitError(f"Scorer needs models for {list(ROLES)}; missing {missing}")
        self.models = {r: models[r] for r in ROLES}
        for rm in self.models.values():
            check_role_model(rm)
        self.settings = settings or ScoringSettings()
        self.segmenter = segmenter
        if self.settings.threads is not None:
            for rm in self.models.values():
                if hasattr(rm.model, "booster_") and hasattr(rm.model, "n_jobs"):
                    rm.model.n_jobs = self.settings.threads  # classifiers read it at predict time
        groups: dict[str, list[str]] = {}
        for role, rm in self.models.items():
            groups.setdefault(feature_key(rm.manifest), []).append(role)
        self.groups = [(scoring_manifest(self.models[roles[0]].manifest), roles) for roles in groups.values()]

    @classmethod
    def load(
        cls,
        workspace: Any,
        tracking_uri: str | None = None,
        configured_uri: str | None = None,
        settings: ScoringSettings | None = None,
        segmenter: RFMSegmenter | None = None,
    ) -> Scorer:
        """Open the workspace's (or the given) MLflow store and load each problem's champion."""
        from churnkit import tracking

        settings = settings or ScoringSettings()
        root = Path(getattr(workspace, "root", workspace))
        tracking.open_store(root, configured_uri, tracking_uri)
        models = {}
        for role in ROLES:
            problem = getattr(settings, role)
            loaded = tracking.load_model(problem, alias=tracking.CHAMPION)
            models[role] = RoleModel(role, problem, loaded.version, loaded.model, loaded.manifest or {})
        return cls(models, settings, segmenter)

    @property
    def versions(self) -> dict[str, dict[str, Any]]:
        return {r: {"problem": rm.problem, "version": rm.version} for r, rm in self.models.items()}

    # -- features --------------------------------------------------------------

    def _per_role(self, build: Callable[[dict[str, Any]], pd.DataFrame]) -> dict[str, pd.DataFrame]:
        frames: dict[str, pd.DataFrame] = {}
        for manifest, roles in self.groups:
            try:
                frame = build(manifest)
            except ChurnkitError as err:
                names = ", ".join(f"{r} model churnkit-{self.models[r].problem}" for r in roles)
                raise ChurnkitError(f"{names}: {err}") from None
            for role in roles:
                frames[role] = frame
        return frames

    def features_as_of(self, events: Any, users: Any, as_of: dt.date) -> dict[str, pd.DataFrame]:
        """Feature rows per role from warehouse tables (one pass per distinct feature set)."""
        from churnkit.dataset import features_as_of

        return self._per_role(lambda m: features_as_of(events, users, m, as_of))

    def features_for_events(
        self, events: pd.DataFrame, users: pd.DataFrame | None, as_of: dt.date
    ) -> dict[str, pd.DataFrame]:
        """Feature rows per role from events held in memory (the same feature function)."""
        from churnkit.dataset import features_for_events

        return self._per_role(lambda m: features_for_events(events, users, m, as_of))

    # -- scores ----------------------------------------------------------------

    def score_features(
        self,
        frames: Mapping[str, pd.DataFrame] | pd.DataFrame,
        *,
        as_of: dt.date | None = None,
        reasons_for: str | None = None,
        reasons: int | None = None,
    ) -> pd.DataFrame:
        """Scores from feature rows (``user_id`` + each model's features; one frame for all
        three models or one per role). One row per user, sorted by ``user_id``.
        ``reasons`` overrides the settings' number of reason codes (0: none)."""
        frames = _frames_by_role(frames)
        s = self.settings
        ids = _user_ids(frames)
        out = pd.DataFrame({"user_id": ids.to_numpy()})
        out["as_of"] = _as_of_of(frames, ids, as_of)
        inside: dict[str, pd.Series] = {}
        for role, rm in self.models.items():
            f = frames[role]
            _check_columns(rm, f)
            if _aligned(f, ids):
                aligned, present = f.set_index("user_id"), np.ones(len(ids), bool)
            else:
                aligned, present = f.set_index("user_id").reindex(ids), ids.isin(f["user_id"])
            pred = role_outputs(rm, aligned.loc[present].reset_index(drop=True), s.chunk_rows)
            for col, v in pred.items():
                values = np.full(len(ids), np.nan)
                values[present] = v
                out[col] = values
            inside[role] = population_mask(aligned, rm.spec).reset_index(drop=True)
        out["value_at_risk"] = value_at_risk(out["churn_probability"].to_numpy(), out["predicted_ltv"].to_numpy())

        seg = segment_frame(frames, ids)
        if seg is not None:
            out["rfm_tier"] = self.segmenter.transform(seg)["rfm_tier"].to_numpy() if self.segmenter else None
            out["lifecycle_stage"] = lifecycle_stage(seg, s.segments).to_numpy()
            for col in CONTEXT_COLUMNS:
                out[col] = seg[col].to_numpy("float64")
        else:
            out["rfm_tier"], out["lifecycle_stage"] = None, None

        top = s.reasons if reasons is None else reasons
        if top:
            churn = self.models["churn"]
            cf = frames["churn"].set_index("user_id").reindex(ids)
            scope = reasons_for or s.reasons_for
            pick = np.ones(len(ids), bool) if scope == "all" else inside["churn"].fillna(False).to_numpy(bool)
            pick &= out["churn_probability"].notna().to_numpy()
            texts = churn_reasons(churn, cf.loc[pick, churn.features].reset_index(drop=True), top, s.chunk_rows)
            for j in range(top):
                col = f"reason_{j + 1}"
                values = np.full(len(ids), "", dtype=object)
                values[pick] = texts[col].to_numpy(dtype=object)
                out[col] = values
        for role in ROLES:
            out[f"{role}_in_population"] = inside[role].to_numpy()
        for role, rm in self.models.items():
            out[f"{role}_model_version"] = rm.version
        return out

    def score_as_of(self, events: Any, users: Any, as_of: dt.date, progress: Progress | None = None) -> pd.DataFrame:
        """Batch: everyone with activity before ``as_of`` in the warehouse tables."""
        say = progress or (lambda _m: None)
        check_as_of(events, as_of)
        say("features")
        frames = self.features_as_of(events, users, as_of)
        if self.segmenter is None:
            seg = segment_frame(frames, _user_ids(frames))
            if seg is not None:
                self.segmenter = _fit_segmenter(seg, self.settings)
        say("scores and reasons")
        return self.score_features(frames, as_of=as_of)

    def score_events(self, events: pd.DataFrame, users: pd.DataFrame | None, as_of: dt.date) -> pd.DataFrame:
        """Single users from events in memory, through the same feature function as batches."""
        return self.score_features(self.features_for_events(events, users, as_of), as_of=as_of)

    def explain(
        self,
        frames: Mapping[str, pd.DataFrame] | pd.DataFrame,
        top: int = 5,
        roles: Iterable[str] = ROLES,
    ) -> pd.DataFrame:
        """Reasons both ways for each model, long format: ``user_id, score, direction, rank,
        feature, value, contribution, text`` (contributions in the model's raw space)."""
        from churnkit.explain import reason_codes

        frames = _frames_by_role(frames)
        rows: list[dict[str, Any]] = []
        for role in roles:
            rm = self.models[role]
            f = frames[role]
            _check_columns(rm, f)
            X = f[rm.features].reset_index(drop=True)
            contrib = rm.model.contributions(X)
            for direction in ("up", "down"):
                reasons = reason_codes(X, contrib, rm.manifest, rm.profile, top=top, direction=direction)
                for uid, rs in zip(f["user_id"].tolist(), reasons):
                    for k, r in enumerate(rs, 1):
                        rows.append({"user_id": uid, "score": role, "direction": direction, "rank": k,
                                     "feature": r.feature, "value": r.value, "contribution": r.contribution,
                                     "text": r.text})
        cols = ["user_id", "score", "direction", "rank", "feature", "value", "contribution", "text"]
        return pd.DataFrame(rows, columns=cols)


def _frames_by_role(frames: Mapping[str, pd.DataFrame] | pd.DataFrame) -> dict[str, pd.DataFrame]:
    if isinstance(frames, pd.DataFrame):
        return {r: frames for r in ROLES}
    missing = [r for r in ROLES if r not in frames]
    if missing:
        raise ChurnkitError(f"feature rows missing for {missing}; give one frame or one per {list(ROLES)}")
    return {r: frames[r] for r in ROLES}


def _check_columns(rm: RoleModel, f: pd.DataFrame) -> None:
    if "user_id" not in f.columns:
        raise ChurnkitError("feature rows need a user_id column")
    missing = [c for c in rm.features if c not in f.columns]
    if missing:
        raise ChurnkitError(
            f"{rm.role} model churnkit-{rm.problem} v{rm.version}: feature rows lack "
            f"{missing[:5]}{'...' if len(missing) > 5 else ''}"
        )


def _aligned(f: pd.DataFrame, ids: pd.Index) -> bool:
    return len(f) == len(ids) and bool((f["user_id"].to_numpy() == ids.to_numpy()).all())


def _output_names(role: str) -> dict[str, str]:
    if role == "churn":
        return {"p": "churn_probability"}
    if role == "purchase":
        return {"p": "purchase_probability"}
    return {"ltv": "predicted_ltv", "low": "ltv_low", "high": "ltv_high"}


def _fit_segmenter(seg: pd.DataFrame, settings: ScoringSettings) -> RFMSegmenter | None:
    try:
        return RFMSegmenter(settings.segments).fit(seg)
    except ChurnkitError:
        return None  # nobody has bought yet: tiers stay empty


# --------------------------------------------------------------------------- as-of checks


def data_span(events: Any) -> tuple[dt.date, dt.date]:
    """First event day and the data end (the day after the last event)."""
    row = events.aggregate(first=events.ts.min(), last=events.ts.max()).execute().iloc[0]
    if pd.isna(row["first"]):
        raise ChurnkitError("the events table is empty: run churnkit ingest first")
    return pd.Timestamp(row["first"]).date(), pd.Timestamp(row["last"]).date() + dt.timedelta(days=1)


def check_as_of(events: Any, as_of: dt.date) -> tuple[dt.date, dt.date]:
    """As-of dates must see some history and no future: first day < as_of <= data end."""
    first, end = data_span(events)
    if as_of <= first:
        raise ChurnkitError(
            f"as-of {as_of} is before the data: the first events are on {first} (score after {first})"
        )
    if as_of > end:
        raise ChurnkitError(
            f"as-of {as_of} is after the data end: the last events are on {end - dt.timedelta(days=1)}"
            f" (score at {end} at the latest)"
        )
    return first, end


# --------------------------------------------------------------------------- summaries


def score_summary(scores: pd.DataFrame) -> dict[str, Any]:
    """Counts and distributions of a scoring run (printed and logged to MLflow)."""
    out: dict[str, Any] = {"users": len(scores)}
    for col in ("churn_probability", "purchase_probability", "predicted_ltv", "value_at_risk"):
        v = scores[col].dropna()
        if len(v):
            q = v.quantile([0.1, 0.5, 0.9])
            out[col] = {"mean": float(v.mean()), "p10": float(q.iloc[0]), "p50": float(q.iloc[1]),
                        "p90": float(q.iloc[2])}
    out["value_at_risk_total"] = float(scores["value_at_risk"].sum())
    for role in ROLES:
        out[f"{role}_in_population"] = int(scores[f"{role}_in_population"].fillna(False).sum())
    for col in ("lifecycle_stage", "rfm_tier"):
        if col in scores and scores[col].notna().any():
            out[f"by_{col}"] = {str(k): int(v) for k, v in scores[col].value_counts().items()}
    return out


# --------------------------------------------------------------------------- files (the edge)


def scores_path(ws: Any, as_of: dt.date) -> Path:
    return Path(ws.root) / "scores" / f"scores_{as_of.isoformat()}.parquet"


def meta_path(scores: Path) -> Path:
    """Versions, RFM thresholds and the summary, beside the scores."""
    return Path(scores).with_suffix(".json")


@dataclass
class ScoringOutcome:
    scores: pd.DataFrame
    path: Path
    meta_path: Path
    meta: dict[str, Any]
    run_id: str | None


def write_scores(scores: pd.DataFrame, meta: Mapping[str, Any], out: Path) -> tuple[Path, Path]:
    """Parquet plus its JSON, each moved into place only when complete."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from churnkit.workspace import replace_path, staging_dir

    out = Path(out)
    with staging_dir(out.parent) as tmp:
        pq.write_table(pa.Table.from_pandas(scores, preserve_index=False), tmp / "scores.parquet", compression="zstd")
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, default=str))
        replace_path(tmp / "scores.parquet", out)
        replace_path(tmp / "meta.json", meta_path(out))
    return out, meta_path(out)


def read_scores(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def stored_segmenter(scores: Path | None) -> RFMSegmenter | None:
    """The RFM cut points stored beside a scores file (None without buyers or file), so the
    service tiers a single user exactly as that run tiered everyone."""
    meta = None if scores is None else meta_path(scores)
    rfm = json.loads(meta.read_text()).get("rfm") if meta is not None and meta.exists() else None
    return RFMSegmenter.from_dict(rfm) if rfm else None


def default_as_of(events: Any) -> dt.date:
    """The data end: scores as of the day after the last event."""
    return data_span(events)[1]


def run_scoring(
    ws: Any,
    as_of: dt.date | None,
    *,
    settings: ScoringSettings | None = None,
    tracking_uri: str | None = None,
    configured_uri: str | None = None,
    memory_limit: str | None = None,
    out: Path | None = None,
    log_run: bool = True,
    progress: Progress | None = None,
) -> ScoringOutcome:
    """``churnkit score``: champions -> features at the as-of -> scores file + JSON + MLflow run."""
    import time

    from churnkit import tracking
    from churnkit.warehouse import duckdb_connection, workspace_events, workspace_users

    say = progress or (lambda _m: None)
    settings = settings or ScoringSettings()
    say("loading champions")
    scorer = Scorer.load(ws, tracking_uri, configured_uri, settings)
    con = duckdb_connection(memory_limit)
    events, users = workspace_events(con, ws), workspace_users(con, ws)
    as_of = as_of or default_as_of(events)
    start = time.perf_counter()
    scores = scorer.score_as_of(events, users, as_of, progress=say)
    seconds = time.perf_counter() - start
    summary = score_summary(scores)
    meta = {
        "as_of": as_of.isoformat(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": scorer.versions,
        "rfm": scorer.segmenter.to_dict() if scorer.segmenter else None,
        "settings": settings.model_dump(mode="json"),
        "summary": summary,
        "seconds": round(seconds, 3),
    }
    run_id = None
    if log_run:
        say("logging")
        with tracking.scoring_run(f"score-{as_of.isoformat()}", tags={"churnkit.as_of": as_of.isoformat()}) as run:
            tracking.log_params({"as_of": as_of.isoformat(), "versions": scorer.versions,
                                 "reasons": settings.reasons, "reasons_for": settings.reasons_for})
            tracking.log_metrics({k: v for k, v in summary.items() if not k.startswith("by_")} | {"seconds": seconds})
            tracking.log_json(meta, "scoring/meta.json")
            run_id = run.run_id
        meta["mlflow_run_id"] = run_id
    path, mpath = write_scores(scores, meta, Path(out) if out else scores_path(ws, as_of))
    return ScoringOutcome(scores, path, mpath, meta, run_id)
