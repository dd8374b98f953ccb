"""ASGI middleware in front of every endpoint: bearer token, body size limit, readiness.

Runs before BentoML parses a body, so an oversized payload is never read into memory and
a client without the token learns nothing. Errors have BentoML's validation-error shape.
"""

from __future__ import annotations

import hmac
from typing import Any

from starlette.responses import JSONResponse

from churnkit.service.state import ServiceSettings, current_holder

OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics", "/docs.json", "/", "/docs"})
"""Paths that need no token (probes and the OpenAPI schema) and answer before models load."""
MODEL_PATHS = frozenset({"/score_features", "/score_users", "/score_events", "/explain"})


def error(status: int, message: str, loc: list[Any] | None = None) -> JSONResponse:
    """Errors in the same shape as BentoML's validation errors: ``error`` and ``detail``."""
    detail = [{"loc": loc or [], "msg": message, "type": "value_error"}]
    return JSONResponse({"error": message, "detail": detail}, status_code=status)


class Gate:
    """Token, size and readiness checks; settings read when the server builds its app."""

    def __init__(self, app: Any, **_: Any):
        self.app = app
        settings = ServiceSettings.from_env()
        self.token = settings.token
        self.max_body = settings.limits.max_body_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if path in OPEN_PATHS:
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.token is not None:
            auth = headers.get("authorization", "")
            given = auth[7:] if auth.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                resp = error(401, "missing or wrong bearer token (header Authorization: Bearer <token>)")
                resp.headers["WWW-Authenticate"] = "Bearer"
                return await resp(scope, receive, send)
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > self.max_body:
            return await error(413, f"body of {int(length)} bytes exceeds the limit of {self.max_body}")(
                scope, receive, send
            )
        if path in MODEL_PATHS:
            holder = current_holder()
            if holder is None or holder.state is None:
                reason = holder.error if holder is not None and holder.error else "models are still loading"
                return await error(503, f"not ready: {reason}")(scope, receive, send)
        # JSON only: a body sent without a JSON content type (curl -d) is still read as JSON.
        scope = dict(scope)
        scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-type"]
        scope["headers"].append((b"content-type", b"application/json"))
        return await self.app(scope, _limited(receive, self.max_body), send)


def _limited(receive: Any, limit: int) -> Any:
    """A receive that stops a chunked body (no Content-Length) at the size limit."""
    seen = 0

    async def wrapped() -> dict:
        nonlocal seen
        message = await receive()
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise ValueError(f"body exceeds the limit of {limit} bytes")
        return message

    return wrapped
