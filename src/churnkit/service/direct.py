"""``POST /score_features`` answered in front of BentoML's API dispatch.

Why: for one row, BentoML's dispatch (routing, request context, the IO descriptors) cost more
than the round trip itself: a bare BentoML API with this request body answered in 1.9-2.85x
its own ``/healthz``, before any scoring. This middleware does what that dispatch does for
this endpoint, with the same parts:

- the body is validated by the endpoint's request model, :class:`FeatureRowsBody`, with the
  same ``model_validate_json`` BentoML runs;
- the rows are answered by the same :meth:`ChurnService.answer` (inline or in a worker thread,
  shed when the wait passes the budget);
- the answers are encoded by the same :func:`scores_response`.

An Arrow IPC body (``Content-Type: application/vnd.apache.arrow.stream``) is read by
:func:`~churnkit.service.arrow_rows.read_arrow_rows` instead, and its errors are answered
here, in the same shape. A JSON body that fails validation is handed on unchanged, and
BentoML's dispatch answers it with its usual 400: errors keep one definition. The middleware sits inside BentoML's metrics,
tracing, access-log and timeout middleware, and after :class:`~churnkit.service.gate.Gate`
(token, body size, readiness).
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import ValidationError
from starlette.responses import JSONResponse, Response

from churnkit.service.arrow_rows import MEDIA_TYPE as ARROW_MEDIA_TYPE
from churnkit.service.arrow_rows import BadArrowRows, read_arrow_rows
from churnkit.service.gate import error, media_type, read_at_most, replay
from churnkit.service.schemas import FeatureRowsBody, scores_response
from churnkit.service.state import ServiceSettings, current_service

PATH = "/score_features"
LOG = logging.getLogger("churnkit.service")
UNEXPECTED = "An unexpected error has occurred, please check the server log."
"""BentoML's answer to an exception in an endpoint, kept word for word."""


class Direct:
    """Validated ``/score_features`` bodies answered here; everything else passes on."""

    def __init__(self, app: Any, server: str = "", **_: Any):
        self.app = app
        self.server = server
        self.max_body = ServiceSettings.from_env().limits.max_body_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") != PATH or scope.get("method") != "POST":
            return await self.app(scope, receive, send)
        service = current_service()
        body = await read_at_most(receive, self.max_body)  # the gate has checked the size
        if service is None or body is None:
            return await self.app(scope, receive if body is None else replay(body, receive), send)
        arrow = media_type(scope) == ARROW_MEDIA_TYPE
        rows: Any = None
        if not arrow:
            try:
                rows = FeatureRowsBody.model_validate_json(body or b"{}").rows
            except ValidationError:
                return await self.app(scope, replay(body, receive), send)
        try:
            answer = await (self._answer_arrow(service, body) if arrow else service.answer(rows))
        except Exception:  # as BentoML answers an exception in an endpoint
            LOG.exception("POST %s failed", PATH)
            answer = JSONResponse({"error": UNEXPECTED}, status_code=500)
        resp = answer if isinstance(answer, Response) else scores_response(answer)
        resp.headers.update(self._headers())
        await resp(scope, receive, send)

    @staticmethod
    async def _answer_arrow(service: Any, body: bytes) -> Any:
        """The answers to an Arrow body, or the 400 that names what is wrong with it."""
        holder = service.holder
        try:
            rows = read_arrow_rows(body, holder.feature_names, holder.settings.limits.max_rows)
        except BadArrowRows as err:
            return error(400, str(err), err.loc)
        return await service.answer(rows)

    def _headers(self) -> dict[str, str]:
        """The headers BentoML adds to an endpoint's answer: its server name and, under
        tracing, the request id."""
        headers = {"Server": self.server} if self.server else {}
        try:
            from bentoml._internal.context import trace_context
        except ImportError:  # a later BentoML moved it: the id is only for log correlation
            return headers
        if trace_context.request_id is not None:
            headers["X-BentoML-Request-ID"] = format(trace_context.request_id, "016x")
        return headers

