"""Config validation: typos and bad values are one-line errors that name the key."""

from __future__ import annotations

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
