"""One writer at a time: an exclusive lock on a workspace, released even if its holder is killed.

``flock`` locks belong to the open file, so the kernel drops them when the process dies
(``kill -9`` included): a crashed run never leaves a workspace locked. The lock file also
says who holds it, so a second writer's error names the holder.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from churnkit.errors import ChurnkitError


@contextmanager
def exclusive(path: Path, what: str) -> Iterator[None]:
    """Hold ``path`` exclusively for ``what`` (e.g. "ingest"), or fail at once with a
    one-line error naming the current holder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
            raise ChurnkitError(
                f"{path.parent} is busy: {holder}; try again when it has finished"
            ) from None
        since = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        note = f"{what} by pid {os.getpid()} on {socket.gethostname()} since {since} ({Path(sys.argv[0]).name})"
        os.ftruncate(fd, 0)
        os.pwrite(fd, note.encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
