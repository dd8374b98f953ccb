"""Plain-language reason codes from SHAP contributions, for operations staff.

Why facts, not features: several features describe one thing about a user (the one-hot
columns of ``platform``, sessions over 7/30/90 days, days since last activity and the same
silence over the usual gap). Each feature's spec says which fact it states and how
(``FeatureSpec.fact`` and ``wording``); SHAP values add up, so a fact's contribution is the
sum of its members', facts are ranked, and each speaks once, in the words of the member that
pushed hardest. A reason that states a fact an earlier one stated (the same text, or a
wording that fell back on another fact's words, which it declares with ``rows.states``) gives
way to the next fact; features that coincide on the data being scored form one fact (see
``basis``). This module names no feature: it reads the specs.

Speed: fact sums are one ``np.add.reduceat``, the top facts one ``np.argpartition``; text
is built only for the facts shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from churnkit.contracts import reason_column
from churnkit.errors import ChurnkitError
from churnkit.features.wording import ReasonRows
from churnkit.scoring.explain.facts import Explainer, Fact

SPARE = 4
"""Extra candidate facts per row, so a reason that repeats a fact can be replaced without a second pass."""


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason shown to a person: the feature that carried it and its own value."""

    feature: str
    contribution: float
    value: float
    text: str


def reason_codes(
    X: pd.DataFrame,
    contributions: pd.DataFrame,
    explainer: Explainer,
    top: int = 3,
    direction: Literal["up", "down"] = "up",
) -> list[list[Reason]]:
    """Top reasons per row: facts whose contributions push the score up (risks) or down.

    Only facts with a contribution of the asked sign are shown, so a row can have fewer
    than ``top`` reasons. Rows of ``X`` and ``contributions`` correspond by position.
    """
    if direction not in ("up", "down"):
        raise ChurnkitError(f"direction must be 'up' or 'down', got {direction!r}")
    if top < 1:
        raise ChurnkitError(f"top must be at least 1, got {top}")
    if len(X) != len(contributions):
        raise ChurnkitError(f"{len(X)} feature rows but {len(contributions)} contribution rows")
    names = explainer.names
    for what, frame in (("features", X), ("contributions", contributions)):
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise ChurnkitError(f"reason codes: {what} lack {missing[:5]}{'...' if len(missing) > 5 else ''}")
    facts = explainer.facts
    col = {n: j for j, n in enumerate(names)}
    x = X[names].to_numpy(dtype="float64")
    sign = 1.0 if direction == "up" else -1.0
    c = contributions[names].to_numpy(dtype="float64") * sign
    n, g = len(x), len(facts)
    if n == 0:
        return []

    order = np.array([col[m] for f in facts for m in f.members])
    starts = np.cumsum([0] + [len(f.members) for f in facts[:-1]])
    grouped = np.add.reduceat(c[:, order], starts, axis=1)  # (n, facts), in the asked direction
    k = min(g, top + SPARE)
    cand = np.argpartition(-grouped, k - 1, axis=1)[:, :k] if k < g else np.tile(np.arange(g), (n, 1))
    score = np.take_along_axis(grouped, cand, axis=1)
    rank = np.argsort(-score, axis=1, kind="stable")
    cand, score = np.take_along_axis(cand, rank, axis=1), np.take_along_axis(score, rank, axis=1)
    lead = _leads(facts, col, x, c, cand, score > 0)

    rows = ReasonRows(x, names, explainer.medians, explainer.entries, explainer.activity)
    fact_of = {m: j for j, f in enumerate(facts) for m in f.members}
    out: list[list[Reason]] = []
    # Python lists: scalar access is several times cheaper than on numpy arrays.
    for i, (scores, facts_i, leads_i) in enumerate(zip(score.tolist(), cand.tolist(), lead.tolist())):
        reasons: list[Reason] = []
        seen: set[str] = set()
        stated: set[int] = set()
        for s, g_, lj in zip(scores, facts_i, leads_i):
            if not s > 0:
                break
            name = names[lj]
            rows.said.clear()
            text = facts[g_].render(rows, i, name)
            # one fact per reason: a text that says what an earlier one said (the same words,
            # or the fact another wording fell back on, e.g. "no purchase for 40 days" for
            # "no revenue in 30 days") gives way to the next fact
            says = {g_} | {fact_of[f] for f in rows.said if f in fact_of}
            if text in seen or says & stated:
                continue
            seen.add(text)
            stated |= says
            reasons.append(Reason(name, s * sign, float(x[i, lj]), text))
            if len(reasons) == top:
                break
        out.append(reasons)
    return out


def _leads(facts: list[Fact], col: dict[str, int], x: np.ndarray, c: np.ndarray, cand: np.ndarray,
           shown: np.ndarray) -> np.ndarray:
    """Column of the member that speaks for each candidate fact.

    The member with the largest contribution in the asked direction; for one-hot facts the
    column of the user's own level, so the feature named matches the text.
    """
    lead = np.zeros(cand.shape, dtype=np.int64)
    for g in np.unique(cand[shown]):
        fact = facts[g]
        cols = np.array([col[m] for m in fact.members])
        ri, rj = np.nonzero((cand == g) & shown)
        if len(cols) == 1:
            lead[ri, rj] = cols[0]
            continue
        best = np.argmax(c[ri[:, None], cols[None, :]], axis=1)
        if fact.one_hot:
            on = x[ri[:, None], cols[None, :]] >= 0.5
            best = np.where(on.any(axis=1), np.argmax(on, axis=1), best)
        lead[ri, rj] = cols[best]
    return lead


def reasons_frame(reasons: list[list[Reason]], top: int = 3) -> pd.DataFrame:
    """Texts as columns ``reason_1..top`` (null where a row has fewer), for lists."""
    cols = {reason_column(j + 1): pd.Series([r[j].text if j < len(r) else None for r in reasons], dtype="object")
            for j in range(top)}
    return pd.DataFrame(cols)
