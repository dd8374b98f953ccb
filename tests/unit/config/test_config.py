"""Config validation: typos and bad values are one-line errors that name the key."""

from __future__ import annotations

import json

import pytest

from churnkit.config import (
    ChurnkitConfig,
    CsvOptions,
    FieldSpec,
    SourceConfig,
    TimestampSpec,
    load_churnkit_config,
    load_yaml,
    parse_model,
)
from churnkit.errors import ConfigError


def test_shipped_project_config_is_valid(repo_root):
    cfg = load_yaml(repo_root / "configs" / "churnkit.yaml", ChurnkitConfig)
    assert cfg == ChurnkitConfig()  # the file documents the embedded defaults exactly


def test_unknown_key_named_with_its_path(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("simulate:\n  userz: 3\n")
    with pytest.raises(ConfigError) as e:
        load_yaml(p, ChurnkitConfig)
    msg = str(e.value)
    assert "unknown key 'simulate.userz'" in msg and str(p) in msg and "\n" not in msg


@pytest.mark.parametrize(
    "text,needle",
    [
        ("ingest: [1, 2", "not valid YAML at line"),
        ("- a\n- b\n", "expected a mapping"),
        ("simulate:\n  users: -5\n", "'simulate.users'"),
        ("ingest:\n  partition_by: week\n", "'ingest.partition_by'"),
    ],
)
def test_bad_config_messages(tmp_path, text, needle):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_yaml(p, ChurnkitConfig)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_churnkit_config(tmp_path / "nope.yaml")


def test_embedded_defaults_without_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert load_churnkit_config(None) == ChurnkitConfig()


def test_field_spec_shorthand_and_exactly_one_source():
    assert FieldSpec.model_validate("customer_id").column == "customer_id"
    assert FieldSpec.model_validate({"multiply": ["q", "p"]}).source_columns() == ["q", "p"]
    with pytest.raises(ValueError, match="exactly one"):
        FieldSpec.model_validate({"column": "a", "const": "b"})
    with pytest.raises(ValueError, match="exactly one"):
        FieldSpec.model_validate({})


def test_timestamp_zone_and_csv_delimiter_checked():
    with pytest.raises(ValueError, match="unknown time zone"):
        TimestampSpec.model_validate({"column": "ts", "timezone": "Mars/Olympus"})
    assert CsvOptions(delimiter="\\t").delimiter == "\t"
    assert CsvOptions(delimiter="whitespace").delimiter == "whitespace"
    with pytest.raises(ValueError, match="one character"):
        CsvOptions(delimiter=";;")


def test_source_requires_core_fields():
    with pytest.raises(ConfigError, match="missing key 'fields.event'"):
        parse_model({"name": "x", "fields": {"user_id": "u", "ts": "t"}}, SourceConfig, "src.yaml")


# --------------------------------------------------------------------------- one simulation settings model


def test_simulate_defaults_agree_between_cli_and_python_api(tmp_path, monkeypatch):
    """The CLI simulates with the config's ``simulate`` section, the Python API with
    ``SimulateSettings()``: both are the one model, so without a config they agree."""
    from typer.testing import CliRunner

    from churnkit.cli import app
    from churnkit.config import SimulateSettings

    monkeypatch.chdir(tmp_path)  # no configs/churnkit.yaml: embedded defaults
    assert ChurnkitConfig().simulate == SimulateSettings()
    out = tmp_path / "sim"
    res = CliRunner().invoke(app, ["--workspace", str(tmp_path), "simulate", "--users", "30", "--days", "20",
                                   "--out", str(out)])
    assert res.exit_code == 0, res.output
    written = json.loads((out / "simulation.json").read_text())["params"]
    assert written == json.loads(SimulateSettings(users=30, days=20).model_dump_json())
    assert written["cutoff_step_days"] == SimulateSettings().cutoff_step_days == 7


# --------------------------------------------------------------------------- typed problems


def test_problem_model_and_tuning_are_typed_by_kind_and_checked_at_load(tmp_path):
    from churnkit.config import ClassifierSettings, LTVSettings, ProblemConfig, load_problem

    churn, revenue = load_problem("churn_ga4"), load_problem("revenue_ga4")
    assert isinstance(churn.model, ClassifierSettings) and isinstance(revenue.model, LTVSettings)
    assert churn.tuning.metric == "log_loss" and revenue.tuning.metric == "rmse"
    p = tmp_path / "p.yaml"
    p.write_text("name: p\nkind: revenue\nlookback_days: 7\nhorizon_days: 7\nmodel:\n  n_estimator: 3\n")
    with pytest.raises(ConfigError) as err:
        load_problem(str(p))
    assert str(p) in str(err.value) and "model: unknown key 'n_estimator'" in str(err.value)
    p.write_text("name: p\nkind: churn\nlookback_days: 7\nhorizon_days: 7\nmodel:\n  params: {lerning_rate: 0.1}\n")
    with pytest.raises(ConfigError, match="model.params: unknown LightGBM parameter 'lerning_rate'"):
        load_problem(str(p))
    # what a manifest stores reads back as the same problem, dropped defaults included
    p.write_text("name: p\nkind: churn\nlookback_days: 7\nhorizon_days: 7\n"
                 "tuning:\n  space: {lambda_l2: null, num_leaves: {type: int, low: 4, high: 9}}\n")
    problem = load_problem(str(p))
    assert "lambda_l2" not in problem.tuning.space and problem.tuning.space["num_leaves"].high == 9
    again = ProblemConfig.model_validate(json.loads(problem.model_dump_json()))
    assert again == problem and "lambda_l2" not in again.tuning.space


def test_presets_ship_inside_the_package():
    from churnkit.config import presets, problem_files

    assert {"churn_ga4", "purchase_ga4", "revenue_ga4"} <= set(presets("problems"))
    assert all("defaults" in p.parts for p in presets("problems").values())
    assert {"simulator", "cdnow_master"} <= set(presets("sources"))
    assert set(presets("problems")) <= set(problem_files())
