"""The feature catalogue: one spec per name, and reason wording that only quotes real features."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from churnkit.contracts import EVENT_TYPES, FEATURE_FAMILIES
from churnkit.features.catalogue import catalogue
from churnkit.features.families import FAMILIES
from churnkit.features.spec import FamilyOptions
from churnkit.features.wording import ReasonRows

LEVELS = {"platform": ["android", "ios"], "region": ["eu"]}


class Recording(ReasonRows):
    """Rows that remember every feature a wording asked for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def v(self, i, name):
        self.read.add(name)
        return super().v(i, name)


def test_families_are_registered_by_the_contracts_names():
    assert tuple(FAMILIES) == FEATURE_FAMILIES
    options = FamilyOptions(attribute_levels=LEVELS, signup=True)
    names = [s.name for make in FAMILIES.values() for s in make(options).specs]
    assert len(names) == len(set(names))  # every feature has exactly one definition
    assert set(names) == set(catalogue(LEVELS))


@pytest.mark.parametrize("fill", [np.nan, 0.0, 1.0, 37.5])
def test_every_wording_quotes_only_features_that_exist(fill):
    """Wordings quote other features by name (silence uses the usual gap); a renamed feature
    must fail here, not silently degrade the texts people read."""
    specs = catalogue(LEVELS)
    names = list(specs)
    x = np.full((1, len(names)), fill)
    medians = {n: 1.0 for n in names}
    entries = {n: s.to_dict() for n, s in specs.items()}
    rows = Recording(x, names, medians, entries, frozenset(EVENT_TYPES))
    for name, spec in specs.items():
        if spec.wording is not None:
            text = spec.wording(rows, 0, name)
            assert isinstance(text, str) and text, name
    assert rows.read <= set(names), sorted(rows.read - set(names))


def test_members_of_one_fact_come_from_one_meaning():
    specs = catalogue(LEVELS)
    facts = {k: list(g) for k, g in itertools.groupby(sorted(specs.values(), key=lambda s: s.fact_key),
                                                      key=lambda s: s.fact_key)}
    assert {s.name for s in facts["silence"]} == {"days_since_last_activity", "silence_vs_typical_gap"}
    assert {s.name for s in facts["events:push_open"]} >= {"n_push_open_30d", "push_opens_prev_60d"}
    assert all(s.one_hot for s in facts["attribute:platform"]) and len(facts["attribute:platform"]) == 2
    assert all(s.wording is not None for group in facts.values() if len(group) > 1 for s in group)
