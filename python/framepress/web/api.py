"""The JSON API under /api (described at /openapi.json)."""
from __future__ import annotations

import functools
from typing import Any, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from framepress.errors import InputError, LadderError
from framepress.service.admin import AdminError
from framepress.service.errors import ConfigError, TaskNotFound
from framepress.web import actions, outputs, queries
from framepress.web.context import Console
from framepress.web.guards import acts, reads
from framepress.webhooks.dispatcher import list_deliveries


def console(request: Request) -> Console:
    return request.app.state.console


def json_errors(fn: Callable[[Request], Any]) -> Callable[[Request], Response]:
    """Expected errors as JSON: 404 no such task, 409 the action does not apply, 400 bad input."""
    @functools.wraps(fn)
    def handler(request: Request) -> Response:
        try:
            out = fn(request)
        except TaskNotFound as exc:
            return JSONResponse({"error": str(exc)}, status_code=404)
        except AdminError as exc:
            return JSONResponse({"error": str(exc)}, status_code=409)
        except (InputError, LadderError, ConfigError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return out if isinstance(out, Response) else JSONResponse(out)
    return handler


def _int(request: Request, name: str, default: int, lo: int = 0, hi: int = 1000) -> int:
    raw = request.query_params.get(name)
    try:
        return default if raw in (None, "") else max(lo, min(hi, int(raw)))
    except ValueError:
        raise InputError(f"{name} must be an integer") from None


def _status(request: Request) -> dict[str, Any]:
    data = _store(request).status(request.path_params["task_id"])
    if data is None:
        raise TaskNotFound(f"no task {request.path_params['task_id']}")
    return data


def _store(request: Request):
    from framepress.service.tasks import TaskStore
    return TaskStore(console(request).db)


@reads()
@json_errors
def list_tasks(request: Request) -> Any:
    status = request.query_params.get("status") or None
    if status and status not in queries.STATUSES:
        raise InputError(f"status must be one of {', '.join(queries.STATUSES)}")
    return queries.list_tasks(console(request).db, status=status,
                              q=request.query_params.get("q") or None,
                              limit=_int(request, "limit", 50, 1, 500),
                              offset=_int(request, "offset", 0, 0, 10**9))


@acts()
@json_errors
def submit_task(request: Request) -> Any:
    return JSONResponse(actions.submit(console(request), request.state.fields), status_code=201)


@reads()
@json_errors
def get_task(request: Request) -> Any:
    return _status(request)


@reads()
@json_errors
def task_events(request: Request) -> Any:
    return _status(request)["events"]


@reads()
@json_errors
def task_renditions(request: Request) -> Any:
    return _status(request)["renditions"]


@reads()
@json_errors
def task_webhooks(request: Request) -> Any:
    _status(request)
    return list_deliveries(console(request).db, task_id=request.path_params["task_id"])


@reads()
@json_errors
def task_output(request: Request) -> Any:
    """A file of the task's output (the page's player reads the HLS playlists and segments)."""
    task = _store(request).get(request.path_params["task_id"])
    if task is None:
        raise TaskNotFound(f"no task {request.path_params['task_id']}")
    relative = outputs.safe_relative(request.path_params["path"])
    if relative is None:
        return JSONResponse({"error": "no such output"}, status_code=404)
    c = console(request)
    try:
        data = outputs.read(task.output_uri, task.id, relative,
                            c.s3_client() if task.output_uri.startswith("s3://") else None)
    except outputs.OutputMissing:
        return JSONResponse({"error": "no such output"}, status_code=404)
    return Response(data, media_type=outputs.content_type(relative),
                    headers={"Cache-Control": "private, max-age=60"})


def _action(name: str) -> Callable[[Request], Response]:
    @acts()
    @json_errors
    def act(request: Request) -> Any:
        return actions.ACTIONS[name](console(request), request.path_params["task_id"],
                                     request.state.fields)
    act.__name__ = f"{name}_task"
    return act


retry_task, resolve_task, cancel_task = _action("retry"), _action("resolve"), _action("cancel")


@reads()
@json_errors
def workers(request: Request) -> Any:
    return queries.workers(console(request).db)


@reads()
@json_errors
def queue(request: Request) -> Any:
    depth = console(request).queue_depth(max_age_s=0)
    if depth is None:
        return JSONResponse({"error": "the broker does not answer"}, status_code=503)
    return {**depth, "tasks": queries.status_counts(console(request).db)}


@reads()
@json_errors
def escalations(request: Request) -> Any:
    return queries.escalations(console(request).db)


@reads()
@json_errors
def stats(request: Request) -> Any:
    c = console(request)
    samples = list(c.sampler.samples) if c.sampler else []
    return {"tasks_per_minute": queries.tasks_per_minute(c.db),
            "queue_depth": [{"at": at, "messages": n} for at, n in samples],
            "stage_seconds": queries.stage_seconds(c.db)}


@reads()
@json_errors
def webhooks(request: Request) -> Any:
    return list_deliveries(console(request).db, task_id=request.query_params.get("task_id"),
                           status=request.query_params.get("status") or None,
                           limit=_int(request, "limit", 100, 1, 1000))


__all__ = ["list_tasks", "submit_task", "get_task", "task_events", "task_renditions",
           "task_webhooks", "task_output", "retry_task", "resolve_task", "cancel_task",
           "workers", "queue", "escalations", "stats", "webhooks"]
