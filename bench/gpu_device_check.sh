#!/usr/bin/env bash
# One prepared run for a GPU machine: build from source, run the engine tests (the GPU ones
# included, since a CUDA device is present) and the source tests (rotation, VFR, 10-bit, ...) on
# this machine's FFmpeg and, where Docker can reach the GPU, on the GPU image's FFmpeg (Ubuntu
# 24.04, FFmpeg 6.1); then benchmark the GPU path against the CPU path on the reference ladder for
# one task and for four concurrent tasks. Results land in $OUT (or bench/gpu-run/) for
# bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/gpu-run}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
make build
.venv/bin/python -c "import framepress, json; print(json.dumps(framepress.hw_capabilities()))" | tee "$OUT/capabilities.json"
ENGINE_TESTS="tests/engine/test_gpu.py tests/engine/test_hardware_selection.py tests/engine/test_ladder_outputs.py
  tests/engine/test_sources.py tests/engine/test_encoder_threads.py"
ffmpeg -hide_banner -version | sed -n 1p
.venv/bin/pytest -q $ENGINE_TESTS

# The same tests against the GPU image's FFmpeg: its build stage holds the engine built on it.
if command -v docker >/dev/null && docker info >/dev/null 2>&1; then
  docker build -q -f Dockerfile.gpu --target build -t framepress-gpu-build .
  docker run --rm --gpus all -e NVIDIA_DRIVER_CAPABILITIES=compute,video,utility -v "$PWD/tests:/src/tests:ro" \
    framepress-gpu-build bash -c "set -e; apt-get update -qq && apt-get install -y -qq ffmpeg >/dev/null
      /opt/framepress/bin/pip install -q pytest pytest-timeout
      ffmpeg -hide_banner -version | sed -n 1p
      cd /src && /opt/framepress/bin/python -m pytest -q -p no:cacheprovider $(echo $ENGINE_TESTS)"
else
  echo "no Docker with GPU access: the source tests ran on this machine's FFmpeg only"
fi

# The reference source of DESIGN §5.
SRC="$OUT/src.mp4"
ffmpeg -y -loglevel error -f lavfi -i "testsrc2=size=1920x1080:rate=30:duration=10,noise=alls=12:allf=t+u" \
  -f lavfi -i "sine=frequency=440:duration=10" -c:v libx264 -preset medium -b:v 8M -pix_fmt yuv420p -g 60 \
  -c:a aac -b:a 128k "$SRC"

.venv/bin/python - "$SRC" "$OUT" <<'PY'
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
import framepress

src, out = sys.argv[1], sys.argv[2]
rows = []
for mode in ("auto", "cpu"):
    for tasks in (1, 4):
        started = time.monotonic()
        with ThreadPoolExecutor(tasks) as pool:
            results = list(pool.map(lambda i: framepress.transcode(src, f"{out}/{mode}-{tasks}-{i}", "default",
                                                                   hwaccel=mode), range(tasks)))
        wall = time.monotonic() - started
        frames = sum(r.decoded_frames for r in results)
        rows.append({"mode": results[0].hwaccel_used, "requested": mode, "tasks": tasks, "wall_s": round(wall, 2),
                     "source_fps": round(frames / wall, 1), "reason": results[0].hwaccel_reason})
        print(rows[-1], flush=True)
json.dump(rows, open(f"{out}/gpu_vs_cpu.json", "w"), indent=1)
print("| path | tasks | wall s | source fps |\n|---|---|---|---|")
for r in rows:
    print(f"| {r['mode']} | {r['tasks']} | {r['wall_s']} | {r['source_fps']} |")
PY
