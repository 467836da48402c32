"""HTTP errors of the scoring server and their JSON body.

Every error the server answers has the body `{"error": {"code": ..., "message": ...}}`
with `application/json`, whatever went wrong: clients and the endpoint tests match
on `code`, people read `message`.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from starlette.responses import Response


class ApiError(Exception):
    """An error answer: HTTP status, stable code and a message naming the problem."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    try:
        body = orjson.dumps({"error": {"code": code, "message": message}})
    except orjson.JSONEncodeError:  # a message quoting client text that is no valid Unicode
        safe = message.encode("utf-8", "backslashreplace").decode("utf-8")
        body = orjson.dumps({"error": {"code": code, "message": safe}})
    return Response(body, status_code=status, headers=headers, media_type="application/json")
