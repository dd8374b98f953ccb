"""Targeting under a budget on the simulator: uplift against churn risk, value at risk and random.

Per seed: simulate, ingest, train and promote the default churn, purchase and LTV models
(as ``churnkit demo`` does), then train an uplift problem on every campaign but the latest
and rank the latest campaign's users four ways at the day it was sent:

- ``uplift``: the uplift model's estimated effect (the target list's order at a fixed
  number of contacts: the contact cost is the same for everyone);
- ``churn_risk``: the churn champion's probability;
- ``value_at_risk``: churn probability x predicted LTV (the risk list's order);
- ``random``.

The true incremental value of contacting the top 2, 5, 10, 20 and 30% by each ranking is
the sum of the simulator's true individual effects of those users (net revenue over the
28 days after the send for ``uplift_revenue_28``; extra retained users for ``uplift_28``).

    .venv/bin/python bench/bench_targeting.py --seeds 5 --users 5000 --days 365
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from churnkit.config import SimulateSettings, load_churnkit_config
from churnkit.contracts import as_of_cutoff
from churnkit.flows.demo import PROBLEMS
from churnkit.flows.ingest import ingest
from churnkit.flows.project import Project
from churnkit.flows.promote import promote_problem
from churnkit.flows.simulate import simulate_to
from churnkit.flows.train import train
from churnkit.flows.uplift import train_uplift
from churnkit.training.fit import TrainOptions


def one_seed(seed: int, users: int, days: int, trials: int, problems: list[str], root: Path,
             params: dict | None = None) -> list[pd.DataFrame]:
    project = Project.at(root / f"seed{seed}", load_churnkit_config(None))
    params = SimulateSettings(users=users, days=days, seed=seed)
    simulate_to(params, project.workspace.simulation_dir)
    ingest(project, [project.workspace.simulation_dir], "simulator", as_of=as_of_cutoff(params.end))
    for name in PROBLEMS:
        train(project, name, TrainOptions(trials=trials, seed=seed, bgnbd=False))
        promote_problem(project, name)
    out = []
    for name in problems:
        problem = project.problem(name)
        if params is not None:  # the learners' LightGBM settings instead of the preset's
            model = problem.model.model_copy(update={"params": params})
            problem = problem.model_copy(update={"model": model})
        fit = train_uplift(project, problem, seed).fit
        m = fit.metrics
        print(f"seed {seed} {name}: learner {fit.learner}, held out {fit.test_campaigns}, Qini {m['qini']:.3f} "
              f"[{m['qini_low']:.3f}, {m['qini_high']:.3f}], correlation with the truth "
              f"{m.get('true_effect_correlation', float('nan')):.3f}", flush=True)
        out.append(fit.budget.assign(seed=seed, problem=name, learner=fit.learner,
                                     correlation=m.get("true_effect_correlation"), qini=m["qini"]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--first-seed", type=int, default=1)
    ap.add_argument("--users", type=int, default=5000)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--problems", default="uplift_revenue_28,uplift_28")
    ap.add_argument("--params", type=json.loads, default=None,
                    help="JSON LightGBM parameters replacing the presets' (e.g. '{}': the learners' own defaults).")
    args = ap.parse_args()
    start = time.perf_counter()
    frames = []
    with tempfile.TemporaryDirectory(prefix="bench-targeting-") as tmp:
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            frames += one_seed(seed, args.users, args.days, args.trials, args.problems.split(","), Path(tmp),
                              args.params)
    df = pd.concat(frames, ignore_index=True)
    print(f"\n{args.seeds} seeds x {args.users} users x {args.days} days ({time.perf_counter() - start:.0f} s)")
    for name, g in df.groupby("problem", sort=False):
        total = g.pivot_table(index="budget_share", columns="ranking", values="true_incremental", aggfunc="mean")
        wide = g.pivot_table(index=["seed", "budget_share"], columns="ranking", values="true_incremental")
        wins = (wide["uplift"] > wide["churn_risk"]).groupby("budget_share").agg(["sum", "size"]) \
            if "churn_risk" in wide else None
        print(f"\n{name}: true incremental value of the held-out campaign's top users, mean over seeds")
        print(total[[c for c in ("uplift", "churn_risk", "value_at_risk", "random") if c in total]].round(1)
              .to_string())
        if wins is not None:
            print("seeds where uplift beats churn risk, per budget: "
                  + ", ".join(f"{b:.0%} {int(r['sum'])}/{int(r['size'])}" for b, r in wins.iterrows()))
        print(f"correlation with the true effect: mean {g.groupby('seed')['correlation'].first().mean():.3f}; "
              f"learners chosen: {g.groupby('seed')['learner'].first().value_counts().to_dict()}")


if __name__ == "__main__":
    main()
