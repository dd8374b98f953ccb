"""Fixtures shared by the integration tests of scoring and the service."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from churnkit.cli import app
from churnkit.config import SimulateSettings
from churnkit.contracts import as_of_cutoff
from churnkit.flows.ingest import ingest
from churnkit.flows.project import Project
from churnkit.flows.promote import promote_problem
from churnkit.flows.simulate import write_simulation
from churnkit.flows.train import train
from churnkit.io.workspace import Workspace
from churnkit.simulate import simulate
from churnkit.training.fit import TrainOptions

GA4_PROBLEMS = ("churn_ga4", "purchase_ga4", "revenue_ga4")
START_TIMEOUT_S = 120


@dataclass(frozen=True)
class TrainedWorkspace:
    ws: Workspace
    end: dt.date
    """The simulation's end: events are ingested up to its midnight."""

    @property
    def project(self) -> Project:
        return Project.at(self.ws)


@pytest.fixture(scope="session")
def simulated_workspace(tmp_path_factory) -> Callable[[str, SimulateSettings], Workspace]:
    """Make a workspace holding a simulation, ingested up to the midnight of its end."""

    def make(name: str, params: SimulateSettings) -> Workspace:
        ws = Workspace(tmp_path_factory.mktemp(name))
        write_simulation(simulate(params), ws.simulation_dir)
        ingest(Project.at(ws), [ws.simulation_dir], "simulator", as_of=as_of_cutoff(params.end))
        return ws

    return make


@pytest.fixture(scope="session")
def _trained_once(simulated_workspace) -> TrainedWorkspace:
    """Trained once per test run; never handed to a test (see :func:`trained_workspace`)."""
    params = SimulateSettings(users=700, days=140, seed=11, horizons=[7, 28], cutoff_step_days=7)
    ws = simulated_workspace("trained", params)
    project = Project.at(ws)
    for problem in GA4_PROBLEMS:
        train(project, problem, TrainOptions(trials=1, seed=3, bgnbd=False))
        promote_problem(project, problem)
    return TrainedWorkspace(ws, params.end)


@pytest.fixture(scope="module")
def trained_workspace(_trained_once, tmp_path_factory) -> TrainedWorkspace:
    """700 simulated users over 140 days, ingested, the three GA4 problems trained (one
    Optuna trial) and promoted. One per test module, since tests change its champions: a
    copy of the one trained per run (opening a copied workspace points its MLflow store at
    the copy's own artefacts), so each module gets a fresh one without training again."""
    copy = tmp_path_factory.mktemp("trained_copy") / "ws"
    shutil.copytree(_trained_once.ws.root, copy)
    return TrainedWorkspace(Workspace(copy), _trained_once.end)


# --------------------------------------------------------------------------- the real CLI


def _run_churnkit(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("churnkit")
    env = {k: v for k, v in os.environ.items() if k != "CHURNKIT_DEBUG"}
    return subprocess.run([str(exe), *args], check=False, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def _run_in_process(*args: str) -> subprocess.CompletedProcess:
    res = CliRunner().invoke(app, [str(a) for a in args])
    return subprocess.CompletedProcess(["churnkit", *args], res.exit_code, res.stdout, res.stderr)


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess]:
    """The real Typer app in this process: the same parsing, flows and one-line errors as the
    console script without a fresh interpreter's start-up (seconds a call); use ``churnkit``
    where the process itself matters."""
    return _run_in_process


@pytest.fixture(scope="session")
def churnkit() -> Callable[..., subprocess.CompletedProcess]:
    """Run the real console script in a fresh process (what a user's shell does):
    ``churnkit("--workspace", ws, "score", cwd=somewhere)``."""
    return _run_churnkit


# --------------------------------------------------------------------------- mlflow server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, log_path: Path) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < START_TIMEOUT_S:
        if proc.poll() is not None:
            pytest.fail(f"mlflow server exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=1) as resp:
                if resp.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            time.sleep(0.25)
    pytest.fail(f"mlflow server not healthy after {START_TIMEOUT_S} s:\n{log_path.read_text()}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and the workers it forked (its own process group)."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` on a loopback port (SQLite store, proxied artefacts), stopped after."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    mlflow_bin = Path(sys.executable).with_name("mlflow")
    log_path = root / "server.log"
    cmd = [
        str(mlflow_bin),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{root}/mlflow.db",
        "--artifacts-destination",
        str(root / "artifacts"),
    ]
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("MLFLOW_TRACKING_URI", None)
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            cmd, cwd=root, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        elapsed = _wait_healthy(url, proc, log_path)
        print(f"\nmlflow server healthy after {elapsed:.1f} s")
        yield url
    finally:
        t0 = time.perf_counter()
        _stop(proc)
        print(f"\nmlflow server stopped in {time.perf_counter() - t0:.1f} s")
