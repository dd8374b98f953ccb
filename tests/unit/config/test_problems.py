"""Problems by path or by name: configs/problems/ (by stem or by the name inside), the
workspace's record of problems given by path, then the presets; names safe for files."""

from __future__ import annotations

from pathlib import Path

import pytest

from churnkit.config import ScoringSettings, is_yaml_path, load_problem, problem_files
from churnkit.errors import ChurnkitError, ConfigError

YAML = "name: {name}\nkind: churn\nlookback_days: 14\nhorizon_days: {h}\n"


def write(path: Path, name: str, h: int = 14) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(YAML.format(name=name, h=h))
    return path


def test_a_path_is_read_and_a_name_is_looked_up(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    given = write(tmp_path / "elsewhere" / "weekly.yaml", "weekly_churn")
    assert load_problem(str(given)).name == "weekly_churn"
    assert is_yaml_path(str(given)) and is_yaml_path("x.yml") and is_yaml_path("dir/x")
    assert not is_yaml_path("churn_ga4")
    # a name: configs/problems/ by stem, or by the name the file holds
    write(tmp_path / "configs" / "problems" / "file_stem.yaml", "inner_name", h=21)
    assert load_problem("file_stem").name == "inner_name"
    assert load_problem("inner_name").horizon_days == 21
    assert load_problem("churn_ga4").horizon_days == 7  # presets still found


def test_folders_between_the_project_and_the_presets(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recorded = tmp_path / "ws" / "problems"
    write(recorded / "weekly_churn.yaml", "weekly_churn")
    write(recorded / "churn_ga4.yaml", "churn_ga4", h=9)  # a workspace trained its own churn_ga4
    assert load_problem("weekly_churn", recorded).horizon_days == 14
    assert load_problem("churn_ga4", recorded).horizon_days == 9
    assert load_problem("churn_ga4").horizon_days == 7
    write(tmp_path / "configs" / "problems" / "churn_ga4.yaml", "churn_ga4", h=11)
    assert load_problem("churn_ga4", recorded).horizon_days == 11  # the project's configs win
    assert {"weekly_churn", "churn_ga4", "revenue_ga4"} <= set(problem_files(recorded))


def test_unknown_name_says_where_it_looked_and_what_to_give(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ChurnkitError) as err:
        load_problem("my_churn", tmp_path / "problems")
    text = str(err.value)
    assert "unknown problem 'my_churn'" in text and "workspace" in text and "give the YAML's path" in text
    assert "churn_ga4" in text and "\n" not in text
    with pytest.raises(ConfigError, match="config file not found"):
        load_problem(str(tmp_path / "missing.yaml"))


@pytest.mark.parametrize("name", ["../evil", "a/b", "", "x" * 101, "-lead"])
def test_a_problem_name_must_be_safe_as_a_file_and_registry_name(tmp_path, name):
    p = tmp_path / "p.yaml"
    p.write_text(YAML.format(name=repr(name), h=7))
    with pytest.raises(ConfigError, match="is not a problem name"):
        load_problem(str(p))


def test_scoring_roles_may_be_left_out_but_not_all():
    s = ScoringSettings(purchase=None)
    assert s.roles == ("churn", "ltv") and s.problem_of("purchase") is None
    assert s.setting("churn") == "scoring.churn = churn_ga4 (the default)"
    assert ScoringSettings(churn="my.yaml").setting("churn") == "scoring.churn = my.yaml"
    with pytest.raises(ValueError, match="no role to score"):
        ScoringSettings(churn=None, purchase=None, ltv=None)
