"""SHAP contributions and plain-language reason codes for operations staff.

Why facts, not features: several features describe one thing about a user (the one-hot
columns of ``platform``, sessions over 7/30/90 days, days since last activity and the same
silence over the usual gap). SHAP values add up, so a group's contribution is the sum of its
members'; reasons are ranked per group and each group speaks once, in the words of the
member that pushed hardest. Texts that still say the same thing (two ways of saying "never
bought") are dropped for the next reason.

Speed: group sums are one ``np.add.reduceat``, the top groups one ``np.argpartition``; text
is built only for the groups shown.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from churnkit.errors import ChurnkitError
from churnkit.features.context import EVENT_TYPES
from churnkit.features.families.attributes import level_feature_name
from churnkit.features.spec import feature_names

PROFILE_VERSION = 1
QUANTILES = {"q10": 0.1, "q25": 0.25, "median": 0.5, "q75": 0.75, "q90": 0.9}
WINDOWS = (7, 30, 90)
SPARE = 2
"""Extra candidate groups per row, so a duplicate text can be replaced without a second pass."""

SINGULAR = {
    "sessions": "session",
    "views": "view",
    "add-to-carts": "add-to-cart",
    "purchases": "purchase",
    "pushes received": "push received",
    "push opens": "push open",
    "coupon redemptions": "coupon redemption",
    "support tickets": "support ticket",
    "check-ins": "check-in",
    "categories": "category",
    "channels": "channel",
    "messages": "message",
    "redemptions": "redemption",
    "events": "event",
    "days": "day",
    "actions": "action",
    "campaign messages": "campaign message",
    "product categories": "product category",
}
NO_PURCHASE = "no purchase yet"


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason shown to a person: the feature that carried it and its own value."""

    feature: str
    contribution: float
    value: float
    text: str


# --------------------------------------------------------------------------- profile


def population_profile(df: pd.DataFrame, manifest: dict[str, Any]) -> dict[str, Any]:
    """Quantiles, mean and missing share per feature of a training set.

    Saved with the model so reasons at scoring time compare a user with the population the
    model learnt from ("most users: 0"), not with whoever happens to be scored.
    """
    names = feature_names(manifest)
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise ChurnkitError(f"profile: training data lacks features {missing[:5]}{'...' if len(missing) > 5 else ''}")
    x = df[names].to_numpy(dtype="float64")
    present = ~np.isnan(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns give NaN
        qs = np.nanquantile(x, list(QUANTILES.values()), axis=0) if len(x) else np.full((len(QUANTILES), len(names)), np.nan)
        mean = np.nanmean(x, axis=0)
    share_missing = 1.0 - present.mean(axis=0) if len(x) else np.ones(len(names))
    features = {}
    for j, name in enumerate(names):
        stats = {k: _json_float(qs[i, j]) for i, k in enumerate(QUANTILES)}
        stats |= {"mean": _json_float(mean[j]), "missing_share": float(share_missing[j])}
        features[name] = stats
    return {"version": PROFILE_VERSION, "rows": len(x), "features": features}


def _json_float(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)


# --------------------------------------------------------------------------- SHAP


def shap_contributions(booster_or_model: Any, X: pd.DataFrame) -> pd.DataFrame:
    """Per-feature contributions in the model's raw space (log-odds for a classifier).

    LightGBM's built-in TreeSHAP (``pred_contrib=True``) gives the same values as
    ``shap.TreeExplainer`` without the extra dependency at scoring time; the last column,
    ``bias``, is the expected raw score.
    """
    booster = _booster(booster_or_model)
    names = booster.feature_name()
    missing = [n for n in names if n not in X.columns]
    if missing:
        raise ChurnkitError(f"contributions: input lacks model features {missing[:5]}")
    raw = np.asarray(booster.predict(X[names].to_numpy(dtype="float64"), pred_contrib=True))
    if raw.ndim != 2 or raw.shape[1] != len(names) + 1:
        raise ValueError(f"expected one output per row (binary or regression model), got shape {raw.shape}")
    return pd.DataFrame(raw, columns=[*names, "bias"], index=X.index)


def _booster(model: Any) -> Any:
    import lightgbm as lgb

    for candidate in (model, getattr(model, "booster_", None), getattr(model, "model_", None)):
        if isinstance(candidate, lgb.Booster):
            return candidate
        inner = getattr(candidate, "booster_", None)
        if isinstance(inner, lgb.Booster):
            return inner
    raise TypeError(f"not a LightGBM booster or fitted LightGBM model: {type(model).__name__}")


# --------------------------------------------------------------------------- formatting


def _is_int(x: float) -> bool:
    return abs(x - round(x)) < 1e-9


def num(x: float) -> str:
    """A count or small quantity: ints as ints, else one decimal (two significant if tiny)."""
    if _is_int(x):
        return f"{round(x):,}"
    if abs(x) >= 0.1:
        return f"{x:,.1f}"
    return f"{x:.2g}"


def money(x: float) -> str:
    return f"{x:,.2f}"


def whole(x: float) -> str:
    return f"{math.floor(x + 0.5):,}"


def pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def times(x: float) -> str:
    return f"{x:.1f}".removesuffix(".0") + "x"


def plural(n: str, unit: str) -> str:
    """``unit`` is plural in the manifest; singular when the number shown is exactly 1."""
    if n != "1":
        return unit
    if unit in SINGULAR:
        return SINGULAR[unit]
    if unit.endswith("ies"):
        return unit[:-3] + "y"
    return unit[:-1] if unit.endswith("s") and not unit.endswith("ss") else unit


def days(x: float) -> str:
    n = whole(x)
    return f"{n} {plural(n, 'days')}"


def humanise(s: str) -> str:
    return s.replace("_", " ")


def fmt_value(x: float, unit: str, name: str = "") -> str:
    """A feature value in its unit, the way a person would read it."""
    if unit.startswith("currency"):
        return money(x)
    if unit == "ratio" and "rate" in name:
        return pct(x)
    if unit == "days":
        return whole(x)
    return num(x)


# --------------------------------------------------------------------------- facts


class _Rows:
    """Value and population look-ups for the rows being explained."""

    def __init__(self, x: np.ndarray, names: list[str], profile: dict[str, Any], specs: dict[str, dict]):
        self.x = x
        self.col = {n: j for j, n in enumerate(names)}
        self.median = {n: (s or {}).get("median") for n, s in (profile.get("features") or {}).items()}
        self.specs = specs
        self._typical: dict[tuple[str, str, str], str] = {}

    def v(self, i: int, name: str) -> float:
        j = self.col.get(name)
        return float("nan") if j is None else float(self.x[i, j])

    def typical(self, name: str, fmt: Callable[[float], str], label: str = "most users") -> str:
        """' (most users: 3)' from the profile; formatted once per feature, not per row."""
        key = (name, label, fmt.__qualname__)
        shown = self._typical.get(key)
        if shown is None:
            m = self.median.get(name)
            shown = self._typical[key] = "" if m is None else f" ({label}: {fmt(m)})"
        return shown


Render = Callable[[_Rows, int, str], str]


@dataclass(frozen=True)
class Fact:
    """Features that state one thing about a user, and how to say it."""

    key: str
    members: tuple[str, ...]
    render: Render
    one_hot: bool = False


def _window(name: str) -> int:
    return int(name.rsplit("_", 1)[1].removesuffix("d"))


def _silence(r: _Rows, i: int, lead: str) -> str:
    d = r.v(i, "days_since_last_activity")
    if math.isnan(d):
        return "no activity yet"
    if d < 0.5:
        return "active within the last day"
    text = f"no activity for {days(d)}"
    ratio, gap = r.v(i, "silence_vs_typical_gap"), r.v(i, "gap_mean_days")
    if ratio >= 1.5:
        return f"{text}, {times(ratio)} this user's usual gap"
    if gap > 0:
        return f"{text} (usual gap for this user: {whole(gap)})"
    return text + r.typical("days_since_last_activity", whole)


def _purchase_recency(r: _Rows, i: int, lead: str) -> str:
    """Typical for the user is their own mean days between purchase days (t_x / x)."""
    d = r.v(i, "days_since_last_purchase")
    if math.isnan(d):
        return NO_PURCHASE
    if d < 0.5:
        return "bought within the last day"
    x, tx = r.v(i, "clv_frequency"), r.v(i, "clv_recency_days")
    if x >= 1 and tx > 0:
        return f"no purchase for {days(d)} (typical for this user: {whole(tx / x)})"
    return f"no purchase for {days(d)}" + r.typical("days_since_last_purchase", whole)


def _implied_by_silence(r: _Rows, i: int, window: int) -> bool:
    return r.v(i, "days_since_last_activity") >= window


def _implied_by_no_purchase(r: _Rows, i: int, window: int) -> bool:
    d = r.v(i, "days_since_last_purchase")
    return math.isnan(d) or d >= window


def _activity(r: _Rows, i: int, lead: str) -> str:
    w, n = _window(lead), r.v(i, lead)
    if n == 0 and _implied_by_silence(r, i, w):
        return _silence(r, i, lead)
    if lead.startswith("active_days_"):
        return f"active on {whole(n)} of the last {w} days" + r.typical(lead, whole)
    c = num(n)
    return f"{c} {plural(c, 'actions')} in the last {w} days" + r.typical(lead, num)


def _spend_window(r: _Rows, i: int, lead: str) -> str:
    w, n = _window(lead), r.v(i, lead)
    if n == 0 and _implied_by_no_purchase(r, i, w):
        return _purchase_recency(r, i, lead)
    return f"spent {money(n)} in the last {w} days" + r.typical(lead, money)


def _event_counts(event: str, unit: str, is_activity: bool) -> Render:
    def render(r: _Rows, i: int, lead: str) -> str:
        n = r.v(i, lead)
        if lead in ("coupon_redeems_total",):
            c = num(n)
            return f"{c} {plural(c, unit)} so far" + r.typical(lead, num)
        if event == "push_open" and lead in ("n_push_open_30d", "n_push_open_90d", "push_opens_prev_60d"):
            now, before = r.v(i, "n_push_open_30d"), r.v(i, "push_opens_prev_60d") / 2
            if not (math.isnan(now) or math.isnan(before)) and now != before:
                verb = "fell" if now < before else "rose"
                return f"push opens {verb} from {num(before)} to {num(now)} in the last 30 days"
            lead = "n_push_open_30d" if not math.isnan(now) else lead
            n = r.v(i, lead)
        w = _window(lead)
        if n == 0 and event == "purchase" and _implied_by_no_purchase(r, i, w):
            return _purchase_recency(r, i, lead)
        if n == 0 and is_activity and _implied_by_silence(r, i, w):
            return _silence(r, i, lead)
        c = num(n)
        return f"{c} {plural(c, unit)} in the last {w} days" + r.typical(lead, num)

    return render


TREND_LABEL = {"activity": "actions per day", "session": "sessions per day", "purchase": "purchases per day",
               "revenue": "spend per day"}


def _trend(r: _Rows, i: int, lead: str) -> str:
    series, pair = lead.split("_rate_change_")
    recent, prev = pair.split("v")
    x = r.v(i, lead)
    label = TREND_LABEL.get(series, f"{humanise(series)} per day")
    when = f"in the last {recent} days vs the previous {prev}"
    if math.isnan(x) or x == 0:
        return f"{label} unchanged {when}"
    amount = money(abs(x)) if series == "revenue" else num(abs(x))
    return f"{label} {'fell' if x < 0 else 'rose'} by {amount} {when}"


def _purchases(r: _Rows, i: int, lead: str) -> str:
    n = r.v(i, lead)
    if r.v(i, "purchases_total") == 0 or math.isnan(n):
        return NO_PURCHASE
    c = num(n)
    if lead == "purchase_days_total":
        return f"bought on {c} {plural(c, 'days')} so far" + r.typical(lead, num)
    if lead == "clv_frequency":
        if n == 0:
            return "no repeat purchase yet"
        return f"{c} repeat purchase {plural(c, 'days')}" + r.typical(lead, num)
    return f"{c} {plural(c, 'purchases')} so far" + r.typical(lead, num)


def _order_value(r: _Rows, i: int, lead: str) -> str:
    v = r.v(i, lead)
    if lead == "clv_monetary":
        if math.isnan(v):
            return NO_PURCHASE if r.v(i, "purchases_total") == 0 else "no repeat purchase yet"
        return f"spends {money(v)} per repeat purchase day" + r.typical(lead, money)
    if math.isnan(v):
        return NO_PURCHASE
    return f"average order {money(v)}" + r.typical(lead, money)


def _revenue_total(r: _Rows, i: int, lead: str) -> str:
    v = r.v(i, lead)
    if v == 0 and r.v(i, "purchases_total") in (0.0,):
        return NO_PURCHASE
    return f"spent {money(v)} in total" + r.typical(lead, money)


def _first_seen(r: _Rows, i: int, lead: str) -> str:
    what = "first active" if lead == "days_since_first_activity" else "first seen"
    return f"{what} {days(r.v(i, lead))} ago" + r.typical(lead, whole)


def _push_rate(r: _Rows, i: int, lead: str) -> str:
    v, w = r.v(i, lead), _window(lead)
    if math.isnan(v):
        return f"no pushes received in the last {w} days"
    return f"opened {pct(v)} of pushes in the last {w} days" + r.typical(lead, pct)


def _campaign_pushes(r: _Rows, i: int, lead: str) -> str:
    c = num(r.v(i, lead))
    when = "so far" if lead.endswith("_total") else "in the last 90 days"
    return f"{c} campaign {plural(c, 'messages')} {when}" + r.typical(lead, num)


def _counted(n: float, unit: str) -> str:
    c = num(n)
    return f"{c} {plural(c, unit)}"


ONE_ACTIVE_DAY = "only one active day so far"
SIMPLE: dict[str, tuple[Callable[[float], str], Callable[[float], str], str | None]] = {
    # feature: (text from the user's value, population median format, text when missing)
    "gap_mean_days": (lambda x: f"usually {days(x)} between active days", whole, ONE_ACTIVE_DAY),
    "gap_std_days": (lambda x: f"gaps between active days vary by {days(x)}", whole, ONE_ACTIVE_DAY),
    "gap_max_days": (lambda x: f"longest gap between active days {days(x)}", whole, ONE_ACTIVE_DAY),
    "last_gap_days": (lambda x: f"last gap between active days {days(x)}", whole, ONE_ACTIVE_DAY),
    "active_days_total": (lambda x: f"active on {_counted(x, 'days')} so far", whole, None),
    "tenure_days": (lambda x: f"signed up {days(x)} ago", whole, None),
    "clv_age_days": (lambda x: f"first purchase {days(x)} ago", whole, NO_PURCHASE),
    "clv_recency_days": (lambda x: f"{days(x)} between first and last purchase", whole, NO_PURCHASE),
    "categories_90d": (lambda x: f"touched {_counted(x, 'product categories')} in the last 90 days", num, None),
    "channels_90d": (lambda x: f"used {_counted(x, 'channels')} in the last 90 days", num, None),
}


def _simple(text: Callable[[float], str], median: Callable[[float], str], missing: str | None) -> Render:
    def render(r: _Rows, i: int, lead: str) -> str:
        x = r.v(i, lead)
        if math.isnan(x):
            return missing if missing is not None else _generic(r, i, lead)
        return text(x) + r.typical(lead, median)

    return render


def _attribute(attr: str, levels: dict[str, str]) -> Render:
    def render(r: _Rows, i: int, lead: str) -> str:
        for name, level in levels.items():
            if r.v(i, name) >= 0.5:
                return f"{humanise(attr)} is {humanise(level)}"
        return f"{humanise(attr)} is none of the common values"

    return render


def _generic(r: _Rows, i: int, lead: str) -> str:
    """'<description>: <value> <unit> (typical: <population median>)', with a few idioms."""
    spec = r.specs[lead]
    desc, unit, x = spec["description"], spec["unit"], r.v(i, lead)
    if unit == "indicator":
        subject, _, level = desc.partition(" is ")
        if not level:
            return f"{desc}: {'yes' if x >= 0.5 else 'no'}"
        return f"{humanise(subject)} is {'' if x >= 0.5 else 'not '}{humanise(level)}"
    since = "days since the last "
    if lead.startswith("days_since_last_") and desc.startswith(since):
        thing = desc.removeprefix(since)
        if math.isnan(x):
            return f"no {thing} yet"
        return f"last {thing} {days(x)} ago" + r.typical(lead, whole, "typical")
    if math.isnan(x):
        return f"{desc}: no data"
    shown = fmt_value(x, unit, lead)
    if unit.startswith("currency") or unit in ("ratio", "indicator"):
        word = ""
    else:
        word = " " + plural(shown, unit)
    return f"{desc}: {shown}{word}" + r.typical(lead, lambda m: fmt_value(m, unit, lead), "typical")


def _activity_events(manifest: dict[str, Any]) -> set[str]:
    act = (manifest.get("problem") or {}).get("activity") or {}
    include, exclude = act.get("include"), set(act.get("exclude") or ["push_sent"])
    return {e for e in EVENT_TYPES if (include is None or e in include) and e not in exclude}


def build_facts(manifest: dict[str, Any]) -> list[Fact]:
    """The manifest's features grouped into facts; every feature belongs to exactly one."""
    specs = {f["name"]: f for f in manifest["features"]}
    claimed: set[str] = set()
    facts: list[Fact] = []

    def add(key: str, members: list[str], render: Render, one_hot: bool = False) -> None:
        keep = tuple(m for m in members if m in specs and m not in claimed)
        if keep:
            facts.append(Fact(key, keep, render, one_hot))
            claimed.update(keep)

    for attr, levels in (manifest.get("attribute_levels") or {}).items():
        names = {level_feature_name(attr, lv): lv for lv in levels}
        add(f"attribute:{attr}", list(names), _attribute(attr, names), one_hot=True)
    add("silence", ["days_since_last_activity", "silence_vs_typical_gap"], _silence)
    add("purchase_recency", ["days_since_last_purchase"], _purchase_recency)
    add("first_seen", ["days_since_first_activity", "days_since_first_event"], _first_seen)
    add("purchases", ["purchases_total", "purchase_days_total", "clv_frequency"], _purchases)
    add("order_value", ["avg_order_value", "clv_monetary"], _order_value)
    add("revenue_total", ["revenue_total"], _revenue_total)
    active = _activity_events(manifest)
    for ev in EVENT_TYPES:
        members = [f"n_{ev}_{w}d" for w in WINDOWS]
        members += {"push_open": ["push_opens_prev_60d"], "coupon_redeem": ["coupon_redeems_total"]}.get(ev, [])
        unit = next((specs[m]["unit"] for m in members if m in specs and m.startswith("n_")), ev)
        add(f"events:{ev}", members, _event_counts(ev, unit, ev in active))
    add("activity", [f"{k}_{w}d" for k in ("activity", "active_days") for w in WINDOWS], _activity)
    add("spend", [f"revenue_{w}d" for w in WINDOWS], _spend_window)
    for series in TREND_LABEL:
        add(f"trend:{series}", [f"{series}_rate_change_7v21", f"{series}_rate_change_30v60"], _trend)
    add("push_rate", ["push_open_rate_30d", "push_open_rate_90d"], _push_rate)
    add("campaign_pushes", ["campaign_pushes_90d", "campaign_pushes_total"], _campaign_pushes)
    for name, (text, median, missing) in SIMPLE.items():
        add(name, [name], _simple(text, median, missing))
    for name in specs:
        add(name, [name], _generic)
    return facts


# --------------------------------------------------------------------------- reasons


def reason_codes(
    X: pd.DataFrame,
    contributions: pd.DataFrame,
    manifest: dict[str, Any],
    profile: dict[str, Any],
    top: int = 3,
    direction: Literal["up", "down"] = "up",
) -> list[list[Reason]]:
    """Top reasons per row: facts whose contributions push the score up (risks) or down.

    Only facts with a contribution of the asked sign are shown, so a row can have fewer
    than ``top`` reasons. Rows of ``X`` and ``contributions`` correspond by position.
    """
    if direction not in ("up", "down"):
        raise ChurnkitError(f"direction must be 'up' or 'down', got {direction!r}")
    if top < 1:
        raise ChurnkitError(f"top must be at least 1, got {top}")
    if len(X) != len(contributions):
        raise ChurnkitError(f"{len(X)} feature rows but {len(contributions)} contribution rows")
    names = feature_names(manifest)
    for what, frame in (("features", X), ("contributions", contributions)):
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise ChurnkitError(f"reason codes: {what} lack {missing[:5]}{'...' if len(missing) > 5 else ''}")
    facts = build_facts(manifest)
    col = {n: j for j, n in enumerate(names)}
    x = X[names].to_numpy(dtype="float64")
    sign = 1.0 if direction == "up" else -1.0
    c = contributions[names].to_numpy(dtype="float64") * sign
    n, g = len(x), len(facts)
    if n == 0:
        return []

    order = np.array([col[m] for f in facts for m in f.members])
    starts = np.cumsum([0] + [len(f.members) for f in facts[:-1]])
    grouped = np.add.reduceat(c[:, order], starts, axis=1)  # (n, facts), in the asked direction
    k = min(g, top + SPARE)
    cand = np.argpartition(-grouped, k - 1, axis=1)[:, :k] if k < g else np.tile(np.arange(g), (n, 1))
    score = np.take_along_axis(grouped, cand, axis=1)
    rank = np.argsort(-score, axis=1, kind="stable")
    cand, score = np.take_along_axis(cand, rank, axis=1), np.take_along_axis(score, rank, axis=1)
    lead = _leads(facts, col, x, c, cand, score > 0)

    rows = _Rows(x, names, profile, {f["name"]: f for f in manifest["features"]})
    out: list[list[Reason]] = []
    # Python lists: scalar access is several times cheaper than on numpy arrays.
    for i, (scores, facts_i, leads_i) in enumerate(zip(score.tolist(), cand.tolist(), lead.tolist())):
        reasons: list[Reason] = []
        seen: set[str] = set()
        for s, g, lj in zip(scores, facts_i, leads_i):
            if not s > 0:
                break
            name = names[lj]
            text = facts[g].render(rows, i, name)
            if text in seen:
                continue
            seen.add(text)
            reasons.append(Reason(name, s * sign, float(x[i, lj]), text))
            if len(reasons) == top:
                break
        out.append(reasons)
    return out


def _leads(facts: list[Fact], col: dict[str, int], x: np.ndarray, c: np.ndarray, cand: np.ndarray,
           shown: np.ndarray) -> np.ndarray:
    """Column of the member that speaks for each candidate fact.

    The member with the largest contribution in the asked direction; for one-hot groups the
    column of the user's own level, so the feature named matches the text.
    """
    lead = np.zeros(cand.shape, dtype=np.int64)
    for g in np.unique(cand[shown]):
        fact = facts[g]
        cols = np.array([col[m] for m in fact.members])
        ri, rj = np.nonzero((cand == g) & shown)
        if len(cols) == 1:
            lead[ri, rj] = cols[0]
            continue
        best = np.argmax(c[ri[:, None], cols[None, :]], axis=1)
        if fact.one_hot:
            on = x[ri[:, None], cols[None, :]] >= 0.5
            best = np.where(on.any(axis=1), np.argmax(on, axis=1), best)
        lead[ri, rj] = cols[best]
    return lead


def reasons_frame(reasons: list[list[Reason]], top: int = 3, prefix: str = "reason") -> pd.DataFrame:
    """Texts as columns ``reason_1..top`` (empty string where a row has fewer), for lists."""
    cols = {f"{prefix}_{j + 1}": [r[j].text if j < len(r) else "" for r in reasons] for j in range(top)}
    return pd.DataFrame(cols)
