"""The real CDNOW files through the built-in sources, checked against the published figures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from churnkit.config import IngestSettings, load_source
from churnkit.events import read_events
from churnkit.events.ingest import ingest
from churnkit.io.workspace import Workspace

SHARED_CDNOW = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "cdnow"


@pytest.fixture(scope="module")
def cdnow() -> Path:
    if not SHARED_CDNOW.is_dir():
        pytest.skip(
            f"real CDNOW data not found at {SHARED_CDNOW.resolve()} (shared/ sits beside the repo)"
        )
    return SHARED_CDNOW


def churnkit(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("churnkit")
    env = {k: v for k, v in os.environ.items() if k != "CHURNKIT_DEBUG"}
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def test_master_via_cli(cdnow, tmp_path):
    proc = churnkit(
        "--workspace",
        str(tmp_path),
        "ingest",
        str(cdnow / "CDNOW_master.txt"),
        "--source",
        "cdnow_master",
    )
    assert proc.returncode == 0, proc.stderr
    assert "read 69,659" in proc.stdout and "users 23,570" in proc.stdout
    s = json.loads(Workspace(tmp_path).summary_path.read_text())
    assert (s["read"], s["users"]) == (69_659, 23_570)
    assert s["read"] == s["accepted"] + s["duplicates"] + s["rejected"]
    assert (s["accepted"], s["duplicates"], s["rejected"], s["blank_lines"]) == (69_659, 0, 0, 0)
    # 215 distinct lines occur more than once: 255 extra copies, all kept as purchases
    assert s["identical_rows_kept"] == 255
    assert (s["first_ts"], s["last_ts"]) == ("1997-01-01T00:00:00Z", "1998-06-30T00:00:00Z")
    assert s["partitions"] == 18
    df = read_events(Workspace(tmp_path))
    assert df["amount"].sum() == pytest.approx(2_500_315.63, abs=0.01)
    assert df.loc[df.user_id == "00001", "amount"].tolist() == [11.77]


def test_sample(cdnow, tmp_path):
    s = ingest(
        [cdnow / "CDNOW_sample.txt"],
        load_source("cdnow_sample"),
        Workspace(tmp_path),
        as_of=None,
        settings=IngestSettings(),
    )
    assert (s["read"], s["accepted"], s["users"]) == (6_919, 6_919, 2_357)
    assert s["identical_rows_kept"] == 21


def _calibration_summary(ws: Workspace, sample_file: Path) -> pd.DataFrame:
    """x (repeat purchase days) and zbar (mean repeat-day spend) in weeks 1-39, as published."""
    ev = read_events(ws)
    ev["day"] = ev["ts"].dt.tz_convert(None).dt.normalize()
    daily = ev.groupby(["user_id", "day"], as_index=False)["amount"].sum()
    first = daily.groupby("user_id")["day"].transform("min")
    rep = daily[(daily["day"] > first) & (daily["day"] <= "1997-09-30")]
    raw = pd.read_csv(
        sample_file,
        sep=r"\s+",
        header=None,
        dtype=str,
        names=["customer_id", "sample_id", "date", "n", "amount"],
    )
    ids = raw.drop_duplicates("customer_id").set_index("customer_id")["sample_id"].astype(int)
    return pd.DataFrame(
        {
            "ID": ids.values,
            "x": rep.groupby("user_id").size().reindex(ids.index).fillna(0).astype(int).values,
            "zbar": rep.groupby("user_id")["amount"].mean().reindex(ids.index).fillna(0.0).values,
        }
    )


def test_keep_reproduces_published_zbar_and_drop_does_not(cdnow, tmp_path):
    """Why the CDNOW sources say `duplicates: keep` (see the comment in cdnow_master.yaml)."""
    published = pd.read_csv(cdnow / "cdnow_customers_summary_with_transactions.csv")
    mismatches = {}
    for mode in ("keep", "drop"):
        ws = Workspace(tmp_path / mode)
        src = load_source("cdnow_sample").model_copy(update={"duplicates": mode})
        ingest([cdnow / "CDNOW_sample.txt"], src, ws, as_of=None, settings=IngestSettings())
        ours = _calibration_summary(ws, cdnow / "CDNOW_sample.txt")
        m = published.merge(ours, on="ID", suffixes=("_pub", ""))
        assert len(m) == 2_357 and (m["x_pub"] == m["x"]).all()
        mismatches[mode] = int((np.abs(m["zbar_pub"] - m["zbar"]) > 0.005 + 1e-9).sum())
    assert mismatches == {"keep": 0, "drop": 4}
