"""Point in time, as properties over small random logs (issue #3).

(a) Features at a cutoff see only events with ``ts < cutoff``: adding, removing or changing
    events at or after it changes no feature value and no row (a user whose events all lie
    at or after the cutoff has no row, before and after).
(b) Labels at a cutoff see only events in ``[cutoff, cutoff + H)``: changing events before
    the cutoff or at/after ``cutoff + H`` changes no churn, purchase or revenue label.
(c) Feature values do not depend on the order of rows in the log.

The logs hold every event type, refunds and order lines (a few order ids shared across days)
included, so orders counted once and revenue net of refunds keep (a)-(c).

Speed: compiling and running the feature expression costs ~0.3 s whatever the log size, so
the variants of one example run as one query, each variant under its own user-id prefix
(``tag/user``). Users never interact in the feature code, so this is the same as running
them one by one. In (c) the log's rows come first in their order, then the shuffled copy's.
"""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from churnkit.config import ActivityEvents, FeatureSelection, ProblemConfig
from churnkit.contracts import EVENT_TYPES, LABEL
from churnkit.datasets.eligibility import eligible
from churnkit.datasets.labels import attach_labels
from churnkit.features.build import ELIGIBILITY_COLUMNS, SIGNED_UP, feature_frame
from churnkit.features.context import cutoff_table, daily_table
from churnkit.io.warehouse import events_memtable, users_memtable

CUTOFFS = [dt.date(2024, 3, 1), dt.date(2024, 3, 11), dt.date(2024, 3, 21)]
CUTOFF_TS = [pd.Timestamp(c, tz="UTC") for c in CUTOFFS]
T0 = pd.Timestamp("2024-02-05", tz="UTC")
SPAN = pd.Timedelta(days=60)
"""Logs span 2024-02-05 .. 2024-04-05: history before, and label windows after, each cutoff."""
HORIZONS = (1, 7, 14)
KINDS = ("churn", "purchase", "revenue")
USERS = ["u1", "u2", "u3", "u4"]
NEW_USER = "u5"
"""Only ever added at or after a cutoff (property a) or outside a label window (b)."""
COLUMNS = ["user_id", "ts", "event", "amount", "category", "channel", "campaign_id", "order_id"]
LEVELS = {"region": ["north", "south"]}
ACTIVITIES = [
    ActivityEvents(),  # the default: everything but push_sent
    ActivityEvents(exclude=[]),
    ActivityEvents(include=["session", "purchase", "checkin"], exclude=[]),
]
SETTINGS = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
}

# Boundaries where an off-by-one would show: the cutoffs themselves, one second and half an
# hour before them (23:30 the previous day), one microsecond after, and label-window ends.
SPECIAL = sorted(
    {c + d for c in CUTOFF_TS for d in (pd.Timedelta(0), pd.Timedelta(seconds=-1), pd.Timedelta(minutes=-30),
                                          pd.Timedelta(microseconds=1))}
    | {c + pd.Timedelta(days=h) + d for c in CUTOFF_TS for h in HORIZONS
       for d in (pd.Timedelta(0), pd.Timedelta(microseconds=-1))}
)


def ts_between(lo: pd.Timestamp, hi: pd.Timestamp) -> st.SearchStrategy[pd.Timestamp]:
    """A time in ``[lo, hi)``: whole seconds mostly, sometimes with microseconds, often a boundary."""
    n = int((hi - lo) / pd.Timedelta(seconds=1))
    secs = st.integers(0, n - 1).map(lambda s: lo + pd.Timedelta(seconds=s))
    micro = st.integers(0, n * 1_000_000 - 1).map(lambda u: lo + pd.Timedelta(microseconds=u))
    special = [t for t in SPECIAL if lo <= t < hi]
    options = [secs, micro] + ([st.sampled_from(special)] * 2 if special else [])
    return st.one_of(*options)


ANY_TS = ts_between(T0, T0 + SPAN)
amounts = st.integers(0, 50_000).map(lambda cents: cents / 100)


@st.composite
def event_row(draw, ts=ANY_TS, users=tuple(USERS)) -> dict:
    event = draw(st.sampled_from(EVENT_TYPES))
    return {
        "user_id": draw(st.sampled_from(users)),
        "ts": draw(ts),
        "event": event,
        "amount": draw(amounts) if event in ("purchase", "refund") else None,
        "category": draw(st.none() | st.sampled_from(["books", "music", "games"])),
        "channel": draw(st.none() | st.sampled_from(["web", "app", "email"])),
        "campaign_id": draw(st.none() | st.sampled_from(["c1", "c2"])),
        # order lines: a few order ids, so lines of one order fall on both sides of a cutoff
        "order_id": draw(st.none() | st.sampled_from(["o1", "o2", "o3"])) if event in ("purchase", "refund") else None,
    }


def frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["amount"] = df["amount"].astype("float64")
    return df


@st.composite
def event_logs(draw) -> pd.DataFrame:
    """1-4 users, 1-40 events spread over 60 days around the cutoffs."""
    users = tuple(USERS[: draw(st.integers(1, len(USERS)))])
    return frame(draw(st.lists(event_row(users=users), min_size=1, max_size=40)))


@st.composite
def user_tables(draw) -> pd.DataFrame:
    """Signup times (sometimes missing, sometimes after a cutoff) and one categorical attribute."""
    signup = st.none() | ts_between(T0 - pd.Timedelta(days=200), T0 + SPAN)
    region = st.none() | st.sampled_from(["north", "south", "west"])
    users = USERS + [NEW_USER]
    return pd.DataFrame(
        {"user_id": users, "signup_ts": [draw(signup) for _ in users], "region": [draw(region) for _ in users]}
    )


@st.composite
def rewritten(draw, log: pd.DataFrame, touch, new_ts) -> pd.DataFrame:
    """``log`` with the events where ``touch(ts)`` kept, dropped or changed, plus new ones.

    Changed and added events get times from ``new_ts`` (so they stay in the touched region);
    the others are left exactly as they were.
    """
    mask = log.ts.map(touch).astype(bool)
    rows = []
    for row in log[mask].to_dict("records"):
        action = draw(st.sampled_from(["keep", "drop", "change"]))
        if action == "keep":
            rows.append(row)
        elif action == "change":
            rows.append(draw(event_row(ts=new_ts, users=(row["user_id"],))))
    rows += draw(st.lists(event_row(ts=new_ts, users=tuple(USERS) + (NEW_USER,)), max_size=8))
    return pd.concat([log[~mask], frame(rows)], ignore_index=True)


# --------------------------------------------------------------------------- evaluation


def tagged(logs: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat([log.assign(user_id=tag + "/" + log.user_id.astype(str)) for tag, log in logs.items()],
                     ignore_index=True)


def untag(df: pd.DataFrame, tags) -> dict[str, pd.DataFrame]:
    tag = df.user_id.str.split("/", n=1).str[0]
    user = df.user_id.str.split("/", n=1).str[1]
    df = df.assign(user_id=user)
    return {t: df[tag == t] for t in tags}


def features(logs: dict[str, pd.DataFrame], users: pd.DataFrame | None, activity: ActivityEvents,
             lookback: int) -> dict[str, pd.DataFrame]:
    """All output columns of ``feature_frame`` (features and eligibility inputs) per log, in one
    query, and whether each row is eligible under a problem with this look-back."""
    us = None if users is None else pd.concat([users.assign(user_id=t + "/" + users.user_id) for t in logs])
    ff = feature_frame(
        events_memtable(tagged(logs)),
        cutoff_table(CUTOFFS),
        users_memtable(us),
        selection=FeatureSelection(),
        activity=activity,
        attribute_levels=LEVELS if users is not None else None,
    )
    df = ff.table.to_pandas()
    problem = ProblemConfig(name="p", kind="churn", lookback_days=lookback, horizon_days=7, min_history_days=3)
    since, history = ELIGIBILITY_COLUMNS
    inside = eligible(df[since].to_numpy("float64"), df[history].to_numpy("float64"), problem)
    df["eligible"] = inside & df[SIGNED_UP].to_numpy(bool)
    return untag(df, logs)


def labels(logs: dict[str, pd.DataFrame], activity: ActivityEvents, horizon: int) -> dict[str, pd.DataFrame]:
    """Churn, purchase and revenue labels for every (user, cutoff), including users with no
    events in the window (label from no outcome row)."""
    ev = events_memtable(tagged(logs))
    daily = daily_table(ev, activity.include, activity.exclude)
    cuts = cutoff_table(CUTOFFS)
    keys = pd.DataFrame(
        [(f"{tag}/{u}", c) for tag in logs for u in USERS + [NEW_USER] for c in CUTOFF_TS], columns=["user_id", "cutoff"]
    )
    keys["cutoff"] = keys["cutoff"].astype("datetime64[us, UTC]")
    t = ibis.memtable(keys)
    for kind in KINDS:
        t = attach_labels(t, daily, cuts, kind, horizon).rename({f"label_{kind}": LABEL})
    return untag(t.to_pandas(), logs)


def at(df: pd.DataFrame, cutoff: dt.date) -> pd.DataFrame:
    rows = df[df.cutoff == pd.Timestamp(cutoff, tz="UTC")]
    return rows.set_index("user_id").sort_index().drop(columns="cutoff")


def assert_same(a: pd.DataFrame, b: pd.DataFrame, what: str) -> None:
    """Same rows (user ids) and the same values, NaN equal to NaN.

    The tolerance only absorbs float rounding from summing the same amounts in another order.
    """
    assert list(a.index) == list(b.index), f"{what}: rows differ: {list(a.index)} vs {list(b.index)}"
    assert list(a.columns) == list(b.columns)
    x, y = a.to_numpy(dtype="float64"), b.to_numpy(dtype="float64")
    bad = ~(np.isclose(x, y, rtol=1e-9, atol=1e-9) | (np.isnan(x) & np.isnan(y)))
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise AssertionError(f"{what}: {a.index[r]} {a.columns[c]}: {x[r, c]!r} != {y[r, c]!r}")


# --------------------------------------------------------------------------- (a) features


@settings(max_examples=50, **SETTINGS)
@given(
    log=event_logs(),
    users=st.none() | user_tables(),
    activity=st.sampled_from(ACTIVITIES),
    lookback=st.sampled_from([7, 30]),
    data=st.data(),
)
def test_events_at_or_after_a_cutoff_never_change_its_features(log, users, activity, lookback, data):
    logs = {"base": log}
    for k, c in enumerate(CUTOFF_TS):
        logs[f"v{k}"] = data.draw(
            rewritten(log, lambda ts, c=c: ts >= c, ts_between(c, T0 + SPAN + pd.Timedelta(days=10))),
            label=f"rewritten at/after {c.date()}",
        )
    out = features(logs, users, activity, lookback)
    for k in range(len(CUTOFFS)):
        for j in range(k + 1):  # every cutoff at or before the one whose future was rewritten
            base, var = at(out["base"], CUTOFFS[j]), at(out[f"v{k}"], CUTOFFS[j])
            note(f"cutoff {CUTOFFS[j]}, variant v{k}: base rows {list(base.index)}")
            assert_same(var, base, f"features at {CUTOFFS[j]} after rewriting events from {CUTOFFS[k]}")
            assert NEW_USER not in var.index  # only has events at/after the cutoff: no row


# --------------------------------------------------------------------------- (b) labels


@settings(max_examples=50, **SETTINGS)
@given(
    log=event_logs(),
    activity=st.sampled_from(ACTIVITIES),
    horizon=st.sampled_from(HORIZONS),
    data=st.data(),
)
def test_events_outside_the_label_window_never_change_labels(log, activity, horizon, data):
    logs = {"base": log}
    for k, c in enumerate(CUTOFF_TS):
        end = c + pd.Timedelta(days=horizon)
        outside = st.one_of(ts_between(T0 - pd.Timedelta(days=30), c), ts_between(end, end + pd.Timedelta(days=40)))
        logs[f"v{k}"] = data.draw(
            rewritten(log, lambda ts, c=c, end=end: ts < c or ts >= end, outside),
            label=f"rewritten outside [{c.date()}, {end.date()})",
        )
    out = labels(logs, activity, horizon)
    for k, c in enumerate(CUTOFFS):
        base, var = at(out["base"], c), at(out[f"v{k}"], c)
        assert len(base) == len(USERS) + 1
        assert_same(var, base, f"labels at {c} (H={horizon}) after rewriting events outside the window")


# --------------------------------------------------------------------------- (c) row order


@settings(max_examples=30, **SETTINGS)
@given(
    log=event_logs(),
    users=st.none() | user_tables(),
    activity=st.sampled_from(ACTIVITIES),
    data=st.data(),
)
def test_features_do_not_depend_on_row_order(log, users, activity, data):
    order = data.draw(st.permutations(range(len(log))), label="row order")
    shuffled = log.iloc[list(order)].reset_index(drop=True)
    out = features({"a": log, "b": shuffled}, users, activity, 30)
    for c in CUTOFFS:
        assert_same(at(out["b"], c), at(out["a"], c), f"features at {c} of the shuffled log")


# --------------------------------------------------------------------------- the boundary itself


def test_event_exactly_at_the_cutoff_belongs_to_the_label_window_not_the_features():
    c = CUTOFF_TS[1]
    before = frame([
        {"user_id": "u1", "ts": c - pd.Timedelta(days=3), "event": "session"},
        {"user_id": "u1", "ts": c - pd.Timedelta(days=2), "event": "purchase", "amount": 5.0},
    ])
    at_cutoff = frame([
        {"user_id": "u1", "ts": c, "event": "purchase", "amount": 40.0, "category": "books"},
        {"user_id": "u2", "ts": c, "event": "session"},  # u2's only event
    ])
    out = features({"base": before, "plus": pd.concat([before, at_cutoff])}, None, ActivityEvents(), 7)
    base, plus = at(out["base"], CUTOFFS[1]), at(out["plus"], CUTOFFS[1])
    assert list(plus.index) == ["u1"]  # u2 has no history before the cutoff: no feature row
    assert_same(plus, base, "features with events exactly at the cutoff")
    assert plus.loc["u1", "purchases_total"] == 1.0 and plus.loc["u1", "revenue_total"] == 5.0
    assert plus.loc["u1", "categories_90d"] == 0.0

    lab = {tag: at(df, CUTOFFS[1]) for tag, df in labels({"base": before, "plus": pd.concat([before, at_cutoff])},
                                                         ActivityEvents(), 7).items()}
    assert lab["base"].loc["u1", "label_churn"] == 1.0  # nothing in [c, c + 7)
    assert lab["plus"].loc["u1", "label_churn"] == 0.0
    assert lab["plus"].loc["u1", "label_purchase"] == 1.0
    assert lab["plus"].loc["u1", "label_revenue"] == 40.0
    assert lab["plus"].loc["u2", "label_churn"] == 0.0
    # an event at cutoff + H is outside the window
    late = frame([{"user_id": "u1", "ts": c + pd.Timedelta(days=7), "event": "purchase", "amount": 9.0}])
    lab = at(labels({"late": pd.concat([before, late])}, ActivityEvents(), 7)["late"], CUTOFFS[1])
    assert lab.loc["u1", ["label_churn", "label_purchase", "label_revenue"]].tolist() == [1.0, 0.0, 0.0]
