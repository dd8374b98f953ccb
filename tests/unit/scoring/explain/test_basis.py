"""One fact per reason on the data being scored: features that coincide there are one fact,
wordings that fall back on another fact's words give it way, and "most users" are the
users scored now."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnkit.config import ActivityEvents
from churnkit.errors import ChurnkitError
from churnkit.features.catalogue import catalogue
from churnkit.scoring.explain import Explainer, ReasonBasis, reason_basis, reason_codes
from churnkit.scoring.explain.basis import coinciding

NAMES = [
    "days_since_last_activity", "days_since_last_purchase", "days_since_first_activity", "clv_age_days",
    "active_days_total", "purchase_days_total", "revenue_total", "revenue_30d", "gap_mean_days", "gap_std_days",
    "gap_max_days", "last_gap_days", "silence_vs_typical_gap", "n_support_ticket_30d", "n_coupon_redeem_30d",
    "platform_is_ios", "platform_is_web",
]
SPECS = catalogue({"platform": ["ios", "web"]})
ENTRIES = [SPECS[n].to_dict() for n in NAMES]
UNITS = {e["name"]: e["unit"] for e in ENTRIES}


def purchase_only(n: int = 400, seed: int = 0) -> pd.DataFrame:
    """Users of a log where every active day is a purchase day (CDNOW, a shop's orders)."""
    rng = np.random.default_rng(seed)
    since = rng.integers(1, 120, n).astype(float)
    first = since + rng.integers(10, 300, n)
    days = rng.integers(1, 8, n).astype(float)
    gap = np.where(days > 1, (first - since) / np.maximum(days - 1, 1), np.nan)
    tickets = np.where(rng.random(n) < 0.1, rng.integers(1, 3, n), 0).astype(float)
    return pd.DataFrame({
        "days_since_last_activity": since, "days_since_last_purchase": since,
        "days_since_first_activity": first, "clv_age_days": first - 1,  # same day, counted from the day before
        "active_days_total": days, "purchase_days_total": days, "revenue_total": days * 30.0,
        "revenue_30d": np.where(since < 30, 30.0, 0.0), "gap_mean_days": gap, "gap_std_days": gap * 0.3,
        "gap_max_days": gap * 1.5, "last_gap_days": gap, "silence_vs_typical_gap": since / gap,
        "n_support_ticket_30d": tickets,
        "n_coupon_redeem_30d": np.where(rng.random(n) < 0.1, 1.0, 0.0),  # as sparse, on other users
        "platform_is_ios": (rng.random(n) < 0.5).astype(float), "platform_is_web": np.zeros(n),
    })[NAMES]


def explainer(basis: ReasonBasis | None = None) -> Explainer:
    return Explainer(ENTRIES, {"platform": ["ios", "web"]}, ActivityEvents(), {}).with_basis(basis)


def test_features_that_coincide_on_this_data_are_found_and_others_are_not():
    groups = {frozenset(g) for g in coinciding(purchase_only(), UNITS)}
    assert frozenset({"days_since_last_activity", "days_since_last_purchase"}) in groups
    assert frozenset({"days_since_first_activity", "clv_age_days"}) in groups  # a day apart: the same time
    assert frozenset({"active_days_total", "purchase_days_total"}) in groups
    together = {n for g in groups for n in g}
    assert not together & {"n_support_ticket_30d", "n_coupon_redeem_30d", "platform_is_ios", "platform_is_web"}
    # an app log: purchases are rarer than activity, nothing merges
    app = purchase_only().assign(days_since_last_purchase=lambda d: d.days_since_last_activity + 20,
                                 purchase_days_total=lambda d: d.active_days_total // 2)
    assert not any({"days_since_last_activity", "days_since_last_purchase"} <= set(g) for g in coinciding(app, UNITS))


def test_basis_round_trips_and_rejects_bad_data():
    basis = reason_basis(purchase_only(), NAMES, UNITS)
    assert basis.rows == 400 and basis.medians["revenue_total"] == pytest.approx(purchase_only().revenue_total.median())
    assert ReasonBasis.from_dict(basis.to_dict()) == basis
    with pytest.raises(ChurnkitError, match="stored reason basis is not usable"):
        ReasonBasis.from_dict({"medians": {}})


def reasons(row: dict, push: dict, basis: ReasonBasis | None) -> list[str]:
    X = pd.DataFrame([row])[NAMES]
    C = pd.DataFrame([{n: push.get(n, 0.0) for n in NAMES} | {"bias": 0.0}])
    return [r.text for r in reason_codes(X, C, explainer(basis), top=3)[0]]


def test_a_purchase_only_log_says_each_fact_once():
    data = purchase_only()
    basis = reason_basis(data, NAMES, UNITS)
    row = data.iloc[0].to_dict() | {"days_since_last_activity": 56.0, "days_since_last_purchase": 56.0,
                                     "silence_vs_typical_gap": 3.1, "gap_mean_days": 18.0, "revenue_30d": 0.0,
                                     "days_since_first_activity": 305.0, "clv_age_days": 304.0}
    push = {"days_since_last_activity": 0.5, "days_since_last_purchase": 0.4, "revenue_30d": 0.3,
            "clv_age_days": 0.15, "days_since_first_activity": 0.2, "gap_mean_days": 0.12}
    before = reasons(row, push, None)
    assert any(t.startswith("no purchase for 56 days") for t in before)  # beside "no activity for 56 days"
    after = reasons(row, push, basis)
    assert after[0] == "no activity for 56 days, 3.1x this user's usual gap"
    assert not any("no purchase" in t or "usually" in t for t in after)  # said by the first reason
    assert sum("ago" in t for t in after) == 1  # tenure once, not "305 days" and "304 days"
    median = data.days_since_first_activity.median()
    assert next(t for t in after if "ago" in t) == f"first active 305 days ago (most users: {median:,.0f})"


def test_one_gap_is_said_once():
    row = purchase_only().iloc[0].to_dict() | {"active_days_total": 2.0, "gap_mean_days": 230.0,
                                                "gap_std_days": 0.0, "gap_max_days": 230.0, "last_gap_days": 230.0}
    push = {"gap_max_days": 0.5, "last_gap_days": 0.4, "gap_std_days": 0.3, "gap_mean_days": 0.2,
            "n_support_ticket_30d": 0.1}
    texts = reasons(row, push, None)
    assert texts[0].startswith("one gap between active days so far, 230 days")
    assert not any("gap" in t for t in texts[1:])
    last_is_longest = row | {"active_days_total": 5.0, "gap_mean_days": 80.0, "gap_std_days": 60.0}
    texts = reasons(last_is_longest, push, None)
    assert texts[0].startswith("last gap between active days 230 days, the longest so far")
    assert not any(t.startswith(("longest gap", "last gap")) for t in texts[1:])
