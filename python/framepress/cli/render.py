"""Readable terminal output of task status and lists (the `--json` forms are for scripts)."""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

STATUS_STYLE = {"succeeded": "green", "running": "cyan", "queued": "white", "retry_wait": "yellow",
                "escalated": "red", "failed": "red", "cancelled": "magenta", "incomplete": "yellow"}


def _event_summary(e: dict[str, Any]) -> str:
    d = e.get("data") or {}
    kind = e["kind"]
    if kind == "taken":
        where = d.get("pod") or d.get("hostname")
        return f"{where} pid {d.get('pid')} framepress {d.get('version')} ffmpeg {d.get('ffmpeg_version')}"
    if kind == "details_loaded":
        return f"{d.get('source_uri')} → {d.get('output_uri')}, ladder {d.get('ladder')} {d.get('rungs')}"
    if kind == "transcoded":
        rungs = ", ".join(f"{r['name']} {r['width']}x{r['height']} {r['frames']}f"
                          for r in d.get("renditions", []))
        return f"{rungs} on {d.get('hwaccel_used')} in {d.get('seconds')} s"
    if kind == "succeeded":
        return f"wall {d.get('wall_seconds')} s, engine {d.get('engine_seconds')} s"
    return e.get("message") or ""


def render_status(data: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    style = STATUS_STYLE.get(data["status"], "white")
    console.print(f"task [bold]{data['id']}[/]  [{style}]{data['status']}[/]  "
                  f"progress {data['progress'] * 100:.0f}%  attempts {data['attempts']}/"
                  f"{data.get('max_attempts', '?')}")
    if data.get("last_error"):
        console.print(f"[red]last error:[/] {data['last_error']}")
    events = Table(title="events", show_edge=False)
    for col in ("at", "kind", "stage", "attempt", "details"):
        events.add_column(col)
    for e in data["events"]:
        events.add_row((e["at"] or "")[11:23], e["kind"], e["stage"] or "", str(e["attempt"] or ""),
                       _event_summary(e))
    console.print(events)
    if data.get("chunks"):
        chunks = Table(title="chunks", show_edge=False)
        for col in ("id", "range", "status", "progress", "attempts", "worker"):
            chunks.add_column(col)
        for c in data["chunks"]:
            start, end = c["range"]
            style = STATUS_STYLE.get(c["status"], "white")
            chunks.add_row(c["id"], f"{start:g}–{'end' if end is None else f'{end:g}'} s", f"[{style}]{c['status']}[/]",
                           f"{(c['progress'] or 0) * 100:.0f}%", str(c["attempts"]), c["worker_id"] or "")
        console.print(chunks)
    if data["renditions"]:
        rends = Table(title="renditions", show_edge=False)
        measured = any(r.get("psnr") for r in data["renditions"])
        for col in ("name", "size", "frames", "bytes", "bitrate") + (("PSNR", "SSIM") if measured else ()) + ("uri",):
            rends.add_column(col)
        for r in data["renditions"]:
            quality = ([f"{r['psnr']:.2f} dB" if r.get("psnr") else "", f"{r['ssim']:.4f}" if r.get("ssim") else ""]
                       if measured else [])
            rends.add_row(r["name"], f"{r['width']}x{r['height']}", str(r["frames"]), str(r["bytes"]),
                          str(r["bitrate"]), *quality, r["uri"])
        console.print(rends)


def render_task_list(rows: list[dict[str, Any]], console: Console | None = None) -> None:
    console = console or Console()
    table = Table(show_edge=False)
    for col in ("id", "status", "progress", "attempts", "ladder", "source", "created"):
        table.add_column(col)
    for t in rows:
        style = STATUS_STYLE.get(t["status"], "white")
        table.add_row(t["id"], f"[{style}]{t['status']}[/]", f"{t['progress'] * 100:.0f}%",
                      f"{t['attempts']}/{t['max_attempts']}", t["ladder"] or "", t["source_uri"],
                      (t["created_at"] or "")[:19])
    console.print(table)
    console.print(f"{len(rows)} tasks")
