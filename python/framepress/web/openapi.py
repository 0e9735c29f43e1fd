"""The API's routes and their OpenAPI description, from one table (so the two cannot drift)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from framepress.web import api


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Callable
    summary: str
    access: str                       # "read" | "action"
    query: tuple[tuple[str, str, str], ...] = ()   # (name, type, description)
    body: Optional[dict[str, Any]] = None
    ok: int = 200
    responses: dict[int, str] = field(default_factory=dict)


TASK_ID = {"name": "task_id", "in": "path", "required": True, "schema": {"type": "string"}}
NOTE = {"type": "object", "properties": {"note": {"type": "string"}}}

ENDPOINTS = (
    Endpoint("GET", "/api/tasks", api.list_tasks, "List tasks, newest first", "read",
             query=(("status", "string", "only tasks in this status"),
                    ("q", "string", "id prefix or part of the source URI"),
                    ("limit", "integer", "at most this many (1-500, default 50)"),
                    ("offset", "integer", "skip this many"))),
    Endpoint("POST", "/api/tasks", api.submit_task, "Submit a task", "action",
             body={"type": "object", "required": ["source_uri"], "properties": {
                 "source_uri": {"type": "string"}, "output_uri": {"type": "string"},
                 "ladder": {"oneOf": [{"type": "string"}, {"type": "object"}]},
                 "priority": {"type": "integer"},
                 "webhook": {"type": "string", "description": "URL that gets this task's events"}}},
             ok=201, responses={400: "bad input"}),
    Endpoint("GET", "/api/tasks/{task_id}", api.get_task,
             "A task's status, events and renditions (the `framepress status --json` shape)",
             "read", responses={404: "no such task"}),
    Endpoint("GET", "/api/tasks/{task_id}/events", api.task_events, "A task's event timeline",
             "read", responses={404: "no such task"}),
    Endpoint("GET", "/api/tasks/{task_id}/renditions", api.task_renditions, "A task's renditions",
             "read", responses={404: "no such task"}),
    Endpoint("GET", "/api/tasks/{task_id}/webhooks", api.task_webhooks,
             "The task's webhook deliveries and their attempts", "read",
             responses={404: "no such task"}),
    Endpoint("GET", "/api/tasks/{task_id}/output/{path}", api.task_output,
             "A file of the task's output (playlists, segments, renditions)", "read",
             responses={404: "no such task or file"}),
    Endpoint("POST", "/api/tasks/{task_id}/retry", api.retry_task,
             "Requeue an escalated, failed or cancelled task", "action",
             body={"type": "object", "properties": {"note": {"type": "string"},
                                                    "reset_attempts": {"type": "boolean"}}},
             responses={404: "no such task", 409: "the task's status does not allow it"}),
    Endpoint("POST", "/api/tasks/{task_id}/resolve", api.resolve_task,
             "Close an escalated task for good (status failed) with a note", "action",
             body={**NOTE, "required": ["note"]},
             responses={404: "no such task", 409: "the task's status does not allow it or no "
                                                  "note"}),
    Endpoint("POST", "/api/tasks/{task_id}/cancel", api.cancel_task, "Cancel a task", "action",
             body={"type": "object", "properties": {"reason": {"type": "string"}}},
             responses={404: "no such task", 409: "the task's status does not allow it"}),
    Endpoint("GET", "/api/workers", api.workers,
             "Workers: state, heartbeat age, hardware, current task", "read"),
    Endpoint("GET", "/api/queue", api.queue, "Queue depth and tasks per status", "read",
             responses={503: "the broker does not answer"}),
    Endpoint("GET", "/api/escalations", api.escalations,
             "Escalated tasks waiting for an operator, oldest first", "read"),
    Endpoint("GET", "/api/stats", api.stats,
             "Tasks per minute, queue depth samples, mean seconds per stage", "read"),
    Endpoint("GET", "/api/webhooks", api.webhooks, "Webhook deliveries, newest first", "read",
             query=(("task_id", "string", "only this task's"),
                    ("status", "string", "pending, delivered or failed"),
                    ("limit", "integer", "at most this many"))),
)


def spec(version: str) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for e in ENDPOINTS:
        params = [dict(TASK_ID)] if "{task_id}" in e.path else []
        if "{path}" in e.path:
            params.append({"name": "path", "in": "path", "required": True,
                           "schema": {"type": "string"}})
        params += [{"name": n, "in": "query", "required": False, "schema": {"type": t},
                    "description": d} for n, t, d in e.query]
        responses = {str(e.ok): {"description": "OK"},
                     "401": {"description": "no or a wrong admin credential"}}
        if e.access == "action":
            responses["403"] = {"description": "a session cookie without the CSRF token"}
        responses.update({str(k): {"description": v} for k, v in e.responses.items()})
        op: dict[str, Any] = {"summary": e.summary, "operationId": e.handler.__name__,
                              "parameters": params, "responses": responses,
                              "x-access": e.access}
        if e.body is not None:
            op["requestBody"] = {"required": e.method == "POST" and "required" in e.body,
                                 "content": {"application/json": {"schema": e.body}}}
        paths.setdefault(e.path, {})[e.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "framepress console API", "version": version,
                 "description": "Reads need the admin credential unless FRAMEPRESS_WEB_OPEN_READS "
                                "is set; actions always do. With a session cookie (the login), "
                                "actions also need the X-CSRF-Token header."},
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": "framepress_session"}}},
        "security": [{"bearer": []}, {"session": []}],
        "paths": paths,
    }


__all__ = ["ENDPOINTS", "Endpoint", "spec"]
