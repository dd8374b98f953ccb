"""``churnkit score``: pinned champions -> features at the as-of -> scores + JSON + MLflow run.

Also how the service gets its scorer: :func:`load_scorer` pins each configured problem's
``champion`` to a version once, so a promotion while a scorer lives changes nothing for it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnkit.datasets.labels import outcome_window_complete, realised_labels
from churnkit.datasets.manifest import Manifest
from churnkit.datasets.span import data_span
from churnkit.errors import ChurnkitError
from churnkit.flows.project import Project
from churnkit.io import tracking
from churnkit.io.artifacts import read_json, write_table_with_meta
from churnkit.io.workspace import scores_meta_path
from churnkit.scoring.explain import ReasonBasis
from churnkit.scoring.outcomes import churn_by_stage
from churnkit.scoring.scorer import RoleModel, Scorer
from churnkit.scoring.segments import RFMSegmenter
from churnkit.scoring.stages import StageCuts
from churnkit.scoring.summary import score_summary, summary_metrics


@dataclass
class ScoringOutcome:
    scores: pd.DataFrame
    path: Path
    meta_path: Path
    meta: dict[str, Any]
    run_id: str | None


def load_scorer(project: Project, segmenter: RFMSegmenter | None = None, stages: StageCuts | None = None,
                reason_basis: ReasonBasis | None = None, roles: tuple[str, ...] | None = None,
                versions: Mapping[str, int] | None = None) -> Scorer:
    """Open the MLflow store and load each configured problem's champion (or those of
    ``roles`` only; or the role's version in ``versions``, e.g. the one a scores file was
    made with), pinned (with what a scoring run fitted, see :func:`stored_fit`, when given)."""
    settings = project.config.scoring
    project.open_tracking()
    models = {}
    for role, problem in configured_problems(project).items():
        if roles is not None and role not in roles:
            continue
        try:
            loaded = tracking.load_model(problem, alias=tracking.CHAMPION, version=(versions or {}).get(role))
        except ChurnkitError as err:
            raise ChurnkitError(
                f"{settings.setting(role)}: {err}; or set scoring.{role} in the project config to a problem with a"
                f" champion, or to null to score without {role}"
            ) from None
        name = f"{role} model {tracking.model_name(problem)} v{loaded.version}"
        if not loaded.manifest:
            raise ChurnkitError(f"{name} has no feature manifest; retrain it with churnkit train --problem {problem}")
        manifest = Manifest.from_dict(loaded.manifest, name)
        models[role] = RoleModel(role, problem, loaded.version, loaded.model, manifest)
    return Scorer(models, settings, segmenter, stages, reason_basis)


def scores_on_days(project: Project, rows: pd.DataFrame, columns: Sequence[str],
                   roles: tuple[str, ...] | None = None) -> pd.DataFrame:
    """``columns`` of the score row of each row's ``user_id`` as of its ``day`` (a date), by
    the champions (of ``roles`` only, when given): features strictly before that midnight, so
    nothing of the day itself leaks in. Indexed like ``rows``; NaN for a user with no history
    then. Raises a ChurnkitError when a champion is missing. ``attrs["models"]`` names them."""
    scorer = load_scorer(project, roles=roles)
    events, users = project.tables()
    out = pd.DataFrame(np.nan, index=rows.index, columns=list(columns), dtype="float64")
    ids = rows["user_id"].astype(str)
    for day in sorted(set(rows["day"])):
        scores = scorer.score_as_of(events, users, day, reasons=0)  # the scores alone: no SHAP
        scores = scores.set_index(scores["user_id"].astype(str))
        at = (rows["day"] == day).to_numpy()
        for c in columns:
            if c in scores.columns:
                out.loc[at, c] = ids[at].map(scores[c]).to_numpy(dtype="float64", na_value=np.nan)
    out.attrs["models"] = ", ".join(f"{m.problem} v{m.version}" for m in scorer.models.values())
    return out


def configured_problems(project: Project) -> dict[str, str]:
    """Role -> registered problem name for each role under ``scoring:`` (a YAML path there
    is read for its ``name``)."""
    settings = project.config.scoring
    out = {}
    for role in settings.roles:
        try:
            out[role] = project.problem_name(str(settings.problem_of(role)))
        except ChurnkitError as err:  # a YAML path that cannot be read
            raise ChurnkitError(f"{settings.setting(role)}: {err}") from None
    return out


def champion_versions(project: Project, problems: dict[str, str]) -> dict[str, int]:
    """The versions the ``champion`` aliases point at now (cheap: no model download)."""
    project.open_tracking()
    return {role: tracking.resolve_version(p) for role, p in problems.items()}


def stored_fit(scores: Path | None) -> dict[str, Any]:
    """What the scoring run behind a scores file fitted on its population (RFM cut points,
    lifecycle cuts, the medians reasons quote), as :func:`load_scorer` arguments, so a
    single user is tiered, staged and explained exactly as that run did it (empty without
    a file)."""
    meta_path = None if scores is None else scores_meta_path(scores)
    if meta_path is None or not meta_path.exists():
        return {}
    meta = read_json(meta_path, "scores meta")
    return {
        "segmenter": RFMSegmenter.from_dict(meta["rfm"]) if meta.get("rfm") else None,
        "stages": StageCuts.from_dict(meta["stages"]) if meta.get("stages") else None,
        "reason_basis": ReasonBasis.from_dict(meta["reasons"]) if meta.get("reasons") else None,
    }


def realised_outcomes(scorer: Scorer, events: Any, scores: pd.DataFrame, as_of: dt.date,
                      end: dt.date) -> dict[str, Any] | None:
    """Realised churn by lifecycle stage when the log reaches the churn horizon past ``as_of``
    (None without a churn model or before the window is complete)."""
    churn = scorer.models.get("churn")
    if churn is None or "lifecycle_stage" not in scores or not outcome_window_complete(
            as_of, churn.spec.horizon_days, end):
        return None
    churned = realised_labels(events, churn.spec, as_of, scores["user_id"])
    return churn_by_stage(scores["lifecycle_stage"], churned, churn.spec.horizon_days)


def data_end(project: Project) -> dt.date:
    """The day after the last event: the default as-of date."""
    events, _ = project.tables()
    return data_span(events).end


def score(
    project: Project,
    as_of: dt.date | None = None,
    *,
    out: Path | None = None,
    log_run: bool = True,
    progress: Callable[[str], None] | None = None,
) -> ScoringOutcome:
    """Score everyone with history at ``as_of`` (default: the data end) and write the scores."""
    say = progress or (lambda _m: None)
    settings = project.config.scoring
    say("loading champions")
    scorer = load_scorer(project)
    events, users = project.tables()
    end = data_span(events).end
    as_of = as_of or end
    start = time.perf_counter()
    scores = scorer.score_as_of(events, users, as_of, progress=say)
    seconds = time.perf_counter() - start
    summary = score_summary(scores)
    if scorer.stages is not None:
        summary["stage_cuts"] = scorer.stages.to_dict()
    say("outcomes")
    realised = realised_outcomes(scorer, events, scores, as_of, end)
    if realised is not None:
        summary["realised_churn"] = realised
    meta: dict[str, Any] = {
        "as_of": as_of.isoformat(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "versions": scorer.versions,
        "rfm": scorer.segmenter.to_dict() if scorer.segmenter else None,
        "stages": scorer.stages.to_dict() if scorer.stages else None,
        "reasons": scorer.reason_basis.to_dict() if scorer.reason_basis else None,
        "settings": settings.model_dump(mode="json"),
        "summary": summary,
        "seconds": round(seconds, 3),
    }
    run_id = None
    if log_run:
        say("logging")
        with tracking.scoring_run(f"score-{as_of.isoformat()}", tags={"churnkit.as_of": as_of.isoformat()}) as run:
            tracking.log_params({"as_of": as_of.isoformat(), "versions": scorer.versions,
                                 "reasons": settings.reasons, "reasons_for": settings.reasons_for})
            tracking.log_metrics(summary_metrics(summary) | {"seconds": seconds})
            tracking.log_json(meta, "scoring/meta.json")
            run_id = run.run_id
        meta["mlflow_run_id"] = run_id
    target = Path(out) if out else project.workspace.scores_path(as_of)
    path, mpath = write_table_with_meta(scores, meta, target, scores_meta_path(target))
    return ScoringOutcome(scores, path, mpath, meta, run_id)
