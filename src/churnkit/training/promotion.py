"""Does a challenger replace the champion? The promotion policy, pure: no MLflow, no I/O.

``flows.promote`` scores both models on the challenger's test cutoffs, asks
:func:`decide_promotion`, and records the decision in the registry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["maximize", "minimize"]

HEADLINE: dict[str, tuple[str, float]] = {"churn": ("roc_auc", 0.5), "purchase": ("roc_auc", 0.5),
                                          "revenue": ("gini_norm", 0.0), "uplift": ("qini", 0.0)}
"""Per kind, the metric a model is judged by (higher is better) and its no-skill floor:
``promote`` compares it on the challenger's test cutoffs (ranking is what lists use), and
the training report gives the share of a reference's headroom above the floor a model reaches.
An uplift model is judged by its Qini coefficient on the challenger's held-out campaigns."""


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    table: list[dict[str, Any]]
    """One row per metric: metric, challenger, champion, delta (challenger - champion)."""

    def as_text(self) -> str:
        lines = [f"{'metric':<24}{'challenger':>14}{'champion':>14}{'delta':>12}"]
        for row in self.table:
            lines.append(
                f"{row['metric']:<24}{_fmt(row['challenger']):>14}"
                f"{_fmt(row['champion']):>14}{_fmt(row['delta']):>12}"
            )
        lines.append(("PROMOTE: " if self.promote else "KEEP CHAMPION: ") + self.reason)
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.5g}"


def _finite(metrics: Mapping[str, Any] | None, key: str) -> float | None:
    if not metrics or key not in metrics:
        return None
    try:
        value = float(metrics[key])
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def comparison_table(
    challenger: Mapping[str, Any], champion: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    keys = list(dict.fromkeys([*challenger, *(champion or {})]))
    rows = []
    for key in keys:
        a, b = _finite(challenger, key), _finite(champion, key)
        delta = a - b if a is not None and b is not None else None
        rows.append({"metric": key, "challenger": a, "champion": b, "delta": delta})
    return rows


def decide_promotion(
    challenger_metrics: Mapping[str, Any],
    champion_metrics: Mapping[str, Any] | None,
    metric: str,
    direction: Direction,
    min_delta: float = 0.0,
    force: bool = False,
) -> Decision:
    """Does the challenger replace the champion? Pure: no MLflow, no I/O.

    It must beat the champion on ``metric`` by more than ``min_delta`` in ``direction``;
    a tie keeps the champion (no churn in production for nothing). With no champion the
    challenger wins if its metric is a finite number. ``force`` always promotes, and the
    reason says it was forced and what the comparison would have said.
    """
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', not {direction!r}")
    if min_delta < 0:
        raise ValueError("min_delta must be >= 0")
    table = comparison_table(challenger_metrics, champion_metrics)
    promote, reason = _compare(challenger_metrics, champion_metrics, metric, direction, min_delta)
    if force:
        return Decision(True, f"forced ({reason})", table)
    return Decision(promote, reason, table)


def _compare(
    challenger: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    metric: str,
    direction: Direction,
    min_delta: float,
) -> tuple[bool, str]:
    new = _finite(challenger, metric)
    if new is None:
        return False, f"challenger has no finite {metric}"
    if champion is None:
        return True, f"no champion yet; challenger {metric}={new:.5g}"
    old = _finite(champion, metric)
    if old is None:
        return False, f"champion has no comparable {metric}; use force to replace it"
    gain = new - old if direction == "maximize" else old - new
    better = "higher" if direction == "maximize" else "lower"
    if gain > min_delta:
        return True, f"{metric} {new:.5g} vs {old:.5g} ({better} is better, gain {gain:.3g})"
    need = f" by more than {min_delta:g}" if min_delta > 0 else ""
    return False, f"{metric} {new:.5g} vs {old:.5g}: does not beat the champion{need}"


def previous_champion(history: list[Mapping[str, Any]], current: int) -> int | None:
    """Who the current champion replaced, skipping rollbacks so repeated rollbacks walk back."""
    for entry in reversed(history):
        if entry.get("action") == "promote" and entry.get("promoted") and entry.get("to") == current:
            return entry.get("from")
    return None


def finite_metrics(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    """The finite numbers among ``metrics`` (what a decision record keeps)."""
    out = {}
    for key in metrics or {}:
        value = _finite(metrics, key)
        if value is not None:
            out[key] = value
    return out
