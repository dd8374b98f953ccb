"""Every feature the families can make, by name: the specs reasons and segments read.

A stored model's manifest lists feature names; :func:`catalogue` gives back the live specs
(fact and wording) for them without building any data.
"""

from __future__ import annotations

from collections.abc import Mapping

from churnkit.features.families import FAMILIES
from churnkit.features.spec import FamilyOptions, FeatureSpec


def catalogue(attribute_levels: Mapping[str, list[str]] | None = None) -> dict[str, FeatureSpec]:
    """Name -> spec over all families (attribute features for the levels given)."""
    options = FamilyOptions(attribute_levels=dict(attribute_levels or {}), signup=True)
    return {spec.name: spec for make in FAMILIES.values() for spec in make(options).specs}
