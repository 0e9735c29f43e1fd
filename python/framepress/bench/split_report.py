"""The split-and-stitch section of RESULTS.md and its plot (wall time against workers: the
measured runs, and the projection for the same source and for a two-hour one)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)

from framepress.bench.report import put_section  # noqa: E402
from framepress.bench.split_figures import SPLIT_PHASES, WHOLE_PHASES  # noqa: E402

HEADING = "## Split and stitch"
PLOT = "split_wall_vs_workers.png"

_SPLIT_PHASE_NOTES = {
    "pickup": "submit → a worker takes the task",
    "pull and split": "the whole source pulled, probed, its chunk byte ranges found, the audio "
                      "encoded once and uploaded, the chunks committed",
    "chunks": "the split's commit → the last chunk's success",
    "requeue and pickup": "the parent's message, a worker takes it",
    "stitch": "the chunks' MP4s pulled and remuxed with the audio, their media segments copied "
              "within the store, playlists and manifests written",
    "upload": "the stitched outputs uploaded",
    "commit": "renditions rows and the success committed",
}


def _spread(s: dict, fmt: str = "{:.2f}") -> str:
    if s["n"] == 1 or s["min"] == s["max"]:
        return fmt.format(s["median"])
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"


def _s(v) -> str:
    return "–" if v is None else f"{v:.2f}"


def _share(s: dict | None, fmt: str = "{:.2f}") -> str:
    return _spread(s, fmt) if s else "–"


def _clock(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


def _row(cells) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _table(header: list[str], rows: list[list]) -> list[str]:
    return [_row(header), "|" + "---|" * len(header)] + [_row(r) for r in rows]


def section(res: dict, command: str) -> list[str]:
    lines = [f"{HEADING} ({res['finished_at']})", ""]
    if res.get("skipped"):
        return lines + [f"Skipped: {res['skipped']}", ""]
    src, st, sm = res["source"], res["settings"], res["summary"]
    m = sm["measured"]
    loads = [x for r in res["rounds"] for x in r["load_before"]]
    n_chunks = len(res["rounds"][0]["split"]["chunks"])
    lines += [
        f"Written by `{command}`. Real `framepress worker` processes on RabbitMQ, Postgres and S3 "
        f"(moto over HTTP) on loopback, each started under `taskset -c N` so that one core stands "
        f"for one machine; the bench, moto, RabbitMQ and Postgres share the machine's "
        f"{res['machine']['cores']} cores with them. Source `{src['path']}`: {src['width']}×"
        f"{src['height']} {src['codec']}, {src['fps']:g} fps, {src['seconds']:.1f} s, "
        f"{'with' if src['has_audio'] else 'no'} audio; ladder `{st['ladder']}`, hwaccel cpu. "
        f"{st['rounds']} round(s), each with fresh workers (registered before the submit): "
        f"**whole**, one worker on core {st['cores'][0]} with splitting off; **split**, "
        f"{len(st['cores'])} workers on cores {', '.join(map(str, st['cores']))} with the source "
        f"split into {n_chunks} chunks of {m['chunk_s']:g} s ({st['chunk_seconds']:g} s asked, "
        f"rounded to whole segments). Both runs make the same outputs: MP4s, HLS and DASH, no "
        f"thumbnails (split tasks make none). Wall: submit → `succeeded`, from the tasks' events (the "
        f"database's clock, on this machine). 1-minute load average before the runs: "
        f"{min(loads):.1f}–{max(loads):.1f}: other work on the machine lengthens the walls.", ""]

    ratio = sm["ratio"]
    lines += ["### Goal (issue 13)", ""]
    goals = [[f"{len(st['cores'])} one-core workers ≤ {sm['goal_ratio']} × one one-core worker, unsplit",
              _spread(ratio, "{:.3f}"), "yes" if sm["goal_met"] else "**no**"]]
    if "busy_ratio" in sm:
        busy = sm["busy_ratio"]
        goals.append(["the same, the one worker's neighbour core as busy as in the split run (see below)",
                      _spread(busy, "{:.3f}"), "yes" if busy["median"] <= sm["goal_ratio"] else "**no**"])
    lines += _table(["goal", "measured: split ÷ whole, median (min–max) over rounds", "met"], goals) + [""]
    runs = [["whole", 1, _spread(sm["whole_wall_s"]), _share(sm.get("whole_cpu_s"), "{:.1f}"),
             _share(sm.get("whole_core_share"))],
            ["split", len(st["cores"]), _spread(sm["split_wall_s"]), _share(sm.get("split_cpu_s"), "{:.1f}"),
             _share(sm.get("split_core_share"))]]
    if "busy_ratio" in sm:
        runs.append([f"whole, every core busy (each of the {len(st['cores'])} tasks)", 1,
                     _spread(sm["busy_whole_wall_s"]), "", _share(sm.get("busy_whole_core_share"))])
    lines += _table(["run", "workers", "wall s, median (min–max)", "workers' CPU s",
                     "share of their cores the workers had"], runs)
    lines += ["", "Share of their cores: the workers' CPU seconds from the submit to the end ÷ (wall × "
              "workers). Below 1 they waited: for their cores (other work on them) or for I/O and the "
              "services. A split run whose workers had less of their cores than the whole run's "
              "worker is slowed by the machine, not by the split.", ""]
    if "busy_ratio" in sm:
        lines += ["Whole, every core busy: the source given whole to each of the workers at once, one "
                  "task per core. The machine's cores share their physical core's caches and memory "
                  "bandwidth (and may be hyperthreads of one core), so the split's workers slow each "
                  "other down where the lone whole worker had an idle neighbour; this run is that "
                  "worker under the split's neighbours, and its wall the second ratio's denominator.", ""]

    lines += ["### Where the wall goes", "",
              "Medians over the rounds; the phases follow one another and add up to the wall.", ""]
    rows = [[f"whole: {k}", f"{sm['whole_phases'][k]:.2f}", ""] for k in WHOLE_PHASES]
    rows += [[f"split: {k}", f"{sm['split_phases'][k]:.2f}", _SPLIT_PHASE_NOTES[k]] for k in SPLIT_PHASES]
    lines += _table(["phase", "seconds", "what"], rows) + [""]
    last = res["rounds"][-1]["split"]
    lines += [f"Inside the split run (last round): source pulled in {last['pull_s']:.2f} s, split step "
              f"{last['split_s']:.2f} s, stitch {last['stitch_s']:.2f} s; the parent's own publish job "
              f"after its success {_s(last['publish_s'])} s (not in the wall, as for the whole task: "
              f"{_s(res['rounds'][-1]['whole']['publish_s'])} s).", ""]

    lines += ["### Per chunk (last round)", "",
              "Queue wait: created → taken. Gap: the same worker's previous chunk's success (its "
              "first: the chunk's creation) → taken: the message's hop and the take (a chunk's "
              "outputs stay where its attempt wrote them; no publish job copies them). Overhead: the "
              "chunk's wall in its worker less the engine (lease, pull of its byte ranges, upload, "
              "database).", ""]
    rows = [[i, f"{c['range'][0]:g}–{'end' if c['range'][1] is None else format(c['range'][1], 'g')}",
             "–" if c["core"] is None else c["core"], _s(c["queue_wait_s"]), _s(c["gap_s"]),
             _s(c["engine_s"]), _s(c["overhead_s"])]
            for i, c in enumerate(last["chunks"])]
    lines += _table(["chunk", "range s", "core", "queue wait s", "gap s", "engine s", "overhead s"], rows) + [""]
    pc = sm["per_chunk"]
    lines += [f"Fixed costs per chunk, medians over every chunk of every round: overhead "
              f"{_s(pc['overhead_s'])} s, gap {_s(pc['gap_s'])} s (of the chunks that followed another "
              f"on their worker), so "
              f"{m['fixed_per_chunk_s']:.2f} s a chunk on top of its engine time "
              f"({m['engine_per_source_s']:.3f} engine s per source second on one core: "
              f"{m['engine_per_source_s'] * m['chunk_s']:.1f} s for a {m['chunk_s']:g} s chunk).", ""]
    lines += projection_lines(sm)
    lines += [f"![wall against workers]({PLOT})", ""]
    return lines


def projection_lines(sm: dict) -> list[str]:
    m, p = sm["measured"], sm["projection"]
    check = next(r for r in sm["model_at_measured"] if r["workers"] == sm["workers"])
    lines = ["### Projection on paper: a two-hour source", "",
             f"wall(N) = pickup + pull and split + ceil(C / N) × (engine per chunk + fixed per chunk) "
             f"+ requeue and pickup + stitch and upload + commit, for C chunks on N one-core workers "
             f"(`framepress.bench.split_projection`), from this run's medians:", "",
             f"- engine per chunk: {m['engine_per_source_s']:.3f} s per source second × "
             f"{m['chunk_s']:g} s; fixed per chunk: {m['fixed_per_chunk_s']:.2f} s (overhead + gap). "
             "Both the same for every chunk: what grows with the chunk count is the number of rounds "
             "ceil(C / N), and the split's and the stitch's per-chunk work.",
             f"- pull and split ({m['pull_and_split_s']:.2f} s) and stitch and upload "
             f"({m['stitch_and_upload_s']:.2f} s) for {m['source_s']:g} s of source, each on one "
             "worker, scaled with the source's length (the source's bytes, the audio encode, the "
             "chunks' MP4s pulled and the joined ones uploaded, the segments copied); pickup, "
             "requeue and commit "
             f"({m['pickup_s'] + m['requeue_s'] + m['commit_s']:.2f} s together) constant.",
             f"- one worker on the whole source: its measured wall ({m['whole_wall_s']:.1f} s) "
             "scaled with the length.",
             "- Not modelled: S3's, the database's and the broker's throughput under many workers "
             "(all on loopback here), other tasks, worker start-up, slower chunks (content that is "
             "harder in places), retries.",
             f"- Check at the measured point: the model gives {check['wall_s']:.1f} s for {sm['workers']} workers "
             f"on {m['source_s']:g} s; measured {sm['split_wall_s']['median']:.1f} s.", ""]
    rows = [["1, whole", "–", "–", "–", "–", _clock(p["whole_wall_s"]) + f" ({p['whole_wall_s']:.0f} s)", "1.0×"]]
    for r in p["rows"]:
        t = r["terms"]
        rows.append([r["workers"], f"{r['rounds']} of {r['chunks']}", f"{t['serial before']:.0f}",
                     f"{t['chunks']:.0f}", f"{t['serial after']:.0f}",
                     _clock(r["wall_s"]) + f" ({r['wall_s']:.0f} s)", f"{r['speedup']:.1f}×"])
    lines += _table(["workers", "chunk rounds", "before the chunks s", "chunks s", "after the chunks s",
                     "wall", "speed-up over one worker, whole"], rows) + [""]
    f = p["floor"]
    lines += [f"With a worker for every chunk ({f['chunks']}) the wall would be {_clock(f['wall_s'])} "
              f"({f['speedup']:.0f}× faster than one worker): pull and split, one round of chunks, "
              f"stitch and upload, which more workers do not shorten; of it, "
              f"{f['terms']['serial before'] + f['terms']['serial after']:.0f} s are the serial steps "
              "on one worker.", ""]
    return lines


def plot(res: dict, out: Path) -> Path:
    """Left: the measured source, wall against workers (filled: measured; hollow: the model).
    Right: the two-hour projection."""
    sm, st = res["summary"], res["settings"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    whole, split = sm["whole_wall_s"], sm["split_wall_s"]
    workers = len(st["cores"])
    left.errorbar([1], [whole["median"]], yerr=[[whole["median"] - whole["min"]], [whole["max"] - whole["median"]]],
                  fmt="o", color="tab:gray", capsize=4, label="measured: one worker, whole")
    left.errorbar([workers], [split["median"]], yerr=[[split["median"] - split["min"]], [split["max"] - split["median"]]],
                  fmt="s", color="tab:red", capsize=4, label=f"measured: {workers} workers, split")
    model = sm["model_at_measured"]
    left.plot([r["workers"] for r in model], [r["wall_s"] for r in model], "s--", mfc="none",
              color="tab:red", alpha=0.6, label="projected: split (model)")
    xs = [r["workers"] for r in model]
    left.plot(xs, [whole["median"] / n for n in xs], ":", color="gray", label="one worker ÷ N")
    left.axhline(sm["goal_ratio"] * whole["median"], color="tab:green", lw=0.8,
                 label=f"goal: {sm['goal_ratio']} × one worker")
    left.set_xticks(xs)
    left.set_xlabel("workers (one core each)")
    left.set_ylabel("wall s, submit → succeeded")
    left.set_ylim(bottom=0)
    left.set_title(f"{res['source']['seconds']:.0f} s {res['source']['height']}p source", fontsize=10)
    left.legend(fontsize=8)
    p = sm["projection"]
    ns = [r["workers"] for r in p["rows"]]
    right.plot(ns, [r["wall_s"] / 60 for r in p["rows"]], "s--", mfc="none", color="tab:red",
               label="projected: split")
    right.plot([1], [p["whole_wall_s"] / 60], "o", mfc="none", color="tab:gray", label="projected: one worker, whole")
    right.plot(ns, [p["whole_wall_s"] / 60 / n for n in ns], ":", color="gray", label="one worker ÷ N")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xticks(ns, [str(n) for n in ns])
    right.set_xlabel("workers (one core each)")
    right.set_ylabel("wall, minutes (log)")
    right.set_title(f"projection: {p['source_s'] / 3600:g} h source (nothing measured)", fontsize=10)
    right.legend(fontsize=8)
    fig.tight_layout()
    path = out / PLOT
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_section(res: dict, out: Path, command: str) -> Path:
    """The plot under `out`, and the section put into `out/RESULTS.md` in place of an earlier one."""
    out.mkdir(parents=True, exist_ok=True)
    if not res.get("skipped"):
        plot(res, out)
    return put_section(out, section(res, command))


__all__ = ["HEADING", "PLOT", "section", "plot", "write_section"]
