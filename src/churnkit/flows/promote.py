"""``churnkit promote``: challenger vs champion on the challenger's own test cutoffs, or a rollback.

The policy is :func:`churnkit.training.promotion.decide_promotion` (pure); this flow loads
and scores both versions, applies the decision to the ``champion`` alias and records it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from churnkit.campaigns.uplift import qini_coefficient
from churnkit.campaigns.uplift_set import TREATMENT
from churnkit.contracts import LABEL
from churnkit.datasets.folds import rows
from churnkit.datasets.manifest import Manifest
from churnkit.errors import ChurnkitError
from churnkit.flows.project import Project
from churnkit.flows.train import TEST_CUTOFFS_TAG
from churnkit.flows.uplift import TEST_CAMPAIGNS_TAG
from churnkit.io import tracking
from churnkit.io.tracking.store import one_line
from churnkit.training.fit import metrics_for, named_outputs
from churnkit.training.promotion import (
    HEADLINE,
    Decision,
    Direction,
    decide_promotion,
    finite_metrics,
    previous_champion,
)

log = logging.getLogger(__name__)

Evaluate = Callable[[tracking.LoadedModel], Mapping[str, Any]]


@dataclass(frozen=True)
class PromotionResult:
    decision: Decision
    challenger: int
    previous_champion: int | None
    champion: int | None
    """The champion after the call."""
    run_id: str | None
    problem: str = ""
    """The problem's name (its registered model is ``churnkit-<problem>``)."""


def promote_version(
    problem: str,
    evaluate: Evaluate | Mapping[int, Mapping[str, Any]] | None = None,
    metric: str = "roc_auc",
    direction: Direction = "maximize",
    *,
    force: bool = False,
    version: int | None = None,
    min_delta: float = 0.0,
    user: str | None = None,
) -> PromotionResult:
    """Move ``champion`` to the challenger (alias, or ``version``) if it beats the champion.

    ``evaluate(loaded_model) -> metrics`` should score any model on the challenger's final
    test rows, so both are judged on the same data. Alternatively pass precomputed metrics
    keyed by version number, or None to compare the metrics recorded at registration (only
    fair when both used the same cutoffs). Every decision, promoted or not, is recorded as
    tags and a small ``promotion`` run in the problem's experiment.
    """
    current = tracking.aliases(problem)
    if version is None and tracking.CHALLENGER not in current:
        tracking.registered_model(problem)  # says "no registered model" when that is the problem
        raise ChurnkitError(
            f"no challenger for {problem}; run churnkit train --problem {problem} or give --version"
        )
    challenger = tracking.resolve_version(problem, tracking.CHALLENGER, version)
    champion = current.get(tracking.CHAMPION)
    if version is None:
        _no_newer_orphan(problem, challenger, champion)
    if champion == challenger:
        decision = Decision(False, f"version {challenger} is already the champion", [])
        return PromotionResult(decision, challenger, champion, champion, None, problem)

    chal_metrics = _metrics_for(problem, challenger, evaluate)
    champ_metrics: Mapping[str, Any] | None = None
    if champion is not None:
        try:
            champ_metrics = _metrics_for(problem, champion, evaluate)
        except ChurnkitError:
            raise
        except Exception as err:  # noqa: BLE001 - the old model may not fit the new rows
            log.warning("champion v%s could not be scored: %s", champion, one_line(err))
            champ_metrics = {}
    decision = decide_promotion(chal_metrics, champ_metrics, metric, direction, min_delta, force)
    if decision.promote:
        tracking.set_champion(problem, challenger)
    entry = {
        "action": "promote",
        "promoted": decision.promote,
        "from": champion,
        "to": challenger if decision.promote else champion,
        "challenger": challenger,
        "metric": metric,
        "direction": direction,
        "forced": force,
        "reason": decision.reason,
        "challenger_metrics": finite_metrics(chal_metrics),
        "champion_metrics": finite_metrics(champ_metrics) if champ_metrics is not None else None,
    }
    _, run_id = tracking.record_decision(problem, entry, decision.table, decision.as_text(), user)
    new_champion = challenger if decision.promote else champion
    return PromotionResult(decision, challenger, champion, new_champion, run_id, problem)


def _no_newer_orphan(problem: str, challenger: int, champion: int | None) -> None:
    """Refuse to judge the ``challenger`` alias when a newer version has no alias at all.

    ``train`` registers a version and moves ``challenger`` to it in two steps; a training
    killed between them leaves the newest version unaliased, and judging the older
    challenger instead would silently skip it.
    """
    newest = max(tracking.versions(problem), default=challenger)
    if newest > challenger and newest != champion:
        raise ChurnkitError(
            f"version {newest} of {tracking.model_name(problem)} is newer than the challenger "
            f"(v{challenger}) but has no alias: the training that registered it did not finish; "
            f"give --version {newest} to judge it, or --version {challenger} for the challenger"
        )


def rollback(problem: str, version: int | None = None, *, user: str | None = None) -> int:
    """Put ``champion`` back on the previous champion (or on ``version``); returns it."""
    current = tracking.aliases(problem).get(tracking.CHAMPION)
    if current is None:
        raise ChurnkitError(f"no champion for {problem}; nothing to roll back")
    if version is None:
        target = previous_champion(tracking.promotion_history(problem), current)
        if target is None:
            raise ChurnkitError(
                f"no earlier champion recorded for {problem} (champion is v{current}); "
                "give the version to roll back to"
            )
    else:
        target = tracking.resolve_version(problem, None, version)
    if target == current:
        raise ChurnkitError(f"version {target} is already the champion of {problem}")
    tracking.set_champion(problem, target)
    entry = {
        "action": "rollback",
        "promoted": True,
        "from": current,
        "to": target,
        "forced": True,
        "reason": f"rollback from v{current} to v{target}",
    }
    tracking.record_decision(problem, entry, by=user)
    return target


def _metrics_for(
    problem: str, number: int, evaluate: Evaluate | Mapping[int, Mapping[str, Any]] | None
) -> Mapping[str, Any]:
    if evaluate is None:
        return tracking.version_metrics(problem, number)
    if isinstance(evaluate, Mapping):
        found = evaluate.get(number, evaluate.get(str(number)))  # type: ignore[call-overload]
        if found is None:
            raise ChurnkitError(f"no metrics given for version {number} of {problem}")
        return found
    return evaluate(tracking.load_model(problem, version=number))


def promote_problem(
    project: Project, problem_name: str, *, force: bool = False, version: int | None = None,
) -> PromotionResult:
    """``churnkit promote``: both versions scored on the challenger's test cutoffs (read from
    its version tags and the workspace's training set), the headline metric decides."""
    problem = project.problem(problem_name)
    project.open_tracking()
    tracking.mark_abandoned(problem.name)
    metric, _floor = HEADLINE[problem.kind]
    challenger = tracking.resolve_version(problem.name, tracking.CHALLENGER, version)
    if problem.kind == "uplift":
        return promote_version(problem.name, _uplift_evaluation(project, problem.name, challenger), metric,
                               "maximize", force=force, version=version)
    cutoffs = tracking.version_tags(problem.name, challenger).get(TEST_CUTOFFS_TAG, "")
    path = project.workspace.dataset_path(problem.name)
    evaluate: Evaluate | None = None  # without the rows: the metrics recorded at registration
    if cutoffs and path.exists():
        df = pd.read_parquet(path)
        test = df.loc[rows(df, cutoffs.split(","))]

        def evaluate(loaded: tracking.LoadedModel) -> dict[str, float]:
            manifest = Manifest.from_dict(loaded.manifest, f"{tracking.model_name(problem.name)} v{loaded.version}")
            scores = named_outputs(loaded.model, test[manifest.feature_names], problem.kind)
            return metrics_for(problem.kind, test[LABEL].to_numpy("float64"), scores)["model"]

    return promote_version(problem.name, evaluate, metric, "maximize", force=force, version=version)


def _uplift_evaluation(project: Project, problem: str, challenger: int) -> Evaluate | None:
    """Both uplift models' Qini coefficient on the challenger's held-out campaigns (from
    the workspace's rows), or None (the metrics recorded at registration) without them."""
    held = tracking.version_tags(problem, challenger).get(TEST_CAMPAIGNS_TAG, "")
    path = project.workspace.dataset_path(problem)
    if not held or not path.exists():
        return None
    df = pd.read_parquet(path)
    test = df[df["campaign_id"].isin(held.split(","))]
    if test.empty:
        return None

    def evaluate(loaded: tracking.LoadedModel) -> dict[str, float]:
        scores = loaded.model.predict(test)
        return {"qini": qini_coefficient(scores, test[TREATMENT], test[LABEL])}

    return evaluate


def rollback_problem(project: Project, problem_name: str, version: int | None = None) -> tuple[str, int]:
    """``churnkit promote --rollback``: the problem's name and its champion version now."""
    name = project.problem_name(problem_name)
    project.open_tracking()
    return name, rollback(name, version)
