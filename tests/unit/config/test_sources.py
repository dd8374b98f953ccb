"""Built-in source configs and how a source argument is resolved."""

from __future__ import annotations

import pytest

from churnkit.config import SourceConfig, load_source, presets
from churnkit.contracts import EVENT_TYPES
from churnkit.errors import ChurnkitError, ConfigError
from churnkit.simulate.engine import EVENTS as SIMULATED_EVENTS


def test_builtins_are_listed_and_all_load():
    names = presets("sources")
    assert set(names) >= {"cdnow_master", "cdnow_sample", "simulator"}
    for name in names:
        src = load_source(name)
        assert isinstance(src, SourceConfig) and src.name == name


def test_cdnow_sources_keep_identical_rows_and_forbid_refunds():
    for name in ("cdnow_master", "cdnow_sample"):
        src = load_source(name)
        assert src.duplicates == "keep"
        assert src.allow_negative_amount is False
        assert src.vocabulary == ["purchase"]
        assert src.fields.ts.formats == ["%Y%m%d"] and src.fields.ts.timezone == "UTC"
        assert src.csv.delimiter == "whitespace"
    assert load_source("cdnow_sample").csv.header is False


def test_simulator_vocabulary_and_users_table():
    src = load_source("simulator")
    assert src.pattern == "events.parquet"
    # exactly the event names the simulator writes, and every type the features count
    assert set(src.vocabulary or []) == set(SIMULATED_EVENTS.tolist()) == set(EVENT_TYPES)
    assert src.users is not None and set(src.users.attributes) == {
        "region",
        "platform",
        "acquisition_channel",
        "age_band",
        "push_opt_in",
    }


def test_unknown_name_lists_builtins():
    with pytest.raises(ChurnkitError) as err:
        load_source("cdnow")
    msg = str(err.value)
    assert "cdnow_master" in msg and "simulator" in msg and "\n" not in msg


def test_yaml_path(tmp_path):
    p = tmp_path / "mine.yaml"
    p.write_text("name: mine\nfields: {user_id: u, ts: t, event: e}\n")
    assert load_source(str(p)).name == "mine"
    with pytest.raises(ConfigError, match="not found"):
        load_source(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nfields: {user_id: u, ts: t, event: e}\nduplicate: keep\n")
    with pytest.raises(ConfigError, match="duplicate"):
        load_source(str(bad))
