"""ASGI middleware in front of every endpoint: bearer token, body size limit, readiness.

Runs before BentoML parses a body, so an oversized payload is never read into memory and
a client without the token learns nothing. Errors have BentoML's validation-error shape.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from starlette.responses import JSONResponse

from churnkit.service.arrow_rows import MEDIA_TYPE as ARROW_MEDIA_TYPE
from churnkit.service.openapi import corrected
from churnkit.service.state import ServiceSettings, current_holder

OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/docs.json", "/"})
"""Paths that need no token and answer before models load: the probes, the OpenAPI schema and
the UI page (with its static files, :data:`OPEN_PREFIXES`). Everything else, ``/metrics``
included, needs the token when one is set."""
OPEN_PREFIXES = ("/static_content/",)
SPEC_PATH = "/docs.json"
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
        if path == SPEC_PATH:
            return await self.app(scope, receive, _corrected_spec(send))
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
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
        if length is None:  # chunked: read it (up to the limit) before anything parses it
            body = await read_at_most(receive, self.max_body)
            if body is None:
                return await error(413, f"body exceeds the limit of {self.max_body} bytes")(scope, receive, send)
            receive = replay(body, receive)
        if path in MODEL_PATHS:
            holder = current_holder()
            if holder is None or holder.state is None:
                reason = holder.error if holder is not None and holder.error else "models are still loading"
                resp = error(503, f"not ready: {reason}")
                resp.headers["Retry-After"] = str(RETRY_AFTER_S)
                return await resp(scope, receive, send)
        # JSON, or an Arrow stream (direct.Direct reads one for /score_features; elsewhere
        # BentoML reads an unknown type as JSON): a body sent without a JSON content type
        # (curl -d) is still read as JSON.
        if media_type(scope) == ARROW_MEDIA_TYPE:
            return await self.app(scope, receive, send)
        scope = dict(scope)
        scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-type"]
        scope["headers"].append((b"content-type", b"application/json"))
        return await self.app(scope, receive, send)


RETRY_AFTER_S = 2
SHEDDING = "overloaded: the service is shedding load; retry after {s} s"


def shed() -> JSONResponse:
    """The answer to a request shed for load: 503 that says so, with ``Retry-After``."""
    resp = error(503, SHEDDING.format(s=RETRY_AFTER_S))
    resp.headers["Retry-After"] = str(RETRY_AFTER_S)
    return resp


def _corrected_spec(send: Any) -> Any:
    """A send that holds BentoML's spec back, corrects it (:mod:`openapi`) and sends that."""
    start: dict = {}
    parts: list[bytes] = []

    async def sending(message: dict) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
            return
        if message["type"] != "http.response.body":
            return await send(message)
        parts.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = b"".join(parts)
        if start.get("status") == 200:
            body = json.dumps(corrected(json.loads(body))).encode()
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        await send({**start, "headers": [*headers, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    return sending


def media_type(scope: dict) -> str:
    """The request's content type without parameters, lower case ("" when none is sent)."""
    for key, value in scope.get("headers", []):
        if key.lower() == b"content-type":
            return value.decode("latin-1").split(";")[0].strip().lower()
    return ""


async def read_at_most(receive: Any, limit: int) -> bytes | None:
    """The whole body of a request without a length, or None once it passes ``limit``."""
    parts, seen = [], 0
    while True:
        message = await receive()
        if message.get("type") != "http.request":
            break
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)


def replay(body: bytes, receive: Any) -> Any:
    """A receive that hands the app a body already read, then passes on what the client
    sends next (its disconnect)."""
    sent = False

    async def replayed() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
