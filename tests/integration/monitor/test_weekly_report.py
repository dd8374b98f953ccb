"""The weekly report: self-contained, the same numbers as the KPI tables, every section
there, and (where Chromium is installed) rendered by a real browser without console errors."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from churnkit.config import SimulateSettings
from churnkit.flows.kpi import kpis
from churnkit.flows.project import Project
from churnkit.flows.report import weekly

SECTIONS = ("kpis", "moves", "segments", "retention", "alerts", "lists")


@pytest.fixture(scope="module")
def report(simulated_workspace):
    ws = simulated_workspace("weekly", SimulateSettings(users=500, days=100, seed=12, horizons=[7]))
    project = Project.at(ws)
    return weekly(project), kpis(project, ("week",)).tables["week"]


def test_the_report_holds_the_kpi_tables_numbers_and_nothing_from_outside(report):
    made, week = report
    html = made.path.read_text(encoding="utf-8")
    last = week[week["complete"]].iloc[-1]
    assert made.week == last["period"]
    tiles = dict(re.findall(r'data-kpi="([a-z_]+)" data-value="([^"]+)"', html))
    assert len(tiles) == 11
    for kpi, shown in tiles.items():
        assert float(shown) == pytest.approx(float(last[kpi]), rel=1e-12, nan_ok=True), kpi
    moves = dict(re.findall(r'data-move="([a-z_]+)" data-value="([^"]+)"', html))
    assert len(moves) == 5 and float(moves["churned_users"]) == float(last["churned_users"]) > 0
    for kpi, shown in moves.items():
        assert float(shown) == float(last[kpi]), kpi
    for dim in ("platform", "region", "lifecycle_stage", "rfm_tier"):
        assert f'data-dimension="{dim}"' in html
    for section in SECTIONS:
        assert f'<section id="{section}">' in html
    assert not re.search(r'(src|href)="(https?:)?//', html)  # no network: images inline, styles in the page
    assert "data:image/png;base64," in html and "<svg" in html
    assert made.path.stat().st_size < 1_500_000  # small enough to email
    assert "No scores in this workspace yet" in html and "churnkit alerts has not been run" in html


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed (CI installs it: .ci/run)")
def test_a_real_browser_renders_every_section_without_console_errors(report, tmp_path):
    made, _ = report
    shot = tmp_path / "weekly.png"
    base = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--enable-logging=stderr", "--v=0", "--window-size=1100,2400"]
    dom = subprocess.run([*base, "--dump-dom", made.path.as_uri()], check=False, capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for section in SECTIONS:
        assert f'id="{section}"' in dom.stdout
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not [c for c in console if "error" in c.lower() or "Uncaught" in c], console
    pic = subprocess.run([*base, f"--screenshot={shot}", made.path.as_uri()], check=False, capture_output=True, text=True, timeout=120)
    assert pic.returncode == 0 and shot.stat().st_size > 20_000
