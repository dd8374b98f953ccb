"""The campaign report: self-contained, every section, the results table's numbers, the
cumulative effect ending where the table's retention effect (without CUPED) ends, and
rendered by a real browser where one is installed."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from churnkit.campaigns.timeline import cumulative_effect
from churnkit.config import SimulateSettings
from churnkit.flows.campaigns import evaluate
from churnkit.flows.project import Project
from churnkit.flows.report import campaign

SECTIONS = ("design", "metrics", "guardrails", "forest", "timeline")


@pytest.fixture(scope="module")
def made(simulated_workspace):
    ws = simulated_workspace("campaign_report", SimulateSettings(users=1500, days=100, seed=4, horizons=[7],
                                                                 campaign_every_days=28, observable=False))
    project = Project.at(ws)
    cid = evaluate(project)[0].campaign_id
    return ws, cid, campaign(project, cid)


def test_the_report_holds_the_results_and_nothing_from_outside(made):
    ws, cid, path = made
    html = path.read_text(encoding="utf-8")
    results = pd.read_parquet(ws.campaign_results_path(cid))
    shown = {(m, v): float(e) for m, v, e in re.findall(r'data-metric="(\w+)" data-variant="(\w+)" data-effect="([^"]+)"', html)}
    assert len(shown) == len(results) > 0
    for r in results.itertuples():
        assert shown[(r.metric, r.variant)] == pytest.approx(r.effect, rel=1e-12)
    for section in SECTIONS:
        assert f'<section id="{section}">' in html
    assert not re.search(r'(src|href)="(https?:)?//', html) and html.count("data:image/png;base64,") == 2
    assert path.stat().st_size < 600_000


def test_the_cumulative_effect_ends_at_the_windows_retention_effect(made):
    ws, cid, _ = made
    (res,) = evaluate(Project.at(ws), [cid])
    rows = res.rows
    curve = cumulative_effect(rows, "control", 28)
    last = curve[curve["day"] == 28].iloc[0]
    raw = rows.groupby("variant")["retained"].mean()
    assert last["effect"] == pytest.approx(raw["treatment"] - raw["control"], abs=1e-12)
    assert (np.diff(curve["share"].to_numpy()) >= -1e-12).all()  # a cumulative share never falls


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed (CI installs it: .ci/run)")
def test_a_real_browser_renders_the_campaign_report(made):
    _, _, path = made
    base = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0"]
    dom = subprocess.run([*base, "--dump-dom", path.as_uri()], check=False, capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for section in SECTIONS:
        assert f'id="{section}"' in dom.stdout
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not [c for c in console if "error" in c.lower() or "Uncaught" in c], console


def test_report_campaign_from_the_cli(made, churnkit, cli):
    ws, cid, _ = made
    run = churnkit("--workspace", str(ws.root), "report", "campaign", cid)
    assert run.returncode == 0, run.stderr
    assert "campaign report for" in run.stdout and ws.campaign_report_path(cid).exists()
    bad = cli("--workspace", str(ws.root), "report", "campaign", "nope")
    assert bad.returncode == 1 and "no campaign 'nope'" in bad.stderr
