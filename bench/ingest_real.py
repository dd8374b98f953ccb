"""Ingest the real data sets (and a small file of CSV edge cases) and record the outputs, so
two versions of the ingest can be compared with ``ingest_outputs.py compare``.

    python bench/ingest_real.py OUT_DIR      # OUT_DIR/<case>/ws and OUT_DIR/<case>/rec

The edge-case file is written to bench/out/edge/ (the same path in every run).

Cases: ``cdnow_master`` (whitespace-delimited), ``cdnow_sample``, ``completejourney`` (with
its users and assignments tables), ``edge`` (quotes, multi-line records, blank lines, CRLF,
padding, undecodable bytes, an unterminated quote, wrong field counts, every reason).
"""

from __future__ import annotations

import datetime as dt
import shutil
import sys
import time
from pathlib import Path

from ingest_outputs import describe, save  # bench/ is the script's folder

from churnkit.config import IngestSettings, load_source
from churnkit.events.ingest import ingest
from churnkit.io.workspace import Workspace

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
"""The real data sets: ``shared/`` sits beside the repository."""
EDGE_SOURCE = """\
name: edge
fields:
  user_id: user_id
  ts:
    column: ts
    formats: ["%Y-%m-%d %H:%M:%S", iso8601]
    timezone: Europe/Berlin
  event: event
  amount: amount
  category: category
vocabulary: [session, view, purchase]
allow_negative_amount: false
duplicates: drop
"""
EDGE_LINES = [
    b"user_id, ts ,event,amount,category",
    b"u1,2024-01-02 10:00:00,purchase,12.5,books",
    b'u1,2024-01-02 10:00:00,purchase,12.5,books',
    b'u2, 2024-01-03 10:00:00 ,view,,"a, b"',
    b'u3,2024-01-04 10:00:00,view,,"two',
    b'lines ""quoted"""',
    b"",
    b"   ",
    b"u4,2024-01-05 10:00:00,view,,x\r",
    b'u5,2024-01-05 10:00:00,view,, "padded" ',
    b"u6,2024-01-05 10:00:00,view,,caf\xe9",
    b"u7,2024-01-05 10:00:00,view",
    b"u8,2024-01-05 10:00:00,view,,x,extra",
    b",2024-01-05 10:00:00,view,,x",
    b"u9,not a time,view,,x",
    b"u9,2030-01-01 00:00:00,view,,x",
    b"u9,2024-01-05 10:00:00,,,x",
    b"u9,2024-01-05 10:00:00,fly,,x",
    b"u9,2024-01-05 10:00:00,purchase,$3,x",
    b"u9,2024-01-05 10:00:00,purchase,inf,x",
    b"u9,2024-01-05 10:00:00,purchase,-2,x",
    b"u9,2024-01-05 10:00:00,purchase,1e300,x",
    b"17850.0,2024-03-31 02:30:00,session,,x",
    b"u10,2024-10-27 02:30:00,session,,x",
    b'u11,2024-01-05 10:00:00,view,,ab"c',
    b'u12,2024-01-05 10:00:00,view,,"x"y',
    b"u13,2024-01-05T10:00:00+05:00,view,,x",
    b'u14,2024-01-05 10:00:00,view,,"never closed',
    b"u15,2024-01-05 10:00:00,view,,x",
]


def cases(folder: Path) -> dict[str, tuple[list[Path], object, dict]]:
    """``folder`` holds the edge-case file: keep it the same in both runs (its path is in the
    quarantine and the summary)."""
    folder.mkdir(parents=True, exist_ok=True)
    edge = folder / "edge.csv"
    edge.write_bytes(b"\n".join(EDGE_LINES) + b"\n")
    (folder / "edge.yaml").write_text(EDGE_SOURCE)
    cd, cj = DATA / "cdnow", DATA / "completejourney"
    return {
        "cdnow_master": ([cd / "CDNOW_master.txt"], load_source("cdnow_master"), {}),
        "cdnow_sample": ([cd / "CDNOW_sample.txt"], load_source("cdnow_sample"), {}),
        "completejourney": ([cj / "transactions_sample.csv"], load_source("completejourney"),
                            {"as_of": dt.datetime(2018, 1, 2, tzinfo=dt.UTC)}),
        "edge": ([edge], load_source(str(folder / "edge.yaml")),
                 {"as_of": dt.datetime(2025, 1, 1, tzinfo=dt.UTC)}),
    }


def main() -> None:
    out = Path(sys.argv[1]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    for name, (paths, source, kw) in cases(Path(__file__).resolve().parent / "out" / "edge").items():
        ws = out / name / "ws"
        if ws.exists():
            shutil.rmtree(ws)
        t0 = time.perf_counter()
        ingest(paths, source, Workspace(ws), as_of=kw.get("as_of", dt.datetime(2025, 1, 1, tzinfo=dt.UTC)),
               settings=IngestSettings())
        wall = time.perf_counter() - t0
        save(ws, out / name / "rec")
        print(f"{name}: {wall:.2f} s; {describe(out / name / 'rec')}")


if __name__ == "__main__":
    main()
