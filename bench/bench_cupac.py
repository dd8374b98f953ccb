"""CUPED against CUPAC on the simulator: the variance cut each gives on every campaign.

Simulate and ingest, train and promote a churn model (``churn_ga4``), then evaluate every
campaign: ``retained`` adjusted by its pre-period value (CUPED) and by the OLS prediction
from that and the churn score at assignment (CUPAC). Prints each finished campaign's
variance reduction under both (the results' ``variance_reduction`` meta).

    .venv/bin/python bench/bench_cupac.py --users 1500 --days 120 --seed 8
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from churnkit.config import ChurnkitConfig, SimulateSettings
from churnkit.contracts import as_of_cutoff
from churnkit.flows.campaigns import evaluate
from churnkit.flows.ingest import ingest
from churnkit.flows.project import Project
from churnkit.flows.promote import promote_problem
from churnkit.flows.simulate import simulate_to
from churnkit.flows.train import train
from churnkit.training.fit import TrainOptions

CHURN_ONLY = {"scoring": {"churn": "churn_ga4", "purchase": None, "ltv": None}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=1500)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--seed", type=int, default=8)
    ap.add_argument("--every", type=int, default=28, help="Days between campaigns.")
    ap.add_argument("--metric", default="retained")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-cupac-") as tmp:
        project = Project.at(Path(tmp) / "ws", ChurnkitConfig.model_validate(CHURN_ONLY))
        params = SimulateSettings(users=args.users, days=args.days, seed=args.seed, horizons=[7],
                                  cutoff_step_days=7, campaign_every_days=args.every)
        simulate_to(params, project.workspace.simulation_dir)
        ingest(project, [project.workspace.simulation_dir], "simulator", as_of=as_of_cutoff(params.end))
        train(project, "churn_ga4", TrainOptions(trials=1, seed=3, bgnbd=False))
        promote_problem(project, "churn_ga4")
        print(f"{args.users} users x {args.days} days, seed {args.seed}: variance cut of {args.metric}")
        for r in evaluate(project):
            if not r.meta["complete"]:
                continue
            cut = r.meta["variance_reduction"][args.metric]
            print(f"{r.campaign_id}: CUPED {cut['cuped']:.1%}, CUPAC {cut['cupac']:.1%}")


if __name__ == "__main__":
    main()
