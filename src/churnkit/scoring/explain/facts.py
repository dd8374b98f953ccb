"""Facts: the features of a model grouped by what they say about a user, with their wording.

Grouping and wording come from the feature specs (``FeatureSpec.fact`` / ``wording``), looked
up by name in the feature catalogue, so this module lists no feature of its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from churnkit.config import ActivityEvents
from churnkit.contracts import EVENT_TYPES
from churnkit.features.catalogue import catalogue
from churnkit.features.spec import FeatureSpec, Wording
from churnkit.features.wording import ReasonRows, generic


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
