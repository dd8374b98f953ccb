"""One pinned model per role: what it is, whether a row is in its population, what it outputs.

The pieces a :class:`~churnkit.scoring.scorer.Scorer` is made of, apart so the scorer
module keeps to orchestration.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from churnkit.config import ProblemConfig
from churnkit.contracts import KIND_OF_ROLE, ROLE_OUTPUTS, VALUE_AT_RISK
from churnkit.datasets.eligibility import eligible
from churnkit.datasets.manifest import Manifest
from churnkit.errors import ChurnkitError
from churnkit.features.build import ELIGIBILITY_COLUMNS
from churnkit.models.outputs import matrix_outputs
from churnkit.scoring.explain import Explainer


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
    """The :func:`eligible` rule on feature rows; NA where the rows lack what it reads
    (:func:`in_population_matrix` on the columns it reads: one definition of the rule)."""
    cols = [c for c in ELIGIBILITY_COLUMNS if c in X.columns]
    inside = in_population_matrix(X[cols].to_numpy("float64"), {c: i for i, c in enumerate(cols)}, problem)
    return pd.Series(pd.NA if inside is None else inside, index=X.index, dtype="boolean")


def in_population_matrix(A: np.ndarray, at: dict[str, int], problem: ProblemConfig) -> np.ndarray | None:
    """:func:`in_population` on a feature matrix (``at``: column of each name): a bool array,
    or None where the rows lack what the rule reads (unknown for every row)."""
    since, history = ELIGIBILITY_COLUMNS
    if since not in at or (problem.min_history_days > 0 and history not in at):
        return None
    hist = A[:, at[history]] if history in at else np.full(len(A), np.nan)
    return np.asarray(eligible(A[:, at[since]], hist, problem), dtype=bool)


def value_at_risk(churn_probability: np.ndarray, predicted_ltv: np.ndarray) -> np.ndarray:
    """Revenue expected from the user over the LTV horizon that is lost if they churn."""
    return churn_probability * predicted_ltv


def in_chunks(fn: Callable[[pd.DataFrame], Any], X: pd.DataFrame, rows: int) -> list[Any]:
    return [fn(X.iloc[i : i + rows]) for i in range(0, len(X), rows)] if len(X) else []


def role_outputs_matrix(rm: RoleModel, A: np.ndarray, names: list[str], chunk_rows: int) -> dict[str, np.ndarray]:
    """A model's score-row columns (``churn_probability``, ...) for a float64 matrix whose
    columns are ``names`` (``rm.features``, in order; checked by the caller), in chunks,
    through the model's numpy path (:func:`~churnkit.models.outputs.matrix_outputs`)."""
    kind = KIND_OF_ROLE[rm.role]
    parts = [matrix_outputs(rm.model, A[i : i + chunk_rows], names, kind) for i in range(0, len(A), chunk_rows)]
    return {col: np.concatenate([p[part] for p in parts]) if parts else np.empty(0)
            for part, col in ROLE_OUTPUTS[rm.role].items()}


def add_value_at_risk(out: dict[str, Any] | pd.DataFrame) -> None:
    """``value_at_risk`` when both its factors are scored; absent otherwise."""
    churn, ltv = ROLE_OUTPUTS["churn"]["score"], ROLE_OUTPUTS["ltv"]["score"]
    if churn in out and ltv in out:
        out[VALUE_AT_RISK] = value_at_risk(np.asarray(out[churn]), np.asarray(out[ltv]))
