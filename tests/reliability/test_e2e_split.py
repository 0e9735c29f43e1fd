"""Split and stitch with `framepress worker` processes, Postgres, RabbitMQ and S3 (moto, through
the counting proxy): a 12 s source over the 6 s threshold becomes three 4 s chunks on two
workers, and the stitched outputs are what one worker would have made of it."""
from __future__ import annotations

import json
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from relsvc import BUCKET, WorkerProcess, cli, kinds, wait_for, wait_status

SECONDS, RATE = 12, 30
FRAMES = SECONDS * RATE
LADDER = {"name": "split", "gop_seconds": 1, "segment_seconds": 2, "audio": {"codec": "aac", "bitrate": 64000},
          "rungs": [{"name": "180p", "height": 180, "codec": "h264", "bitrate": 300000, "preset": "veryfast"},
                    {"name": "144p", "height": 144, "codec": "h264", "bitrate": 150000, "preset": "veryfast"}]}
SPLIT = {"FRAMEPRESS_SPLIT_SECONDS": "6", "FRAMEPRESS_CHUNK_SECONDS": "4"}
# Defaults for heartbeats and leases, and a reaper too slow to be the one that takes a chunk over.
BEATS = {"FRAMEPRESS_HEARTBEAT_SECONDS": "5", "FRAMEPRESS_LEASE_SECONDS": "60", "FRAMEPRESS_WORKER_TIMEOUT": "120"}


def probe(path, *args: str) -> dict:
    out = subprocess.run(["ffprobe", "-v", "error", "-of", "json", *args, str(path)], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def video_frames(path) -> list[dict]:
    return probe(path, "-select_streams", "v:0", "-show_entries", "frame=pts_time,key_frame")["frames"]


@pytest.fixture(scope="module")
def long_source(s3_service, tmp_path_factory):
    """12 s of 320x180 H.264 with B-frames (a keyframe every 2 s) and AAC, in the bucket."""
    path = tmp_path_factory.mktemp("split") / "source.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={RATE}:duration={SECONDS}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={SECONDS}",
                    "-c:v", "libx264", "-preset", "veryfast", "-g", str(2 * RATE), "-pix_fmt", "yuv420p",
                    "-c:a", "aac", "-b:a", "64k", str(path)], check=True)
    key = f"sources/{uuid.uuid4().hex[:8]}/long.mp4"
    s3_service["client"].upload_file(str(path), BUCKET, key)
    return {"uri": f"s3://{BUCKET}/{key}", "path": f"/{BUCKET}/{key}", "bytes": path.stat().st_size}


@pytest.fixture
def spawn(service, tmp_path):
    procs = []

    def make(name: str, **extra: str) -> WorkerProcess:
        procs.append(WorkerProcess(service["env"], tmp_path / f"{name}.log", {**SPLIT, **BEATS, **extra}))
        return procs[-1]
    yield make
    for p in procs:
        p.stop()


def download(s3, prefix: str, dest: Path) -> list[str]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
    for key in keys:
        target = dest / key[len(prefix):]
        target.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(BUCKET, key, str(target))
    return sorted(k[len(prefix):] for k in keys)


def check_outputs(service, task_id: str, dest: Path) -> None:
    """Exact frames, keyframes on the grid, audio as long as the video, in both MP4 and HLS."""
    s3 = service["s3"]
    prefix = f"{service['settings'].output_uri.split(BUCKET + '/', 1)[1]}/{task_id}/"

    def published() -> bool:  # the publish job done, and the scratch gone
        keys = [o["Key"][len(prefix):] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
        return "hls/master.m3u8" in keys and not [k for k in keys if k.startswith((".chunks/", ".attempts/"))]
    wait_for(published, 30, "the outputs to be published and the scratch deleted")
    names = download(s3, prefix, dest)
    assert "180p.mp4" in names and "hls/master.m3u8" in names and "hls/audio_0.m3u8" in names and "dash/manifest.mpd" in names
    assert not [n for n in names if n.startswith((".chunks", ".attempts"))], names
    for rung in ("180p", "144p"):
        frames = video_frames(dest / f"{rung}.mp4")
        assert len(frames) == FRAMES
        assert [round(float(f["pts_time"]), 3) for f in frames if int(f["key_frame"])] == \
            [float(s) for s in range(SECONDS)]
        streams = probe(dest / f"{rung}.mp4", "-show_entries", "stream=codec_type,duration")["streams"]
        assert [s["codec_type"] for s in streams] == ["video", "audio"]
        # Within one AAC frame (1024 samples at 44.1 kHz) and a video frame.
        assert abs(float(streams[0]["duration"]) - float(streams[1]["duration"])) <= 1024 / 44100 + 1 / RATE
        head = (dest / f"{rung}.mp4").read_bytes()[:65536]
        assert head.find(b"moov") < head.find(b"mdat")          # faststart
        assert len(video_frames(dest / "hls" / f"{rung}.m3u8")) == FRAMES
    # The master playlist end to end, video and the audio group, as a player reads it.
    master = dest / "hls" / "master.m3u8"
    assert 'TYPE=AUDIO' in master.read_text() and 'AUDIO="audio"' in master.read_text()
    decoded = subprocess.run(["ffmpeg", "-v", "error", "-allowed_extensions", "ALL", "-i", str(master),
                              "-map", "0:v:0", "-map", "0:a:0", "-f", "null", "-"],
                             capture_output=True, text=True)
    assert decoded.returncode == 0 and decoded.stderr == "", decoded.stderr


@pytest.mark.timeout(300)
def test_a_long_source_is_split_over_two_workers_and_stitched(service, client, long_source, spawn, tmp_path):
    spawn("a"), spawn("b")
    proxy = service["proxy"]
    proxy.got_bytes.clear()
    tid = client.submit(long_source["uri"], ladder=LADDER)
    st = wait_status(client, tid, timeout=240)
    assert st["status"] == "succeeded", st["last_error"]
    assert kinds(st).count("split") == 1 and kinds(st)[-3:] == ["stitched", "uploaded", "succeeded"]
    split = next(e for e in st["events"] if e["kind"] == "split")["data"]
    assert [[c["start"], c["end"]] for c in split["chunks"]] == [[0, 4], [4, 8], [8, None]]
    assert [c["status"] for c in st["chunks"]] == ["succeeded"] * 3 and st["kind"] == "parent"
    assert {r["name"]: r["frames"] for r in st["renditions"]} == {"180p": FRAMES, "144p": FRAMES}
    check_outputs(service, tid, tmp_path / "out")
    # Every worker together pulled little more than twice the source: once whole to split it,
    # once in chunks (each its range and the header).
    pulled = proxy.got_bytes[long_source["path"]]
    print(f"source bytes pulled: {pulled} of {long_source['bytes']} ({pulled / long_source['bytes']:.2f}x)")
    assert pulled <= 2.2 * long_source["bytes"]
    stitched = next(e for e in st["events"] if e["kind"] == "stitched")["data"]
    chunk_runs = [next(e for e in client.status(c["id"])["events"] if e["kind"] == "succeeded")["data"]
                  for c in st["chunks"]]
    print(f"split {split['seconds']} s, stitch {stitched['seconds']} s, per chunk: wall "
          f"{[c['wall_seconds'] for c in chunk_runs]} s, engine {[c['engine_seconds'] for c in chunk_runs]} s")
    # `framepress status` lists the chunks.
    shown = cli(service["env"], "status", tid, "--json")
    assert [c["id"] for c in shown["chunks"]] == [c["id"] for c in st["chunks"]]
    text = cli(service["env"], "status", tid)
    assert "chunks" in text and all(c["id"][:8] in text for c in st["chunks"])


@pytest.mark.timeout(300)
def test_a_chunk_whose_worker_is_killed_is_taken_over(service, client, long_source, spawn, tmp_path):
    workers = [spawn("a"), spawn("b")]
    slow = {**LADDER, "name": "split-slow", "rungs": [{**r, "preset": "slower"} for r in LADDER["rungs"]]}
    tid = client.submit(long_source["uri"], ladder=slow)

    def running_chunk():
        st = client.status(tid)
        for c in st.get("chunks", []):
            if c["status"] == "running" and (c["progress"] or 0) > 0.05:
                taken = [e for e in client.status(c["id"])["events"] if e["kind"] == "taken"][-1]
                victim = next((w for w in workers if w.pid == taken["data"]["pid"]), None)
                if victim:
                    return c["id"], victim
        return None
    chunk_id, victim = wait_for(running_chunk, 120, "a chunk to be encoding", interval=0.2)
    victim.signal(signal.SIGKILL)
    workers.append(spawn("c"))            # a replacement, as a deployment would start
    st = wait_status(client, tid, timeout=240)
    assert st["status"] == "succeeded", st["last_error"]
    chunk = client.status(chunk_id)
    taken = [e for e in chunk["events"] if e["kind"] == "taken"]
    assert chunk["status"] == "succeeded" and len(taken) == 2 and taken[1]["data"]["pid"] != victim.pid
    assert {r["name"]: r["frames"] for r in st["renditions"]} == {"180p": FRAMES, "144p": FRAMES}
    assert [c["status"] for c in st["chunks"]] == ["succeeded"] * 3
    check_outputs(service, tid, tmp_path / "out")


@pytest.mark.faults
@pytest.mark.timeout(300)
def test_a_chunk_that_escalates_escalates_its_parent_and_a_retry_redoes_only_what_failed(
        service, client, long_source, spawn, tmp_path):
    """Reads of the last chunk's bytes fail (an S3 error that is worth retrying) until it has used
    its attempts: the parent escalates with it, and no other chunk is left running. Once S3
    answers again, an operator's retry of the parent redoes only that chunk, then stitches."""
    proxy = service["proxy"]
    size = long_source["bytes"]

    def last_chunks_bytes(path: str, headers) -> bool:
        ranged = headers.get("Range", "")
        # The last third's media data (the index, read by every chunk, lies after it)
        return path == long_source["path"] and ranged.startswith("bytes=") and \
            0.6 * size < int(ranged[6:].split("-")[0]) < 0.95 * size
    proxy.fail_gets_where = last_chunks_bytes
    try:
        spawn("a"), spawn("b")
        tid = client.submit(long_source["uri"], ladder=LADDER)
        st = wait_status(client, tid, timeout=180)
        assert st["status"] == "escalated" and "chunk 8 s to end escalated" in st["last_error"]
        assert [c["status"] for c in st["chunks"]][2] == "escalated"
        assert all(c["status"] in ("succeeded", "cancelled") for c in st["chunks"][:2]), st["chunks"]
        escalated = next(e for e in st["events"] if e["kind"] == "escalated")
        assert escalated["data"]["chunk_id"] == st["chunks"][2]["id"]
    finally:
        proxy.fail_gets_where = None
    done = {c["id"] for c in st["chunks"] if c["status"] == "succeeded"}
    takes_before = {c["id"]: kinds(client.status(c["id"])).count("taken") for c in st["chunks"]}
    cli(service["env"], "tasks", "retry", tid)
    st = wait_status(client, tid, timeout=180)
    assert st["status"] == "succeeded", st["last_error"]
    for c in st["chunks"]:
        takes = kinds(client.status(c["id"])).count("taken")
        assert takes == takes_before[c["id"]] if c["id"] in done else takes > takes_before[c["id"]], c
    assert {r["name"]: r["frames"] for r in st["renditions"]} == {"180p": FRAMES, "144p": FRAMES}
    check_outputs(service, tid, tmp_path / "out")


def test_cancelling_a_parent_cancels_its_chunks(service, client, long_source, spawn):
    spawn("a")
    # placebo: the chunk in hand must still be running when the cancel comes, however busy the machine
    slow = {**LADDER, "name": "split-slow", "rungs": [{**r, "preset": "placebo"} for r in LADDER["rungs"]]}
    tid = client.submit(long_source["uri"], ladder=slow)
    wait_for(lambda: any(c["status"] == "running" and (c["progress"] or 0) > 0.05
                         for c in client.status(tid).get("chunks", [])), 120, "a chunk to run")
    cli(service["env"], "tasks", "cancel", tid)
    st = client.status(tid)
    assert st["status"] == "cancelled" and st["chunks"][-1]["status"] == "cancelled"
    assert all(c["status"] in ("succeeded", "cancelled") for c in st["chunks"]), st["chunks"]
    running = next(c for c in st["chunks"] if c["status"] == "cancelled" and c["worker_id"])
    # The worker on it is fenced off: it stops within a heartbeat or two, recording nothing more.
    from framepress.service.db import Worker

    def moved_on() -> bool:
        with service["db"].session() as s:
            return s.get(Worker, running["worker_id"]).current_task_id != running["id"]
    wait_for(moved_on, 30, "the chunk's worker to stop it")
    assert "succeeded" not in kinds(client.status(running["id"]))
