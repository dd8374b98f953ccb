"""Statistics of a campaign A/B test over one row per assigned user.

The input is a pandas DataFrame with a variant column (``variant`` by default), one numeric
column per outcome metric (retained 0/1, revenue, opt-out 0/1, ...) and, optionally,
pre-assignment covariates (the same metric measured before the campaign) for CUPED.
Every assigned user is a row, whether or not they did anything: a metric is a mean over
the users the campaign was *assigned* to (intention to treat), so missing values are an
error here, not rows to drop.

What comes from tea-tasting (the project's A/B library) and what is ours:

- tea-tasting: the comparison of means (:class:`tea_tasting.Mean`; Welch's t with the
  Welch-Satterthwaite degrees of freedom), ratio metrics (:class:`tea_tasting.RatioOfMeans`,
  delta method), CUPED (one covariate per metric, its coefficient pooled over both arms),
  the relative effect's interval (delta method on the log of the ratio of means, so it is
  asymmetric) and the multiple-comparison adjustments (:func:`tea_tasting.adjust_fwer`,
  :func:`tea_tasting.adjust_fdr`). Per-arm counts, means, variances and covariances are
  computed here with numpy and handed to ``analyze_aggregates``: the same numbers, without
  a dataframe round-trip per comparison.
- here: the sample-ratio-mismatch check (chi-square), the effect's standard error, the
  CUPED coefficient and variance reduction (from the same aggregates, by tea-tasting's
  formulas), the minimum detectable effect (closed form), always-valid intervals for
  peeking (normal mixture), the non-inferiority verdict for guardrails and the tidy table.

Nothing here reads files or knows about engines or MLflow.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
import tea_tasting as tt
from scipy import stats
from tea_tasting.aggr import Aggregates
from tea_tasting.experiment import ExperimentResult

from churnkit.config import Design
from churnkit.errors import ChurnkitError

SRM_THRESHOLD = 0.001
"""p-value below which a sample ratio mismatch is declared (the usual, deliberately strict,
level: the check runs on every campaign and should rarely fire by chance)."""

BLOCKED = "blocked: sample ratio mismatch"
DESCRIPTIVE = "not randomised: descriptive only"
"""The verdict of every row of a targeted campaign: its arms were chosen, not drawn, so a
difference between them is not the campaign's effect and no test result is read as one."""

Correction = Literal["holm", "hochberg", "bh", "by", "none"]
Direction = Literal["higher_is_worse", "lower_is_worse"]
Verdict = Literal["pass", "fail", "inconclusive"]
FloatOrArray = float | np.ndarray

TABLE_COLUMNS: tuple[str, ...] = (
    "campaign_id", "metric", "variant", "n", "mean", "control_n", "control_mean",
    "effect", "se", "ci_low", "ci_high", "rel_effect", "rel_ci_low", "rel_ci_high",
    "p_value", "p_value_adjusted", "srm_p_value", "srm_failed", "covariate", "theta",
    "variance_reduction", "mde", "rel_mde", "non_inferiority", "verdict", "design",
)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class SrmResult:
    """Observed arm sizes against the designed split (chi-square goodness of fit)."""

    observed: dict[Hashable, int]
    expected: dict[Hashable, float]
    p_value: float
    threshold: float
    failed: bool


@dataclass(frozen=True)
class Effect:
    """One treatment arm against control on one metric.

    ``mean``/``control_mean`` are the raw arm means (what a reader expects to see);
    ``effect`` is treatment minus control, CUPED-adjusted when ``covariate`` is set (then
    it can differ slightly from ``mean - control_mean``, by ``theta`` times the arms'
    chance difference in the covariate). ``se`` is the effect's standard error (Welch),
    ``ci_*`` the two-sided ``1 - alpha`` interval, ``rel_*`` the effect relative to the
    control mean. ``mde`` is the smallest true effect this sample detects with the
    requested power. ``theta`` and ``variance_reduction`` are NaN without a covariate.
    """

    metric: str
    variant: Hashable
    n: int
    mean: float
    control_n: int
    control_mean: float
    effect: float
    se: float
    ci_low: float
    ci_high: float
    rel_effect: float
    rel_ci_low: float
    rel_ci_high: float
    p_value: float
    p_value_adjusted: float
    mde: float
    covariate: str | None
    theta: float
    variance_reduction: float


# --------------------------------------------------------------------------- SRM


def srm_test(counts: Mapping[Hashable, int],
             expected_shares: Mapping[Hashable, float] | None = None,
             threshold: float = SRM_THRESHOLD) -> SrmResult:
    """Chi-square test that the arms' sizes match the designed split.

    A mismatch means users were lost or added unevenly (an assignment or logging bug, a
    redirect that drops some, bots filtered in one arm only), so every comparison between
    the arms is suspect: callers block verdicts on it instead of adjusting them.
    ``expected_shares`` defaults to an equal split; shares need not sum to 1. A variant in
    the design with no users counts as 0 observed (the strongest mismatch).
    """
    _check_probability(threshold, "SRM threshold")
    if expected_shares is None:
        if len(counts) < 2:
            raise ChurnkitError(f"SRM test needs at least two variants, got {_labels(counts)}")
        shares = dict.fromkeys(counts, 1.0)
    else:
        shares = {k: float(v) for k, v in expected_shares.items()}
        unknown = [v for v in counts if v not in shares]
        if unknown:
            raise ChurnkitError(f"variants {_labels(unknown)} have users but no expected "
                                f"share (design: {_labels(shares)})")
        if len(shares) < 2:
            raise ChurnkitError(f"SRM test needs at least two variants, got {_labels(shares)}")
    if any(not math.isfinite(s) or s <= 0 for s in shares.values()):
        raise ChurnkitError(f"expected shares must be positive numbers, got {shares}")
    observed = {v: int(counts.get(v, 0)) for v in shares}
    if any(c < 0 for c in observed.values()) or sum(observed.values()) == 0:
        raise ChurnkitError(f"variant counts must be non-negative with some users: {observed}")
    total, share_sum = sum(observed.values()), sum(shares.values())
    expected = {v: total * s / share_sum for v, s in shares.items()}
    p = float(stats.chisquare(list(observed.values()), list(expected.values())).pvalue)
    return SrmResult(observed, expected, p, threshold, p < threshold)


# --------------------------------------------------------------------------- effects


def effects(data: pd.DataFrame, metric: str, control: Hashable,
            variants: Sequence[Hashable] | None = None, *, covariate: str | None = None,
            ratio_of: str | None = None, alpha: float = 0.05, power: float = 0.8,
            correction: Correction = "holm", variant_col: str = "variant") -> list[Effect]:
    """Each non-control variant against ``control`` on ``metric`` (tea-tasting's Welch test).

    ``covariate``: a pre-assignment column for CUPED (Deng et al. 2013); the outcome is
    replaced by ``Y - theta (X - mean X)`` with ``theta = cov(Y, X) / var(X)`` pooled over
    both arms, which keeps the effect unbiased (X is independent of assignment) and
    shrinks its variance by about ``corr(Y, X)^2``. ``ratio_of``: a denominator column for
    a ratio metric (sum of ``metric`` over sum of ``ratio_of``, e.g. orders per session),
    analysed by the delta method. ``variants`` defaults to every other variant in the
    data. ``p_value_adjusted`` is adjusted over the variants of this call
    (``correction``); :func:`results_table` re-adjusts over all metrics and variants.
    """
    _check_probability(alpha, "alpha")
    _check_probability(power, "power")
    columns = [c for c in (metric, ratio_of, covariate) if c is not None]
    if len(set(columns)) < len(columns):
        raise ChurnkitError(f"metric {metric!r}: metric, ratio_of and covariate must be "
                            f"different columns, got {columns}")
    arms = _arms(data, variant_col, columns)
    treated = _treated(arms, control, variants, variant_col)
    spec = _spec(metric, ratio_of, covariate, alpha)
    control_aggr = _aggregates(arms[control], columns)
    rows = [_compare(spec, v, control_aggr, _aggregates(arms[v], columns), alpha, power)
            for v in treated]
    adjusted = adjust([r.p_value for r in rows], correction)
    return [replace(r, p_value_adjusted=p) for r, p in zip(rows, adjusted, strict=True)]


def _spec(metric: str, ratio_of: str | None, covariate: str | None,
          alpha: float) -> tt.RatioOfMeans:
    """tea-tasting's metric, every option explicit so its global config cannot leak in."""
    return tt.RatioOfMeans(metric, ratio_of, covariate, None, alternative="two-sided",
                           confidence_level=1 - alpha, equal_var=False, use_t=True)


def _compare(spec: tt.RatioOfMeans, variant: Hashable, control: Aggregates,
             treatment: Aggregates, alpha: float, power: float) -> Effect:
    res = spec.analyze_aggregates(control, treatment)
    y, d, x = spec.numer, spec.denom, spec.numer_covariate
    c, t = control.with_zero_div(), treatment.with_zero_div()
    theta = _theta((control + treatment).with_zero_div(), y, d, x) if x is not None else 0.0
    se = _effect_se(c, t, y, d, x, theta)
    se_raw = _effect_se(c, t, y, d, None, 0.0)
    variance_reduction = 1 - se**2 / se_raw**2 if x is not None and se_raw > 0 else math.nan
    return Effect(
        metric=y, variant=variant, n=t.count(), mean=float(t.mean(y) / t.mean(d)),
        control_n=c.count(), control_mean=float(c.mean(y) / c.mean(d)),
        effect=float(res.effect_size), se=se,
        ci_low=float(res.effect_size_ci_lower), ci_high=float(res.effect_size_ci_upper),
        rel_effect=float(res.rel_effect_size), rel_ci_low=float(res.rel_effect_size_ci_lower),
        rel_ci_high=float(res.rel_effect_size_ci_upper), p_value=float(res.pvalue),
        p_value_adjusted=math.nan, mde=_mde_from_se(se, alpha, power), covariate=x,
        theta=float(theta) if x is not None else math.nan,
        variance_reduction=float(variance_reduction),
    )


def _theta(total: Aggregates, y: str, d: str | None, x: str) -> float:
    """CUPED coefficient over both arms pooled: tea-tasting's own formula (delta method)."""
    var_x = total.ratio_var(x, None)
    return float(total.ratio_cov(y, d, x, None) / var_x) if var_x else 0.0


def _effect_se(c: Aggregates, t: Aggregates, y: str, d: str | None, x: str | None,
               theta: float) -> float:
    """Welch standard error of the (CUPED-adjusted) difference, as tea-tasting computes it."""
    def per_user_var(a: Aggregates) -> float:
        return (a.ratio_var(y, d) + theta * theta * a.ratio_var(x, None)
                - 2 * theta * a.ratio_cov(y, d, x, None))
    return float(math.sqrt(per_user_var(c) / c.count() + per_user_var(t) / t.count()))


def _aggregates(values: np.ndarray, columns: Sequence[str]) -> Aggregates:
    """Count, means, sample variances and covariances (ddof 1) of one arm's columns."""
    means = values.mean(axis=0)
    cov = np.atleast_2d(np.cov(values, rowvar=False, ddof=1))
    k = len(columns)
    return Aggregates(
        count_=len(values),
        mean_={col: float(means[i]) for i, col in enumerate(columns)},
        var_={col: float(cov[i, i]) for i, col in enumerate(columns)},
        cov_={(columns[i], columns[j]): float(cov[i, j])
              for i in range(k) for j in range(i + 1, k)},
    )


def _arms(data: pd.DataFrame, variant_col: str,
          columns: Sequence[str]) -> dict[Hashable, np.ndarray]:
    """Each variant's rows of ``columns`` as a float array, after checking the inputs."""
    labels = _variant_labels(data, variant_col)
    for col in columns:
        _check_numeric_column(data, col)
    values = data[list(columns)].to_numpy(dtype="float64")
    codes, uniques = pd.factorize(labels, sort=True)
    return {u: values[codes == i] for i, u in enumerate(uniques.tolist())}


def _variant_labels(data: pd.DataFrame, variant_col: str) -> pd.Series:
    if variant_col not in data.columns:
        raise ChurnkitError(f"variant column {variant_col!r} not in the data "
                            f"(columns: {', '.join(map(str, data.columns))})")
    labels = data[variant_col]
    if len(labels) == 0:
        raise ChurnkitError("no users in the A/B data")
    missing = int(labels.isna().sum())
    if missing:
        raise ChurnkitError(f"{missing} users have no {variant_col!r}; every row must be "
                            "an assigned user")
    return labels


def _check_numeric_column(data: pd.DataFrame, col: str) -> None:
    if col not in data.columns:
        raise ChurnkitError(f"metric column {col!r} not in the data "
                            f"(columns: {', '.join(map(str, data.columns))})")
    series = data[col]
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        raise ChurnkitError(f"column {col!r} must be numeric (or 0/1, true/false), "
                            f"got {series.dtype}")
    bad = int((~np.isfinite(series.to_numpy(dtype="float64", na_value=np.nan))).sum())
    if bad:
        raise ChurnkitError(f"column {col!r} has {bad} missing or infinite values; every "
                            "assigned user needs a value (0 when they did nothing)")


def _treated(arms: Mapping[Hashable, np.ndarray], control: Hashable,
             variants: Sequence[Hashable] | None, variant_col: str) -> list[Hashable]:
    """The variants compared with control, after checking each arm can be analysed."""
    if len(arms) < 2:
        raise ChurnkitError(f"an A/B test needs at least two variants in {variant_col!r}, "
                            f"found only {_labels(arms)}")
    if control not in arms:
        raise ChurnkitError(f"control variant {control!r} not in {variant_col!r} "
                            f"(variants: {_labels(arms)})")
    if isinstance(variants, str):
        raise ChurnkitError(f"variants must be a list of variants, got the string {variants!r}")
    treated = [v for v in arms if v != control] if variants is None else list(variants)
    unknown = [v for v in treated if v not in arms]
    if unknown or control in treated or not treated:
        raise ChurnkitError(f"variants to compare must be non-control variants of the data "
                            f"(asked {_labels(treated)}, data has {_labels(arms)}, "
                            f"control {control!r})")
    small = [v for v in [control, *treated] if len(arms[v]) < 2]
    if small:
        sizes = ", ".join(f"{v!r}: {len(arms[v])}" for v in small)
        raise ChurnkitError(f"each variant needs at least 2 users ({sizes})")
    return treated


# --------------------------------------------------------------------------- corrections


def adjust(p_values: Sequence[float], method: Correction = "holm") -> list[float]:
    """p-values adjusted for testing many variants x metrics at once (tea-tasting).

    ``holm``: Holm-Bonferroni step-down, controls the family-wise error rate under any
    dependence (the default: metrics of one campaign are correlated). ``hochberg``:
    Hochberg's step-up, more power, assumes non-negative dependence. ``bh``/``by``:
    Benjamini-Hochberg / -Yekutieli false discovery rate. ``none``: unchanged. NaN
    p-values stay NaN and do not count towards the family.
    """
    ps = [float(p) for p in p_values]
    if method not in ("holm", "hochberg", "bh", "by", "none"):
        raise ChurnkitError(f"unknown correction {method!r} (holm, hochberg, bh, by, none)")
    if any(not 0 <= p <= 1 for p in ps if not math.isnan(p)):
        raise ChurnkitError(f"p-values must lie in [0, 1], got {ps}")
    family = {i: {"pvalue": p} for i, p in enumerate(ps) if not math.isnan(p)}
    if method == "none" or not family:
        return ps
    adjusted = next(iter(_tea_adjust(ExperimentResult(family), method).values()))
    return [float(adjusted[i]["pvalue_adj"]) if i in family else math.nan
            for i in range(len(ps))]


def _tea_adjust(result: ExperimentResult, method: Correction) -> Mapping[object, ExperimentResult]:
    if method == "holm":
        return tt.adjust_fwer(result, arbitrary_dependence=True, method="bonferroni")
    if method == "hochberg":
        return tt.adjust_fwer(result, arbitrary_dependence=False, method="bonferroni")
    return tt.adjust_fdr(result, arbitrary_dependence=method == "by")


# --------------------------------------------------------------------------- power


def mde(control_sd: float, n_control: int, n_treatment: int, alpha: float = 0.05,
        power: float = 0.8) -> float:
    """Minimum detectable effect: the smallest true difference in means that a two-sided
    test at ``alpha`` finds with probability ``power``.

    ``(z_{1-alpha/2} + z_{power}) * sd * sqrt(1/n_control + 1/n_treatment)`` (normal
    approximation, the same sd in both arms). For a proportion ``p`` pass
    ``sd = sqrt(p (1 - p))``: 1,000 users per arm at p = 0.2 detect 0.050 (5 points).
    Divide by the control mean for a relative MDE.
    """
    _check_probability(alpha, "alpha")
    _check_probability(power, "power")
    if not (math.isfinite(control_sd) and control_sd >= 0):
        raise ChurnkitError(f"control_sd must be a non-negative number, got {control_sd}")
    if n_control < 1 or n_treatment < 1:
        raise ChurnkitError(f"MDE needs users in both arms, got {n_control} and {n_treatment}")
    return _mde_from_se(control_sd * math.sqrt(1 / n_control + 1 / n_treatment), alpha, power)


def _mde_from_se(se: float, alpha: float, power: float) -> float:
    return float((stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power)) * se)


# --------------------------------------------------------------------------- sequential


def sequential_interval(effect: FloatOrArray, se: FloatOrArray, alpha: float = 0.05, *,
                        tau2: float) -> tuple[FloatOrArray, FloatOrArray]:
    """Always-valid ``1 - alpha`` interval for a difference in means: safe to read at any
    look, as often as wanted, and to stop on (a confidence sequence).

    The normal-mixture sequential probability ratio test (mSPRT) of Johari, Koomen,
    Pekelis & Walsh, "Always valid inference" (Operations Research 2022; arXiv 2015) and
    the normal-mixture boundary of Howard, Ramdas, McAuliffe & Sekhon, "Time-uniform,
    nonparametric, nonasymptotic confidence sequences" (Annals of Statistics 2021).
    Derivation: with ``V = se^2`` the effect estimate's variance, ``Z = (effect - d) / V``
    is, in information time ``1/V``, a Gaussian random walk under true effect ``d``, so
    ``exp(l Z - l^2 / (2V))`` is a martingale for every ``l``; mixing ``l ~ N(0, tau2)``
    gives the martingale ``sqrt(V / (V + tau2)) exp(tau2 (effect - d)^2 / (2 V (V + tau2)))``.
    By Ville's inequality it exceeds ``1/alpha`` at *any* look with probability at most
    ``alpha``, so the set of ``d`` where it stays below is::

        effect +- se * sqrt((se^2 + tau2) / tau2 * (2 log(1/alpha) + log((se^2 + tau2) / se^2)))

    ``tau2`` (the mixing variance, in squared effect units) must be fixed before the test,
    not re-tuned per look: :func:`mixing_variance` of the standard error expected at the
    planned end gives the narrowest interval there. Valid for large samples (normal
    estimate, variance estimated); works elementwise on numpy arrays.
    """
    _check_probability(alpha, "alpha")
    if not (math.isfinite(tau2) and tau2 > 0):
        raise ChurnkitError(f"tau2 (mixing variance) must be a positive number, got {tau2}")
    v = np.asarray(se, dtype="float64") ** 2
    if np.any(~(v > 0)):
        raise ChurnkitError("standard errors must be positive numbers")
    half = np.sqrt(v * (v + tau2) / tau2 * (2 * math.log(1 / alpha) + np.log((v + tau2) / v)))
    est = np.asarray(effect, dtype="float64")
    low, high = est - half, est + half
    if np.ndim(low) == 0:
        return float(low), float(high)
    return low, high


def mixing_variance(planned_se: float, alpha: float = 0.05) -> float:
    """The ``tau2`` that makes :func:`sequential_interval` narrowest when the standard error
    is ``planned_se`` (the one expected at the planned end of the test).

    Minimising the half-width over ``r = tau2 / se^2`` gives ``r = 2 log(1/alpha) +
    log(1 + r)`` (r ~ 8.2 at alpha = 0.05), solved by fixed-point iteration (a contraction).
    """
    _check_probability(alpha, "alpha")
    if not (math.isfinite(planned_se) and planned_se > 0):
        raise ChurnkitError(f"planned standard error must be positive, got {planned_se}")
    r = 2 * math.log(1 / alpha)
    for _ in range(100):
        r = 2 * math.log(1 / alpha) + math.log1p(r)
    return r * planned_se**2


# --------------------------------------------------------------------------- guardrails


def non_inferior(ci_low: float, ci_high: float, margin: float,
                 direction: Direction = "higher_is_worse") -> Verdict:
    """Verdict on a guardrail: is the campaign's harm on this metric at most ``margin``?

    ``margin`` is the largest tolerable harm, a non-negative number in the metric's units
    (0.002 = two opt-outs per thousand users). For ``higher_is_worse`` metrics (opt-outs,
    tickets, refunds) it is ``pass`` when the effect's upper bound is below ``margin``
    (harm beyond the margin ruled out), ``fail`` when the lower bound is above it (harm
    beyond the margin shown) and ``inconclusive`` otherwise (more users needed).
    ``lower_is_worse`` (revenue, retention) mirrors it around ``-margin``. Use the
    two-sided ``1 - alpha`` interval, i.e. a one-sided test at ``alpha / 2``.
    """
    if not (math.isfinite(margin) and margin >= 0):
        raise ChurnkitError(f"non-inferiority margin must be a non-negative number, got {margin}")
    if direction == "higher_is_worse":
        harm_low, harm_high = ci_low, ci_high
    elif direction == "lower_is_worse":
        harm_low, harm_high = -ci_high, -ci_low
    else:
        raise ChurnkitError(f"unknown direction {direction!r} (higher_is_worse, lower_is_worse)")
    if harm_high < margin:
        return "pass"
    if harm_low > margin:
        return "fail"
    return "inconclusive"


# --------------------------------------------------------------------------- table


def results_table(campaign_id: str, data: pd.DataFrame, metrics: Sequence[str],
                  control: Hashable, *, variant_col: str = "variant",
                  covariates: Mapping[str, str] | None = None,
                  ratio_of: Mapping[str, str] | None = None,
                  lower_is_better: Collection[str] = (),
                  margins: Mapping[str, float] | None = None,
                  expected_shares: Mapping[Hashable, float] | None = None,
                  alpha: float = 0.05, power: float = 0.8, correction: Correction = "holm",
                  srm_threshold: float = SRM_THRESHOLD, design: Design = "randomised") -> pd.DataFrame:
    """One row per metric x non-control variant (columns :data:`TABLE_COLUMNS`).

    ``covariates`` maps a metric to its CUPED covariate, ``ratio_of`` to its denominator.
    p-values are adjusted over every row (``correction``). ``verdict`` is ``better`` or
    ``worse`` when the adjusted p-value is below ``alpha`` (``lower_is_better`` metrics,
    e.g. opt-outs, flip which is which), else ``no detectable effect``; a sample ratio
    mismatch blocks every verdict. ``margins`` makes a metric a guardrail: its
    ``non_inferiority`` column is :func:`non_inferior` on the unadjusted interval
    (guardrails are each read on their own), with harm in the direction
    ``lower_is_better`` implies.

    ``design="targeted"``: the arms were chosen, not randomised, so the table is descriptive:
    means, differences and their intervals stay (labelled so by the verdict
    :data:`DESCRIPTIVE`), while p-values, the MDE, the sample-ratio check and guardrail
    verdicts, which only mean something under randomisation, are NaN/None (``srm_failed`` is
    False: nothing was checked that could fail).
    """
    covariates, ratio_of, margins = dict(covariates or {}), dict(ratio_of or {}), dict(margins or {})
    _check_metric_names(metrics, covariates, ratio_of, lower_is_better, margins)
    counts = _variant_labels(data, variant_col).value_counts(sort=False)
    if design == "targeted":
        srm = SrmResult({k: int(v) for k, v in counts.items()}, {}, math.nan, srm_threshold, False)
    else:
        srm = srm_test({k: int(v) for k, v in counts.items()}, expected_shares, srm_threshold)
    rows = [e for m in metrics
            for e in effects(data, m, control, covariate=covariates.get(m),
                             ratio_of=ratio_of.get(m), alpha=alpha, power=power,
                             correction="none", variant_col=variant_col)]
    adjusted = adjust([e.p_value for e in rows], correction)
    records = [_record(campaign_id, replace(e, p_value_adjusted=p), srm, alpha,
                       e.metric in lower_is_better, margins.get(e.metric)) | {"design": design}
               for e, p in zip(rows, adjusted, strict=True)]
    if design == "targeted":
        for r in records:
            r.update(p_value=math.nan, p_value_adjusted=math.nan, mde=math.nan,
                     rel_mde=math.nan, non_inferiority=None, verdict=DESCRIPTIVE)
    return pd.DataFrame.from_records(records, columns=list(TABLE_COLUMNS))


def _check_metric_names(metrics: Sequence[str], *per_metric: Collection[str]) -> None:
    if isinstance(metrics, str) or len(metrics) == 0:
        raise ChurnkitError(f"metrics must be a non-empty list of column names, got {metrics!r}")
    if any(isinstance(names, str) for names in per_metric):
        raise ChurnkitError("per-metric settings must be mappings or lists of metric names, "
                            "not a single string")
    if len(set(metrics)) < len(metrics):
        raise ChurnkitError(f"metrics listed twice: {list(metrics)}")
    unknown = sorted({str(m) for names in per_metric for m in names if m not in metrics})
    if unknown:
        raise ChurnkitError(f"settings name metrics that are not analysed: {', '.join(unknown)}"
                            f" (metrics: {', '.join(metrics)})")


def _record(campaign_id: str, e: Effect, srm: SrmResult, alpha: float,
            lower_is_better: bool, margin: float | None) -> dict[str, object]:
    guardrail = None
    if margin is not None:
        guardrail = BLOCKED if srm.failed else non_inferior(
            e.ci_low, e.ci_high, margin,
            "higher_is_worse" if lower_is_better else "lower_is_worse")
    return {
        "campaign_id": campaign_id, "metric": e.metric, "variant": e.variant, "n": e.n,
        "mean": e.mean, "control_n": e.control_n, "control_mean": e.control_mean,
        "effect": e.effect, "se": e.se, "ci_low": e.ci_low, "ci_high": e.ci_high,
        "rel_effect": e.rel_effect, "rel_ci_low": e.rel_ci_low, "rel_ci_high": e.rel_ci_high,
        "p_value": e.p_value, "p_value_adjusted": e.p_value_adjusted,
        "srm_p_value": srm.p_value, "srm_failed": srm.failed, "covariate": e.covariate,
        "theta": e.theta, "variance_reduction": e.variance_reduction, "mde": e.mde,
        "rel_mde": e.mde / abs(e.control_mean) if e.control_mean else math.nan,
        "non_inferiority": guardrail,
        "verdict": _verdict(e, srm.failed, alpha, lower_is_better),
    }


def _verdict(e: Effect, srm_failed: bool, alpha: float, lower_is_better: bool) -> str:
    if srm_failed:
        return BLOCKED
    if not e.p_value_adjusted < alpha:  # NaN (no variance at all) is no evidence either
        return "no detectable effect"
    return "better" if (e.effect > 0) != lower_is_better else "worse"


# --------------------------------------------------------------------------- helpers


def _check_probability(value: float, name: str) -> None:
    if not (isinstance(value, int | float) and 0 < value < 1):
        raise ChurnkitError(f"{name} must lie strictly between 0 and 1, got {value!r}")


def _labels(items: Collection[object]) -> str:
    return ", ".join(repr(v) for v in items) or "none"
