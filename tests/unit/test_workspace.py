"""Workspace paths: the same workspace whether its root is given as a string or a Path."""

from pathlib import Path

from churnkit.workspace import Workspace


def test_string_root_is_a_path(tmp_path):
    ws = Workspace(str(tmp_path))
    assert ws == Workspace(tmp_path)
    assert ws.simulation_dir == tmp_path / "simulation"
    assert isinstance(ws.root, Path)
