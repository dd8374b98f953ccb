"""When a KPI breaks its usual pattern: rules that turn a KPI series into breaches.

Four kinds of rule (:class:`~churnkit.config.AlertRule`):

- ``seasonal``: the expected value of a period is the median of the same weekday over the
  previous ``weeks`` weeks (daily series), or of the previous ``weeks`` periods (weekly,
  monthly), each taken relative to the level of the days before it and brought to today's
  level (see :func:`seasonal_band`); the range is that +- ``k`` robust standard deviations
  (1.4826 x the median absolute deviation of the same ratios), widened to at least
  ``min_spread`` of it (a perfectly flat history would otherwise alert on any wobble) and,
  for counts, to the Poisson noise ``sqrt(expected)``. Robust: one past incident in the
  history does not widen the band for the weeks after it.
- ``stl``: daily series only; the expected value from a robust STL decomposition of the
  weeks before (:func:`stl_band`), the band from the same forecasts' recent errors.
- ``cusum``: the same-weekday baseline's standardised errors summed over periods
  (:func:`cusum_band`), ``k`` is the decision interval: for drops too small for one day's
  band that last several days.
- ``threshold``: fixed bounds (``low``/``high``) or a relative change against the previous
  period (``max_change``) or the same weekday a week earlier (``vs: last_week``).

``direction`` keeps only drops (``down``), rises (``up``) or both; a period whose expected
value is below ``min_volume`` never alerts (a 50% drop from 2 users is noise); the
severity is ``critical`` beyond ``critical_k`` spreads (or twice the threshold), else
``warning``. Only complete periods are judged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from churnkit.errors import ChurnkitError

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
    drivers: str | None = None


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
        with np.errstate(divide="ignore", invalid="ignore"):
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


STL_ERRORS = 28
"""How many recent one-step forecast errors give an STL band its spread (at least half)."""


def stl_band(values: pd.Series, weeks: int, k: float, min_spread: float, counts: bool) -> pd.DataFrame:
    """A daily series' expected value from an STL decomposition (statsmodels, robust) of the
    ``weeks`` weeks before each day: the level of the last two weeks without their seasonal
    terms, plus the same weekday's seasonal term. The spread is the robust standard deviation of the relative errors of the same
    forecasts over the previous :data:`STL_ERRORS` days (a fit's own residuals are too
    small: it has absorbed part of the noise), floored as in :func:`seasonal_band`. Fitted
    on the history only, so a day never judges itself."""
    from statsmodels.tsa.seasonal import STL

    v = values.to_numpy("float64")
    n, window = len(v), 7 * weeks
    forecast = np.full(n, np.nan)
    for i in range(window, n):
        h = v[i - window:i]
        if np.isfinite(h).all():
            fit = STL(h, period=7, robust=True).fit()
            # the level: the median of the last two weeks deseasonalised (the trend's end
            # point is a one-sided fit that a single odd day moves)
            forecast[i] = float(np.median((h - fit.seasonal)[-14:]) + fit.seasonal[-7])
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(forecast > 0, v / forecast - 1.0, np.nan)
    expected, spread = np.full(n, np.nan), np.full(n, np.nan)
    for i in range(window, n):
        past = rel[max(0, i - STL_ERRORS):i]
        past = past[np.isfinite(past)]
        med = forecast[i]
        if len(past) < STL_ERRORS // 2 or not np.isfinite(med):
            continue
        sd = MAD_TO_SD * float(np.median(np.abs(past - np.median(past)))) * abs(med)
        floor = max(min_spread * abs(med), np.sqrt(max(med, 0.0)) if counts else 0.0)
        expected[i], spread[i] = med, max(sd, floor)
    return pd.DataFrame({"expected": expected, "spread": spread, "low": expected - k * spread,
                         "high": expected + k * spread}, index=values.index)


CUSUM_DRIFT = 0.5
"""Standard deviations per period a CUSUM forgives: it is quickest on shifts of about twice
this (one standard deviation of the day), which a single day never shows."""


def cusum_band(values: pd.Series, lag: int, weeks: int, h: float, min_spread: float, counts: bool) -> pd.DataFrame:
    """A one-sided CUSUM each way on the standardised errors of :func:`seasonal_band`
    (``z = (value - expected) / spread``): ``S = max(0, S_before -/+ z - drift)`` alerts past
    ``h``. A moderate drop that lasts (a week of a region's purchases halved) adds up where
    no single day is out of its band. ``low``/``high`` are the values that would take the
    sum past ``h`` given the sum so far; the sum is not reset, so a shift that goes on stays
    one alert."""
    base = seasonal_band(values, lag, weeks, 1.0, min_spread, counts)
    v = values.to_numpy("float64")
    exp, sd = base["expected"].to_numpy(), base["spread"].to_numpy()
    n = len(v)
    low, high = np.full(n, np.nan), np.full(n, np.nan)
    down = up = 0.0
    for i in range(n):
        if not (np.isfinite(v[i]) and np.isfinite(exp[i]) and sd[i] > 0):
            down = up = 0.0
            continue
        low[i] = exp[i] - sd[i] * (h - down + CUSUM_DRIFT)
        high[i] = exp[i] + sd[i] * (h - up + CUSUM_DRIFT)
        z = (v[i] - exp[i]) / sd[i]
        down, up = max(0.0, down - z - CUSUM_DRIFT), max(0.0, up + z - CUSUM_DRIFT)
    return pd.DataFrame({"expected": exp, "spread": sd, "low": low, "high": high}, index=values.index)


def band(series: pd.DataFrame, rule, kpi_unit: str) -> pd.DataFrame:
    """Per period of ``series``: the rule's expected value, warning range (``low``/``high``)
    and critical range (``critical_low``/``critical_high``)."""
    values = series[rule.kpi].astype("float64").reset_index(drop=True)
    counts = kpi_unit in ("users", "orders")
    if rule.method == "cusum":
        lag = 7 if rule.grain == "day" else 1
        b = cusum_band(values, lag, rule.weeks, rule.k, rule.min_spread, counts)
        far = rule.critical_k - rule.k  # the value that takes the sum that much further past h
        return b.assign(critical_low=b["low"] - far * b["spread"], critical_high=b["high"] + far * b["spread"])
    if rule.method in ("seasonal", "stl"):
        if rule.method == "stl":
            b = stl_band(values, rule.weeks, rule.k, rule.min_spread, counts)
        else:
            b = seasonal_band(values, 7 if rule.grain == "day" else 1, rule.weeks, rule.k, rule.min_spread, counts)
        return b.assign(critical_low=b["expected"] - rule.critical_k * b["spread"],
                        critical_high=b["expected"] + rule.critical_k * b["spread"])
    b = _threshold_band(values, rule, series.reset_index(drop=True))
    return b.assign(critical_low=b["expected"] - 2 * (b["expected"] - b["low"]),
                    critical_high=b["expected"] + 2 * (b["high"] - b["expected"]))


def breaches(series: pd.DataFrame, rule, kpi_unit: str, segment: str = "all") -> list[Breach]:
    """The periods of ``series`` (``period``, ``complete``, the rule's KPI) that break ``rule``."""
    s = series.reset_index(drop=True)
    values = s[rule.kpi].astype("float64")
    b = band(s, rule, kpi_unit)
    out = []
    for i in range(len(s)):
        if not s.loc[i, "complete"]:
            continue
        obs, exp, lo, hi = values[i], b.loc[i, "expected"], b.loc[i, "low"], b.loc[i, "high"]
        if not np.isfinite(obs) or not np.isfinite(exp) or abs(exp) < rule.min_volume:
            continue
        down, up = np.isfinite(lo) and obs < lo, np.isfinite(hi) and obs > hi
        if not ((down and rule.direction in ("down", "both")) or (up and rule.direction in ("up", "both"))):
            continue
        crit = obs < b.loc[i, "critical_low"] if down else obs > b.loc[i, "critical_high"]
        out.append(Breach(rule.name, rule.kpi, segment, s.loc[i, "period"], float(obs), float(exp),
                          float(lo), float(hi), "critical" if crit else "warning"))
    return out


def judge(rules, totals: dict[str, pd.DataFrame], segments: dict[str, pd.DataFrame], units: dict[str, str],
          additive: dict[str, bool], explain_by: list[str] | None = None) -> list[Breach]:
    """Every rule's breaches: per segment for a rule with ``segment_by``, else on the totals,
    a total's breach of an additive KPI naming the segments that drove it (:func:`drivers`).
    ``totals`` and ``segments`` (long by-segment tables) are keyed by grain."""
    found: list[Breach] = []
    for r in rules:
        by = segments.get(r.grain, pd.DataFrame())
        if r.segment_by:
            have = set(by["dimension"]) if len(by) else set()
            if r.segment_by != "attributes" and r.segment_by not in have:
                raise ChurnkitError(f"alert rule {r.name}: no KPI segment dimension {r.segment_by!r} "
                                    f"(have: {', '.join(sorted(have)) or 'none'}; or attributes)")
            found += segment_breaches(by, r, units[r.kpi])
            continue
        hits = breaches(totals[r.grain], r, units[r.kpi])
        if additive.get(r.kpi) and len(by):
            hits = [replace(h, drivers=drivers(by, r, units[r.kpi], h, explain_by)) for h in hits]
        found += hits
    return found


def segment_breaches(by_segment: pd.DataFrame, rule, kpi_unit: str) -> list[Breach]:
    """:func:`breaches` for each segment of ``rule.segment_by`` in a long by-segment table
    (``attributes``: every dimension that is a user attribute); segments are named
    ``<dimension>=<value>``."""
    out: list[Breach] = []
    for (dim, seg), g in _segments_of(by_segment, rule.segment_by):
        out += breaches(g, rule, kpi_unit, f"{dim}={seg}")
    return out


STATE_DIMENSIONS = ("lifecycle_stage", "rfm_tier")


def _segments_of(by_segment: pd.DataFrame, segment_by: str):
    if by_segment.empty:
        return []
    dims = by_segment["dimension"]
    keep = ~dims.isin(STATE_DIMENSIONS) if segment_by == "attributes" else dims == segment_by
    return by_segment[keep].groupby(["dimension", "segment"], sort=True)


def drivers(by_segment: pd.DataFrame, rule, kpi_unit: str, breach: Breach, dimensions: list[str] | None = None,
            share: float = 0.6, most: int = 3) -> str | None:
    """Which segments drove a total's move: per dimension, each segment's observed minus
    expected value in the breached period (the same rule on the segment's own series);
    the dimension where the fewest segments explain ``share`` of the move, and those
    segments with their part, e.g. ``platform=ios -812 (78%)``. Additive KPIs only (a
    ratio's move does not split into parts); None when nothing explains it."""
    if by_segment.empty:
        return None
    sign = np.sign(breach.observed - breach.expected)
    best: tuple[int, float, list[str]] | None = None
    for dim, table in by_segment.groupby("dimension", sort=True):
        if dimensions is not None and dim not in dimensions:
            continue
        gaps = []
        for seg, g in table.groupby("segment", sort=True):
            g = g.reset_index(drop=True)
            at = g.index[g["period"] == breach.period]
            if not len(at):
                continue
            b = band(g, rule, kpi_unit)
            gap = float(g.loc[at[0], rule.kpi]) - float(b.loc[at[0], "expected"])
            if np.isfinite(gap):
                gaps.append((seg, gap))
        moved = sum(gap for _, gap in gaps if np.sign(gap) == sign)
        if not moved:
            continue
        picked, covered = [], 0.0
        for seg, gap in sorted(gaps, key=lambda x: -sign * x[1]):
            if np.sign(gap) != sign or len(picked) == most:
                break
            picked.append(f"{dim}={seg} {gap:+,.0f} ({gap / moved:.0%})")
            covered += gap / moved
            if covered >= share:
                break
        if covered >= share and (best is None or (len(picked), -covered) < (best[0], -best[1])):
            best = (len(picked), covered, picked)
    return "; ".join(best[2]) if best else None


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
