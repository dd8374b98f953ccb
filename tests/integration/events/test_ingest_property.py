"""Property: for any mix of good, bad, duplicate and blank lines the counts reconcile exactly."""

from __future__ import annotations

import datetime as dt
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from churnkit.config import IngestSettings, SourceConfig
from churnkit.events.ingest import ingest
from churnkit.io.workspace import Workspace

BAD = {
    "malformed_row": "u1,2024-01-01,view",
    "missing_user_id": "  ,2024-01-01,view,1",
    "bad_timestamp": "u1,2024-02-30,view,1",
    "timestamp_out_of_range": "u1,2099-01-01,view,1",
    "missing_event": "u1,2024-01-01,,1",
    "unknown_event": "u1,2024-01-01,fly,1",
    "wrong_type": "u1,2024-01-01,purchase,1.2.3",
    "non_finite_amount": "u1,2024-01-01,purchase,inf",
    "negative_amount": "u1,2024-01-01,purchase,-2",
}
good = st.tuples(st.integers(0, 4), st.integers(1, 28), st.one_of(st.none(), st.integers(0, 99)))
line = st.one_of(
    st.tuples(st.just("good"), good),
    st.tuples(st.just("dup"), st.integers(0, 1000)),
    st.tuples(st.just("bad"), st.sampled_from(sorted(BAD))),
    st.tuples(st.just("blank"), st.sampled_from(["", "   ", "\t"])),
)
SOURCE = SourceConfig.model_validate(
    {
        "name": "prop",
        "vocabulary": ["view", "purchase"],
        "allow_negative_amount": False,
        "fields": {"user_id": "user_id", "ts": "ts", "event": "event", "amount": "amount"},
    }
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(line, max_size=60), st.sampled_from(["drop", "keep"]))
def test_counts_reconcile(lines, duplicates):
    text, goods = ["user_id,ts,event,amount"], []
    expect = {"read": 0, "rejected": 0, "dups": 0, "blank": 0}
    by_reason: dict[str, int] = {}
    for kind, arg in lines:
        if kind == "dup" and goods:
            row = goods[arg % len(goods)]
            kind = "good"
        elif kind in ("good", "dup"):
            u, d, a = arg if kind == "good" else (0, 1, None)
            row = f"u{u},2024-01-{d:02d},{'view' if a is None else 'purchase'},{'' if a is None else a}"
            kind = "good"
        if kind == "good":
            expect["read"] += 1
            expect["dups"] += row in goods
            goods.append(row)
            text.append(row)
        elif kind == "bad":
            expect["read"] += 1
            expect["rejected"] += 1
            by_reason[arg] = by_reason.get(arg, 0) + 1
            text.append(BAD[arg])
        else:
            expect["blank"] += 1
            text.append(arg)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "e.csv"
        path.write_text("\r\n".join(text) + "\r\n")
        src = SOURCE.model_copy(update={"duplicates": duplicates})
        ws = Workspace(Path(tmp) / "ws")
        s = ingest(
            [path], src, ws, as_of=dt.datetime(2025, 1, 1, tzinfo=dt.UTC), settings=IngestSettings()
        )
        assert s["read"] == s["accepted"] + s["duplicates"] + s["rejected"]
        assert s["read"] == expect["read"] and s["blank_lines"] == expect["blank"]
        assert s["rejected"] == expect["rejected"] and s["rejected_by_reason"] == by_reason
        if duplicates == "drop":
            assert s["duplicates"] == expect["dups"]
        else:
            assert s["duplicates"] == 0 and s["identical_rows_kept"] == expect["dups"]
        assert pq.read_metadata(ws.quarantine_path).num_rows == s["rejected"]
