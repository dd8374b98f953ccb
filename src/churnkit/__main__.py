"""``python -m churnkit``: the same as the ``churnkit`` command (and ``python -m churnkit.cli``)."""

import sys

from churnkit.cli import app

sys.exit(app())
