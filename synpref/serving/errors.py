"""Every error the server answers, in one JSON shape, vLLM's:
{"error": {"message": <the reason>, "type": <kind>, "param": <the field or null>, "code": <HTTP status>}}.

Bad requests are the client's fault and say what to fix (400, 401, 404, 405, 413); an overloaded
model is a 503 to retry; anything else the server did wrong is a 500 that still answers in this
shape, with the exception's kind, and leaves the server up. Unknown routes and wrong methods too:
FastAPI's own {"detail": ...} never reaches a client.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

TYPES = {400: "BadRequestError", 401: "AuthenticationError", 404: "NotFoundError", 405: "MethodNotAllowedError",
         413: "RequestTooLargeError", 500: "InternalServerError", 503: "ServiceUnavailableError"}
logger = logging.getLogger("synpref.serving")


class ApiError(Exception):
    """An error answered to the client as JSON with an HTTP status."""

    def __init__(self, status: int, message: str, param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param = status, message, param

    def body(self) -> dict:
        return error_body(self.status, self.message, self.param)


def error_body(status: int, message: str, param: str | None = None) -> dict:
    return {"error": {"message": message, "type": TYPES.get(status, "Error"), "param": param, "code": status}}


def validation_error(error: ValidationError) -> ApiError:
    """A pydantic error as one readable 400: each bad field with what was wrong with it."""
    problems = []
    for e in error.errors():
        where = ".".join(str(p) for p in e["loc"]) or "body"
        problems.append(f"{where}: {e['msg']}")
    first = ".".join(str(p) for p in error.errors()[0]["loc"]) or None
    return ApiError(400, "invalid request: " + "; ".join(problems), param=first)


def install(app: FastAPI) -> None:
    """Answer every error of `app` in the one shape."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, error: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if error.status == 401 else None
        return JSONResponse(error.body(), status_code=error.status, headers=headers)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> JSONResponse:
        if error.status_code == 404:
            message = f"no route {request.method} {request.url.path}: see GET /v1/models and the README's routes"
        elif error.status_code == 405:
            message = f"{request.url.path} does not answer {request.method}"
        else:
            message = str(error.detail)
        return JSONResponse(error_body(error.status_code, message), status_code=error.status_code,
                            headers=getattr(error, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def request_validation(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(error_body(400, f"invalid request: {error.errors()}"), status_code=400)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, error: Exception) -> JSONResponse:
        logger.exception("%s %s failed", request.method, request.url.path)
        return JSONResponse(error_body(500, f"the server failed on this request ({type(error).__name__}: {error})"),
                            status_code=500)
