"""``churnkit.io.tracking`` resolves its names lazily (MLflow loads on first use): every
public name must be served, and be the object its submodule defines."""

from __future__ import annotations

import importlib

import pytest

from churnkit.io import tracking


def test_every_public_name_resolves_to_its_submodule_object():
    assert sorted(tracking._HOME) == sorted(tracking.__all__)
    for name, home in tracking._HOME.items():
        module = importlib.import_module(f"churnkit.io.tracking.{home}")
        assert getattr(tracking, name) is getattr(module, name), name
        assert name in dir(tracking)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_name"):
        tracking.no_such_name  # noqa: B018
