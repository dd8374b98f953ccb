"""Feature families: one small module each, registered by the names in the contract.

``contracts.FEATURE_FAMILIES`` is the one list of names (problem YAMLs are checked against
it); each name is the module ``churnkit.features.families.<name>`` with a ``family(options)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from churnkit.contracts import FEATURE_FAMILIES
from churnkit.features.spec import Family, FamilyOptions

FAMILIES: dict[str, Callable[[FamilyOptions], Family]] = {
    name: importlib.import_module(f"{__name__}.{name}").family for name in FEATURE_FAMILIES
}
