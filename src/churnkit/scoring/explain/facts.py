"""Facts: the features of a model grouped by what they say about a user, with their wording.

Grouping and wording come from the feature specs (``FeatureSpec.fact`` / ``wording``), looked
up by name in the feature catalogue, so this module lists no feature of its own.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from churnkit.config import ActivityEvents
from churnkit.contracts import EVENT_TYPES
from churnkit.features.catalogue import catalogue
from churnkit.features.spec import FeatureSpec, Wording
from churnkit.features.wording import ReasonRows, generic
from churnkit.scoring.explain.basis import ReasonBasis


@dataclass(frozen=True)
class Fact:
    """Features that state one thing about a user, each with its wording."""

    key: str
    members: tuple[str, ...]
    wordings: tuple[Wording, ...]
    one_hot: bool = False

    def render(self, rows: ReasonRows, i: int, lead: str) -> str:
        return self.wordings[self.members.index(lead)](rows, i, lead)


class Explainer:
    """What reason codes need to know of one model: its features (in the model's order),
    their facts and wording, the training population's medians and what counts as activity.

    Features the catalogue does not know (e.g. added by stacking) get a generic wording
    from their description and unit.
    """

    def __init__(
        self,
        features: Sequence[Mapping[str, Any]],
        attribute_levels: Mapping[str, list[str]] | None = None,
        activity: ActivityEvents | None = None,
        medians: Mapping[str, float | None] | None = None,
    ):
        self.entries = {str(f["name"]): dict(f) for f in features}
        self.names = list(self.entries)
        self.medians = dict(medians or {})
        act = activity or ActivityEvents()
        self.activity = frozenset(e for e in EVENT_TYPES if act.counts(e))
        self.facts = build_facts(self.names, catalogue(attribute_levels))

    def with_basis(self, basis: ReasonBasis | None) -> Explainer:
        """The same explainer comparing with ``basis`` (the population being scored): its
        medians, and its features that state one fact on this data merged into one fact."""
        if basis is None:
            return self
        out = copy.copy(self)
        out.medians = self.medians | {k: v for k, v in basis.medians.items() if k in self.entries}
        out.facts = merge_facts(self.facts, basis.same_fact)
        return out

    @classmethod
    def for_manifest(cls, manifest: Any) -> Explainer:
        """From a model's :class:`~churnkit.datasets.manifest.Manifest`."""
        return cls(
            [f.model_dump() for f in manifest.features], manifest.attribute_levels,
            manifest.problem.activity, manifest.profile.medians(),
        )


def build_facts(names: Sequence[str], specs: Mapping[str, FeatureSpec]) -> list[Fact]:
    """The features grouped into facts, in the order their first member appears; every
    feature belongs to exactly one."""
    members: dict[str, list[str]] = {}
    for name in names:
        spec = specs.get(name)
        members.setdefault(spec.fact_key if spec is not None else name, []).append(name)
    facts = []
    for key, names_ in members.items():
        wordings = tuple((specs[n].wording if n in specs else None) or generic for n in names_)
        one_hot = all(n in specs and specs[n].one_hot for n in names_)
        facts.append(Fact(key, tuple(names_), wordings, one_hot))
    return facts


def merge_facts(facts: Sequence[Fact], groups: Sequence[Sequence[str]]) -> list[Fact]:
    """Facts joined where a group of features (that coincide on the data) spans several; a
    merged fact speaks in the words of whichever member pushes hardest, as any fact does."""
    where = {m: i for i, f in enumerate(facts) for m in f.members}
    parent = list(range(len(facts)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for group in groups:
        present = sorted({root(where[n]) for n in group if n in where})
        for other in present[1:]:
            parent[other] = present[0]
    merged: dict[int, list[Fact]] = {}
    for i, f in enumerate(facts):
        merged.setdefault(root(i), []).append(f)
    return [parts[0] if len(parts) == 1 else
            Fact("+".join(p.key for p in parts), tuple(m for p in parts for m in p.members),
                 tuple(w for p in parts for w in p.wordings), all(p.one_hot for p in parts))
            for parts in merged.values()]
