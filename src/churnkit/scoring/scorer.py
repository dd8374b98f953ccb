"""Scores per user at an as-of date: three pinned models, reasons, RFM tier, lifecycle stage.

The one :class:`Scorer` serves batch scoring, single users and the prediction service.

**Who is scored.** Every user who signed up before the as-of date and has any activity
before it, whatever the models' look-back windows say: risk lists need the users active
now; recall lists need silent and churned users too, who are outside every GA4 model's
training population. Features do not depend on the look-back (only eligibility does), so
they are built once per distinct feature definition, every model scores every user, and
``<role>_in_population`` says whether the user is one the model was trained on, by the
same :func:`~churnkit.datasets.eligibility.eligible` rule training used. Scores outside it
are extrapolations: the risk list keeps only users inside the churn model's population.

**One feature path.** Batch scoring and single users both go through
:func:`churnkit.datasets.build.scoring_features`; only the Ibis tables differ (workspace
Parquet, or in-memory events).

**Reasons.** LightGBM TreeSHAP of the churn model, turned into texts by
:mod:`churnkit.scoring.explain` against the model's training population profile; only
contributions that push risk *up* are shown. SHAP costs far more than a prediction, so by
default it runs only for users inside the churn model's population, in chunks.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from churnkit.config import ProblemConfig, ScoringSettings
from churnkit.contracts import (
    KIND_OF_ROLE,
    ROLE_OUTPUTS,
    ROLES,
    VALUE_AT_RISK,
    in_population_column,
    model_version_column,
    reason_column,
)
from churnkit.datasets.build import scoring_features
from churnkit.datasets.eligibility import eligible
from churnkit.datasets.manifest import Manifest
from churnkit.datasets.span import data_span
from churnkit.errors import ChurnkitError
from churnkit.features.build import ELIGIBILITY_COLUMNS
from churnkit.features.families import rfm
from churnkit.models.outputs import model_outputs
from churnkit.scoring.explain import Explainer, reason_codes, reasons_frame
from churnkit.scoring.segments import RFMSegmenter, lifecycle_stage, segment_columns_missing

CONTEXT_COLUMNS = (rfm.DAYS_SINCE_LAST_ACTIVITY.name, rfm.REVENUE_TOTAL.name)
"""Feature values carried into the scores for lists (how long silent, what they spent)."""

Progress = Callable[[str], None]


# --------------------------------------------------------------------------- models


@dataclass(frozen=True)
class RoleModel:
    """One pinned model: which score it gives, its version, the estimator and its manifest."""

    role: str
    problem: str
    version: int
    model: Any
    manifest: Manifest

    @property
    def name(self) -> str:
        return f"{self.role} model churnkit-{self.problem} v{self.version}"

    @property
    def features(self) -> list[str]:
        return self.manifest.feature_names

    @property
    def spec(self) -> ProblemConfig:
        return self.manifest.problem

    @cached_property
    def explainer(self) -> Explainer:
        return Explainer.for_manifest(self.manifest)


def check_role_model(rm: RoleModel) -> None:
    """The model is of the role's kind and expects exactly its manifest's features."""
    kind = rm.manifest.label.kind
    if kind != KIND_OF_ROLE[rm.role]:
        raise ChurnkitError(
            f"{rm.name} predicts '{kind}', not '{KIND_OF_ROLE[rm.role]}': check scoring.{rm.role} in the config"
        )
    expected = getattr(rm.model, "feature_names_in_", None)
    if expected is not None and list(expected) != rm.features:
        missing = sorted(set(expected) - set(rm.features))
        extra = sorted(set(rm.features) - set(expected))
        raise ChurnkitError(
            f"{rm.name}: the feature manifest and the model disagree (model needs {missing[:5]}, "
            f"manifest adds {extra[:5]}); retrain with churnkit train --problem {rm.problem}"
        )


def feature_key(manifest: Manifest) -> str:
    """Models whose features are computed identically share one feature pass."""
    p = manifest.problem
    return json.dumps(
        [p.features.model_dump(mode="json"), p.activity.model_dump(mode="json"), manifest.attribute_levels,
         manifest.feature_names],
        sort_keys=True,
    )


def in_population(X: pd.DataFrame, problem: ProblemConfig) -> pd.Series:
    """The :func:`eligible` rule on feature rows; NA where the rows lack what it reads."""
    since, history = ELIGIBILITY_COLUMNS
    if since not in X.columns or (problem.min_history_days > 0 and history not in X.columns):
        return pd.Series(pd.NA, index=X.index, dtype="boolean")
    hist = X[history].to_numpy("float64") if history in X.columns else np.full(len(X), np.nan)
    return pd.Series(eligible(X[since].to_numpy("float64"), hist, problem), index=X.index, dtype="boolean")


def value_at_risk(churn_probability: np.ndarray, predicted_ltv: np.ndarray) -> np.ndarray:
    """Revenue expected from the user over the LTV horizon that is lost if they churn."""
    return churn_probability * predicted_ltv


def in_chunks(fn: Callable[[pd.DataFrame], Any], X: pd.DataFrame, rows: int) -> list[Any]:
    return [fn(X.iloc[i : i + rows]) for i in range(0, len(X), rows)] if len(X) else []


def role_outputs(rm: RoleModel, X: pd.DataFrame, chunk_rows: int) -> dict[str, np.ndarray]:
    """A model's score-row columns for feature rows, in chunks (``churn_probability``, ...)."""
    kind = KIND_OF_ROLE[rm.role]
    parts = in_chunks(lambda x: model_outputs(rm.model, x, kind), X[rm.features], chunk_rows)
    return {col: np.concatenate([p[part] for p in parts]) if parts else np.empty(0)
            for part, col in ROLE_OUTPUTS[rm.role].items()}


# --------------------------------------------------------------------------- the scorer


class Scorer:
    """The configured models (any of churn, purchase, LTV), pinned to versions; scores
    batches, single users and feature rows. A role without a model has no columns: no
    ``churn_probability`` without churn, no ``value_at_risk`` without churn and LTV, no
    reasons without churn (they are churn drivers).

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
        unknown = sorted(set(models) - set(ROLES))
        if unknown or not models:
            raise ChurnkitError(f"Scorer needs a model for one or more of {list(ROLES)}; got {sorted(models)}")
        self.models = {r: models[r] for r in ROLES if r in models}
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
        self.groups = [(self.models[roles[0]].manifest, roles) for roles in groups.values()]

    @property
    def roles(self) -> tuple[str, ...]:
        """The roles this scorer has a model for, in the contract's order."""
        return tuple(self.models)

    @property
    def versions(self) -> dict[str, dict[str, Any]]:
        return {r: {"problem": rm.problem, "version": rm.version} for r, rm in self.models.items()}

    @cached_property
    def feature_names(self) -> list[str]:
        """Every feature any model reads, in the first model's order."""
        names: list[str] = []
        for rm in self.models.values():
            names += [n for n in rm.features if n not in names]
        return names

    # -- features --------------------------------------------------------------

    def features(self, events: Any, users: Any, as_of: dt.date) -> dict[str, pd.DataFrame]:
        """Feature rows per role from Ibis tables (one pass per distinct feature set):
        everyone with activity before ``as_of``, with the eligibility inputs."""
        frames: dict[str, pd.DataFrame] = {}
        for manifest, roles in self.groups:
            try:
                frame = scoring_features(events, users, manifest, as_of)
            except ChurnkitError as err:
                names = ", ".join(f"{r} model churnkit-{self.models[r].problem}" for r in roles)
                raise ChurnkitError(f"{names}: {err}") from None
            for role in roles:
                frames[role] = frame
        return frames

    def _frames_by_role(self, frames: Mapping[str, pd.DataFrame] | pd.DataFrame) -> dict[str, pd.DataFrame]:
        """One feature frame for every model, or one per role this scorer has."""
        if isinstance(frames, pd.DataFrame):
            return {r: frames for r in self.roles}
        missing = [r for r in self.roles if r not in frames]
        if missing:
            raise ChurnkitError(f"feature rows missing for {missing}; give one frame or one per {list(self.roles)}")
        return {r: frames[r] for r in self.roles}

    # -- scores ----------------------------------------------------------------

    def predict(self, X: pd.DataFrame) -> pd.DataFrame:
        """Score-row columns for feature rows in their input order: each model's outputs,
        ``value_at_risk`` and ``<role>_in_population``. No reasons, tiers or stages."""
        out: dict[str, np.ndarray] = {}
        for role, rm in self.models.items():
            out |= role_outputs(rm, X, self.settings.chunk_rows)
            out[in_population_column(role)] = in_population(X, rm.spec).to_numpy()
        _add_value_at_risk(out)
        return pd.DataFrame(out, index=X.index)

    def score_features(
        self,
        frames: Mapping[str, pd.DataFrame] | pd.DataFrame,
        *,
        as_of: dt.date | None = None,
        reasons_for: str | None = None,
        reasons: int | None = None,
    ) -> pd.DataFrame:
        """The batch score row from feature rows (``user_id`` + each model's features; one
        frame for all three models or one per role): scores, tier, stage, reasons, versions.
        One row per user, sorted by ``user_id``. ``reasons`` overrides the number of reason
        codes (0: none)."""
        frames = self._frames_by_role(frames)
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
            for col, v in role_outputs(rm, aligned.loc[present].reset_index(drop=True), s.chunk_rows).items():
                values = np.full(len(ids), np.nan)
                values[present] = v
                out[col] = values
            inside[role] = in_population(aligned, rm.spec).reset_index(drop=True)
        _add_value_at_risk(out)

        seg = segment_frame(frames, ids)
        if seg is not None:
            out["rfm_tier"] = self.segmenter.transform(seg)["rfm_tier"].to_numpy() if self.segmenter else None
            out["lifecycle_stage"] = lifecycle_stage(seg, s.segments).to_numpy()
            for col in CONTEXT_COLUMNS:
                out[col] = seg[col].to_numpy("float64")
        else:
            out["rfm_tier"], out["lifecycle_stage"] = None, None

        top = s.reasons if reasons is None else reasons
        if top and "churn" in self.models:
            churn = self.models["churn"]
            cf = frames["churn"].set_index("user_id").reindex(ids)
            scope = reasons_for or s.reasons_for
            pick = np.ones(len(ids), bool) if scope == "all" else inside["churn"].fillna(False).to_numpy(bool)
            pick &= out[ROLE_OUTPUTS["churn"]["score"]].notna().to_numpy()
            texts = churn_reasons(churn, cf.loc[pick, churn.features].reset_index(drop=True), top, s.chunk_rows)
            for j in range(top):
                col = reason_column(j + 1)
                values = np.full(len(ids), None, dtype=object)
                values[pick] = texts[col].to_numpy(dtype=object)
                out[col] = values
        for role in self.roles:
            out[in_population_column(role)] = inside[role].to_numpy()
        for role, rm in self.models.items():
            out[model_version_column(role)] = rm.version
        return out

    def score_as_of(self, events: Any, users: Any, as_of: dt.date, progress: Progress | None = None) -> pd.DataFrame:
        """Batch: everyone with activity before ``as_of`` in the tables, which must cover it."""
        say = progress or (lambda _m: None)
        data_span(events).check_as_of(as_of)
        say("features")
        frames = self.features(events, users, as_of)
        if self.segmenter is None:
            self.fit_segmenter(frames)
        say("scores and reasons")
        return self.score_features(frames, as_of=as_of)

    def fit_segmenter(self, frames: Mapping[str, pd.DataFrame]) -> RFMSegmenter | None:
        """RFM cut points from the buyers in these feature rows, kept for later calls (none
        when the rows cannot be segmented or nobody has bought yet)."""
        frames = self._frames_by_role(frames)
        seg = segment_frame(frames, _user_ids(frames))
        self.segmenter = _fit_segmenter(seg, self.settings) if seg is not None else None
        return self.segmenter

    def score_events(self, events: Any, users: Any, as_of: dt.date) -> pd.DataFrame:
        """Single users from their events (Ibis tables, e.g. memtables of a request), through
        the same feature function as batches."""
        return self.score_features(self.features(events, users, as_of), as_of=as_of)

    def explain(
        self,
        frames: Mapping[str, pd.DataFrame] | pd.DataFrame,
        top: int = 5,
        roles: Iterable[str] | None = None,
    ) -> pd.DataFrame:
        """Reasons both ways for each model (default: every model the scorer has), long
        format: ``user_id, score, direction, rank, feature, value, contribution, text``
        (contributions in the model's raw space)."""
        frames = self._frames_by_role(frames)
        roles = self.roles if roles is None else tuple(roles)
        rows: list[dict[str, Any]] = []
        for role in roles:
            rm = self.models[role]
            f = frames[role]
            _check_columns(rm, f)
            X = f[rm.features].reset_index(drop=True)
            contrib = rm.model.contributions(X)
            for direction in ("up", "down"):
                reasons = reason_codes(X, contrib, rm.explainer, top=top, direction=direction)
                for uid, rs in zip(f["user_id"].tolist(), reasons):
                    for k, r in enumerate(rs, 1):
                        rows.append({"user_id": uid, "score": role, "direction": direction, "rank": k,
                                     "feature": r.feature, "value": r.value, "contribution": r.contribution,
                                     "text": r.text})
        cols = ["user_id", "score", "direction", "rank", "feature", "value", "contribution", "text"]
        return pd.DataFrame(rows, columns=cols)


# --------------------------------------------------------------------------- helpers


def churn_reasons(rm: RoleModel, X: pd.DataFrame, top: int, chunk_rows: int) -> pd.DataFrame:
    """``reason_1..top``: churn drivers that push risk up, from TreeSHAP, in chunks."""

    def one(x: pd.DataFrame) -> pd.DataFrame:
        contrib = rm.model.contributions(x)
        return reasons_frame(reason_codes(x, contrib, rm.explainer, top=top, direction="up"), top)

    parts = in_chunks(one, X, chunk_rows)
    if not parts:
        return pd.DataFrame({reason_column(j + 1): pd.Series(dtype="object") for j in range(top)})
    out = pd.concat(parts, ignore_index=True)
    out.index = X.index
    return out


def segment_frame(frames: Mapping[str, pd.DataFrame], ids: pd.Index) -> pd.DataFrame | None:
    """The feature rows tiers and stages read: the first frame that has their columns."""
    for f in frames.values():
        if not segment_columns_missing(f.columns):
            return f.set_index("user_id").reindex(ids)
    return None


def _add_value_at_risk(out: dict[str, Any] | pd.DataFrame) -> None:
    """``value_at_risk`` when both its factors are scored; absent otherwise."""
    churn, ltv = ROLE_OUTPUTS["churn"]["score"], ROLE_OUTPUTS["ltv"]["score"]
    if churn in out and ltv in out:
        out[VALUE_AT_RISK] = value_at_risk(np.asarray(out[churn]), np.asarray(out[ltv]))


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


def _check_columns(rm: RoleModel, f: pd.DataFrame) -> None:
    if "user_id" not in f.columns:
        raise ChurnkitError("feature rows need a user_id column")
    missing = [c for c in rm.features if c not in f.columns]
    if missing:
        raise ChurnkitError(f"{rm.name}: feature rows lack {missing[:5]}{'...' if len(missing) > 5 else ''}")


def _aligned(f: pd.DataFrame, ids: pd.Index) -> bool:
    return len(f) == len(ids) and bool((f["user_id"].to_numpy() == ids.to_numpy()).all())


def _fit_segmenter(seg: pd.DataFrame, settings: ScoringSettings) -> RFMSegmenter | None:
    try:
        return RFMSegmenter(settings.segments).fit(seg)
    except ChurnkitError:
        return None  # nobody has bought yet: tiers stay empty
