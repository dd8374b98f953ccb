"""Scores per user at an as-of date: the configured pinned models, reasons, RFM tier, stage.

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
:mod:`churnkit.scoring.explain` against the population being scored (its medians); only
contributions that push risk *up* are shown. SHAP costs several times a prediction, so by
default it runs only for the rows a risk list shows first (``scoring.reasons_for: top``:
the first ``reasons_top`` users of the risk ranking; a list adds reasons for any other row
it shows), in chunks; ``population`` or ``all`` explain more.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from churnkit.config import ScoringSettings
from churnkit.contracts import (
    ROLE_OUTPUTS,
    ROLES,
    in_population_column,
    model_version_column,
    reason_column,
)
from churnkit.datasets.build import scoring_features
from churnkit.datasets.span import data_span
from churnkit.errors import ChurnkitError
from churnkit.features.families import rfm
from churnkit.models.checks import check_features
from churnkit.scoring.explain import (
    Explainer,
    ReasonBasis,
    reason_basis,
    reason_codes,
    reasons_frame,
)
from churnkit.scoring.ranking import first_ranked, risk_ranking
from churnkit.scoring.roles import (
    RoleModel,
    add_value_at_risk,
    check_role_model,
    feature_key,
    in_chunks,
    in_population,
    in_population_matrix,
    role_outputs_matrix,
)
from churnkit.scoring.segments import RFMSegmenter, segment_columns_missing
from churnkit.scoring.stages import StageCuts, gap_counts, lifecycle_stage, stage_cuts

__all__ = ["CONTEXT_COLUMNS", "RoleModel", "Scorer", "check_role_model"]

CONTEXT_COLUMNS = (rfm.DAYS_SINCE_LAST_ACTIVITY.name, rfm.REVENUE_TOTAL.name)
"""Feature values carried into the scores for lists (how long silent, what they spent)."""

Progress = Callable[[str], None]


# --------------------------------------------------------------------------- the scorer


class Scorer:
    """The configured models (any of churn, purchase, LTV), pinned to versions; scores
    batches, single users and feature rows. A role without a model has no columns: no
    ``churn_probability`` without churn, no ``value_at_risk`` without churn and LTV, no
    reasons without churn (they are churn drivers).

    What a batch learns about the population it scores is kept for later calls (single
    users included) and stored beside the scores, so the service tiers, stages and explains
    a user exactly as that run did: ``segmenter`` (RFM cut points, from the buyers),
    ``stages`` (the silent and churned cuts, from the data's rhythm unless configured) and
    ``reason_basis`` (over the users given reasons: the medians reasons quote as "most
    users" and the features that state one fact on this data; the training population's
    medians until a batch is scored).
    """

    def __init__(
        self,
        models: Mapping[str, RoleModel],
        settings: ScoringSettings | None = None,
        segmenter: RFMSegmenter | None = None,
        stages: StageCuts | None = None,
        reason_basis: ReasonBasis | None = None,
    ):
        unknown = sorted(set(models) - set(ROLES))
        if unknown or not models:
            raise ChurnkitError(f"Scorer needs a model for one or more of {list(ROLES)}; got {sorted(models)}")
        self.models = {r: models[r] for r in ROLES if r in models}
        for rm in self.models.values():
            check_role_model(rm)
        self.settings = settings or ScoringSettings()
        self.segmenter = segmenter
        self.stages = stages
        self.reason_basis = reason_basis
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
                names = ", ".join(self.models[r].name.rsplit(" v", 1)[0] for r in roles)
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
        ``value_at_risk`` and ``<role>_in_population``. No reasons, tiers or stages.

        The rows are checked once (:func:`~churnkit.models.checks.check_features`) and
        scored as one matrix: :meth:`predict_matrix`."""
        names = self.feature_names
        A = np.ascontiguousarray(check_features(X[names], names, "predict").to_numpy())
        out = self.predict_matrix(A)
        for role in self.roles:
            col = in_population_column(role)
            inside = out[col]
            out[col] = pd.Series(pd.NA if inside is None else inside, index=X.index, dtype="boolean").to_numpy()
        return pd.DataFrame(out, index=X.index)

    def predict_matrix(self, A: np.ndarray) -> dict[str, np.ndarray | None]:
        """:meth:`predict` for a float64 matrix whose columns are :attr:`feature_names`,
        already checked (numbers, finite or NaN): the service's path.

        Why a matrix: one row through three models cost ~9 ms in frames, checks and
        scikit-learn wrappers around six booster calls; here each model reads its columns
        of one array, each booster is called once (LTV's hurdle parts serve both its score
        and its interval) with one thread for small inputs, and the values are the same.
        ``<role>_in_population`` is a bool array, or None where the rows lack the columns
        the rule reads (unknown for every row)."""
        out: dict[str, np.ndarray | None] = {}
        for role, rm in self.models.items():
            names, cols = self._model_columns[role]
            X = A if cols is None else np.ascontiguousarray(A[:, cols])
            out |= role_outputs_matrix(rm, X, names, self.settings.chunk_rows)
            out[in_population_column(role)] = in_population_matrix(A, self._feature_at, rm.spec)
        add_value_at_risk(out)
        return out

    @cached_property
    def _feature_at(self) -> dict[str, int]:
        """The column of each feature in :meth:`predict_matrix`'s matrix."""
        return {n: i for i, n in enumerate(self.feature_names)}

    @cached_property
    def _model_columns(self) -> dict[str, tuple[list[str], np.ndarray | None]]:
        """Each model's features and its columns of that matrix (None: the matrix as it is)."""
        at = self._feature_at
        out = {}
        for role, rm in self.models.items():
            names = rm.features
            out[role] = names, None if names == self.feature_names else np.array([at[n] for n in names])
        return out

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
        shared: dict[tuple[int, tuple[str, ...]], list[str]] = {}  # roles reading the same rows
        for role, rm in self.models.items():
            _check_columns(rm, frames[role])
            shared.setdefault((id(frames[role]), tuple(rm.features)), []).append(role)
        for (_, names), roles in shared.items():
            f = frames[roles[0]]
            if _aligned(f, ids):
                rows, present = f.reset_index(drop=True), np.ones(len(ids), bool)
            else:
                rows = f.set_index("user_id").reindex(ids).reset_index()
                present = ids.isin(f["user_id"])
            for col, v in self._outputs(rows if present.all() else rows.loc[present], list(names), roles).items():
                values = np.full(len(ids), np.nan)
                values[present] = v
                out[col] = values
            for role in roles:
                inside[role] = in_population(rows, self.models[role].spec)
        add_value_at_risk(out)

        seg = segment_frame(frames, ids)
        if seg is not None:
            out["rfm_tier"] = self.segmenter.transform(seg)["rfm_tier"].to_numpy() if self.segmenter else None
            out["lifecycle_stage"] = lifecycle_stage(seg, s.segments, self.stages).to_numpy()
            for col in CONTEXT_COLUMNS:
                out[col] = seg[col].to_numpy("float64")
        else:
            out["rfm_tier"], out["lifecycle_stage"] = None, None

        top = s.reasons if reasons is None else reasons
        if top and "churn" in self.models:
            churn = self.models["churn"]
            pick = self._explained(out, inside["churn"], reasons_for)
            f = frames["churn"]
            rows = f.iloc[np.flatnonzero(pick)] if _aligned(f, ids) else f.set_index("user_id").reindex(ids[pick])
            texts = churn_reasons(churn, self.explainer("churn"), rows[churn.features].reset_index(drop=True),
                                  top, s.chunk_rows)
            for j in range(top):
                col = reason_column(j + 1)
                values = np.full(len(ids), None, dtype=object)
                values[pick] = texts[col].to_numpy(dtype=object)
                out[col] = pd.Series(values, dtype="str")  # null where no reason, whatever the batch size
        for role in self.roles:
            out[in_population_column(role)] = inside[role].to_numpy()
        for role, rm in self.models.items():
            out[model_version_column(role)] = rm.version
        return out

    def churn_reasons_of(self, frames: Mapping[str, pd.DataFrame] | pd.DataFrame, top: int | None = None
                         ) -> pd.DataFrame:
        """``user_id`` and ``reason_1..top`` for every given feature row, whatever
        ``reasons_for`` says: how a list explains the rows it shows that scoring did not."""
        if "churn" not in self.models:
            raise ChurnkitError("reasons are churn drivers and this scorer has no churn model")
        f = self._frames_by_role(frames)["churn"]
        churn = self.models["churn"]
        _check_columns(churn, f)
        n = self.settings.reasons if top is None else top
        texts = churn_reasons(churn, self.explainer("churn"), f[churn.features].reset_index(drop=True), n,
                              self.settings.chunk_rows)
        texts.insert(0, "user_id", f["user_id"].to_numpy())
        return texts

    def _outputs(self, X: pd.DataFrame, names: list[str], roles: list[str]) -> dict[str, np.ndarray]:
        """The score columns of ``roles`` (models reading the features ``names``) for the rows
        of ``X``: a chunk at a time, each chunk checked and made one float64 matrix that every
        one of those models scores through its numpy path (:meth:`predict_matrix`'s path), so
        the rows are converted once for all of them and memory stays at a chunk's."""
        step = self.settings.chunk_rows
        parts: list[dict[str, np.ndarray]] = []
        for i in range(0, len(X), step):
            A = np.ascontiguousarray(check_features(X.iloc[i : i + step][names], names, "score").to_numpy("float64"))
            part: dict[str, np.ndarray] = {}
            for role in roles:
                part |= role_outputs_matrix(self.models[role], A, names, len(A))
            parts.append(part)
        cols = [c for role in roles for c in ROLE_OUTPUTS[role].values()]
        return {c: np.concatenate([p[c] for p in parts]) if parts else np.empty(0) for c in cols}

    def score_as_of(self, events: Any, users: Any, as_of: dt.date, progress: Progress | None = None,
                    reasons: int | None = None) -> pd.DataFrame:
        """Batch: everyone with activity before ``as_of`` in the tables, which must cover it.
        ``reasons`` overrides the configured number (0: scores only, no SHAP)."""
        say = progress or (lambda _m: None)
        data_span(events).check_as_of(as_of)
        say("features")
        frames = self.features(events, users, as_of)
        if self.segmenter is None:
            self.fit_segmenter(frames)
        if self.stages is None:
            self.fit_stages(events, as_of)
        if self.reason_basis is None and reasons != 0:
            self.fit_reason_basis(frames)
        say("scores and reasons")
        return self.score_features(frames, as_of=as_of, reasons=reasons)

    def fit_segmenter(self, frames: Mapping[str, pd.DataFrame]) -> RFMSegmenter | None:
        """RFM cut points from the buyers in these feature rows, kept for later calls (none
        when the rows cannot be segmented or nobody has bought yet)."""
        frames = self._frames_by_role(frames)
        seg = segment_frame(frames, _user_ids(frames))
        self.segmenter = _fit_segmenter(seg, self.settings) if seg is not None else None
        return self.segmenter

    def fit_stages(self, events: Any, as_of: dt.date) -> StageCuts:
        """The silent and churned cuts: configured, or from the gaps between active days
        before ``as_of`` (activity as the first model's problem defines it)."""
        settings = self.settings.segments
        configured = settings.silent_min_days is not None and settings.churned_days is not None
        activity = next(iter(self.models.values())).spec.activity
        self.stages = stage_cuts(settings, None if configured else gap_counts(events, activity, as_of))
        return self.stages

    def fit_reason_basis(self, frames: Mapping[str, pd.DataFrame]) -> ReasonBasis | None:
        """What reasons compare with, from the users reasons speak of (the churn population;
        everyone with ``reasons_for: all``): every model feature's median and the features
        that state one fact on this data. None when there is no such user."""
        frames = self._frames_by_role(frames)
        f = frames["churn"] if "churn" in self.models else frames[self.roles[0]]
        rows = np.ones(len(f), bool)
        if "churn" in self.models and self.settings.reasons_for != "all":
            # the population, also when only its top rows get reasons: a text says the same
            # of a user whichever other users happen to be explained in the same run
            rows = in_population(f, self.models["churn"].spec).fillna(False).to_numpy(bool)
        units = {e.name: e.unit for rm in self.models.values() for e in rm.manifest.features}
        names = [n for n in self.feature_names if n in f.columns]
        self.reason_basis = reason_basis(f.loc[rows], names, units) if rows.any() else None
        return self.reason_basis

    def explainer(self, role: str) -> Explainer:
        """The role model's explainer, compared with the scored population once one is known."""
        return self.models[role].explainer.with_basis(self.reason_basis)

    def _explained(self, out: pd.DataFrame, inside: pd.Series, reasons_for: str | None = None) -> np.ndarray:
        """Which score rows get reasons: every scored row (``all``), those inside the churn
        model's population (``population``), or the first ``reasons_top`` of them in the
        risk list's order (``top``)."""
        mode = reasons_for or self.settings.reasons_for
        scored = out[ROLE_OUTPUTS["churn"]["score"]].notna().to_numpy()
        if mode == "all":
            return scored
        rows = inside.fillna(False).to_numpy(bool) & scored
        if mode == "population":
            return rows
        value = out[risk_ranking(out.columns)].to_numpy("float64")
        return first_ranked(value, out["user_id"].to_numpy(), rows, self.settings.reasons_top)

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
                reasons = reason_codes(X, contrib, self.explainer(role), top=top, direction=direction)
                for uid, rs in zip(f["user_id"].tolist(), reasons):
                    for k, r in enumerate(rs, 1):
                        rows.append({"user_id": uid, "score": role, "direction": direction, "rank": k,
                                     "feature": r.feature, "value": r.value, "contribution": r.contribution,
                                     "text": r.text})
        cols = ["user_id", "score", "direction", "rank", "feature", "value", "contribution", "text"]
        return pd.DataFrame(rows, columns=cols)


# --------------------------------------------------------------------------- helpers


def churn_reasons(rm: RoleModel, explainer: Explainer, X: pd.DataFrame, top: int, chunk_rows: int) -> pd.DataFrame:
    """``reason_1..top``: churn drivers that push risk up, from TreeSHAP, in chunks."""

    def one(x: pd.DataFrame) -> pd.DataFrame:
        contrib = rm.model.contributions(x)
        return reasons_frame(reason_codes(x, contrib, explainer, top=top, direction="up"), top)

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
