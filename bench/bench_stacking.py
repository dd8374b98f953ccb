"""Does stacking BG/NBD outputs into LightGBM help? The ``train --stack-bgnbd`` comparison.

Usage: python bench/bench_stacking.py WORKSPACE PROBLEM [PROBLEM ...]

Per problem: 3 Optuna trials, then the plain model and the stacked one (same tuned
parameters, BG/NBD fitted per cutoff added as features) on the same test rows, beside the
simulator's references when the workspace holds a simulation.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from churnkit.config import load_problem
from churnkit.flows.build import training_set
from churnkit.flows.project import Project
from churnkit.flows.train import load_truth
from churnkit.training.fit import TrainOptions, fit_and_evaluate
from churnkit.training.promotion import HEADLINE


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__.split("\n\n")[1])
    project = Project.at(Path(sys.argv[1]))
    truth = load_truth(project)
    options = TrainOptions(trials=3, seed=42, bgnbd=False, stack_bgnbd=True)
    for name in sys.argv[2:]:
        t0 = time.perf_counter()
        problem = load_problem(name)
        data = training_set(project, problem)
        r = fit_and_evaluate(data.frame, data.manifest, problem, options, truth=truth)
        metrics = [HEADLINE[problem.kind][0]] + (["pr_auc"] if problem.kind != "revenue" else [])
        for metric in metrics:
            row = "  ".join(f"{k} {v[metric]:.4f}" for k, v in r.metrics.items())
            print(f"{name} {metric}: {row}")
        gain = r.metrics["stacked"][metrics[0]] - r.metrics["model"][metrics[0]]
        print(f"{name}: stacking changes {metrics[0]} by {gain:+.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
