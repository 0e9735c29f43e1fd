"""The happy path against RabbitMQ, Postgres and S3 (moto over HTTP)."""
from __future__ import annotations

import pytest

from .conftest import (BUCKET, SMALL_LADDER, ffprobe_frames, kinds, queue_depth, wait_for,
                       wait_settled)

HAPPY = ["taken", "details_loaded", "pulled", "transcoded", "uploaded", "succeeded"]


@pytest.fixture
def finished(client, run_worker, source_uris, s3):
    """One task run to success by a worker; returns its status."""
    with run_worker():
        task_id = client.submit(source_uris["clip360"], ladder=SMALL_LADDER)
        return wait_settled(client, task_id)


@pytest.mark.timeout(90)
def test_happy_path_events_in_order_with_details(finished, source_uris, s3):
    st = finished
    assert st["status"] == "succeeded", st["last_error"]
    assert kinds(st) == HAPPY
    assert st["attempts"] == 1 and st["progress"] == 1.0 and st["last_error"] is None
    ev = {e["kind"]: e for e in st["events"]}
    assert len({e["worker_id"] for e in st["events"]}) == 1
    taken = ev["taken"]["data"]
    import os
    assert taken["pid"] == os.getpid()  # the worker ran in this process
    for key in ("hostname", "pod", "node", "version", "ffmpeg_version", "hardware"):
        assert key in taken
    assert taken["ffmpeg_version"] != "unknown"
    assert "gpu" in taken["hardware"]
    bucket, key = source_uris["clip360"][5:].split("/", 1)
    assert ev["pulled"]["data"]["bytes"] == s3.head_object(Bucket=bucket, Key=key)["ContentLength"]
    assert ev["pulled"]["data"]["seconds"] >= 0
    tr = ev["transcoded"]["data"]
    assert [r["name"] for r in tr["renditions"]] == ["360p", "240p"]
    assert tr["hwaccel_used"] and "hwaccel_reason" in tr
    assert all(r["frames"] == 30 for r in tr["renditions"])
    up = ev["uploaded"]["data"]
    assert "hls/master.m3u8" in up["keys"] and "360p.mp4" in up["keys"]
    assert up["bytes"] > 0 and up["objects"] == len(up["keys"])
    done = ev["succeeded"]["data"]
    assert done["wall_seconds"] >= done["engine_seconds"] > 0
    assert done["master_playlist"].endswith(f"/{st['id']}/hls/master.m3u8")
    assert done["dash_manifest"].endswith(f"/{st['id']}/dash/manifest.mpd")
    assert done["poster"].endswith(f"/{st['id']}/thumbs/poster.jpg")
    assert done["sprites"] == [done["poster"].replace("poster.jpg", "sprite_000.jpg")]
    assert done["thumbnails_vtt"].endswith(f"/{st['id']}/thumbs/thumbnails.vtt")


@pytest.mark.timeout(90)
def test_bucket_objects_match_rendition_rows_and_decode(finished, settings, s3, tmp_path):
    st = finished
    prefix = f"{settings.output_uri[len('s3://' + BUCKET) + 1:]}/{st['id']}/"
    listed = {o["Key"][len(prefix):]: o["Size"]
              for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)["Contents"]}
    uploaded = next(e for e in st["events"] if e["kind"] == "uploaded")["data"]
    assert sorted(listed) == sorted(uploaded["keys"])
    assert sum(listed.values()) == uploaded["bytes"]
    assert {"hls/master.m3u8", "hls/360p.m3u8", "hls/240p.m3u8", "hls/360p_init.mp4"} <= set(listed)
    assert len(st["renditions"]) == 2
    for r in st["renditions"]:
        key = r["uri"][len(f"s3://{BUCKET}/"):]
        assert listed[key[len(prefix):]] == r["bytes"]
        local = tmp_path / f"{r['name']}.mp4"
        s3.download_file(BUCKET, key, str(local))
        assert ffprobe_frames(local) == r["frames"] == 30
        assert r["playlist_uri"].endswith(f"hls/{r['name']}.m3u8")
    master = s3.get_object(Bucket=BUCKET, Key=prefix + "hls/master.m3u8")["Body"].read().decode()
    assert "360p.m3u8" in master and "240p.m3u8" in master
    assert {"dash/manifest.mpd", "hls/360p_iframes.m3u8", "hls/240p_iframes.m3u8", "thumbs/poster.jpg",
            "thumbs/sprite_000.jpg", "thumbs/thumbnails.vtt"} <= set(listed)
    mpd = s3.get_object(Bucket=BUCKET, Key=prefix + "dash/manifest.mpd")["Body"].read().decode()
    assert 'initialization="360p_init.mp4"' in mpd and "<BaseURL>../hls/</BaseURL>" in mpd


@pytest.mark.timeout(90)
def test_redelivered_succeeded_task_is_acked_without_work(finished, client, run_worker, settings):
    task_id = finished["id"]
    before = kinds(finished)
    with run_worker():
        client.broker.publish_task(task_id)
        st = wait_for(lambda: (s := client.status(task_id)) and
                      "duplicate_delivery" in kinds(s) and s, timeout=30, what="duplicate_delivery")
        wait_for(lambda: queue_depth(settings) == 0, timeout=10, what="the queue to empty")
    assert kinds(st) == before + ["duplicate_delivery"]  # no second taken / upload / succeeded
    assert st["status"] == "succeeded" and st["attempts"] == 1
    assert queue_depth(settings, ".dead") == 0
