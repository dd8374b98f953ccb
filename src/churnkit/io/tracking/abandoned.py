"""What a killed ``train`` leaves in the store, found and marked on the next run.

A run whose process died (``kill -9``, an out-of-memory kill) stays ``RUNNING`` forever and
its half-logged model ``PENDING``. Runs carry their process (host and pid, see
:func:`runs.owner_tags`); a run of this host whose process no longer exists is marked
``KILLED`` and its pending models ``FAILED``. Runs of other hosts, or of live processes (a
parallel worker), are left alone.
"""

from __future__ import annotations

import logging
import os
import socket

from mlflow.entities import LoggedModelStatus

from churnkit.io.tracking import store
from churnkit.io.tracking.runs import OWNER_HOST, OWNER_PID
from churnkit.io.tracking.store import experiment_name

log = logging.getLogger(__name__)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def dead_runs(problem: str) -> list[str]:
    """RUNNING runs of the problem's experiment whose process on this host is gone."""
    client = store.client()
    exp = client.get_experiment_by_name(experiment_name(problem))
    if exp is None:
        return []
    host = socket.gethostname()
    found = client.search_runs([exp.experiment_id], "attributes.status = 'RUNNING'", max_results=1000)
    dead = []
    for run in found:
        tags = run.data.tags
        pid = tags.get(OWNER_PID, "")
        if tags.get(OWNER_HOST) == host and pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            dead.append(run.info.run_id)
    return dead


def mark_abandoned(problem: str) -> dict[str, int]:
    """Mark the problem's runs from dead processes ``KILLED`` and their pending models
    ``FAILED``; returns how many of each."""
    client = store.client()
    runs = dead_runs(problem)
    for run_id in runs:
        client.set_terminated(run_id, "KILLED")
    models = 0
    if runs:
        exp = client.get_run(runs[0]).info.experiment_id
        pending = client.search_logged_models(experiment_ids=[exp])
        for m in pending:
            if m.source_run_id in runs and m.status == LoggedModelStatus.PENDING:
                client.finalize_logged_model(m.model_id, LoggedModelStatus.FAILED)
                models += 1
    if runs:
        log.warning("marked %d run(s) of killed trainings of %s KILLED, %d pending model(s) FAILED",
                    len(runs), problem, models)
    return {"runs": len(runs), "models": models}
