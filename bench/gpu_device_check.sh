#!/usr/bin/env bash
# One prepared run for a GPU machine: build from source, run the engine tests (the GPU ones
# included, since a CUDA device is present), then benchmark the GPU path against the CPU path on
# the reference ladder for one task and for four concurrent tasks. Results land in $OUT (or
# bench/gpu-run/) for bench/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/gpu-run}
mkdir -p "$OUT"
exec > >(tee "$OUT/log.txt") 2>&1

nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
make build
.venv/bin/python -c "import framepress, json; print(json.dumps(framepress.hw_capabilities()))" | tee "$OUT/capabilities.json"
.venv/bin/pytest -q tests/engine/test_gpu.py tests/engine/test_hardware_selection.py tests/engine/test_ladder_outputs.py

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
