"""What a feature is beyond its values: its name, meaning, unit and how a reason states it.

A family module declares each feature once, as a :class:`FeatureSpec` beside the Ibis
expression that computes it (the Hamilton idea: name, inputs and description together).
Reason codes read the spec's ``fact`` and ``wording``; lists, segments and scoring refer to
features through the spec objects, so a renamed feature cannot silently disappear.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ibis.expr.types as ir

if TYPE_CHECKING:
    from churnkit.features.context import Agg, Context
    from churnkit.features.wording import ReasonRows

Wording = Callable[["ReasonRows", int, str], str]
"""``wording(rows, i, lead) -> text``: row ``i``'s reason when feature ``lead`` speaks for its fact."""


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    description: str
    unit: str
    family: str
    fact: str | None = None
    """Features that state one thing about a user share a fact key and speak once in
    reasons (sessions over 7/30/90 days; silence in days and over the usual gap). None: the
    feature is a fact of its own."""
    wording: Wording | None = field(default=None, compare=False, repr=False)
    """How a reason states the fact; every member of a fact has the same one. None: a
    generic text from the description and unit."""
    one_hot: bool = False
    """One level of a categorical attribute: the member the user has speaks for the fact."""
    ages: bool = False
    """The value grows by one a day for every user and never resets (days since signup,
    since the first event): drift checks age the training population to the scoring date
    before comparing, so a population merely growing older is not "drift"."""

    @property
    def fact_key(self) -> str:
        return self.fact or self.name

    def to_dict(self) -> dict[str, Any]:
        """The manifest entry: what a stored model needs to know of its features."""
        entry = {"name": self.name, "description": self.description, "unit": self.unit,
                 "family": self.family, "dtype": "float64"}
        return entry | ({"ages": True} if self.ages else {})


Derive = Callable[[ir.Table], ir.Value]
"""Computes a feature from the table of per-(user, cutoff) aggregates."""

Aggregates = Callable[["Context"], dict[str, "Agg"]]
"""The per-(user, cutoff) aggregates a family reads, under canonical names (see Context),
declared so the context can plan them (see ``Context.aggregate``)."""

Joins = Callable[["Context"], list[tuple[ir.Table, list[FeatureSpec]]]]
"""Tables keyed by (user_id, cutoff) holding features computed apart from the aggregates."""


def _none(ctx: Context) -> dict[str, Agg]:
    return {}


def _no_joins(ctx: Context) -> list[tuple[ir.Table, list[FeatureSpec]]]:
    return []


@dataclass(frozen=True)
class Family:
    """One feature family: its features (spec and expression), the aggregates they read
    and any tables joined in. Declared without data, so the catalogue of specs is known
    before any table is."""

    name: str
    features: list[tuple[FeatureSpec, Derive]]
    aggregates: Aggregates = _none
    joins: Joins = _no_joins
    joined: list[FeatureSpec] = field(default_factory=list)
    """The specs the joins provide, in order (known without data)."""

    @property
    def specs(self) -> list[FeatureSpec]:
        return [s for s, _ in self.features] + list(self.joined)


@dataclass(frozen=True)
class FamilyOptions:
    """What a family's feature set depends on besides its code: the users table's shape."""

    attribute_levels: dict[str, list[str]] = field(default_factory=dict)
    """Levels of each categorical user attribute (fixed in the manifest at training)."""
    signup: bool = False
    """Whether the users table has a signup time."""
