"""When a KPI breaks its usual pattern: rules that turn a KPI series into breaches.

Two kinds of rule (:class:`~churnkit.config.AlertRule`):

- ``seasonal``: the expected value of a period is the median of the same weekday over the
  previous ``weeks`` weeks (daily series), or of the previous ``weeks`` periods (weekly,
  monthly), each taken relative to the level of the days before it and brought to today's
  level (see :func:`seasonal_band`); the range is that +- ``k`` robust standard deviations
  (1.4826 x the median absolute deviation of the same ratios), widened to at least
  ``min_spread`` of it (a perfectly flat history would otherwise alert on any wobble) and,
  for counts, to the Poisson noise ``sqrt(expected)``. Robust: one past incident in the
  history does not widen the band for the weeks after it.
- ``threshold``: fixed bounds (``low``/``high``) or a relative change against the previous
  period (``max_change``) or the same weekday a week earlier (``vs: last_week``).

``direction`` keeps only drops (``down``), rises (``up``) or both; a period whose expected
value is below ``min_volume`` never alerts (a 50% drop from 2 users is noise); the
severity is ``critical`` beyond ``critical_k`` spreads (or twice the threshold), else
``warning``. Only complete periods are judged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class Breach:
    rule: str
    kpi: str
    segment: str
    period: object
    observed: float
    expected: float
    low: float
    high: float
    severity: str


def seasonal_band(values: pd.Series, lag: int, weeks: int, k: float, min_spread: float,
                  counts: bool) -> pd.DataFrame:
    """Expected value and band per position, from the ``weeks`` earlier values ``lag`` apart
    (7 for a daily series: the same weekday), level-adjusted; NaN until that history exists.

    Each earlier value is taken relative to the median of the ``4 x lag`` values before it
    (its level), and the median of those ratios times this position's level is the expected
    value: growth over the weeks in the history neither biases the baseline nor
    widens the band (the raw same-weekday values of a growing series spread by the growth),
    and a step down is judged against the level just before it.
    """
    v = values.to_numpy("float64")
    n = len(v)
    # the level: the median of the 4 x lag values before (28 days for a daily series):
    # robust to an incident of up to a fortnight among them, slow enough that a step
    # down stays an alert for about two weeks, quick enough for growth
    window = 4 * lag
    level = pd.Series(v).rolling(window, min_periods=window).median().shift(1).to_numpy()
    expected, spread = np.full(n, np.nan), np.full(n, np.nan)
    for i in range(lag * weeks + window, n):
        idx = i - lag * np.arange(1, weeks + 1)
        ratio = v[idx] / level[idx]
        ratio = ratio[np.isfinite(ratio)]
        if len(ratio) < max(3, weeks // 2) or not np.isfinite(level[i]) or level[i] <= 0:
            continue
        r = float(np.median(ratio))
        med = r * level[i]
        sd = MAD_TO_SD * float(np.median(np.abs(ratio - r))) * level[i]
        floor = max(min_spread * abs(med), np.sqrt(max(med, 0.0)) if counts else 0.0)
        expected[i], spread[i] = med, max(sd, floor)
    return pd.DataFrame({"expected": expected, "spread": spread, "low": expected - k * spread,
                         "high": expected + k * spread}, index=values.index)


def breaches(series: pd.DataFrame, rule, kpi_unit: str, segment: str = "all") -> list[Breach]:
    """The periods of ``series`` (``period``, ``complete``, the rule's KPI) that break ``rule``."""
    s = series.reset_index(drop=True)
    values = s[rule.kpi].astype("float64")
    if rule.method == "seasonal":
        lag = 7 if rule.grain == "day" else 1
        band = seasonal_band(values, lag, rule.weeks, rule.k, rule.min_spread, kpi_unit in ("users", "orders"))
        critical = band["expected"] - rule.critical_k * band["spread"], band["expected"] + rule.critical_k * band["spread"]
    else:
        band = _threshold_band(values, rule, s)
        width = band["expected"] - band["low"]
        critical = band["expected"] - 2 * width, band["expected"] + 2 * (band["high"] - band["expected"])
    out = []
    for i in range(len(s)):
        if not s.loc[i, "complete"]:
            continue
        obs, exp, lo, hi = values[i], band.loc[i, "expected"], band.loc[i, "low"], band.loc[i, "high"]
        if not np.isfinite(obs) or not np.isfinite(exp) or abs(exp) < rule.min_volume:
            continue
        down, up = np.isfinite(lo) and obs < lo, np.isfinite(hi) and obs > hi
        if not ((down and rule.direction in ("down", "both")) or (up and rule.direction in ("up", "both"))):
            continue
        crit = obs < critical[0][i] if down else obs > critical[1][i]
        out.append(Breach(rule.name, rule.kpi, segment, s.loc[i, "period"], float(obs), float(exp),
                          float(lo), float(hi), "critical" if crit else "warning"))
    return out


def _threshold_band(values: pd.Series, rule, s: pd.DataFrame) -> pd.DataFrame:
    if rule.max_change is not None:
        lag = 7 if (rule.vs == "last_week" and rule.grain == "day") else 1
        ref = values.shift(lag)
        return pd.DataFrame({"expected": ref, "low": ref * (1 - rule.max_change),
                             "high": ref * (1 + rule.max_change)})
    mid = values.where(s["complete"]).rolling(8, min_periods=1).median().shift(1)
    low = pd.Series(rule.low if rule.low is not None else -np.inf, index=values.index, dtype="float64")
    high = pd.Series(rule.high if rule.high is not None else np.inf, index=values.index, dtype="float64")
    return pd.DataFrame({"expected": mid.fillna(values), "low": low, "high": high})
