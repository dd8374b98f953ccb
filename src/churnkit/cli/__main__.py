"""``python -m churnkit.cli``: the same as the ``churnkit`` command."""

import sys

from churnkit.cli import app

sys.exit(app())
