"""`framepress demo`: the whole service flow on one machine, with no services.

SQLite, the local queue and local files: generate a clip (the ffmpeg CLI from `make`'s system
packages), submit it, run a worker in this process until the task settles, then show the event
timeline and where the renditions, the HLS master playlist and the DASH manifest are.
"""
from __future__ import annotations

import json
import secrets
import subprocess
import threading
import time
from pathlib import Path
from typing import Optional

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from framepress.client import Client
from framepress.config import LOCAL_BROKER, Settings
from framepress.service.db import TaskStatus
from framepress.service.errors import ConfigError


def generate_clip(path: Path, seconds: float, size: str, rate: int = 30) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
           "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}:duration={seconds}",
           "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
           "-c:v", "libx264", "-preset", "veryfast", "-g", str(rate * 2), "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-b:a", "96k", "-shortest", str(path)]
    try:
        subprocess.run(cmd, check=True)
    except FileNotFoundError:
        raise ConfigError("the demo makes its clip with the ffmpeg CLI; install ffmpeg (`make demo` "
                          "does)") from None
    return path


def _path(uri: str) -> str:
    return uri[len("file://"):] if uri.startswith("file://") else uri


def run_demo(settings: Settings, *, seconds: float = 4.0, size: str = "1280x720",
             ladder: str = "default", as_json: bool = False,
             console_port: Optional[int] = None) -> int:
    """`console_port`: afterwards, serve the console on the demo's data there (0: any free
    port) until interrupted."""
    from framepress.service.worker import Worker

    if settings.broker_url != LOCAL_BROKER:
        settings = settings.with_(broker_url=LOCAL_BROKER, allow_file_uris=True)
    console = Console(stderr=as_json)
    clip = generate_clip(Path(settings.data_dir or ".", "demo", "clip.mp4"), seconds, size)
    client = Client(settings)
    task_id = client.submit(clip.absolute().as_uri(), ladder=ladder)
    console.print(f"submitted [bold]{task_id}[/] ({clip}, {seconds:g} s {size})")

    settled = threading.Event()
    worker = Worker(settings.with_(metrics_port=0), db=client.db, broker=client.broker,
                    until=settled.is_set)
    thread = threading.Thread(target=worker.run, name="framepress-demo-worker", daemon=True)
    started = time.monotonic()
    thread.start()
    status: dict = {}
    with Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.percentage:>3.0f}%"),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        job = bar.add_task("transcoding", total=1.0)
        while True:
            status = client.status(task_id) or {}
            bar.update(job, completed=status.get("progress", 0.0),
                       description=f"{status.get('status', '?')}")
            if status.get("status") in TaskStatus.SETTLED or not thread.is_alive():
                break
            time.sleep(0.2)
    settled.set()
    thread.join(timeout=30)
    elapsed = time.monotonic() - started

    if as_json:
        print(json.dumps(status, default=str))
    else:
        from framepress.cli.render import render_status
        render_status(status, console)
        ok = status.get("status") == TaskStatus.SUCCEEDED
        if ok:
            done = next(e for e in status["events"] if e["kind"] == "succeeded")["data"]
            console.print(f"\n[green]done in {elapsed:.1f} s[/] (engine {done['engine_seconds']:.2f} s)")
            console.print("renditions:")
            for uri in done["renditions"]:
                console.print(f"  {_path(uri)}", soft_wrap=True)
            console.print(f"HLS master playlist:\n  {_path(done['master_playlist'])}", soft_wrap=True)
            if done.get("dash_manifest"):
                console.print(f"DASH manifest:\n  {_path(done['dash_manifest'])}", soft_wrap=True)
            console.print(f"database:\n  {settings.database_url}", soft_wrap=True)
    if console_port is not None:
        serve_console(settings, client, console_port, console)
    client.close()
    return 0 if status.get("status") == TaskStatus.SUCCEEDED else 1


def serve_console(settings: Settings, client: Client, port: int, console: Console) -> None:
    """The console on 127.0.0.1 over the demo's database, until Ctrl-C. Without an admin token
    set, one is made for this run and written to a file only its owner reads (never printed)."""
    from framepress.web.server import Server, make_console
    if not settings.admin_token:
        token_file = Path(settings.data_dir or ".", "console-token")
        token_file.touch(mode=0o600, exist_ok=True)
        token_file.chmod(0o600)
        token_file.write_text(secrets.token_urlsafe(24) + "\n")
        settings = settings.with_(admin_token=token_file.read_text().strip())
        where = f"the admin token is in {token_file}"
    else:
        where = "sign in with FRAMEPRESS_ADMIN_TOKEN"
    web = make_console(settings, db=client.db, broker=client.broker)
    server = Server(settings, host="127.0.0.1", port=port, console=web)
    server.serve(started=lambda: console.print(
        f"console: http://127.0.0.1:{server.port}/  ({where}; Ctrl-C stops it)", soft_wrap=True))
