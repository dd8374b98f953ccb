"""The simulator: determinism, a well-formed log, and truth that matches what it simulates."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import roc_auc_score

from churnkit.config import SimulateSettings
from churnkit.flows.simulate import write_simulation
from churnkit.simulate import dynamics as dyn
from churnkit.simulate import simulate
from churnkit.simulate.campaigns import CampaignPlan
from churnkit.simulate.engine import EVENTS
from churnkit.simulate.population import draw_population

CUTOFFS = [dt.date(2024, 3, 4), dt.date(2024, 5, 6)]
HORIZONS = [7, 28]
Z = 4.0  # sampling-error band for the agreement checks


@pytest.fixture(scope="module")
def sim():
    params = SimulateSettings(users=4000, days=180, seed=11, cutoffs=CUTOFFS, horizons=HORIZONS)
    result = simulate(params)
    return result, result.events().to_pandas()


def realised(events: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """Outcomes in [cutoff, cutoff + H) per truth row: the label definitions, from the log."""
    activity = events[events.event != "push_sent"]
    out = []
    for (cutoff, h), g in truth.groupby(["cutoff", "horizon_days"]):
        w = activity[(activity.ts >= cutoff) & (activity.ts < cutoff + pd.Timedelta(days=int(h)))]
        buys = w[w.event == "purchase"]
        g = g.copy()
        g["churned"] = ~g.user_id.isin(set(w.user_id))
        g["bought"] = g.user_id.isin(set(buys.user_id))
        g["revenue"] = g.user_id.map(buys.groupby("user_id").amount.sum()).fillna(0.0)
        out.append(g)
    return pd.concat(out)


def z_score(y: pd.Series, p: pd.Series) -> float:
    se = np.sqrt((p * (1 - p)).sum()) / len(p)
    return float((y.mean() - p.mean()) / se)


def test_same_seed_same_output_and_different_seed_differs():
    p = SimulateSettings(users=300, days=60, seed=3, horizons=[7])
    a, b = simulate(p), simulate(p)
    assert a.events().equals(b.events())
    pd.testing.assert_frame_equal(a.truth, b.truth)
    pd.testing.assert_frame_equal(a.users(), b.users())
    c = simulate(p.model_copy(update={"seed": 4}))
    assert not a.events().equals(c.events())
    # the observer draws no random numbers: the same log without it
    blind = simulate(p.model_copy(update={"observable": False}))
    assert a.events().equals(blind.events())
    assert "p_churn_observable" in a.truth and "p_churn_observable" not in blind.truth
    pd.testing.assert_frame_equal(a.truth[blind.truth.columns], blind.truth)


def test_observer_rules_out_states_the_day_contradicts():
    """A session is impossible while churned; a quiet fortnight makes churn likely."""
    from churnkit.simulate.observer import DayObservation, StateObserver

    rng = np.random.default_rng(0)
    pop = draw_population(rng, 200, 60, 1.0)
    plan = CampaignPlan([], np.zeros((0, pop.n), bool), np.zeros((0, pop.n), bool))
    obs = StateObserver(pop, plan)
    none = np.zeros(pop.n, dtype=int)
    no = np.zeros(pop.n, dtype=bool)
    busy = DayObservation(none + 3, none, none, no, no, no, no)
    quiet = DayObservation(none, none, none, no, no, no, no)
    post_busy = obs.dist * np.exp(obs.log_likelihood(0, 0, busy))
    assert np.all(post_busy[dyn.CHURNED] < 1e-200)
    before = obs.dist[dyn.CHURNED].copy()
    for t in range(14):
        obs.update(t, t % 7, quiet)
    np.testing.assert_allclose(obs.dist.sum(axis=0), 1.0)
    assert np.all(obs.dist[dyn.CHURNED] > before)


def test_log_is_well_formed(sim):
    result, ev = sim
    start = pd.Timestamp(result.params.start, tz="UTC")
    end = pd.Timestamp(result.params.end, tz="UTC")
    assert set(ev.event.unique()) <= set(EVENTS)
    assert {"session", "view", "add_to_cart", "purchase", "push_sent", "push_open", "checkin"} <= set(ev.event)
    assert ev.ts.between(start, end, inclusive="left").all()
    assert ev.ts.is_monotonic_increasing
    # no event before the user signed up
    signup = result.users().set_index("user_id").signup_ts
    assert (ev.ts >= ev.user_id.map(signup)).all()
    # amounts on purchases only, all positive
    purchases = ev.event == "purchase"
    assert ev.loc[purchases, "amount"].gt(0).all()
    assert ev.loc[~purchases, "amount"].isna().all()
    # no two identical rows (ingest would drop them as duplicates)
    assert not ev.duplicated().any()
    # campaign events carry an id and the treatment arm, and only treated users get them
    camp = ev[ev.campaign_id.notna()]
    assert (camp.variant == "treatment").all()
    treated = result.assignments.query("variant == 'treatment'")
    assert set(zip(camp.campaign_id, camp.user_id)) <= set(zip(treated.campaign_id, treated.user_id))


def test_purchases_follow_a_cart_in_the_same_session(sim):
    _, ev = sim
    per_user = ev[ev.event.isin(["add_to_cart", "purchase"])].groupby("event").size()
    assert per_user["add_to_cart"] >= per_user["purchase"]


@pytest.mark.parametrize(
    "outcome,prob,min_auc",
    [("churned", "p_churn", 0.8), ("bought", "p_purchase", 0.8), ("churned", "p_churn_observable", 0.75),
     ("bought", "p_purchase_observable", 0.75)],
)
def test_truth_probabilities_match_realised_outcomes(sim, outcome, prob, min_auc):
    """Both references are calibrated probabilities: the latent-state truth and the
    observer's forecast from the log (a proper conditional probability too)."""
    result, ev = sim
    df = realised(ev, result.truth)
    for (cutoff, h), g in df.groupby(["cutoff", "horizon_days"]):
        assert abs(z_score(g[outcome], g[prob])) < Z, (cutoff, h)
        deciles = pd.qcut(g[prob].rank(method="first"), 10, labels=False)
        for d, gg in g.groupby(deciles):
            if gg[prob].between(1e-9, 1 - 1e-9).any():
                assert abs(z_score(gg[outcome], gg[prob])) < Z, (cutoff, h, d)
        assert roc_auc_score(g[outcome], g[prob]) > min_auc


@pytest.mark.parametrize("outcome,prob", [("churned", "p_churn"), ("bought", "p_purchase")])
def test_observable_ceiling_sits_below_the_latent_truth(sim, outcome, prob):
    """Not knowing the state costs ranking power, but the log carries most of it."""
    result, ev = sim
    df = realised(ev, result.truth)
    for key, g in df.groupby(["cutoff", "horizon_days"]):
        truth, seen = (roc_auc_score(g[outcome], g[c]) for c in (prob, f"{prob}_observable"))
        assert 0.5 + 0.6 * (truth - 0.5) < seen < truth + 0.005, key


@pytest.mark.parametrize("column", ["expected_revenue", "expected_revenue_observable"])
def test_truth_expected_revenue_matches_realised(sim, column):
    result, ev = sim
    df = realised(ev, result.truth)
    for _, g in df.groupby(["cutoff", "horizon_days"]):
        resid = g.revenue - g[column]
        assert abs(resid.sum()) < Z * np.sqrt((resid**2).sum())


def test_campaign_arms_match_their_true_outcomes(sim):
    """Each arm's realised churn over the campaign horizon matches truth for that arm."""
    result, ev = sim
    activity = ev[ev.event != "push_sent"]
    camps = result.plan.frame(result.start).set_index("campaign_id")
    checked = 0
    for cid, g in result.assignments.groupby("campaign_id"):
        day0 = camps.loc[cid, "send_ts"].normalize()
        end = day0 + pd.Timedelta(days=int(g.horizon_days.iloc[0]))
        if end > pd.Timestamp(result.params.end, tz="UTC"):
            continue
        w = activity[(activity.ts >= day0) & (activity.ts < end)]
        churned = ~g.user_id.isin(set(w.user_id))
        for arm, col in (("treatment", "p_churn_treated"), ("control", "p_churn_control")):
            m = g.variant == arm
            assert abs(z_score(churned[m], g.loc[m, col])) < Z, (cid, arm)
        checked += 1
    assert checked >= 1
    eff = result.assignments.effect_churn
    assert (eff < -0.01).any() and (eff > 0.01).any() and (eff.abs() < 1e-3).any()


def test_engagement_decays_before_churn(sim):
    """Users in decline at a cutoff were already less active than active users."""
    result, ev = sim
    cutoff = pd.Timestamp(CUTOFFS[1], tz="UTC")
    t = result.truth[(result.truth.cutoff == cutoff) & (result.truth.horizon_days == 7)]
    sessions = ev[(ev.event == "session") & (ev.ts < cutoff) & (ev.ts >= cutoff - pd.Timedelta(days=14))]
    per_user = t.user_id.map(sessions.groupby("user_id").size()).fillna(0)
    by_state = per_user.groupby(t.state.values).mean()
    assert by_state["declining"] < 0.8 * by_state["active"]
    assert by_state["churned"] < 0.2 * by_state["declining"]


def test_sampled_transitions_match_propagated_distributions():
    rng = np.random.default_rng(0)
    pop = draw_population(rng, 200_000, 100, 0.0)
    pop = pop.subset(np.arange(pop.n))
    h = np.full(pop.n, 0.2)
    treat = dyn.Treatment(
        save=np.full(pop.n, 0.3), winback=np.full(pop.n, 0.1), annoy=np.full(pop.n, 0.05)
    )
    for t in (None, treat):
        for s in (dyn.ACTIVE, 3, dyn.K_DECLINE, dyn.CHURNED):
            state = np.full(pop.n, s, dtype=np.int8)
            nxt = dyn.sample_next(state, h, pop, t, rng)
            dist = np.zeros((dyn.N_STATES, pop.n))
            dist[s] = 1
            expected = dyn.propagate(dist, h, pop, t).mean(axis=1)
            observed = np.bincount(nxt, minlength=dyn.N_STATES) / pop.n
            se = np.sqrt(expected * (1 - expected) / pop.n) + 1e-12
            assert np.all(np.abs(observed - expected) < 5 * se + 1e-9), (t is not None, s)


def test_write_simulation_files(tmp_path, sim):
    result, _ = sim
    paths = write_simulation(result, tmp_path / "sim")
    assert {"events", "users", "traits", "truth", "campaigns", "assignments", "meta"} <= set(paths)
    schema = pq.read_schema(paths["events"])
    assert str(schema.field("ts").type) == "timestamp[us, tz=UTC]"
    assert schema.names == ["user_id", "ts", "event", "amount", "category", "channel", "campaign_id", "variant"]
    assert pq.read_metadata(paths["events"]).num_rows == result.n_events
    assert not list((tmp_path / "sim").glob(".staging-*"))


def test_params_reject_cutoffs_outside_period():
    with pytest.raises(ValueError, match="outside the simulated period"):
        SimulateSettings(users=10, days=30, start=dt.date(2024, 1, 1), cutoffs=[dt.date(2025, 1, 1)])


def test_campaign_plan_is_fixed_before_behaviour():
    """Eligibility uses only opt-in and signup date, so truth can condition on it."""
    result = simulate(SimulateSettings(users=500, days=120, seed=5, horizons=[7]))
    plan: CampaignPlan = result.plan
    pop = result.population
    for i, c in enumerate(plan.campaigns):
        expected = pop.push_opt_in & (pop.signup_day <= c.day - 14)
        assert np.array_equal(plan.eligible[i], expected)
        assert not (plan.treated[i] & ~plan.eligible[i]).any()
