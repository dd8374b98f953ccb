"""Feature families: one small module each, registered by name."""

from __future__ import annotations

from collections.abc import Callable

from churnkit.features.context import Context
from churnkit.features.families import (
    attributes,
    campaigns,
    diversity,
    funnel,
    gaps,
    push,
    rfm,
    trends,
    windows,
)
from churnkit.features.spec import Family

FAMILIES: dict[str, Callable[[Context], Family]] = {
    "rfm": rfm.family,
    "windows": windows.family,
    "trends": trends.family,
    "gaps": gaps.family,
    "funnel": funnel.family,
    "diversity": diversity.family,
    "push": push.family,
    "campaigns": campaigns.family,
    "attributes": attributes.family,
}
