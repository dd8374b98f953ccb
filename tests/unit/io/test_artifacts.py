"""Atomic writes: everything of one artefact lands together or nothing does."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from churnkit.errors import ChurnkitError
from churnkit.io.artifacts import list_format, publish, read_json, write_table_with_meta


def test_publish_moves_every_target_only_when_the_block_succeeds(tmp_path):
    data, meta = tmp_path / "out" / "t.parquet", tmp_path / "out" / "t.json"
    with publish({"data": data, "meta": meta}) as tmp:
        tmp["data"].write_text("one")
        tmp["meta"].write_text("{}")
        assert not data.exists()  # nothing visible until the block ends
    assert data.read_text() == "one" and meta.read_text() == "{}"

    with pytest.raises(RuntimeError), publish({"data": data, "meta": meta}) as tmp:
        tmp["data"].write_text("two")
        raise RuntimeError("killed half way")
    assert data.read_text() == "one" and meta.read_text() == "{}"  # the old pair stays whole
    assert [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")] == []  # no staging left


def test_table_and_meta_written_together(tmp_path):
    df = pd.DataFrame({"user_id": ["a", "b"], "x": [1.0, float("nan")]})
    path, meta = write_table_with_meta(df, {"rows": 2}, tmp_path / "s.parquet", tmp_path / "s.json")
    pd.testing.assert_frame_equal(pd.read_parquet(path), df)
    assert json.loads(meta.read_text()) == {"rows": 2} == read_json(meta, "meta")
    with pytest.raises(ChurnkitError, match="no meta at"):
        read_json(tmp_path / "missing.json", "meta")


def test_list_format_from_option_or_extension(tmp_path):
    assert list_format(None, None) == "csv"
    assert list_format(None, tmp_path / "x.xlsx") == "xlsx"
    assert list_format("PARQUET", tmp_path / "x.csv") == "parquet"
    with pytest.raises(ChurnkitError, match="unknown list format 'json'"):
        list_format("json", None)
