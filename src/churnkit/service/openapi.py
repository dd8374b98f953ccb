"""The OpenAPI spec as the service really answers: BentoML's generated spec, corrected.

BentoML declares an error's ``detail`` as a string; churnkit's errors carry a list of
``{loc, msg, type}`` (pydantic's and the gate's alike). Its 200 schemas drop ``null`` from
optional fields, and it leaves out the codes the gate answers before a request reaches an
endpoint (401, 413, 503). :func:`corrected` fixes all three, so a client generated from
``/docs.json`` and a schema checker agree with the responses. It also states that
``/score_features`` takes an Arrow body, and strips the docstrings' indentation from the
endpoint descriptions.
"""

from __future__ import annotations

import copy
import inspect
from typing import Any

from pydantic import TypeAdapter

from churnkit.service.arrow_rows import MEDIA_TYPE as ARROW_MEDIA_TYPE
from churnkit.service.schemas import EventsResponse, Explanation, Info, Scores, UsersResponse

OUTPUTS: dict[str, Any] = {
    "/score_features": list[Scores],
    "/score_users": UsersResponse,
    "/score_events": EventsResponse,
    "/explain": Explanation,
    "/info": Info,
}
"""What each endpoint answers with 200, as the response models state it (nullable fields
included: BentoML's generated spec drops ``null`` from them)."""

ERROR_DETAIL = {
    "type": "array",
    "title": "Error Detail",
    "description": "What was wrong, one entry per field: where (loc), what (msg) and its kind (type).",
    "items": {
        "type": "object",
        "required": ["loc", "msg", "type"],
        "properties": {
            "loc": {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "integer"}]}},
            "msg": {"type": "string"},
            "type": {"type": "string"},
        },
    },
}
GATE_ERRORS = {
    "401": "Unauthorized: a bearer token is required and was missing or wrong",
    "413": "Payload Too Large: the body is over the service's limit",
    "503": "Service Unavailable: the models are still loading or failed to load",
}
GATE_ERROR = "GateError"


def corrected(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``spec`` whose error responses say what the service sends."""
    out = copy.deepcopy(spec)
    schemas = out.setdefault("components", {}).setdefault("schemas", {})
    for schema in schemas.values():
        props = schema.get("properties") or {}
        if set(props) == {"error", "detail"} and schema.get("required") == ["error"]:
            props["detail"] = ERROR_DETAIL
    schemas[GATE_ERROR] = {
        "type": "object", "title": GATE_ERROR, "required": ["error", "detail"],
        "properties": {"error": {"type": "string", "title": "Message"}, "detail": ERROR_DETAIL},
    }
    for path, item in out.get("paths", {}).items():
        operation = item.get("post")
        if operation is None:
            continue
        if isinstance(operation.get("description"), str):  # BentoML passes the docstring as written
            operation["description"] = inspect.cleandoc(operation["description"])
        responses = operation.setdefault("responses", {})
        if path in OUTPUTS and "200" in responses:
            schema = TypeAdapter(OUTPUTS[path]).json_schema(
                mode="serialization", ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            responses["200"].setdefault("content", {})["application/json"] = {"schema": schema}
        if path == "/score_features" and "requestBody" in operation:
            operation["requestBody"].setdefault("content", {})[ARROW_MEDIA_TYPE] = {
                "schema": {"type": "string", "format": "binary",
                           "description": "An Arrow IPC stream: one numeric column per feature, "
                                          "optionally a user_id text column"}}
        for code, text in GATE_ERRORS.items():
            responses.setdefault(code, {
                "description": text,
                "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{GATE_ERROR}"}}},
            })
    return out
