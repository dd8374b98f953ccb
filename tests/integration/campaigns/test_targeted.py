"""Targeted (not randomised) campaigns on the real Complete Journey files, through the CLI:
the built-in source ingests who received which campaign (the time from the campaign's start
date), ``campaign evaluate`` compares recipients with the households it was not sent to,
descriptively, with the same numbers a reader gets from the raw files, and the report says
the campaign was targeted and gives no verdict anywhere (rendered by Chromium where installed)."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from churnkit.campaigns.abtest import DESCRIPTIVE
from churnkit.cli import app
from churnkit.flows.campaigns import NOT_TARGETED

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "completejourney"
CAMPAIGN = "8"  # Type A, 1,076 recipients, from 2017-05-08
START, END = pd.Timestamp("2017-05-08", tz="UTC"), pd.Timestamp("2017-06-05", tz="UTC")  # the 28-day window
VERDICT_WORDS = re.compile(r"\b(better|worse|pass|fail|significant|no detectable effect|inconclusive)\b", re.IGNORECASE)


def cli(ws: Path, *args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, ["--workspace", str(ws), *args])
    return res.exit_code, res.output


@pytest.fixture(scope="module")
def journey(tmp_path_factory) -> Path:
    if not (DATA / "campaigns.csv").is_file():
        pytest.skip(f"Complete Journey data not found at {DATA} (shared/ sits beside the repo)")
    ws = tmp_path_factory.mktemp("journey_campaigns") / "ws"
    code, out = cli(ws, "ingest", str(DATA / "transactions_sample.csv"), "--source", "completejourney",
                    "--as-of", "2018-01-02", "--json")
    assert code == 0, out
    return ws


def test_the_preset_ingests_who_received_which_campaign_and_when(journey):
    stored = pd.read_parquet(next(journey.glob("data/*/assignments.parquet")))
    raw = pd.read_csv(DATA / "campaigns.csv", dtype=str)
    starts = pd.read_csv(DATA / "campaign_descriptions.csv", dtype=str).set_index("campaign_id")["start_date"]
    assert len(stored) == len(raw) == 6589 and stored["campaign_id"].nunique() == 27
    assert (stored["design"] == "targeted").all() and (stored["variant"] == "received").all()
    assert stored["is_control"].isna().all()  # no control arm is declared: there is none
    when = stored.set_index("campaign_id")["assigned_ts"].groupby(level=0).first()
    assert {c: str(t.date()) for c, t in when.items()} == starts.to_dict()


def test_evaluate_compares_recipients_with_the_rest_descriptively(journey):
    code, out = cli(journey, "campaign", "evaluate", CAMPAIGN)
    assert code == 0, out
    assert "TARGETED, NOT RANDOMISED" in " ".join(out.split())
    t = pd.read_parquet(journey / "campaigns" / CAMPAIGN / "results.parquet").set_index("metric")
    assert (t["design"] == "targeted").all() and (t["verdict"] == DESCRIPTIVE).all()
    assert (t["control"] == NOT_TARGETED).all() and (t["interval"] == "descriptive").all()
    assert t[["p_value", "p_value_adjusted", "srm_p_value", "mde"]].isna().all().all()
    assert t["non_inferiority"].isna().all() and t["covariate"].isna().all()

    # the same numbers from the raw files: households with a basket in the 28 days from the start
    lines = pd.read_csv(DATA / "transactions_sample.csv", dtype={"household_id": str})
    ts = pd.to_datetime(lines["transaction_timestamp"], utc=True)
    got = set(pd.read_csv(DATA / "campaigns.csv", dtype=str).query("campaign_id == @CAMPAIGN")["household_id"])
    before = set(lines.loc[ts < START, "household_id"])
    pool = before - got
    active = set(lines.loc[(ts >= START) & (ts < END), "household_id"])
    active_pre = set(lines.loc[(ts >= START - (END - START)) & (ts < START), "household_id"])
    r = t.loc["retained"]
    assert (r["n"], r["control_n"]) == (len(got), len(pool)) == (1076, 1028)
    assert r["mean"] == pytest.approx(len(got & active) / len(got), abs=1e-12)
    assert r["control_mean"] == pytest.approx(len(pool & active) / len(pool), abs=1e-12)
    pre = len(got & active_pre) / len(got) - len(pool & active_pre) / len(pool)
    assert r["pre_difference"] == pytest.approx(pre, abs=1e-12)
    assert r["ci_low"] < r["effect"] < r["ci_high"] and not math.isnan(r["effect"])
    # the recipients were already more active before it: selection, which no verdict may hide
    assert r["pre_difference"] > 0.15


def test_declaring_it_randomised_is_a_one_line_error(journey, tmp_path):
    config = tmp_path / "churnkit.yaml"
    config.write_text(json.dumps({"campaigns": {"design": {CAMPAIGN: "randomised"}}}))
    code, out = cli(journey, "--config", str(config), "campaign", "evaluate", CAMPAIGN)
    text = " ".join(out.split())
    assert code == 1 and "Traceback" not in text
    assert f"campaign {CAMPAIGN} has only one variant ('received') and no control arm" in text


@pytest.fixture(scope="module")
def report(journey) -> Path:
    code, out = cli(journey, "report", "campaign", CAMPAIGN)
    assert code == 0, out
    return journey / "campaigns" / CAMPAIGN / "report.html"


def _text(html: str) -> str:
    html = re.sub(r"(?s)<(style|script)>.*?</\1>", " ", html)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_report_says_targeted_and_gives_no_verdict(report):
    text = _text(report.read_text(encoding="utf-8"))
    assert "Targeted, not randomised" in text and "not effects of the campaign" in text
    assert "no verdict is given" in text and "Sample ratio check: not applicable" in text
    assert not VERDICT_WORDS.search(text.replace("no verdict is given", "")), VERDICT_WORDS.findall(text)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed (CI installs it: .ci/run)")
def test_a_real_browser_shows_the_banner_and_no_verdict(report):
    base = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([*base, "--dump-dom", report.as_uri()], check=False, capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    text = _text(dom.stdout)
    assert 'id="targeted"' in dom.stdout and "Targeted, not randomised" in text
    assert not VERDICT_WORDS.search(text.replace("no verdict is given", "")), VERDICT_WORDS.findall(text)
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not [c for c in console if "error" in c.lower() or "Uncaught" in c], console
