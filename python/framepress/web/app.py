"""The console's ASGI application: the JSON API (routes from `openapi.ENDPOINTS`), the pages,
the package's own static files, and security headers on every answer."""
from __future__ import annotations

import contextlib
from importlib import metadata
from pathlib import Path
from typing import Any, AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from framepress.web import pages
from framepress.web.context import Console
from framepress.web.openapi import ENDPOINTS, spec

HERE = Path(__file__).parent

# Scripts, styles and media only from the console itself (it is reached where no CDN is);
# blob: is where the HLS player puts the media it assembles.
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
                               "img-src 'self' data:; media-src 'self' blob:; "
                               "worker-src 'self' blob:; frame-ancestors 'none'; "
                               "form-action 'self'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}


class SecurityHeaders:
    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [
                    (k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()
                    if k.encode() not in names]
            await send(message)
        await self.app(scope, receive, with_headers)


def _version() -> str:
    try:
        return metadata.version("framepress")
    except metadata.PackageNotFoundError:
        return "0"


def build(console: Console) -> Starlette:
    description = spec(_version())

    async def openapi(_: Request) -> Response:
        return JSONResponse(description)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"ok": True})

    routes = [Route(e.path.replace("{path}", "{path:path}"), e.handler, methods=[e.method])
              for e in ENDPOINTS]
    routes += [
        Route("/openapi.json", openapi),
        Route("/healthz", healthz),
        Route("/", pages.tasks_page),
        Route("/tasks", pages.submit_action, methods=["POST"]),
        Route("/tasks/{task_id}", pages.task_page),
        Route("/tasks/{task_id}/retry", pages.retry_action, methods=["POST"]),
        Route("/tasks/{task_id}/resolve", pages.resolve_action, methods=["POST"]),
        Route("/tasks/{task_id}/cancel", pages.cancel_action, methods=["POST"]),
        Route("/escalations", pages.escalations_page),
        Route("/workers", pages.workers_page),
        Route("/charts", pages.charts_page),
        Route("/webhooks", pages.webhooks_page),
        Route("/login", pages.login_page),
        Route("/login", pages.login, methods=["POST"]),
        Route("/logout", pages.logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if console.sampler:
            console.sampler.start()
        try:
            yield
        finally:
            if console.sampler:
                console.sampler.stop()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.console = console
    app.state.templates = Jinja2Templates(directory=str(HERE / "templates"))
    app.add_middleware(SecurityHeaders)
    return app


__all__ = ["build", "SECURITY_HEADERS"]
