"""A problem's typed ``model:`` and ``tuning:`` blocks, and LightGBM's parameter names.

Unset estimator settings take the estimator's own defaults (sklearn style: one place), so
only what a problem YAML says is passed on.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, field_serializer, model_validator

from churnkit.config.base import M, StrictModel, parse_model
from churnkit.errors import ChurnkitError, ConfigError


@lru_cache(maxsize=1)
def _lightgbm_aliases() -> dict[str, str] | None:
    """alias -> canonical name, from LightGBM's own table (None if it cannot be read)."""
    try:
        from lightgbm.basic import _ConfigAliases

        table = _ConfigAliases._get_all_param_aliases()
    except (ImportError, AttributeError, RuntimeError):  # pragma: no cover - API moved
        return None
    out: dict[str, str] = {}
    for canonical, names in table.items():
        out[canonical] = canonical
        for n in names:
            out.setdefault(n, canonical)
    return out


def canonical_name(name: str, where: str = "params") -> str:
    """The canonical LightGBM name of ``name``; one-line error for an unknown name."""
    table = _lightgbm_aliases()
    if table is None:
        return name
    if name in table:
        return table[name]
    close = difflib.get_close_matches(name, list(table), n=1)
    hint = f" (did you mean '{table[close[0]]}'?)" if close else ""
    raise ChurnkitError(f"{where}: unknown LightGBM parameter '{name}'{hint}")


def canonical_params(params: Mapping[str, Any] | None, where: str = "params") -> dict[str, Any]:
    """``params`` keyed by canonical names; an error if two keys name the same parameter.

    LightGBM accepts many aliases for one parameter (``min_child_samples`` =
    ``min_data_in_leaf``): merging dicts by raw key would keep both and let LightGBM pick.
    """
    out: dict[str, Any] = {}
    given: dict[str, str] = {}
    for key, value in (params or {}).items():
        canon = canonical_name(str(key), where)
        if canon in given:
            raise ChurnkitError(
                f"{where}: '{key}' and '{given[canon]}' both set LightGBM parameter '{canon}'"
            )
        given[canon] = str(key)
        out[canon] = value
    return out



Calibration = Literal["auto", "isotonic", "sigmoid", "none"]
Base = Literal["linear_rfm", "none"]
"""What a boosted model starts from: a GLM on log recency, frequency and monetary value
(:mod:`churnkit.models.linear_base`), or a constant."""


class ClassifierSettings(StrictModel):
    """The ``model:`` block of a churn or purchase problem; unset values take the
    estimator's own defaults (:class:`~churnkit.models.classifier.PropensityClassifier`)."""

    params: dict[str, Any] = Field(default_factory=dict)
    """LightGBM parameters (any alias); tuned values override these."""
    n_estimators: int | None = Field(None, ge=1)
    """Upper bound on boosting rounds; early stopping usually ends sooner."""
    early_stopping_rounds: int | None = Field(None, ge=0)
    """0 turns early stopping off."""
    calibration: Calibration | None = None
    holdout: float | None = Field(None, ge=0.0, lt=1.0)
    """Random holdout fraction used only when fit gets no eval_set."""
    base: Base | None = None
    """``linear_rfm`` (default): boost from a logistic on the RFM columns; ``none``."""


class LTVSettings(StrictModel):
    """The ``model:`` block of a revenue problem; unset values take the estimator's own
    defaults (:class:`~churnkit.models.ltv.LTVModel`)."""

    params: dict[str, Any] = Field(default_factory=dict)
    """Further LightGBM parameters (any alias) for every part model; tuned values override."""
    variance_power: float | None = Field(None, gt=1.0, lt=2.0)
    quantiles: tuple[float, float] | None = None
    """The interval's quantiles (``ltv_low``, ``ltv_high``)."""
    n_estimators: int | None = Field(None, ge=1)
    learning_rate: float | None = Field(None, gt=0)
    num_leaves: int | None = Field(None, ge=2)
    min_child_samples: int | None = Field(None, ge=1)
    early_stopping_rounds: int | None = Field(None, ge=0)
    holdout: float | None = Field(None, gt=0.0, lt=1.0)
    tie_tol: float | None = Field(None, ge=0.0)
    base: Base | None = None
    """``linear_rfm`` (default): the Tweedie part boosts from a Tweedie GLM on the RFM columns."""
    n_jobs: int | None = None


Learner = Literal["t", "x", "dr"]
"""Meta-learners of an uplift problem (:mod:`churnkit.campaigns.uplift`)."""


class UpliftModelSettings(StrictModel):
    """The ``model:`` block of an uplift problem: the meta-learners that compete on the
    validation users (the best Qini is kept) and their LightGBM settings."""

    learners: list[Learner] = Field(default_factory=lambda: ["t", "x", "dr"], min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)
    """LightGBM parameters (any alias) over the learners' own regularised defaults."""
    validation_share: float = Field(0.3, gt=0.0, lt=1.0)
    """Share of the training campaigns' users (whole users) held out to choose the learner."""


def _checked_params(settings: M, origin: str) -> M:
    try:
        canonical_params(getattr(settings, "params", None), f"{origin}.params")
    except ChurnkitError as err:
        raise ConfigError(str(err)) from None
    return settings


def classifier_settings(model: Mapping[str, Any] | None, origin: str = "model") -> ClassifierSettings:
    """Parse a churn/purchase ``model`` block; one-line ConfigError naming the bad key."""
    return _checked_params(parse_model(dict(model or {}), ClassifierSettings, origin), origin)


def uplift_settings(model: Mapping[str, Any] | None, origin: str = "model") -> UpliftModelSettings:
    """Parse an uplift ``model`` block; one-line ConfigError naming the bad key."""
    return _checked_params(parse_model(dict(model or {}), UpliftModelSettings, origin), origin)


def ltv_settings(model: Mapping[str, Any] | None, origin: str = "model") -> LTVSettings:
    """Parse a revenue ``model`` block; one-line ConfigError naming the bad key."""
    return _checked_params(parse_model(dict(model or {}), LTVSettings, origin), origin)




class SearchParam(StrictModel):
    """One dimension of the search space."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> SearchParam:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs non-empty choices")
            if self.low is not None or self.high is not None or self.log:
                raise ValueError("a categorical parameter takes choices, not low/high/log")
            return self
        if self.choices is not None:
            raise ValueError(f"an {self.type} parameter takes low/high, not choices")
        if self.low is None or self.high is None:
            raise ValueError(f"an {self.type} parameter needs low and high")
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError("log scale needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("give either log or step, not both")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("an int parameter needs whole-number low and high")
        return self


class PrunerSettings(StrictModel):
    """Stops trials early on the running fold mean. Steps are folds."""

    type: Literal["median", "halving", "none"] = "median"
    n_startup_trials: int = Field(5, ge=0)
    """median: trials that always run to the end before pruning starts."""
    n_warmup_steps: int = Field(0, ge=0)
    """median: folds a trial always completes."""
    min_resource: int = Field(1, ge=1)
    """halving: folds before the first rung."""
    reduction_factor: int = Field(3, ge=2)
    """halving: keep the best 1/reduction_factor at each rung."""


METRICS: dict[str, Literal["minimize", "maximize"]] = {
    "log_loss": "minimize",
    "brier": "minimize",
    "roc_auc": "maximize",
    "pr_auc": "maximize",
    "rmse": "minimize",
    "mae": "minimize",
    "gini": "maximize",
    "qini": "maximize",
}
"""Metrics with a built-in scorer (``training.tuning.scorer``) and their direction."""

DEFAULT_METRIC: dict[str, str] = {"churn": "log_loss", "purchase": "log_loss", "revenue": "rmse", "uplift": "qini"}
"""log loss judges calibrated probabilities, not only ranking; RMSE the revenue scale; an
uplift model is chosen by its Qini coefficient on validation users."""


def _p(type_: str, low: float, high: float, log: bool = False) -> dict[str, Any]:
    return {"type": type_, "low": low, "high": high, "log": log}


DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "learning_rate": _p("float", 0.01, 0.2, log=True),
    "num_leaves": _p("int", 8, 128, log=True),
    "min_child_samples": _p("int", 10, 400, log=True),
    "feature_fraction": _p("float", 0.4, 1.0),
    "bagging_fraction": _p("float", 0.5, 1.0),
    "lambda_l2": _p("float", 1e-3, 30.0, log=True),
}
"""LightGBM's main capacity and regularisation knobs, in ranges that suit 10^3-10^6 rows."""


class TuningSettings(StrictModel):
    """The ``tuning:`` block of a problem (defaults per kind: :func:`tuning_settings`).

    ``space`` is the effective search space: the problem's entries merged over
    :data:`DEFAULT_SPACE`. It is written out with the defaults it dropped as ``null``, so
    the written settings read back the same.
    """

    n_trials: int = Field(30, ge=1)
    timeout_s: float | None = Field(None, gt=0)
    metric: str = "log_loss"
    direction: Literal["minimize", "maximize"] | None = None
    """Defaults to the metric's own direction."""
    space: dict[str, SearchParam] = Field(default_factory=dict)
    pruner: PrunerSettings = PrunerSettings()
    n_startup_trials: int = Field(10, ge=1)
    """TPE: random trials before the model of good/bad regions takes over."""

    @model_validator(mode="after")
    def _direction(self) -> TuningSettings:
        if self.direction is None:
            if self.metric not in METRICS:
                raise ValueError(
                    f"unknown metric '{self.metric}' (known: {', '.join(METRICS)}); "
                    "give 'direction' to use your own"
                )
            object.__setattr__(self, "direction", METRICS[self.metric])
        return self

    @field_serializer("space")
    def _space_with_drops(self, space: dict[str, SearchParam]) -> dict[str, Any]:
        dropped = {k: None for k in DEFAULT_SPACE if k not in space}
        return {**{k: v.model_dump() for k, v in space.items()}, **dropped}


def tuning_settings(
    kind: str, tuning: Mapping[str, Any] | None = None, origin: str = "tuning"
) -> TuningSettings:
    """Settings for a problem of ``kind`` from its ``tuning`` block; one-line ConfigError.

    ``space`` merges over :data:`DEFAULT_SPACE` by name; a name set to null drops it.
    Parameter names must be LightGBM parameters (any alias, each parameter once).
    """
    if kind not in DEFAULT_METRIC:
        raise ConfigError(f"{origin}: unknown problem kind '{kind}'")
    data = dict(tuning or {})
    user_space = data.pop("space", None) or {}
    if not isinstance(user_space, Mapping):
        raise ConfigError(f"{origin}: 'space' must be a mapping of parameter name to range")
    space = {**DEFAULT_SPACE, **user_space}
    space = {k: v for k, v in space.items() if v is not None}
    try:
        canonical_params(dict.fromkeys(space), f"{origin}.space")  # known names, each once
    except ChurnkitError as err:
        raise ConfigError(str(err)) from None
    data.setdefault("metric", DEFAULT_METRIC[kind])
    settings = parse_model({**data, "space": space}, TuningSettings, origin)
    if not settings.space:
        raise ConfigError(f"{origin}.space: nothing left to tune")
    return settings
