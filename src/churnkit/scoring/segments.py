"""RFM value tiers, from the feature columns at an as-of date (lifecycle stages: ``stages``).

Both read features that already exist (one definition for training, scoring and the
service), so a segment never disagrees with the numbers a reason code quotes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from churnkit.config import TIERS, SegmentSettings, parse_model
from churnkit.errors import ChurnkitError
from churnkit.features.families import rfm
from churnkit.scoring.stages import stage_columns_missing

__all__ = ["TIERS", "RFMSegmenter", "SegmentSettings", "segment_settings"]

# Rows: recency score 5 (bought most recently) .. 1; columns: frequency-monetary score 1 .. 5.
# The usual 5x5 RFM map (R against the mean of F and M), with "lost" for the coldest corner.
_GRID = {
    5: ("new_customers", "potential_loyalists", "potential_loyalists", "champions", "champions"),
    4: ("promising", "potential_loyalists", "potential_loyalists", "loyal", "champions"),
    3: ("about_to_sleep", "about_to_sleep", "need_attention", "loyal", "loyal"),
    2: ("hibernating", "hibernating", "at_risk", "at_risk", "cannot_lose_them"),
    1: ("lost", "lost", "at_risk", "at_risk", "cannot_lose_them"),
}


def segment_settings(data: dict[str, Any] | None, origin: str = "segments") -> SegmentSettings:
    """Validate settings from YAML/JSON; a bad value is a one-line :class:`ConfigError`."""
    return parse_model(data, SegmentSettings, origin)


# --------------------------------------------------------------------------- RFM


RECENCY, MONETARY = rfm.DAYS_SINCE_LAST_PURCHASE.name, rfm.REVENUE_TOTAL.name
RFM_COLUMNS = (RECENCY, MONETARY)
RFM_FREQUENCY = (rfm.PURCHASES_TOTAL.name, rfm.CLV_FREQUENCY.name)
"""RFM frequency: the first of these the features have."""


def segment_columns_missing(columns: Iterable[str]) -> list[str]:
    """What RFM tiers and lifecycle stages need that ``columns`` lack (empty: both work)."""
    have = set(columns)
    rfm_missing = [c for c in RFM_COLUMNS if c not in have] + ([] if have & set(RFM_FREQUENCY) else [RFM_FREQUENCY[0]])
    return rfm_missing + stage_columns_missing(have)


class RFMSegmenter:
    """Quantile R/F/M scores and a readable tier, sklearn style.

    ``fit`` learns the score thresholds from buyers only (non-buyers have no recency), so a
    scoring run stores them (``to_dict``) and later runs score against the same cut points.
    """

    def __init__(self, settings: SegmentSettings | None = None):
        self.settings = settings

    # -- columns ---------------------------------------------------------------

    @staticmethod
    def _frequency_column(df: pd.DataFrame) -> str:
        for col in RFM_FREQUENCY:
            if col in df.columns:
                return col
        raise ChurnkitError(f"RFM needs {' or '.join(RFM_FREQUENCY)} among the features")

    @staticmethod
    def _need(df: pd.DataFrame, cols: list[str]) -> None:
        missing = [c for c in cols if c not in df.columns]
        if missing:
            raise ChurnkitError(f"RFM needs features {missing}")

    def _values(self, df: pd.DataFrame, freq: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        self._need(df, list(RFM_COLUMNS))
        r = df[RECENCY].to_numpy(dtype="float64")
        f = df[freq].to_numpy(dtype="float64")
        m = df[MONETARY].to_numpy(dtype="float64")
        buyer = ~np.isnan(r) & ~(f <= 0 if freq == RFM_FREQUENCY[0] else np.isnan(f))
        return r, f, np.nan_to_num(m, nan=0.0), buyer

    # -- fit / transform -------------------------------------------------------

    def fit(self, df: pd.DataFrame, y: Any = None) -> RFMSegmenter:
        s = self.settings or SegmentSettings()
        self.settings_ = s
        self.frequency_column_ = self._frequency_column(df)
        r, f, m, buyer = self._values(df, self.frequency_column_)
        if not buyer.any():
            raise ChurnkitError("cannot fit RFM tiers: nobody in the data has bought anything")
        qs = np.arange(1, s.rfm_bins) / s.rfm_bins
        self.recency_thresholds_ = np.quantile(r[buyer], qs)
        self.frequency_thresholds_ = np.quantile(f[buyer], qs)
        self.monetary_thresholds_ = np.quantile(m[buyer], qs)
        self.n_buyers_ = int(buyer.sum())
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "recency_thresholds_"):
            raise ChurnkitError("RFM segmenter is not fitted: call fit() or from_dict() first")

    def scores(self, df: pd.DataFrame) -> pd.DataFrame:
        """r/f/m scores 1..bins (higher is better; missing for non-buyers)."""
        self._check_fitted()
        r, f, m, buyer = self._values(df, self.frequency_column_)
        # Ties go to the lower score: a value equal to a threshold has not passed it.
        th = self.recency_thresholds_
        rs = 1 + len(th) - np.searchsorted(th, r, side="right")  # lower recency is better
        fs = 1 + np.searchsorted(self.frequency_thresholds_, f, side="left")
        ms = 1 + np.searchsorted(self.monetary_thresholds_, m, side="left")
        out = pd.DataFrame({"rfm_r": rs, "rfm_f": fs, "rfm_m": ms}, index=df.index).astype("Int64")
        out[~buyer] = pd.NA
        return out

    def transform(self, df: pd.DataFrame) -> pd.DataFrame:
        """``rfm_r``, ``rfm_f``, ``rfm_m`` and ``rfm_tier`` per row of ``df``."""
        out = self.scores(df)
        bins = self.settings_.rfm_bins
        buyer = out.rfm_r.notna().to_numpy()
        r = _to_five(out.rfm_r.fillna(1).to_numpy(dtype="int64"), bins)
        fm = _to_five((out.rfm_f.fillna(1).to_numpy(dtype="int64") + out.rfm_m.fillna(1).to_numpy(dtype="int64")) // 2,
                      bins)
        lookup = np.array([[self.settings_.tier_name(_GRID[rr][c - 1]) for c in range(1, 6)] for rr in range(1, 6)],
                          dtype=object)
        tier = lookup[r - 1, fm - 1]
        tier[~buyer] = self.settings_.tier_name("no_purchases_yet")
        out["rfm_tier"] = tier
        return out

    def fit_transform(self, df: pd.DataFrame, y: Any = None) -> pd.DataFrame:
        return self.fit(df).transform(df)

    # -- persistence -----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready thresholds and settings, stored with a scoring run."""
        self._check_fitted()
        return {
            "version": 1,
            "settings": self.settings_.model_dump(),
            "frequency_column": self.frequency_column_,
            "thresholds": {
                "recency": self.recency_thresholds_.tolist(),
                "frequency": self.frequency_thresholds_.tolist(),
                "monetary": self.monetary_thresholds_.tolist(),
            },
            "n_buyers": self.n_buyers_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RFMSegmenter:
        try:
            settings = segment_settings(data["settings"], "rfm settings")
            seg = cls(settings)
            seg.settings_ = settings
            seg.frequency_column_ = str(data["frequency_column"])
            th = data["thresholds"]
            for key in ("recency", "frequency", "monetary"):
                arr = np.asarray(th[key], dtype="float64")
                if arr.shape != (settings.rfm_bins - 1,) or np.any(np.diff(arr) < 0):
                    raise ValueError(f"{key} thresholds must be {settings.rfm_bins - 1} ascending numbers")
                setattr(seg, f"{key}_thresholds_", arr)
            seg.n_buyers_ = int(data.get("n_buyers", 0))
        except (KeyError, TypeError, ValueError) as err:
            raise ChurnkitError(f"stored RFM thresholds are not usable: {err}") from None
        return seg


def _to_five(score: np.ndarray, bins: int) -> np.ndarray:
    """Scores on 1..bins mapped onto the 1..5 tier map."""
    if bins == 5:
        return score
    return np.clip(np.ceil(score * 5 / bins), 1, 5).astype("int64")
