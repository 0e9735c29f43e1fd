"""The Python client and the CLI client, and their `--json` shapes (DESIGN §3)."""
from __future__ import annotations

import json

import pytest

from framepress import client as client_module

from .conftest import TINY_LADDER, cli, wait_settled

EVENT_KEYS = {"kind", "at", "stage", "worker_id", "attempt", "message", "data"}


@pytest.mark.timeout(90)
def test_python_client_module_functions(settings, run_worker, source_uris):
    with run_worker():
        task_id = client_module.submit(source_uris["clip144"], ladder=TINY_LADDER, priority=3,
                                       settings=settings)
        with client_module.Client(settings) as c:
            st = wait_settled(c, task_id)
    assert st["status"] == "succeeded"
    st = client_module.status(task_id, settings=settings)
    assert {"id", "status", "attempts", "progress", "last_error", "events", "renditions"} <= set(st)
    assert all(set(e) == EVENT_KEYS for e in st["events"])
    assert st["priority"] == 3 and st["ladder"] == "tiny"
    ids = [t["id"] for t in client_module.list_tasks("succeeded", settings=settings)]
    assert task_id in ids
    assert client_module.status("00000000-0000-0000-0000-000000000000", settings=settings) is None


@pytest.mark.timeout(120)
def test_cli_submit_status_and_list(settings, run_worker, source_uris, tmp_path, client):
    ladder_file = tmp_path / "tiny.json"
    ladder_file.write_text(json.dumps(TINY_LADDER))
    out = cli(settings, "submit", source_uris["clip144"], "--ladder", str(ladder_file),
              "--priority", "2", "--json").stdout
    submitted = json.loads(out)
    assert set(submitted) == {"task_id"}
    task_id = submitted["task_id"]
    with run_worker():
        wait_settled(client, task_id)
    st = json.loads(cli(settings, "status", task_id, "--json").stdout)
    assert st["id"] == task_id and st["status"] == "succeeded" and st["progress"] == 1.0
    assert [e["kind"] for e in st["events"]][0] == "taken"
    assert "pid" in st["events"][0]["data"]
    assert st["renditions"][0]["name"] == "144p"
    listed = json.loads(cli(settings, "tasks", "list", "--status", "succeeded", "--json").stdout)
    assert task_id in [t["id"] for t in listed]
    assert all(t["status"] == "succeeded" for t in listed)
    # Readable forms work too.
    assert task_id in cli(settings, "status", task_id).stdout
    assert "succeeded" in cli(settings, "tasks", "list").stdout
    missing = cli(settings, "status", "nope", "--json", check=False)
    assert missing.returncode == 2 and "no task nope" in missing.stderr


@pytest.mark.timeout(60)
def test_db_upgrade_is_idempotent(settings):
    from alembic.script import ScriptDirectory
    from framepress.service.db.migrate import alembic_config
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    for _ in range(2):
        out = cli(settings, "db", "upgrade").stdout
        assert out.strip().endswith(f"at revision {head}")
