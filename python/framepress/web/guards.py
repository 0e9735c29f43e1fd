"""Who may do what: reads need the credential unless the setting opens them; actions always
need it, and with a session cookie also the CSRF token. Refusals change nothing: they answer
before the handler runs."""
from __future__ import annotations

import functools
import inspect
import json
from typing import Any, Callable
from urllib.parse import parse_qs, quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from framepress.web.auth import COOKIE, CSRF_FIELD, CSRF_HEADER, Identity

Handler = Callable[..., Any]


async def _call(fn: Handler, request: Request) -> Response:
    """Handlers are plain functions (they wait on the database): run off the event loop."""
    if inspect.iscoroutinefunction(fn):
        return await fn(request)
    return await run_in_threadpool(fn, request)


def identity(request: Request) -> Identity | None:
    return request.app.state.console.auth.identify(request.headers.get("authorization"),
                                                   request.cookies.get(COOKIE))


async def body_fields(request: Request) -> dict[str, Any]:
    """A JSON object or an urlencoded form, as a dict (form fields: their last value)."""
    raw = await request.body()
    if not raw:
        return {}
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("application/json"):
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        return data
    if ctype.startswith("application/x-www-form-urlencoded"):
        return {k: v[-1] for k, v in parse_qs(raw.decode(), keep_blank_values=True).items()}
    raise ValueError(f"unsupported content type {ctype or 'none'}")


def _refuse(request: Request, status: int, message: str, page: bool) -> Response:
    if page and status == 401:
        return RedirectResponse("/login?next=" + quote(request.url.path), status_code=303)
    if page:
        return Response(message, status_code=status, media_type="text/plain")
    headers = {"WWW-Authenticate": 'Bearer realm="framepress"'} if status == 401 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def reads(page: bool = False) -> Callable[[Handler], Handler]:
    def wrap(fn: Handler) -> Handler:
        @functools.wraps(fn)
        async def guarded(request: Request) -> Response:
            who = identity(request)
            request.state.identity = who
            if who is None and not request.app.state.console.auth.open_reads:
                return _refuse(request, 401, "the admin credential is required", page)
            return await _call(fn, request)
        return guarded
    return wrap


def acts(page: bool = False) -> Callable[[Handler], Handler]:
    """An action: the credential, and the CSRF token with a cookie; the handler gets the body's
    fields as `request.state.fields`."""
    def wrap(fn: Handler) -> Handler:
        @functools.wraps(fn)
        async def guarded(request: Request) -> Response:
            who = identity(request)
            request.state.identity = who
            if who is None:
                return _refuse(request, 401, "the admin credential is required", page)
            try:
                fields = await body_fields(request)
            except ValueError as exc:
                return _refuse(request, 400, f"bad request body: {exc}", page)
            supplied = request.headers.get(CSRF_HEADER) or fields.pop(CSRF_FIELD, None)
            if not request.app.state.console.auth.csrf_ok(who, supplied):
                return _refuse(request, 403, "the CSRF token is missing or wrong", page)
            request.state.fields = fields
            return await _call(fn, request)
        return guarded
    return wrap


__all__ = ["reads", "acts", "identity", "body_fields"]
