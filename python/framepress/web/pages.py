"""Server-rendered pages: tasks, a task's timeline and player, escalations, workers, charts,
webhooks, and the login. Forms post to the page actions here (CSRF token in a hidden field) and
come back to the page they were sent from."""
from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from framepress.errors import InputError, LadderError
from framepress.service.admin import AdminError
from framepress.service.errors import ConfigError, TaskNotFound
from framepress.service.tasks import TaskStore
from framepress.web import actions, queries
from framepress.web.auth import COOKIE
from framepress.web.guards import acts, body_fields, identity, reads
from framepress.webhooks.dispatcher import list_deliveries


def render(request: Request, name: str, status_code: int = 200, **context: Any) -> Response:
    c = request.app.state.console
    who = getattr(request.state, "identity", None)
    return request.app.state.templates.TemplateResponse(
        request, name, {"signed_in": who is not None, "csrf": c.auth.csrf_token(who),
                        "flash": request.query_params.get("flash"),
                        "error": request.query_params.get("error"), **context},
        status_code=status_code)


def _local(next_path: str | None, fallback: str = "/") -> str:
    """Only paths of this site: a login link must not send anyone elsewhere."""
    if not next_path or not next_path.startswith("/") or next_path.startswith("//"):
        return fallback
    return next_path


def _with(path: str, key: str, value: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}{key}={quote(value)}"


@reads(page=True)
def tasks_page(request: Request) -> Response:
    c = request.app.state.console
    status = request.query_params.get("status") or None
    if status not in (None, *queries.STATUSES):
        status = None
    q = request.query_params.get("q") or None
    return render(request, "tasks.html", tasks=queries.list_tasks(c.db, status=status, q=q),
                  status=status, q=q or "", statuses=queries.STATUSES,
                  counts=queries.status_counts(c.db))


@reads(page=True)
def task_page(request: Request) -> Response:
    c = request.app.state.console
    data = TaskStore(c.db).status(request.path_params["task_id"])
    if data is None:
        return render(request, "missing.html", status_code=404,
                      task_id=request.path_params["task_id"])
    succeeded = next((e for e in reversed(data["events"]) if e["kind"] == "succeeded"), None)
    master = (succeeded or {}).get("data", {}).get("master_playlist")
    player = None
    if master and data["status"] == "succeeded":
        prefix = f"{data['output_uri'].rstrip('/')}/{data['id']}/"
        if master.startswith(prefix):
            player = f"/api/tasks/{data['id']}/output/{master[len(prefix):]}"
    return render(request, "task.html", task=data, player=player,
                  timeline=list(zip(data["events"], queries.step_durations(data["events"]))),
                  deliveries=list_deliveries(c.db, task_id=data["id"]))


@reads(page=True)
def escalations_page(request: Request) -> Response:
    return render(request, "escalations.html",
                  tasks=queries.escalations(request.app.state.console.db))


@reads(page=True)
def workers_page(request: Request) -> Response:
    return render(request, "workers.html", workers=queries.workers(request.app.state.console.db))


@reads(page=True)
def charts_page(request: Request) -> Response:
    c = request.app.state.console
    per_minute = queries.tasks_per_minute(c.db)
    samples = list(c.sampler.samples) if c.sampler else []
    stages = queries.stage_seconds(c.db)
    return render(request, "charts.html", per_minute=per_minute,
                  per_minute_max=max([1] + [b["submitted"] for b in per_minute]
                                     + [b["succeeded"] + b["failed"] for b in per_minute]),
                  depth=[n for _, n in samples], depth_max=max([1] + [n for _, n in samples]),
                  stages=stages, stages_max=max([0.001] + list(stages.values())),
                  current_depth=c.queue_depth())


@reads(page=True)
def webhooks_page(request: Request) -> Response:
    return render(request, "webhooks.html",
                  deliveries=list_deliveries(request.app.state.console.db, limit=200))


def _page_action(name: str):
    @acts(page=True)
    def act(request: Request) -> Response:
        task_id = request.path_params["task_id"]
        back = _local(request.state.fields.get("next"), f"/tasks/{task_id}")
        try:
            actions.ACTIONS[name](request.app.state.console, task_id, request.state.fields)
        except (AdminError, TaskNotFound) as exc:
            return RedirectResponse(_with(back, "error", str(exc)), status_code=303)
        return RedirectResponse(_with(back, "flash", f"{name}: done"), status_code=303)
    act.__name__ = f"{name}_page_action"
    return act


retry_action, resolve_action, cancel_action = (_page_action("retry"), _page_action("resolve"),
                                               _page_action("cancel"))


@acts(page=True)
def submit_action(request: Request) -> Response:
    try:
        out = actions.submit(request.app.state.console, request.state.fields)
    except (InputError, LadderError, ConfigError) as exc:
        return RedirectResponse(f"/?error={quote(str(exc))}", status_code=303)
    return RedirectResponse(f"/tasks/{out['task_id']}", status_code=303)


async def login_page(request: Request) -> Response:
    request.state.identity = identity(request)
    c = request.app.state.console
    return render(request, "login.html", configured=c.auth.configured,
                  next=_local(request.query_params.get("next")))


async def login(request: Request) -> Response:
    """The token typed into the form; a signed session cookie if it is the admin's."""
    c = request.app.state.console
    try:
        fields = await body_fields(request)
    except ValueError:
        fields = {}
    request.state.identity = None
    if not c.auth.check_token(str(fields.get("token") or "")):
        return render(request, "login.html", status_code=401, configured=c.auth.configured,
                      next=_local(fields.get("next")), failed=True)
    response = RedirectResponse(_local(fields.get("next")), status_code=303)
    response.set_cookie(COOKIE, c.auth.new_session(), max_age=int(c.auth.session_s),
                        httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")
    return response


@acts(page=True)
def logout(request: Request) -> Response:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE, path="/")
    return response


__all__ = ["tasks_page", "task_page", "escalations_page", "workers_page", "charts_page",
           "webhooks_page", "retry_action", "resolve_action", "cancel_action", "submit_action",
           "login_page", "login", "logout"]
