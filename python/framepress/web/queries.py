"""What the console reads: tasks with filters, workers, escalations, queue depth and the charts'
series. Times are the database's, like everywhere else in the service."""
from __future__ import annotations

import threading
import time
from collections import deque
from datetime import timedelta
from typing import Any, Callable, Optional

from sqlalchemy import func, or_, select

from framepress.service.db import Database, Task, TaskEvent, TaskStatus, Worker, aware, iso, now_of
from framepress.service.tasks import EventKind, task_summary

#: The happy path's steps, each ending with its event (the seed's timeline).
STAGES = ((EventKind.DETAILS_LOADED, "details"), (EventKind.PULLED, "pull"),
          (EventKind.TRANSCODED, "transcode"), (EventKind.UPLOADED, "upload"),
          (EventKind.SUCCEEDED, "publish"))
STATUSES = (TaskStatus.QUEUED, TaskStatus.RUNNING, TaskStatus.RETRY_WAIT, TaskStatus.SUCCEEDED,
            TaskStatus.ESCALATED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.INCOMPLETE)


def list_tasks(db: Database, *, status: Optional[str] = None, q: Optional[str] = None,
               limit: int = 50, offset: int = 0) -> list[dict[str, Any]]:
    """Newest first; `q` matches the id's start or the source URI."""
    query = select(Task).order_by(Task.created_at.desc(), Task.id).limit(limit).offset(offset)
    if status:
        query = query.where(Task.status == status)
    if q:
        query = query.where(or_(Task.id.startswith(q), Task.source_uri.contains(q)))
    with db.session() as s:
        return [task_summary(t) for t in s.scalars(query)]


def status_counts(db: Database) -> dict[str, int]:
    with db.session() as s:
        return {k: n for k, n in s.execute(select(Task.status, func.count()).group_by(Task.status))}


def workers(db: Database) -> list[dict[str, Any]]:
    with db.session() as s:
        now = now_of(s)
        rows = s.scalars(select(Worker).order_by(Worker.state, Worker.id)).all()
        return [{"id": w.id, "hostname": w.hostname, "pod": w.pod, "node": w.node, "pid": w.pid,
                 "version": w.version, "hardware": w.hardware or {}, "state": w.state,
                 "started_at": iso(w.started_at), "heartbeat_at": iso(w.heartbeat_at),
                 "heartbeat_age_s": round((now - aware(w.heartbeat_at)).total_seconds(), 1),
                 "current_task_id": w.current_task_id, "progress": w.progress} for w in rows]


def escalations(db: Database, limit: int = 200) -> list[dict[str, Any]]:
    """Escalated tasks, oldest first (the queue an admin works through), each with why."""
    with db.session() as s:
        tasks = s.scalars(select(Task).where(Task.status == TaskStatus.ESCALATED)
                          .order_by(Task.updated_at, Task.id).limit(limit)).all()
        out = []
        for t in tasks:
            e = s.scalars(select(TaskEvent).where(TaskEvent.task_id == t.id,
                                                  TaskEvent.kind == EventKind.ESCALATED)
                          .order_by(TaskEvent.id.desc()).limit(1)).first()
            row = task_summary(t)
            row["escalation"] = {"at": iso(e.at), "message": e.message,
                                 "kind": (e.data or {}).get("escalation")} if e else None
            out.append(row)
        return out


def tasks_per_minute(db: Database, minutes: int = 30) -> list[dict[str, Any]]:
    """Submitted and finished tasks in each of the last `minutes` minutes, oldest first."""
    with db.session() as s:
        now = now_of(s)
        since = now - timedelta(minutes=minutes)
        created = s.scalars(select(Task.created_at).where(Task.created_at >= since)).all()
        finished = s.execute(select(Task.finished_at, Task.status)
                             .where(Task.finished_at >= since)).all()
    buckets = [{"minute": iso(now - timedelta(minutes=minutes - 1 - i)), "submitted": 0,
                "succeeded": 0, "failed": 0} for i in range(minutes)]

    def index(at) -> int:
        return min(minutes - 1, max(0, minutes - 1 - int((now - aware(at)).total_seconds() // 60)))
    for at in created:
        buckets[index(at)]["submitted"] += 1
    for at, status in finished:
        buckets[index(at)]["succeeded" if status == TaskStatus.SUCCEEDED else "failed"] += 1
    return buckets


def stage_seconds(db: Database, tasks: int = 50) -> dict[str, float]:
    """Mean seconds of each step over the latest succeeded tasks' last attempts."""
    with db.session() as s:
        ids = s.scalars(select(Task.id).where(Task.status == TaskStatus.SUCCEEDED)
                        .order_by(Task.finished_at.desc()).limit(tasks)).all()
        events = s.execute(select(TaskEvent.task_id, TaskEvent.kind, TaskEvent.at)
                           .where(TaskEvent.task_id.in_(ids)).order_by(TaskEvent.id)).all() if ids else []
    by_task: dict[str, list] = {}
    for task_id, kind, at in events:
        if kind == EventKind.TAKEN:
            by_task[task_id] = []           # only the last attempt counts
        by_task.setdefault(task_id, []).append((kind, aware(at)))
    sums: dict[str, list[float]] = {name: [] for _, name in STAGES}
    for timeline in by_task.values():
        for (_, before), (kind, at) in zip(timeline, timeline[1:]):
            name = dict(STAGES).get(kind)
            if name:
                sums[name].append((at - before).total_seconds())
    return {name: round(sum(v) / len(v), 3) if v else 0.0 for name, v in sums.items()}


def step_durations(events: list[dict[str, Any]]) -> list[Optional[float]]:
    """Seconds from each event's predecessor (None for the first): the timeline's durations."""
    from datetime import datetime
    out: list[Optional[float]] = []
    prev = None
    for e in events:
        at = datetime.fromisoformat(e["at"]) if e.get("at") else None
        out.append(round((at - prev).total_seconds(), 3) if at and prev else None)
        prev = at or prev
    return out


class DepthSampler:
    """The queue's depth every `interval` s, the last `keep` samples, for the depth chart."""

    def __init__(self, depth: Callable[[], Optional[int]], *, interval: float = 10.0,
                 keep: int = 180) -> None:
        self.depth, self.interval = depth, interval
        self.samples: deque[tuple[float, int]] = deque(maxlen=keep)
        self._stop = threading.Event()
        self._thread: Optional[threading.Thread] = None

    def sample(self) -> None:
        value = self.depth()
        if value is not None:
            self.samples.append((time.time(), value))

    def start(self) -> None:
        def loop() -> None:
            while True:
                try:
                    self.sample()
                except Exception:  # noqa: BLE001  the broker away: a gap in the chart
                    pass
                if self._stop.wait(self.interval):
                    return
        self._thread = threading.Thread(target=loop, name="framepress-depth", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()


__all__ = ["list_tasks", "status_counts", "workers", "escalations", "tasks_per_minute",
           "stage_seconds", "step_durations", "DepthSampler", "STATUSES"]
