"""Ranked lists for operations staff: whom to save (risk) and whom to win back (recall).

Pure functions turn a scores frame into a list; the writers at the bottom are the only I/O.

**Risk list**: users the churn model applies to (active within its look-back, so the
probability means "goes quiet in the next H days"), ranked by ``value_at_risk =
churn_probability x predicted_ltv``, with the reasons that push their risk up.

**Recall list**: silent and churned users ranked by ``recall_value = purchase_probability
x predicted_ltv``: the chance they buy within the purchase horizon times what they are
worth over the LTV horizon. It is a ranking score, not a forecast in currency: the LTV
already includes a purchase probability, so the product favours users who are both likely
to act soon and valuable when they do. Most of these users are outside the models'
training populations (flagged in ``purchase_in_population`` / ``ltv_in_population``).

**Pseudonymisation**: HMAC-SHA256 of the user id with a secret key from an environment
variable, first 32 hex characters. The same key gives the same pseudonym in every list
(so lists can be joined and compared), another key gives unrelated ones, and nobody
without the key can recompute them from known ids (a plain hash could be).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from churnkit.errors import ChurnkitError

Format = Literal["csv", "xlsx", "parquet"]
FORMATS = ("csv", "xlsx", "parquet")
RECALL_STAGES = ("silent", "churned")
PSEUDONYM_HEX = 32
SCORE_COLUMNS = ["churn_probability", "purchase_probability", "predicted_ltv", "ltv_low", "ltv_high"]
VERSION_COLUMNS = ["churn_model_version", "purchase_model_version", "ltv_model_version"]


def reason_columns(df: pd.DataFrame) -> list[str]:
    return sorted((c for c in df.columns if c.startswith("reason_")), key=lambda c: int(c.split("_")[1]))


def _matches(values: pd.Series, wanted: str | Iterable[str] | None) -> pd.Series:
    if wanted is None:
        return pd.Series(True, index=values.index)
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    norm = {w.strip().lower().replace("_", " ") for w in wanted}
    return values.fillna("").astype(str).str.lower().str.replace("_", " ").isin(norm)


def risk_list(
    scores: pd.DataFrame,
    *,
    top: int | None = None,
    min_value: float | None = None,
    stage: str | Iterable[str] | None = None,
    tier: str | Iterable[str] | None = None,
    min_probability: float | None = None,
) -> pd.DataFrame:
    """Users inside the churn model's population, by value at risk (largest first)."""
    keep = scores["churn_in_population"].fillna(False).astype(bool) & scores["churn_probability"].notna()
    if min_value is not None:
        keep &= scores["value_at_risk"] >= min_value
    if min_probability is not None:
        keep &= scores["churn_probability"] >= min_probability
    keep &= _matches(scores["lifecycle_stage"], stage) & _matches(scores["rfm_tier"], tier)
    df = scores.loc[keep].sort_values(["value_at_risk", "user_id"], ascending=[False, True], kind="stable")
    if top is not None:
        df = df.head(top)
    cols = ["user_id", "value_at_risk", *SCORE_COLUMNS, "rfm_tier", "lifecycle_stage",
            "days_since_last_activity", "revenue_total", *reason_columns(scores), "as_of", *VERSION_COLUMNS]
    out = df[[c for c in cols if c in df.columns]].reset_index(drop=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    return out


def recall_list(
    scores: pd.DataFrame,
    *,
    top: int | None = None,
    stages: Iterable[str] = RECALL_STAGES,
    tier: str | Iterable[str] | None = None,
    min_value: float | None = None,
) -> pd.DataFrame:
    """Silent and churned users by ``recall_value`` (purchase probability x predicted LTV)."""
    keep = _matches(scores["lifecycle_stage"], list(stages)) & _matches(scores["rfm_tier"], tier)
    keep &= scores["purchase_probability"].notna() & scores["predicted_ltv"].notna()
    df = scores.loc[keep].copy()
    df["recall_value"] = df["purchase_probability"] * df["predicted_ltv"]
    if min_value is not None:
        df = df[df["recall_value"] >= min_value]
    df = df.sort_values(["recall_value", "user_id"], ascending=[False, True], kind="stable")
    if top is not None:
        df = df.head(top)
    cols = ["user_id", "recall_value", "purchase_probability", "predicted_ltv", "ltv_low", "ltv_high",
            "lifecycle_stage", "rfm_tier", "days_since_last_activity", "revenue_total",
            "purchase_in_population", "ltv_in_population", "as_of", "purchase_model_version", "ltv_model_version"]
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


def pseudonym_key(env_var: str) -> bytes:
    """The secret for pseudonyms, from the environment; a clear error when it is not set."""
    key = os.environ.get(env_var, "")
    if not key.strip():
        raise ChurnkitError(f"--pseudonymise needs a secret key in the environment variable {env_var}")
    return key.encode("utf-8")


def pseudonymise(ids: Iterable[Any], key: bytes) -> list[str]:
    """HMAC-SHA256 of each id under ``key`` (hex, first 32 characters): stable per key."""
    return [hmac.new(key, str(i).encode("utf-8"), hashlib.sha256).hexdigest()[:PSEUDONYM_HEX] for i in ids]


def with_pseudonyms(df: pd.DataFrame, key: bytes) -> pd.DataFrame:
    """``user_id`` replaced by its pseudonym (column renamed ``user_pseudonym``)."""
    out = df.copy()
    out["user_id"] = pseudonymise(out["user_id"], key)
    return out.rename(columns={"user_id": "user_pseudonym"})


# --------------------------------------------------------------------------- writers


def list_format(fmt: str | None, out: Path | None) -> str:
    """The format asked for, else the output's extension, else CSV."""
    chosen = (fmt or (Path(out).suffix.lstrip(".") if out else "") or "csv").lower()
    if chosen not in FORMATS:
        raise ChurnkitError(f"unknown list format '{chosen}': use csv, xlsx or parquet")
    return chosen


def write_list(df: pd.DataFrame, path: Path, fmt: str) -> Path:
    """Write atomically: built in a staging folder, moved into place when complete."""
    from churnkit.workspace import replace_path, staging_dir

    path = Path(path)
    with staging_dir(path.parent) as tmp:
        target = tmp / f"list.{fmt}"
        if fmt == "csv":
            df.to_csv(target, index=False, float_format="%.6g")
        elif fmt == "parquet":
            df.to_parquet(target, index=False)
        elif fmt == "xlsx":
            write_xlsx(df, target)
        else:
            raise ChurnkitError(f"unknown list format '{fmt}': use csv, xlsx or parquet")
        replace_path(target, path)
    return path


HEADER_FILL = "1F4E78"
HEADER_FONT = "FFFFFF"


def write_xlsx(df: pd.DataFrame, path: Path, sheet: str = "list") -> None:
    """One sheet: bold white header on dark blue, first row frozen, filter, sensible widths."""
    try:
        from openpyxl import Workbook
        from openpyxl.styles import Font, PatternFill
        from openpyxl.utils import get_column_letter
    except ImportError:
        raise ChurnkitError("XLSX lists need openpyxl: pip install openpyxl") from None
    wb = Workbook()
    ws = wb.active
    ws.title = sheet
    ws.append([str(c) for c in df.columns])
    for row in df.itertuples(index=False):
        ws.append([_cell(v) for v in row])
    bold = Font(bold=True, color=HEADER_FONT)
    fill = PatternFill("solid", start_color=HEADER_FILL, end_color=HEADER_FILL)
    for cell in ws[1]:
        cell.font, cell.fill = bold, fill
    ws.freeze_panes = "A2"
    if len(df.columns):
        ws.auto_filter.ref = f"A1:{get_column_letter(len(df.columns))}{len(df) + 1}"
    for j, col in enumerate(df.columns, 1):
        sample = [str(col)] + [str(v) for v in df[col].head(200).tolist()]
        ws.column_dimensions[get_column_letter(j)].width = min(60, max(8, max(len(s) for s in sample) + 2))
        if pd.api.types.is_float_dtype(df[col]):
            for (cell,) in ws.iter_rows(min_row=2, min_col=j, max_col=j):
                cell.number_format = "0.000" if "probability" in str(col) else "#,##0.00"
    wb.save(path)


def _cell(v: Any) -> Any:
    if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v)):
        return None
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, pd.Timestamp):
        return v.to_pydatetime().replace(tzinfo=None)
    return v
