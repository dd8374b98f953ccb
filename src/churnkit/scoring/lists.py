"""Ranked lists for operations staff: whom to save (risk) and whom to win back (recall).

Pure functions turn a scores frame into a list; ``io.artifacts`` writes it (CSV, XLSX, Parquet).

**Risk list**: users the churn model applies to (active within its look-back, so the
probability means "goes quiet in the next H days"), ranked by ``value_at_risk =
churn_probability x predicted_ltv``, with the reasons that push their risk up. It needs a
churn model; without an LTV model it ranks by churn probability.

**Recall list**: silent and churned users ranked by ``recall_value = purchase_probability
x predicted_ltv``: the chance they buy within the purchase horizon times what they are
worth over the LTV horizon. It is a ranking score, not a forecast in currency: the LTV
already includes a purchase probability, so the product favours users who are both likely
to act soon and valuable when they do. Most of these users are outside the models'
training populations (flagged in ``purchase_in_population`` / ``ltv_in_population``). It
needs a purchase or an LTV model; with only one it ranks by that one's score.

**Pseudonymisation**: HMAC-SHA256 of the user id with a secret key from an environment
variable, first 32 hex characters. The same key gives the same pseudonym in every list
(so lists can be joined and compared), another key gives unrelated ones, and nobody
without the key can recompute them from known ids (a plain hash could be).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from churnkit.contracts import (
    ROLE_OUTPUTS,
    ROLES,
    VALUE_AT_RISK,
    in_population_column,
    model_version_column,
    reason_columns,
)
from churnkit.errors import ChurnkitError
from churnkit.scoring.ranking import risk_order, risk_ranking
from churnkit.scoring.scorer import CONTEXT_COLUMNS
from churnkit.scoring.stages import STAGES

RECALL_STAGES = ("silent", "churned")
PSEUDONYM_HEX = 32
RECALL_VALUE = "recall_value"
CHURN, PURCHASE, LTV = (ROLE_OUTPUTS[r]["score"] for r in ROLES)
MODEL_OUTPUTS = [c for r in ROLES for c in ROLE_OUTPUTS[r].values()]
VERSION_COLUMNS = [model_version_column(r) for r in ROLES]
assert set(RECALL_STAGES) <= set(STAGES)


def _matches(values: pd.Series, wanted: str | Iterable[str] | None) -> pd.Series:
    if wanted is None:
        return pd.Series(True, index=values.index)
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    norm = {w.strip().lower().replace("_", " ") for w in wanted}
    return values.fillna("").astype(str).str.lower().str.replace("_", " ").isin(norm)


def recall_ranking(columns: Iterable[str]) -> str:
    """What the recall list ranks by: ``recall_value`` (purchase probability x predicted LTV),
    or the one of the two that was scored."""
    cols = set(columns)
    if PURCHASE in cols and LTV in cols:
        return RECALL_VALUE
    for col in (PURCHASE, LTV):
        if col in cols:
            return col
    raise ChurnkitError(
        f"the recall list ranks silent and churned users by {PURCHASE} x {LTV} and these scores have neither:"
        " set scoring.purchase or scoring.ltv to a problem with a champion and score again"
    )


def ranking(kind: str, columns: Iterable[str]) -> str:
    """The column a list of ``kind`` (risk, recall) is ranked by, given the scored columns."""
    return {"risk": risk_ranking, "recall": recall_ranking}[kind](columns)


def risk_list(
    scores: pd.DataFrame,
    *,
    top: int | None = None,
    min_value: float | None = None,
    stage: str | Iterable[str] | None = None,
    tier: str | Iterable[str] | None = None,
    min_probability: float | None = None,
) -> pd.DataFrame:
    """Users inside the churn model's population, by value at risk (largest first; by churn
    probability when no LTV model is configured)."""
    value = risk_ranking(scores.columns)
    keep = scores[in_population_column("churn")].fillna(False).astype(bool) & scores[CHURN].notna()
    if min_value is not None:
        keep &= scores[value] >= min_value
    if min_probability is not None:
        keep &= scores[CHURN] >= min_probability
    keep &= _matches(scores["lifecycle_stage"], stage) & _matches(scores["rfm_tier"], tier)
    df = scores.loc[keep]
    df = df.iloc[risk_order(df[value].to_numpy("float64"), df["user_id"].to_numpy())]
    if top is not None:
        df = df.head(top)
    cols = ["user_id", VALUE_AT_RISK, *MODEL_OUTPUTS, "rfm_tier", "lifecycle_stage",
            *CONTEXT_COLUMNS, *reason_columns(list(scores.columns)), "as_of", *VERSION_COLUMNS]
    return _ranked(df, cols)


def recall_list(
    scores: pd.DataFrame,
    *,
    top: int | None = None,
    stages: Iterable[str] = RECALL_STAGES,
    tier: str | Iterable[str] | None = None,
    min_value: float | None = None,
) -> pd.DataFrame:
    """Silent and churned users by ``recall_value`` (purchase probability x predicted LTV;
    by the one of the two scored when only one is)."""
    value = recall_ranking(scores.columns)
    keep = _matches(scores["lifecycle_stage"], list(stages)) & _matches(scores["rfm_tier"], tier)
    for col in (PURCHASE, LTV):
        if col in scores:
            keep &= scores[col].notna()
    df = scores.loc[keep].copy()
    if value == RECALL_VALUE:
        df[RECALL_VALUE] = df[PURCHASE] * df[LTV]
    if min_value is not None:
        df = df[df[value] >= min_value]
    df = df.sort_values([value, "user_id"], ascending=[False, True], kind="stable")
    if top is not None:
        df = df.head(top)
    roles = ("purchase", "ltv")
    cols = ["user_id", RECALL_VALUE, *(c for r in roles for c in ROLE_OUTPUTS[r].values()),
            "lifecycle_stage", "rfm_tier", *CONTEXT_COLUMNS, *(in_population_column(r) for r in roles),
            "as_of", *(model_version_column(r) for r in roles)]
    return _ranked(df, cols)


def _ranked(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    """The columns of ``cols`` the frame has, in order, after a 1-based ``rank``."""
    out = df[[c for c in cols if c in df.columns]].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def list_summary(df: pd.DataFrame, value: str) -> dict[str, Any]:
    """How many users, the total of the ranking value, and both by stage and by tier."""
    out: dict[str, Any] = {"users": len(df), "total": float(df[value].sum()) if len(df) else 0.0}
    for col in ("lifecycle_stage", "rfm_tier"):
        if col in df and len(df):
            g = df.groupby(df[col].fillna("n/a"))[value].agg(["size", "sum"]).sort_values("sum", ascending=False)
            out[f"by_{col}"] = {str(k): {"users": int(r["size"]), "total": float(r["sum"])} for k, r in g.iterrows()}
    return out


# --------------------------------------------------------------------------- pseudonyms


MIN_KEY_CHARS = 32
"""The shortest pseudonym key taken: 32 characters, e.g. 128 bits as hex."""


def pseudonymise(ids: Iterable[Any], key: bytes) -> list[str]:
    """HMAC-SHA256 of each id under ``key`` (hex, first 32 characters): stable per key."""
    return [hmac.new(key, str(i).encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX] for i in ids]


def with_pseudonyms(df: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """``user_id`` replaced by its pseudonym (column renamed ``user_pseudonym``)."""
    out = df.copy()
    out["user_id"] = pseudonymise(out["user_id"], key)
    return out.rename(columns={"user_id": "user_pseudonym"})
