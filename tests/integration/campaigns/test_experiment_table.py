"""``churnkit campaign evaluate --table`` on half of Hillstrom's randomised e-mail test: arm
sizes and means as published, effects and Welch intervals as scipy computes them, CUPED on
two pre-period covariates, uplift judged on a held-out split, the report, a two-arm table
without covariates, and one-line errors for every broken rule of the table."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from typer.testing import CliRunner

from churnkit.cli import app
from churnkit.io.workspace import Workspace

CONTROL = "No E-Mail"
ARGS = ["--variant-column", "segment", "--control", CONTROL, "--metrics", "visit,conversion,spend"]
PUBLISHED = {  # data/README.md, half A: (mean, decimals shown) per metric and arm
    "visit": {"No E-Mail": 10.83, "Mens E-Mail": 18.41, "Womens E-Mail": 15.12},
    "conversion": {"No E-Mail": 0.573, "Mens E-Mail": 1.192, "Womens E-Mail": 0.879},
    "spend": {"No E-Mail": 0.652, "Mens E-Mail": 1.338, "Womens E-Mail": 1.054},
}
SCALE = {"visit": 100, "conversion": 100, "spend": 1}  # the README shows rates in percent


def cli(*args: str):
    """The real command in this process; returns (exit code, stdout, stderr)."""
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.stdout, res.stderr


@pytest.fixture(scope="module")
def half_a(hillstrom_dir: Path) -> Path:
    return hillstrom_dir / "hillstrom_half_a.csv"


@pytest.fixture(scope="module")
def evaluated(half_a: Path, tmp_path_factory: pytest.TempPathFactory):
    """Half A evaluated twice: with CUPED and uplift (``hillstrom``), and raw (``raw``)."""
    ws = Workspace(tmp_path_factory.mktemp("hillstrom"))
    code, out, err = cli("--workspace", str(ws.root), "campaign", "evaluate", "--table", str(half_a), *ARGS,
                         "--covariates", "history,recency", "--id", "hillstrom", "--uplift-metric", "visit")
    assert code == 0, err
    code_raw, _, err_raw = cli("--workspace", str(ws.root), "campaign", "evaluate", "--table", str(half_a), *ARGS,
                               "--id", "raw")
    assert code_raw == 0, err_raw
    return ws, out, pd.read_csv(half_a)


def _meta(ws: Workspace, cid: str) -> dict:
    return json.loads(ws.campaign_results_path(cid).with_suffix(".json").read_text())


def test_arm_sizes_and_means_match_pandas_and_the_published_figures(evaluated):
    ws, out, data = evaluated
    t = pd.read_parquet(ws.campaign_results_path("hillstrom"))
    assert len(t) == 6 and set(t["variant"]) == {"Mens E-Mail", "Womens E-Mail"}
    assert (t["control"] == CONTROL).all() and (t["campaign_id"] == "hillstrom").all()
    sizes = {**dict(zip(t["variant"], t["n"], strict=False)), CONTROL: int(t["control_n"].iloc[0])}
    assert sizes == {"Mens E-Mail": 10_653, "Womens E-Mail": 10_693, CONTROL: 10_653}
    direct = data.groupby("segment")[["visit", "conversion", "spend"]].mean()
    for r in t.itertuples():
        for arm, mean in ((r.variant, r.mean), (CONTROL, r.control_mean)):
            assert mean == pytest.approx(direct.at[arm, r.metric], rel=1e-12)
            shown = PUBLISHED[r.metric][arm]
            decimals = len(str(shown).split(".")[1])
            assert round(mean * SCALE[r.metric], decimals) == pytest.approx(shown, abs=1e-9)
    assert "campaign hillstrom: 31,999 users; control No E-Mail" in " ".join(out.split())


def test_raw_effects_and_intervals_are_welchs(evaluated):
    ws, _, data = evaluated
    t = pd.read_parquet(ws.campaign_results_path("raw"))
    assert t["covariate"].isna().all() and t["variance_reduction"].isna().all()
    for r in t.itertuples():
        y1 = data.loc[data["segment"] == r.variant, r.metric].to_numpy(float)
        y0 = data.loc[data["segment"] == CONTROL, r.metric].to_numpy(float)
        v1, v0 = y1.var(ddof=1) / len(y1), y0.var(ddof=1) / len(y0)
        se = math.sqrt(v1 + v0)
        df = (v1 + v0) ** 2 / (v1**2 / (len(y1) - 1) + v0**2 / (len(y0) - 1))
        half = stats.t.ppf(0.975, df) * se
        effect = y1.mean() - y0.mean()
        assert r.effect == pytest.approx(effect, rel=1e-10) and r.se == pytest.approx(se, rel=1e-10)
        assert (r.ci_low, r.ci_high) == pytest.approx((effect - half, effect + half), rel=1e-8)
        assert r.p_value == pytest.approx(stats.ttest_ind(y1, y0, equal_var=False).pvalue, rel=1e-6, abs=1e-300)
        assert r.srm_p_value == pytest.approx(stats.chisquare([10_653, 10_653, 10_693]).pvalue, rel=1e-9)


def test_cuped_on_history_and_recency_cuts_the_variance_and_keeps_the_effect(evaluated):
    ws, _, data = evaluated
    t = pd.read_parquet(ws.campaign_results_path("hillstrom")).set_index(["metric", "variant"])
    raw = pd.read_parquet(ws.campaign_results_path("raw")).set_index(["metric", "variant"])
    assert set(t["covariate"]) == {f"{m}~history+recency" for m in ("visit", "conversion", "spend")}
    for key in t.index:
        cuped, plain = t.loc[key], raw.loc[key]
        assert 0 < cuped["variance_reduction"] < 0.2
        assert cuped["se"] < plain["se"]
        assert cuped["ci_low"] <= plain["effect"] <= cuped["ci_high"]
        assert abs(cuped["effect"] - plain["effect"]) < 0.5 * plain["se"]
    # the cut is about the R^2 of visit on the two covariates (what the OLS fit explains)
    X = np.column_stack([np.ones(len(data)), data[["history", "recency"]].to_numpy(float)])
    y = data["visit"].to_numpy(float)
    resid = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    r2 = 1 - resid.var() / y.var()
    cut = t.loc[("visit", "Mens E-Mail"), "variance_reduction"]
    print(f"\nCUPED variance reduction, visit (Mens): {cut:.4f}; pooled R^2 {r2:.4f}")
    assert cut == pytest.approx(r2, rel=0.5)


def test_uplift_on_visit_is_judged_on_the_held_out_split(evaluated):
    ws, out, _data = evaluated
    meta = _meta(ws, "hillstrom")
    u = meta["uplift"]
    assert u["metric"] == "visit" and "customer_id" in u["identifiers_ignored"]
    assert not {"visit", "conversion", "spend", "segment", "customer_id"} & set(u["features"])
    assert "zip_code=Rural" in u["encoded_features"]
    mens = next(s for s in u["by_variant"] if s["variant"] == "Mens E-Mail")
    assert mens["learner"] in ("T", "X", "DR") and set(mens["validation_qini"]) == {"T", "X", "DR"}
    assert np.isfinite([mens["qini_low"], mens["qini_high"], mens["auuc_low"], mens["auuc_high"]]).all()
    assert mens["qini_low"] <= mens["qini"] <= mens["qini_high"] and mens["qini_low"] < mens["qini_high"]
    rows = pd.read_parquet(ws.campaign_rows_path("hillstrom"))
    test = rows[(rows["split"] == "test") & rows["segment"].isin(["Mens E-Mail", CONTROL])]
    assert len(test) == mens["n_test"] and abs(len(test) / 21_306 - 0.25) < 0.001
    treated = test["segment"] == "Mens E-Mail"
    y_t, y_c = test.loc[treated, "visit"].sum(), test.loc[~treated, "visit"].sum()
    gain = y_t - y_c * treated.sum() / (~treated).sum()
    curve = pd.read_parquet(ws.campaign_qini_path("hillstrom"))
    mine = curve[curve["variant"] == "Mens E-Mail"]
    assert set(mine["learner"]) == {mens["learner"]}
    assert mine["incremental_gain"].iloc[-1] == pytest.approx(gain, rel=1e-12)
    assert mine["random"].iloc[-1] == pytest.approx(gain, rel=1e-12) and mine["n_targeted"].iloc[-1] == len(test)
    assert "uplift on visit, Mens E-Mail vs control" in " ".join(out.split())


def test_the_report_renders_a_table_experiment(evaluated):
    ws, _, _ = evaluated
    code, _, err = cli("--workspace", str(ws.root), "report", "campaign", "hillstrom")
    assert code == 0, err
    html = ws.campaign_report_path("hillstrom").read_text(encoding="utf-8")
    for section in ("design", "metrics", "forest", "timeline", "uplift"):
        assert f'<section id="{section}">' in html
    assert "no timestamps" in html and html.count("data:image/png;base64,") == 2
    assert "10,653" in html and 'data-variant="Mens E-Mail" data-qini=' in html
    assert not re.search(r'(src|href)="(https?:)?//', html)
    code, _, _ = cli("--workspace", str(ws.root), "report", "campaign", "raw")
    assert code == 0 and 'id="uplift"' not in ws.campaign_report_path("raw").read_text(encoding="utf-8")


def test_two_arms_without_covariates_from_a_parquet_file(half_a: Path, tmp_path: Path):
    data = pd.read_csv(half_a)
    two = data[data["segment"].isin([CONTROL, "Womens E-Mail"])].head(3000)[["segment", "visit", "spend"]]
    path = tmp_path / "womens_test.parquet"
    two.to_parquet(path)
    ws = Workspace(tmp_path / "ws")
    code, _, err = cli("--workspace", str(ws.root), "campaign", "evaluate", "--table", str(path),
                       "--variant-column", "segment", "--control", CONTROL, "--metrics", "visit,spend")
    assert code == 0, err
    t = pd.read_parquet(ws.campaign_results_path("womens_test"))  # the id defaults to the file's stem
    assert list(t["metric"]) == ["visit", "spend"] and set(t["variant"]) == {"Womens E-Mail"}
    for r in t.itertuples():
        y1 = two.loc[two["segment"] == "Womens E-Mail", r.metric]
        y0 = two.loc[two["segment"] == CONTROL, r.metric]
        assert r.effect == pytest.approx(y1.mean() - y0.mean(), rel=1e-12)
        assert r.p_value == pytest.approx(stats.ttest_ind(y1, y0, equal_var=False).pvalue, rel=1e-6)
    assert t["covariate"].isna().all() and not ws.campaign_qini_path("womens_test").exists()


def _bad_tables(sample: pd.DataFrame, folder: Path) -> dict[str, Path]:
    """Each broken table once: text in an outcome, blanks in an outcome and in the variant,
    an arm declared but empty (a categorical Parquet column)."""
    made = {}
    text = sample.astype({"visit": object})
    text.loc[7, "visit"] = "yes"
    made["text"] = text
    blanks = sample.copy()
    blanks.loc[[3, 10, 20], "spend"] = np.nan
    made["blanks"] = blanks
    unassigned = sample.copy()
    unassigned.loc[[5, 6], "segment"] = np.nan
    made["unassigned"] = unassigned
    for name, df in made.items():
        df.to_csv(folder / f"{name}.csv", index=False)
    paths = {name: folder / f"{name}.csv" for name in made}
    empty = sample.assign(segment=pd.Categorical(sample["segment"],
                                                 categories=[*sorted(sample["segment"].unique()), "SMS"]))
    empty.to_parquet(folder / "empty_arm.parquet")
    paths["empty_arm"] = folder / "empty_arm.parquet"
    paths["good"] = folder / "good.csv"
    sample.to_csv(paths["good"], index=False)
    return paths


@pytest.fixture(scope="module")
def bad(half_a: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bad_tables")
    return _bad_tables(pd.read_csv(half_a, nrows=400), folder)


CASES = {
    "missing file": ("nope.csv", ARGS, "no experiment table at"),
    "no variant column": ("good", ["--variant-column", "arm", "--control", CONTROL, "--metrics", "visit"],
                          "variant column 'arm' not in the table"),
    "control absent": ("good", ["--variant-column", "segment", "--control", "Control", "--metrics", "visit"],
                       ("control 'Control' is not a value of 'segment' (variants: 'Mens E-Mail', 'No E-Mail', "
                       "'Womens E-Mail')")),
    "unknown metric": ("good", [*ARGS[:4], "--metrics", "visit,revenue"], "metric column 'revenue' not in the table"),
    "unknown covariate": ("good", [*ARGS, "--covariates", "history,tenure"], "covariate column 'tenure' not in"),
    "text outcome": ("text", ARGS, "metric column 'visit' is not numeric: 1 values such as 'yes' (data row 8)"),
    "blank outcome": ("blanks", ARGS, "metric column 'spend' has 3 missing or infinite values (first at data row 4)"),
    "no variant": ("unassigned", ARGS, "2 rows have no 'segment' (first at data row 6)"),
    "empty arm": ("empty_arm", ARGS, "arm(s) with no customers: 'SMS'"),
    "uplift metric not analysed": ("good", [*ARGS, "--uplift-metric", "history"],
                                   "--uplift-metric 'history' must be one of the metrics"),
    "no control given": ("good", ["--metrics", "visit"], "--table needs --control"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_broken_table_is_one_line_and_a_non_zero_exit(case: str, bad: dict[str, Path], tmp_path: Path):
    name, args, message = CASES[case]
    path = bad.get(name, tmp_path / name)
    code, out, err = cli("--workspace", str(tmp_path / "ws"), "campaign", "evaluate", "--table", str(path), *args)
    text = " ".join(err.split())
    assert code == 1 and message in text, (code, err, out)
    assert err.strip().startswith("error:") and err.strip().count("\n") == 0 and "Traceback" not in err + out
    assert not (tmp_path / "ws" / "campaigns").exists()  # nothing half-written


def test_ids_and_a_table_together_are_refused(bad: dict[str, Path], tmp_path: Path):
    code, _, err = cli("--workspace", str(tmp_path), "campaign", "evaluate", "c1", "--table", str(bad["good"]), *ARGS)
    assert code == 1 and "not both" in err
