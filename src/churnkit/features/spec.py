"""What a feature is, beyond its values: the name, meaning and unit reason codes speak in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

import ibis.expr.types as ir


@dataclass(frozen=True)
class FeatureSpec:
    name: str
    description: str
    unit: str
    family: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"dtype": "float64"}


def feature_names(manifest: Mapping[str, Any]) -> list[str]:
    """The feature columns of a training-set manifest (entries of :meth:`FeatureSpec.to_dict`), in order."""
    return [f["name"] for f in manifest["features"]]


Derive = Callable[[ir.Table], ir.Value]
"""Computes a feature from the table of per-(user, cutoff) aggregates."""


@dataclass
class Family:
    """One feature family: aggregates it needs, features derived from them, extra joins.

    ``aggregates`` use canonical names (see :class:`~churnkit.features.context.Context`),
    so two families asking for the same aggregate share one computation.
    """

    name: str
    aggregates: dict[str, ir.Value]
    features: list[tuple[FeatureSpec, Derive]]
    joins: list[tuple[ir.Table, list[FeatureSpec]]] | None = None
