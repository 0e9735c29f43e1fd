"""PNG plots for the report (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

FPS_PLOT = "fps_per_rung.png"
OVERHEAD_PLOT = "overhead_split.png"
SCALE_PLOT = "throughput_vs_workers.png"


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _ran(engine: dict) -> dict:
    return {n: s for n, s in engine["systems"].items() if s.get("rounds")}


def fps_per_rung(engine: dict, out: Path) -> Path:
    """Left: the whole ladder's fps per system (median, min–max bars). Right: fps per rung."""
    systems = _ran(engine)
    rungs = [r["name"] for r in engine["settings"]["plan"]["rungs"]]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5), gridspec_kw={"width_ratios": [1, 2]})
    names = list(systems)
    med = [systems[n]["summary"]["fps"]["median"] for n in names]
    lo = [m - systems[n]["summary"]["fps"]["min"] for m, n in zip(med, names)]
    hi = [systems[n]["summary"]["fps"]["max"] - m for m, n in zip(med, names)]
    left.bar(names, med, yerr=[lo, hi], capsize=4,
             color=["tab:red" if systems[n]["is_engine"] else "tab:gray" for n in names])
    left.set_title("whole ladder: source frames per second")
    left.set_ylabel("fps (median, min–max over rounds)")
    left.tick_params(axis="x", rotation=30)
    width = 0.8 / max(1, len(names))
    for i, n in enumerate(names):
        per_rung = {r["name"]: r.get("fps", 0.0) for r in systems[n].get("rungs", [])}
        if not per_rung:
            per_rung = {k: v for k, v in systems[n]["rounds"][-1].get("rung_fps", {}).items()}
        xs = [j + (i - (len(names) - 1) / 2) * width for j in range(len(rungs))]
        right.bar(xs, [per_rung.get(r, 0.0) for r in rungs], width, label=n)
    right.set_xticks(range(len(rungs)), rungs)
    right.set_title("per rung (engine: its encoders' rate; separate processes: each one's;\n"
                    "one-process peers: the ladder's rate)", fontsize=9)
    right.set_ylabel("fps")
    right.legend(fontsize=8)
    return _save(fig, out / FPS_PLOT)


def overhead_split(pipeline: dict, out: Path) -> Path:
    """One stacked bar: where a task's time goes, in seconds (median over tasks)."""
    split = pipeline["split_s"]
    fig, ax = plt.subplots(figsize=(10, 2.8))
    left = 0.0
    for stage, seconds in split.items():
        shown = f"{seconds:.2f} s" if seconds >= 1 else f"{1000 * seconds:.0f} ms"
        ax.barh(["task"], [seconds], left=left, label=f"{stage} {shown}")
        left += seconds
    ax.set_xlabel("seconds per task (median over tasks)")
    ax.set_title("pipeline: per-task time split")
    ax.legend(ncol=min(6, len(split)), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.35))
    return _save(fig, out / OVERHEAD_PLOT)


def throughput_vs_workers(scale: dict, out: Path) -> Path:
    points = scale["points"]
    workers = [p["workers"] for p in points]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.plot(workers, [p["tasks_per_min"] for p in points], "o-", label="measured")
    ax.plot(workers, [p["ideal_tasks_per_min"] for p in points], "--", color="gray",
            label="ideal (1 worker × N)")
    ax.set_xlabel("workers")
    ax.set_ylabel("tasks per minute")
    ax.set_xticks(workers)
    ax.set_ylim(bottom=0)
    ax.set_title(f"throughput against workers ({scale.get('cores', '?')} cores)")
    ax.legend()
    return _save(fig, out / SCALE_PLOT)


def make_plots(results: dict, out: Path) -> list[Path]:
    made = []
    if results.get("engine", {}).get("systems"):
        made.append(fps_per_rung(results["engine"], out))
    if results.get("pipeline", {}).get("split_s"):
        made.append(overhead_split(results["pipeline"], out))
    if results.get("scale", {}).get("points"):
        made.append(throughput_vs_workers(results["scale"], out))
    return made
