"""The service's fast path gives exactly what the general path gives, row by row.

``/score_features`` scores one float64 matrix through each model's numpy path
(:meth:`Scorer.predict_matrix`) and encodes plain dicts; batch scoring goes through frames,
checks and scikit-learn wrappers (:func:`churnkit.models.outputs.model_outputs`) and the
service used to answer with a ``Scores`` model per row. Both must agree bit for bit on rows
that stress them: missing values, zeros, extremes, categories no model saw, every role, both
LTV formulations, small chunks, and a model without a numpy path.
"""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic_core import to_json

from churnkit.contracts import KIND_OF_ROLE, ROLE_OUTPUTS, SCORE_COLUMNS, in_population_column
from churnkit.flows.score import load_scorer
from churnkit.io.warehouse import duckdb_connection, workspace_events, workspace_users
from churnkit.models.outputs import model_outputs
from churnkit.scoring.roles import add_value_at_risk, in_population
from churnkit.scoring.scorer import Scorer
from churnkit.service import engine
from churnkit.service.schemas import Scores, json_value

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scorer_and_rows(trained_workspace) -> tuple[Scorer, pd.DataFrame]:
    ws, as_of = trained_workspace.ws, trained_workspace.end
    scorer = load_scorer(trained_workspace.project)
    con = duckdb_connection()
    features = scorer.features(workspace_events(con, ws), workspace_users(con, ws), as_of)["churn"]
    return scorer, varied_rows(features[scorer.feature_names].astype("float64").reset_index(drop=True))


def varied_rows(X: pd.DataFrame) -> pd.DataFrame:
    """Real rows, then the same rows with holes, zeros, negatives, huge and tiny values,
    attribute indicators no training row had (all 0: an unknown category; all 1), all missing."""
    rng = np.random.default_rng(7)
    attrs = [c for c in X.columns if "_is_" in c]
    assert attrs, "the trained models should read attribute indicators"
    parts = [X, X.mask(rng.random(X.shape) < 0.4), X * 0.0, -X, X * 1e9, X * 1e-300]
    for value in (0.0, 1.0):
        unknown = X.copy()
        unknown[attrs] = value
        parts.append(unknown)
    parts.append(pd.DataFrame(np.nan, index=range(5), columns=X.columns))
    return pd.concat(parts, ignore_index=True)


def general_path(scorer: Scorer, X: pd.DataFrame) -> dict[str, Any]:
    """What scoring ran per model before the numpy path: frames, checks, the scikit-learn
    wrappers (``model_outputs``), a chunk at a time."""
    out: dict[str, Any] = {}
    step = scorer.settings.chunk_rows
    for role, rm in scorer.models.items():
        kind = KIND_OF_ROLE[role]
        parts = [model_outputs(rm.model, X[rm.features].iloc[i : i + step], kind) for i in range(0, len(X), step)]
        for part, col in ROLE_OUTPUTS[role].items():
            out[col] = np.concatenate([p[part] for p in parts])
        out[in_population_column(role)] = in_population(X, rm.spec).to_numpy()
    add_value_at_risk(out)
    return out


def assert_same(fast: dict[str, Any], general: dict[str, Any]) -> None:
    assert list(fast) == list(general)
    for col, want in general.items():
        got = fast[col]
        if col.endswith("_in_population"):
            want = [None if pd.isna(v) else bool(v) for v in want]
            got = [None] * len(want) if got is None else got.tolist()
            assert got == want, col
        else:
            np.testing.assert_array_equal(got, want, err_msg=col, strict=True)  # bit for bit, NaN where NaN


def matrix(X: pd.DataFrame) -> np.ndarray:
    return np.ascontiguousarray(X.to_numpy("float64"))


def test_predict_matrix_equals_the_general_path_on_varied_rows(scorer_and_rows):
    scorer, X = scorer_and_rows
    assert_same(scorer.predict_matrix(matrix(X)), general_path(scorer, X))
    for i in range(0, len(X), 97):  # one row at a time, as single requests score them
        assert_same(scorer.predict_matrix(matrix(X.iloc[[i]])), general_path(scorer, X.iloc[[i]]))


def test_both_ltv_formulations_small_chunks_and_a_model_without_a_numpy_path(scorer_and_rows):
    scorer, X = scorer_and_rows
    ltv = scorer.models["ltv"]
    for chosen in ("hurdle", "tweedie"):
        model = copy.deepcopy(ltv.model)
        model.chosen_ = chosen
        models = {**scorer.models, "ltv": replace(ltv, model=model)}
        other = Scorer(models, scorer.settings.model_copy(update={"chunk_rows": 37}))
        assert_same(other.predict_matrix(matrix(X)), general_path(other, X))

    class FramesOnly:
        """A classifier with the scikit-learn surface only: the fast path falls back to frames."""

        def __init__(self, inner: Any):
            self.inner = inner
            self.feature_names_in_ = inner.feature_names_in_

        def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
            return self.inner.predict_proba(X)

    churn = scorer.models["churn"]
    other = Scorer({**scorer.models, "churn": replace(churn, model=FramesOnly(churn.model))}, scorer.settings)
    assert not hasattr(other.models["churn"].model, "outputs_matrix")
    assert_same(other.predict_matrix(matrix(X)), general_path(other, X))


def test_scorer_predict_keeps_its_frame(scorer_and_rows):
    scorer, X = scorer_and_rows
    frame = scorer.predict(X.iloc[:50])
    want = pd.DataFrame(general_path(scorer, X.iloc[:50]), index=X.index[:50])
    pd.testing.assert_frame_equal(frame, want, check_exact=True)


def test_answers_encode_as_the_scores_model_did(scorer_and_rows):
    """The JSON bytes of the plain-dict answer equal those of the old answer: a ``Scores``
    model per row from ``Scorer.predict``'s frame, as the service built it before."""
    scorer, X = scorer_and_rows
    versions = {role: int(v["version"]) for role, v in scorer.versions.items()}

    class Row:
        def __init__(self, uid: str | None, values: dict[str, Any]):
            self.user_id, self.features = uid, values

    rows = [Row(None if i % 7 == 0 else f"u{i}", {k: (None if pd.isna(v) else v) for k, v in r.items()})
            for i, r in enumerate(X.to_dict("records"))]
    new = engine.score_feature_rows(scorer, versions, rows)
    scored = scorer.predict(X)
    old = []
    for r, s in zip(rows, scored.to_dict("records")):
        values = {k: json_value(s[k]) for k in SCORE_COLUMNS if k in s}
        inside = {role: json_value(s[f"{role}_in_population"]) for role in versions}
        old.append(Scores(user_id=r.user_id, in_population=inside, model_versions=versions, **values))
    assert to_json(new) == to_json(old)
