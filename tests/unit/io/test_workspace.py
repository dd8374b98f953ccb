"""Workspace paths: the same workspace whether its root is given as a string or a Path."""

from pathlib import Path

from churnkit.io.workspace import Workspace


def test_string_root_is_a_path(tmp_path):
    ws = Workspace(str(tmp_path))
    assert ws == Workspace(tmp_path)
    assert ws.simulation_dir == tmp_path / "simulation"
    assert isinstance(ws.root, Path)


def test_every_artefact_has_one_path_under_the_root(tmp_path):
    import datetime as dt

    from churnkit.io.workspace import manifest_path, scores_as_of, scores_meta_path

    ws = Workspace(tmp_path)
    day = dt.date(2024, 5, 1)
    assert ws.dataset_path("churn_ga4") == tmp_path / "datasets" / "churn_ga4.parquet"
    assert manifest_path(ws.dataset_path("churn_ga4")) == tmp_path / "datasets" / "churn_ga4.manifest.json"
    assert ws.scores_path(day) == tmp_path / "scores" / "scores_2024-05-01.parquet"
    assert scores_meta_path(ws.scores_path(day)).name == "scores_2024-05-01.json"
    assert scores_as_of(ws.scores_path(day)) == "2024-05-01"
    assert ws.list_path("risk", day, "xlsx") == tmp_path / "lists" / "risk_2024-05-01.xlsx"
    assert ws.truth_path == tmp_path / "simulation" / "truth.parquet"
    assert ws.latest_scores() is None
    for d in ("2024-05-01", "2024-06-01", "2024-04-01"):
        ws.scores_path(dt.date.fromisoformat(d)).parent.mkdir(parents=True, exist_ok=True)
        ws.scores_path(dt.date.fromisoformat(d)).write_bytes(b"")
    assert ws.latest_scores() == ws.scores_path(dt.date(2024, 6, 1))
