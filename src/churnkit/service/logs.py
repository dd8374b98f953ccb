"""One log line per rejected request, with the fields at fault and none of their values.

BentoML logs every request it rejects as an error with a traceback, and a pydantic error's
text carries the offending input (user ids, features). A client error is not a server error:
:class:`ClientErrors` rewrites those records to one warning line naming the fields.
"""

from __future__ import annotations

import logging

from bentoml.exceptions import BentoMLException
from pydantic import ValidationError

BENTOML_REQUEST_LOGGER = "bentoml._internal.server.http_app"
"""Where BentoML logs an exception raised while handling a request."""


class ClientErrors(logging.Filter):
    """Rejected requests (invalid input, 4xx, shed load) become one line without payload."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, ValidationError):
            fields = sorted({".".join(str(p) for p in e["loc"]) or "body" for e in exc.errors()})
            shown = ", ".join(fields[:10]) + (" ..." if len(fields) > 10 else "")
            what = f"{exc.error_count()} invalid value(s) in {shown}"
        elif isinstance(exc, BentoMLException) and (exc.error_code.value < 500 or exc.error_code.value == 503):
            what = f"{exc.error_code.value} {type(exc).__name__}"
        else:
            return True
        path, method = (record.args or ("?", "?"))[:2] if isinstance(record.args, tuple) else ("?", "?")
        record.msg, record.args = "rejected %s %s: %s", (method, path, what)
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def quiet_client_errors() -> None:
    """Install :class:`ClientErrors` on BentoML's request logger (once per process)."""
    logger = logging.getLogger(BENTOML_REQUEST_LOGGER)
    if not any(isinstance(f, ClientErrors) for f in logger.filters):
        logger.addFilter(ClientErrors())
