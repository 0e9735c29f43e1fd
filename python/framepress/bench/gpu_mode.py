"""`framepress bench gpu`: the engine's GPU path against its CPU path and the FFmpeg CLI.

Runs only where NVML reports an NVIDIA GPU and the engine sees a CUDA device; otherwise the mode
is reported as skipped, with the reason. The engine picks full GPU (NVDEC → scale_cuda → NVENC)
or hybrid (NVDEC → scale_cuda → CPU encoder) itself; the report shows which it used.
"""
from __future__ import annotations

import time

from framepress.bench import machine
from framepress.bench.engine_mode import EngineBenchOptions, run_engine_bench
from framepress.bench.progress import Progress
from framepress.bench.systems import engine_system, peer_systems


def gpu_unavailable() -> str:
    """Why the GPU mode cannot run here ("" when it can)."""
    if not machine.gpu_names():
        return "no NVIDIA GPU found (NVML reports none)"
    try:
        import framepress
        caps = framepress.hw_capabilities()
    except Exception as exc:
        return f"the engine cannot report its hardware: {exc}"
    if not caps.get("cuda"):
        return f"the engine sees no CUDA device ({caps.get('cuda_error') or 'no reason given'})"
    return ""


def run_gpu_bench(opts, progress: Progress = Progress()) -> dict:
    finished = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    why = gpu_unavailable()
    if why:
        return {"mode": "gpu", "finished_at": finished, "skipped": why}
    systems = [engine_system("cuda", name="engine-cuda"),
               engine_system("cpu", name="engine-cpu", is_engine=False),
               next(p for p in peer_systems() if p.name == "ffmpeg")]
    res = run_engine_bench(EngineBenchOptions(
        work_dir=opts.work_dir / "gpu", source=opts.source, quick=opts.quick, seconds=opts.seconds,
        ladder=opts.ladder, rounds=opts.rounds, measure_quality=opts.measure_quality,
        system_list=systems), progress)
    res["mode"] = "gpu"
    return res
