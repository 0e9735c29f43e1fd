"""Split and stitch with `framepress worker` processes, Postgres, RabbitMQ and S3 (moto, through
the counting proxy): a 12 s source over the 6 s threshold becomes three 4 s chunks on two
workers, and the stitched outputs are what one worker would have made of it. An MPEG-TS source
is split through an MP4 copy."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import uuid
from pathlib import Path

import pytest

from relsvc import BUCKET, WorkerProcess, cli, kinds, wait_for, wait_status
from framepress.service.split.segment_copies import HEAD_BYTES
from support.audio_tracks import audio_streams, dash_audio_sets, tone, two_language_args

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


def source_in_bucket(s3_service, path: Path, audio_codec: str = "aac", *extra: str) -> dict:
    """12 s of 320x180 H.264 with B-frames (a keyframe every 2 s) and audio, in the container
    `path` names, in the bucket."""
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={RATE}:duration={SECONDS}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={SECONDS}",
                    "-c:v", "libx264", "-preset", "veryfast", "-g", str(2 * RATE), "-pix_fmt", "yuv420p",
                    "-c:a", audio_codec, *extra, str(path)], check=True)
    key = f"sources/{uuid.uuid4().hex[:8]}/{path.name}"
    s3_service["client"].upload_file(str(path), BUCKET, key)
    return {"uri": f"s3://{BUCKET}/{key}", "path": f"/{BUCKET}/{key}", "bytes": path.stat().st_size}


@pytest.fixture(scope="module")
def long_source(s3_service, tmp_path_factory):
    return source_in_bucket(s3_service, tmp_path_factory.mktemp("split") / "long.mp4", "aac", "-b:a", "64k")


@pytest.fixture(scope="module")
def broadcast_source(s3_service, tmp_path_factory):
    """As `long_source`, in MPEG-TS: no sample index to read a range's bytes from."""
    return source_in_bucket(s3_service, tmp_path_factory.mktemp("split") / "broadcast.ts", "aac", "-b:a", "64k")


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


def download_outputs(service, task_id: str, dest: Path) -> list[str]:
    """The task's outputs, once published and their scratch deleted, downloaded into `dest`."""
    s3 = service["s3"]
    prefix = f"{service['settings'].output_uri.split(BUCKET + '/', 1)[1]}/{task_id}/"

    def published() -> bool:
        keys = [o["Key"][len(prefix):] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]
        return "hls/master.m3u8" in keys and not [k for k in keys if k.startswith((".chunks/", ".attempts/"))]
    wait_for(published, 30, "the outputs to be published and the scratch deleted")
    return download(s3, prefix, dest)


def check_outputs(service, task_id: str, dest: Path, tracks: int = 1) -> list[str]:
    """Exact frames, keyframes on the grid, `tracks` audio tracks as long as the video, in both MP4
    and HLS. Returns the output's keys."""
    names = download_outputs(service, task_id, dest)
    assert "180p.mp4" in names and "hls/master.m3u8" in names and "dash/manifest.mpd" in names
    assert [n for n in names if n.startswith("hls/audio_") and n.endswith(".m3u8")] == \
        [f"hls/audio_{t}.m3u8" for t in range(tracks)]
    assert not [n for n in names if n.startswith((".chunks", ".attempts"))], names
    for rung in ("180p", "144p"):
        frames = video_frames(dest / f"{rung}.mp4")
        assert len(frames) == FRAMES
        assert [round(float(f["pts_time"]), 3) for f in frames if int(f["key_frame"])] == \
            [float(s) for s in range(SECONDS)]
        streams = probe(dest / f"{rung}.mp4", "-show_entries", "stream=codec_type,duration")["streams"]
        assert [s["codec_type"] for s in streams] == ["video"] + ["audio"] * tracks
        # Within one AAC frame (1024 samples at 44.1 kHz) and a video frame.
        for audio in streams[1:]:
            assert abs(float(streams[0]["duration"]) - float(audio["duration"])) <= 1024 / 44100 + 1 / RATE
        head = (dest / f"{rung}.mp4").read_bytes()[:65536]
        assert head.find(b"moov") < head.find(b"mdat")          # faststart
        assert len(video_frames(dest / "hls" / f"{rung}.m3u8")) == FRAMES
    # The master playlist end to end, video and the audio group, as a player reads it.
    master = dest / "hls" / "master.m3u8"
    assert master.read_text().count('TYPE=AUDIO') == tracks and 'AUDIO="audio"' in master.read_text()
    decoded = subprocess.run(["ffmpeg", "-v", "error", "-allowed_extensions", "ALL", "-i", str(master),
                              "-map", "0:v:0", "-map", "0:a:0", "-f", "null", "-"],
                             capture_output=True, text=True)
    assert decoded.returncode == 0 and decoded.stderr == "", decoded.stderr
    return names


def split_over_two_workers(service, client, spawn, uri: str) -> tuple[str, dict, dict]:
    """`uri` submitted to two workers, split into three chunks and stitched, with the bytes pulled
    counted from the submission: the task's id, status and `split` event's data."""
    spawn("a"), spawn("b")
    service["proxy"].got_bytes.clear()
    tid = client.submit(uri, ladder=LADDER)
    st = wait_status(client, tid, timeout=240)
    assert st["status"] == "succeeded", st["last_error"]
    assert kinds(st).count("split") == 1 and kinds(st)[-3:] == ["stitched", "uploaded", "succeeded"]
    split = next(e for e in st["events"] if e["kind"] == "split")["data"]
    assert [[c["start"], c["end"]] for c in split["chunks"]] == [[0, 4], [4, 8], [8, None]]
    assert [c["status"] for c in st["chunks"]] == ["succeeded"] * 3 and st["kind"] == "parent"
    assert {r["name"]: r["frames"] for r in st["renditions"]} == {"180p": FRAMES, "144p": FRAMES}
    return tid, st, split


@pytest.mark.timeout(300)
def test_a_long_source_is_split_over_two_workers_and_stitched(service, client, long_source, spawn, tmp_path):
    tid, st, split = split_over_two_workers(service, client, spawn, long_source["uri"])
    proxy = service["proxy"]
    outputs = check_outputs(service, tid, tmp_path / "out")
    # Every worker together pulled little more than twice the source: once whole to split it,
    # once in chunks (each its range and the header).
    pulled = proxy.got_bytes[long_source["path"]]
    print(f"source bytes pulled: {pulled} of {long_source['bytes']} ({pulled / long_source['bytes']:.2f}x)")
    assert pulled <= 2.2 * long_source["bytes"]
    stitched = next(e for e in st["events"] if e["kind"] == "stitched")["data"]
    # The stitch pulled the chunks' MP4s and playlists, of their media segments only the boxes
    # before the media data: the segments were copied within the store.
    uploaded = next(e for e in st["events"] if e["kind"] == "uploaded")["data"]
    segment_gets = {p: n for p, n in proxy.got_bytes.items() if f"/{tid}/.chunks/" in p and p.endswith(".m4s")}
    assert stitched["copied_segments"] == len([k for k in outputs if k.endswith(".m4s")]) == len(segment_gets)
    assert max(segment_gets.values()) <= HEAD_BYTES
    assert sum(segment_gets.values()) < 0.5 * uploaded["copied_bytes"]
    print(f"stitch: {stitched['pulled_bytes']} bytes pulled, {uploaded['bytes'] - uploaded['copied_bytes']} uploaded, "
          f"{uploaded['copied_bytes']} copied within the store ({sum(segment_gets.values())} of them read)")
    chunk_runs = [next(e for e in client.status(c["id"])["events"] if e["kind"] == "succeeded")["data"]
                  for c in st["chunks"]]
    # A chunk's outputs stay where its attempt wrote them, read from there by the stitch: no copy
    # publishes them.
    for c in st["chunks"]:
        assert all(f"/{c['id']}/.attempts/" in r["uri"] for r in client.status(c["id"])["renditions"])
    print(f"split {split['seconds']} s, stitch {stitched['seconds']} s, per chunk: wall "
          f"{[c['wall_seconds'] for c in chunk_runs]} s, engine {[c['engine_seconds'] for c in chunk_runs]} s")
    # `framepress status` lists the chunks.
    shown = cli(service["env"], "status", tid, "--json")
    assert [c["id"] for c in shown["chunks"]] == [c["id"] for c in st["chunks"]]
    text = cli(service["env"], "status", tid)
    assert "chunks" in text and all(c["id"][:8] in text for c in st["chunks"])


@pytest.mark.timeout(300)
def test_a_long_mpeg_ts_source_is_split_through_an_mp4_copy(service, client, broadcast_source, spawn, tmp_path):
    tid, _, split = split_over_two_workers(service, client, spawn, broadcast_source["uri"])
    assert split["source_copy"].endswith(f"/{tid}/.chunks/source.mp4")
    check_outputs(service, tid, tmp_path / "out")   # with the scratch gone, the copy too
    # The split pulled the source once; the chunks only their ranges of the copy (and its header).
    copy_path = "/" + split["source_copy"].split("://", 1)[1]
    got = service["proxy"].got_bytes
    from_source, from_copy = got[broadcast_source["path"]], got[copy_path]
    assert from_source == broadcast_source["bytes"] and 0 < from_copy < 1.2 * split["copy_bytes"]
    pulled = from_source + from_copy
    print(f"bytes pulled: {pulled} of {broadcast_source['bytes']} ({pulled / broadcast_source['bytes']:.2f}x), "
          f"the copy {split['copy_bytes']} bytes")
    assert pulled <= 2.2 * broadcast_source["bytes"]


@pytest.mark.timeout(300)
def test_a_long_source_whose_audio_mp4_cannot_hold_runs_whole(service, client, s3_service, spawn, tmp_path):
    """SMPTE 302M audio (broadcast PCM) cannot be copied into an MP4: the task is not split, says
    why, and is transcoded whole."""
    source = source_in_bucket(s3_service, tmp_path / "pcm.ts", "s302m", "-strict", "-2", "-ar", "48000", "-ac", "2")
    spawn("a")
    tid = client.submit(source["uri"], ladder=LADDER)
    st = wait_status(client, tid, timeout=240)
    assert st["status"] == "succeeded", st["last_error"]
    assert "split" not in kinds(st) and st["kind"] == "whole"
    why = next(e for e in st["events"] if e["kind"] == "not_split")
    assert "MP4 cannot hold the source's stream 1 (audio, s302m)" in why["message"]
    assert {r["name"]: r["frames"] for r in st["renditions"]} == {"180p": FRAMES, "144p": FRAMES}


@pytest.fixture(scope="module")
def two_language_source(s3_service, tmp_path_factory):
    """As `long_source`, with an English and a French audio track (each its own tone)."""
    path = tmp_path_factory.mktemp("split") / "two_languages.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=320x180:rate={RATE}:duration={SECONDS}",
                    *two_language_args(SECONDS), "-b:a", "64k",
                    "-c:v", "libx264", "-preset", "veryfast", "-g", str(2 * RATE), "-pix_fmt", "yuv420p", str(path)],
                   check=True)
    key = f"sources/{uuid.uuid4().hex[:8]}/two_languages.mp4"
    s3_service["client"].upload_file(str(path), BUCKET, key)
    return f"s3://{BUCKET}/{key}"


def audio_outputs(dest: Path) -> dict:
    """What players and tools see of the audio tracks: in the MP4s, HLS and DASH."""
    return {"mp4": audio_streams(dest / "180p.mp4"),
            "hls": re.findall(r"#EXT-X-MEDIA:.*", (dest / "hls" / "master.m3u8").read_text()),
            "dash": dash_audio_sets(dest / "dash" / "manifest.mpd")}


@pytest.mark.timeout(300)
def test_a_split_task_keeps_every_audio_track_as_an_unsplit_one_does(service, client, two_language_source, spawn,
                                                                      tmp_path):
    """The ladder's audio policy for a split task is an unsplit one's: every track by default, with
    its language and default flag, or those of the languages it names; each encoded once."""
    spawn("a"), spawn("b")
    french = {**LADDER, "name": "split-fra", "audio": {**LADDER["audio"], "tracks": ["fra"]}}
    tasks = {"split": client.submit(two_language_source, ladder=LADDER),
             "whole": client.submit(two_language_source, ladder=LADDER, options={"split_seconds": 0}),
             "french": client.submit(two_language_source, ladder=french)}
    for name, tid in tasks.items():
        st = wait_status(client, tid, timeout=240)
        assert st["status"] == "succeeded", (name, st["last_error"])
        assert kinds(st).count("split") == (name != "whole"), name
        check_outputs(service, tid, tmp_path / name, tracks=1 if name == "french" else 2)
    split = audio_outputs(tmp_path / "split")
    assert split == audio_outputs(tmp_path / "whole")
    assert split["mp4"] == [("eng", 1), ("fra", 0)] and len(split["hls"]) == 2
    assert [tone(tmp_path / "split" / "180p.mp4", i) for i in range(2)] == pytest.approx([440, 660], abs=2)
    french = audio_outputs(tmp_path / "french")
    assert french["mp4"] == [("fra", 1)] and [lang for lang, _, _ in french["dash"]] == ["fr"]
    assert tone(tmp_path / "french" / "180p.mp4") == pytest.approx(660, abs=2)
    # Audio once: no chunk encoded any.
    for tid in (tasks["split"], tasks["french"]):
        for c in client.status(tid)["chunks"]:
            transcoded = next(e for e in client.status(c["id"])["events"] if e["kind"] == "transcoded")["data"]
            assert transcoded["audio"]["index"] == -1 and not any(r["has_audio"] for r in transcoded["renditions"])


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


# ---- at full size: a 120 s 1080p source against itself unsplit ---------------------------------

FILM_SECONDS, FILM_RATE = 120, 24
FILM_FRAMES = FILM_SECONDS * FILM_RATE
AAC_FRAME_S = 1024 / 44100
FILM_LADDER = {"name": "split-1080p", "gop_seconds": 2, "segment_seconds": 6,
               "audio": {"codec": "aac", "bitrate": 128000},
               "rungs": [{"name": "1080p", "height": 1080, "codec": "h264", "bitrate": 3_000_000,
                          "preset": "superfast"},
                         {"name": "360p", "height": 360, "codec": "h264", "bitrate": 600_000, "preset": "superfast"}]}
FILM_SPLIT = {"FRAMEPRESS_SPLIT_SECONDS": "60", "FRAMEPRESS_CHUNK_SECONDS": "30"}


@pytest.fixture(scope="module")
def film(s3_service, tmp_path_factory):
    """120 s of 1080p24 H.264 with B-frames and open GOPs, a keyframe every 3.5 s (neither on the
    ladder's 2 s grid nor on the chunks' 30 s edges), and AAC; on disk and in the bucket."""
    path = tmp_path_factory.mktemp("film") / "film.mp4"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y",
                    "-f", "lavfi", "-i", f"testsrc2=size=1920x1080:rate={FILM_RATE}:duration={FILM_SECONDS}",
                    "-f", "lavfi", "-i", f"sine=frequency=440:duration={FILM_SECONDS}",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-x264-params", "bframes=3:keyint=84:min-keyint=84:scenecut=0:open-gop=1",
                    "-c:a", "aac", "-b:a", "128k", str(path)], check=True)
    key = f"sources/{uuid.uuid4().hex[:8]}/film.mp4"
    s3_service["client"].upload_file(str(path), BUCKET, key)
    return {"uri": f"s3://{BUCKET}/{key}", "path": f"/{BUCKET}/{key}", "local": path, "bytes": path.stat().st_size}


def video_packets(path) -> list[dict]:
    """The video packets (one a frame) in decode order: pts_time, flags, size; read without decoding."""
    return probe(path, "-select_streams", "v:0", "-show_entries", "packet=pts_time,flags,size")["packets"]


def keyframe_times(packets: list[dict]) -> list[float]:
    return sorted(round(float(p["pts_time"]), 3) for p in packets if "K" in p["flags"])


def psnrs(source: Path, renditions: list[tuple[Path, int, int]]) -> list[float]:
    """Average PSNR of each (rendition, width, height) against the source scaled to its size, the
    source decoded once."""
    n = len(renditions)
    graph = [f"[0:v]split={n}" + "".join(f"[r{i}]" for i in range(n))]
    graph += [f"[r{i}]scale={w}:{h}:flags=bicubic[s{i}]" for i, (_, w, h) in enumerate(renditions)]
    graph += [f"[{i + 1}:v][s{i}]psnr[o{i}]" for i in range(n)]
    cmd = ["ffmpeg", "-nostdin", "-i", str(source)] + [a for r, _, _ in renditions for a in ("-i", str(r))]
    cmd += ["-filter_complex", ";".join(graph)] + [a for i in range(n) for a in ("-map", f"[o{i}]", "-f", "null", "-")]
    err = subprocess.run(cmd, capture_output=True, text=True, check=True).stderr
    # Each psnr filter logs its average when it ends; the graph numbers them in order (after split and the scales).
    found = sorted((int(i), float(v)) for i, v in re.findall(r"Parsed_psnr_(\d+) .*average:([0-9.]+)", err))
    assert len(found) == n, err[-2000:]
    return [v for _, v in found]


def av_ends(path) -> dict:
    """End of the video, end and duration of the audio, seconds."""
    streams = {s["codec_type"]: s for s in probe(path, "-show_entries", "stream=codec_type,start_time,duration")["streams"]}
    end = {k: float(s["start_time"]) + float(s["duration"]) for k, s in streams.items()}
    return {"video_end": end["video"], "audio_end": end["audio"], "audio_seconds": float(streams["audio"]["duration"])}


def hls_seconds(playlist: Path) -> float:
    return sum(float(line[8:].rstrip(",")) for line in playlist.read_text().splitlines() if line.startswith("#EXTINF:"))


def shown(line: str) -> str:
    """A measured figure, printed as it is found (for the report) and returned for assertions."""
    print(line)
    return line


def wall_seconds(st: dict) -> float:
    """From the task's first take to its success, by the database's clock."""
    from datetime import datetime
    taken = next(e["at"] for e in st["events"] if e["kind"] == "taken")
    done = [e["at"] for e in st["events"] if e["kind"] == "succeeded"][-1]
    return (datetime.fromisoformat(done) - datetime.fromisoformat(taken)).total_seconds()


@pytest.mark.faults
@pytest.mark.timeout(2400)
def test_a_long_1080p_source_split_over_two_workers_matches_it_unsplit(service, client, film, spawn, tmp_path):
    """The issue's check at its size: 30 s chunks on two workers against one worker's encode of the
    whole source: the same frames and keyframes in every rendition, per-rung PSNR within 0.1 dB and
    bitrate within 5 %, audio as long within one AAC frame and ending with the video."""
    spawn("a", **FILM_SPLIT), spawn("b", **FILM_SPLIT)
    proxy = service["proxy"]
    proxy.got_bytes.clear()
    split_id = client.submit(film["uri"], ladder=FILM_LADDER)
    split = wait_status(client, split_id, timeout=1500)
    assert split["status"] == "succeeded", split["last_error"]
    pulled = proxy.got_bytes[film["path"]]
    plan = next(e for e in split["events"] if e["kind"] == "split")["data"]
    assert [[c["start"], c["end"]] for c in plan["chunks"]] == [[0, 30], [30, 60], [60, 90], [90, None]]
    takers = {[e for e in client.status(c["id"])["events"] if e["kind"] == "taken"][-1]["worker_id"]
              for c in split["chunks"]}
    assert len(takers) == 2, "the chunks ran on both workers"
    whole_id = client.submit(film["uri"], ladder=FILM_LADDER, options={"split_seconds": 0})
    whole = wait_status(client, whole_id, timeout=1500)
    assert whole["status"] == "succeeded", whole["last_error"]
    assert "split" not in kinds(whole)
    for tid, name in ((split_id, "split"), (whole_id, "whole")):
        download_outputs(service, tid, tmp_path / name)
    stitched = next(e for e in split["events"] if e["kind"] == "stitched")["data"]
    uploaded = next(e for e in split["events"] if e["kind"] == "uploaded")["data"]
    shown(f"source {film['bytes']} bytes, pulled {pulled} ({pulled / film['bytes']:.2f}x; the chunks' plan "
          f"{sum(c['bytes'] for c in plan['chunks'])}); wall: split "
          f"{wall_seconds(split):.1f} s (split step {plan['seconds']} s, stitch {stitched['seconds']} s: "
          f"{stitched['pulled_bytes']} bytes pulled, {uploaded['copied_bytes']} copied within the store), "
          f"whole {wall_seconds(whole):.1f} s")

    source_packets = video_packets(film["local"])
    assert len(source_packets) == FILM_FRAMES
    grid = [float(t) for t in range(0, FILM_SECONDS, 2)]
    rungs = {"1080p": (1920, 1080), "360p": (640, 360)}
    measured = iter(psnrs(film["local"], [(tmp_path / name / f"{rung}.mp4", w, h)
                                          for rung, (w, h) in rungs.items() for name in ("split", "whole")]))
    for rung in rungs:
        packets = {(name, kind): video_packets(tmp_path / name / path)
                   for name in ("split", "whole") for kind, path in (("mp4", f"{rung}.mp4"), ("hls", f"hls/{rung}.m3u8"))}
        for (name, kind), found in packets.items():
            assert len(found) == FILM_FRAMES, (name, kind, rung)
        assert keyframe_times(packets["split", "mp4"]) == keyframe_times(packets["whole", "mp4"]) == grid, rung
        assert keyframe_times(packets["split", "hls"]) == keyframe_times(packets["whole", "hls"]), rung
        size = {name: sum(int(p["size"]) for p in packets[name, "mp4"]) for name in ("split", "whole")}
        split_psnr, whole_psnr = next(measured), next(measured)
        note = shown(f"{rung}: PSNR {split_psnr:.3f} / {whole_psnr:.3f} dB, video bytes {size['split']} / "
                     f"{size['whole']} ({size['split'] / size['whole'] - 1:+.2%})")
        assert split_psnr == pytest.approx(whole_psnr, abs=0.1), note
        assert size["split"] == pytest.approx(size["whole"], rel=0.05), note
        ends = {name: av_ends(tmp_path / name / f"{rung}.mp4") for name in ("split", "whole")}
        note = shown(f"{rung}: split {ends['split']}, whole {ends['whole']}")
        assert abs(ends["split"]["audio_seconds"] - ends["whole"]["audio_seconds"]) <= AAC_FRAME_S, note
        assert abs(ends["split"]["audio_end"] - ends["split"]["video_end"]) <= 1 / FILM_RATE, note
    audio_hls = [hls_seconds(tmp_path / n / "hls" / "audio_0.m3u8") for n in ("split", "whole")]
    assert audio_hls[0] == pytest.approx(audio_hls[1], abs=AAC_FRAME_S)
    # All workers together pulled about twice the source (whole to split it, in ranges for the chunks).
    assert pulled <= 2.2 * film["bytes"]
