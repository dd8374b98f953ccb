"""``churnkit target``: a campaign-target list from an uplift model under a budget.

Candidates are the users the uplift problem is about at the as-of date (activity within its
look-back, features from the same feature code as its training rows). Each gets the model's
estimated effect of a contact, a value per unit of effect, the channel's contact cost, and
reasons (the features that raise the estimate most); :func:`churnkit.campaigns.targeting.target`
picks the list. Context from the scores at the same date (churn probability, LTV, tier,
stage) is added when they exist, so the list reads like the risk list.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from churnkit.campaigns.targeting import COST, UPLIFT, VALUE, Budget, target
from churnkit.contracts import ROLE_OUTPUTS
from churnkit.datasets.build import HISTORY_DAYS, SINCE_LAST_ACTIVITY, scoring_features
from churnkit.datasets.eligibility import eligible
from churnkit.datasets.manifest import Manifest
from churnkit.datasets.span import data_span
from churnkit.errors import ChurnkitError
from churnkit.flows.lists import pseudonym_key
from churnkit.flows.project import Project
from churnkit.io import tracking
from churnkit.io.artifacts import list_format, publish, to_json, write_list
from churnkit.scoring.explain.facts import Explainer
from churnkit.scoring.explain.reasons import reason_codes, reasons_frame
from churnkit.scoring.lists import with_pseudonyms

LTV_COLUMN = ROLE_OUTPUTS["ltv"]["score"]
CONTEXT = ("churn_probability", LTV_COLUMN, "value_at_risk", "rfm_tier", "lifecycle_stage")
"""Score columns copied onto the list when the as-of date has scores."""


@dataclass
class TargetOutcome:
    frame: pd.DataFrame
    path: Path
    meta_path: Path
    summary: dict[str, Any]
    as_of: dt.date
    model: str


def uplift_model(project: Project, problem: str, version: int | None) -> tracking.LoadedModel:
    """The problem's champion, else its latest challenger (or the version asked for)."""
    project.open_tracking()
    held = tracking.aliases(problem)
    if version is None and not held:
        raise ChurnkitError(f"no registered model churnkit-{problem}; run churnkit train --problem {problem}")
    alias = None if version is not None else (tracking.CHAMPION if tracking.CHAMPION in held else "challenger")
    loaded = tracking.load_model(problem, alias=alias, version=version)
    if not loaded.manifest or Manifest.from_dict(loaded.manifest, problem).label.kind != "uplift":
        raise ChurnkitError(f"churnkit-{problem} v{loaded.version} is not an uplift model; target needs one "
                            "(a problem of kind uplift)")
    return loaded


def values(project: Project, outcome: str, users: pd.Series, as_of: dt.date) -> tuple[pd.Series, str]:
    """What one unit of the effect is worth per user, and where that came from."""
    if outcome == "revenue":
        return pd.Series(1.0, index=users.index), "the effect is net revenue"
    per = project.config.targeting.value_per_success
    if per is not None:
        return pd.Series(per, index=users.index), f"targeting.value_per_success = {per:g}"
    path = project.workspace.scores_path(as_of)
    if not path.exists():
        raise ChurnkitError(f"a {outcome} uplift needs a value per user: set targeting.value_per_success in the "
                            f"project config, or score {as_of} first (churnkit score --as-of {as_of}) for predicted_ltv")
    scores = pd.read_parquet(path, columns=["user_id", LTV_COLUMN]) if LTV_COLUMN in _columns(path) else None
    if scores is None:
        raise ChurnkitError(f"the scores of {as_of} have no {LTV_COLUMN} (no LTV model): set "
                            "targeting.value_per_success in the project config")
    ltv = users.astype(str).map(scores.set_index(scores["user_id"].astype(str))[LTV_COLUMN])
    return ltv.fillna(0.0), f"each user's {LTV_COLUMN} from the scores of {as_of}"


def _columns(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_schema(path).names


def run_target(
    project: Project, problem: str, *, contacts: int | None = None, money: float | None = None,
    channel: str | None = None, cost: float | None = None, as_of: dt.date | None = None,
    version: int | None = None, fmt: str | None = None, out: Path | None = None, pseudonymise: bool = False,
) -> TargetOutcome:
    """Load the model, estimate every candidate's effect, pick the list and write it."""
    settings = project.config.targeting
    budget = Budget(contacts, money)
    chosen_fmt = list_format(fmt, out)
    key = pseudonym_key(project.config.scoring.pseudonym_key_env) if pseudonymise else None
    channel = channel or settings.channel
    if cost is None:
        if channel not in settings.contact_cost:
            raise ChurnkitError(f"no contact cost for channel {channel!r}: give --cost, or add it to "
                                f"targeting.contact_cost (known: {', '.join(settings.contact_cost)})")
        cost = settings.contact_cost[channel]
    elif cost < 0:
        raise ChurnkitError(f"--cost must not be negative, got {cost}")
    spec = project.problem(problem)
    if spec.kind != "uplift" or spec.uplift is None:
        raise ChurnkitError(f"{problem} is a {spec.kind} problem; churnkit target needs an uplift problem")
    loaded = uplift_model(project, spec.name, version)
    manifest = Manifest.from_dict(loaded.manifest or {}, spec.name)
    events, users = project.tables()
    date = as_of or data_span(events).end
    data_span(events).check_as_of(date)
    feats = scoring_features(events, users, manifest, date)
    feats = feats[eligible(feats[SINCE_LAST_ACTIVITY], feats[HISTORY_DAYS], manifest.problem)].reset_index(drop=True)
    if feats.empty:
        raise ChurnkitError(f"nobody was active in the {manifest.problem.lookback_days} days before {date}")
    X = feats[manifest.feature_names]
    cand = pd.DataFrame({"user_id": feats["user_id"].astype(str), UPLIFT: loaded.model.predict(X)})
    cand[VALUE], value_source = values(project, spec.uplift.outcome, cand["user_id"], date)
    cand[COST] = float(cost)
    cand["channel"] = channel
    chosen, summary = target(cand, budget)
    chosen = _with_reasons(chosen, feats, loaded.model, manifest, settings.reasons)
    chosen = _with_context(project, chosen, date)
    model_name = f"{tracking.model_name(spec.name)} v{loaded.version}"
    summary |= {"as_of": date.isoformat(), "model": model_name, "outcome": spec.uplift.outcome,
                "horizon_days": spec.horizon_days, "channel": channel, "contact_cost": float(cost),
                "value": value_source}
    shown = with_pseudonyms(chosen, key) if key is not None else chosen
    path = write_list(shown, Path(out) if out else project.workspace.list_path(f"target_{spec.name}", date, chosen_fmt),
                      chosen_fmt)
    meta_path = path.with_name(path.name + ".json")
    with publish({"meta": meta_path}) as staged:
        staged["meta"].write_text(to_json(summary), encoding="utf-8")
    return TargetOutcome(chosen, path, meta_path, summary, date, model_name)


def _with_reasons(chosen: pd.DataFrame, feats: pd.DataFrame, model: Any, manifest: Manifest, top: int) -> pd.DataFrame:
    """``reason_1..top``: what raises each chosen user's estimated effect (SHAP of the model's surrogate)."""
    if top == 0 or chosen.empty:
        return chosen
    X = feats.set_index(feats["user_id"].astype(str)).loc[chosen["user_id"], manifest.feature_names].reset_index(drop=True)
    reasons = reason_codes(X, model.contributions(X), Explainer.for_manifest(manifest), top=top, direction="up")
    return pd.concat([chosen.reset_index(drop=True), reasons_frame(reasons, top)], axis=1)


def _with_context(project: Project, chosen: pd.DataFrame, as_of: dt.date) -> pd.DataFrame:
    path = project.workspace.scores_path(as_of)
    if not path.exists() or chosen.empty:
        return chosen
    cols = [c for c in CONTEXT if c in _columns(path)]
    scores = pd.read_parquet(path, columns=["user_id", *cols]).astype({"user_id": str})
    return chosen.merge(scores, on="user_id", how="left")
