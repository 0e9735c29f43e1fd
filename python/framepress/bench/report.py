"""RESULTS.md from the modes' result dicts: tables first, then the plots."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Optional

from framepress.bench import plots

PSNR_SLACK_DB = 0.05     # issue 2: per-rung PSNR ≥ the system ffmpeg CLI's − 0.05 dB
COST_GOALS = {"engine-quality": 1.15}   # issue 14: PSNR + SSIM for at most 15 % more CPU


def _spread(s: dict, fmt: str = "{:.2f}") -> str:
    if not s:
        return "–"
    if s.get("n", 1) == 1 or s["min"] == s["max"]:
        return fmt.format(s["median"])
    return f"{fmt.format(s['median'])} ({fmt.format(s['min'])}–{fmt.format(s['max'])})"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return (["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
            + ["| " + " | ".join(r) + " |" for r in rows])


def _kbps(bps: int) -> str:
    return f"{bps / 1e6:g}M" if bps >= 1e6 else f"{bps / 1e3:g}k"


def machine_section(res: dict) -> list[str]:
    m, v = res["machine"], res.get("versions", {})
    systems = res.get("systems", {})
    encoders = "; ".join(f"{n}: {s.get('encoder') or s.get('x264')}" for n, s in systems.items()
                         if s.get("encoder") or s.get("x264"))
    rows = [["CPU", f"{m['cpu']}, {m['cores']} logical cores ({m['physical_cores']} physical)"],
            ["memory", f"{m['memory_gib']} GiB"],
            ["GPU", ", ".join(m["gpus"]) or "none"],
            ["OS, Python", f"{m['os']}, Python {m['python']}"],
            ["load average at the end", " ".join(map(str, m["load_average"]))],
            ["system ffmpeg", v.get("system_ffmpeg", "–")],
            ["newest ffmpeg (imageio-ffmpeg)", v.get("newest_ffmpeg", "–")],
            ["PyAV", v.get("pyav", "–")],
            ["engine's FFmpeg", v.get("engine_ffmpeg", "–")],
            ["video encoder (from each system's first rung)", encoders or "–"]]
    return ["## Machine and versions", ""] + _table(["", ""], rows) + [""]


def settings_lines(res: dict) -> list[str]:
    src, st = res["source"], res["settings"]
    plan = st["plan"]
    rungs = ", ".join(f"{r['name']} {r['width']}×{r['height']} {_kbps(r['bitrate'])}" for r in plan["rungs"])
    first = plan["rungs"][0]
    origin = "generated with DESIGN §5's command" if src["generated"] else "given by the user"
    return [
        f"- Source: `{src['path']}` ({origin}): {src['width']}×{src['height']} {src['codec']} "
        f"{src['pix_fmt']}, {src['fps']:g} fps, {src['frames']} frames, {src['seconds']:.2f} s, "
        f"{'with' if src['has_audio'] else 'no'} audio.",
        f"- Ladder `{st['ladder']}`: {rungs}; x264 preset {first['preset']}, maxrate = bitrate, "
        f"bufsize = 2 × bitrate, GOP {first['gop']} frames ({st['gop_seconds']:g} s) fixed, "
        f"no scene-cut keyframes; AAC {_kbps(plan['audio_bitrate'])} in every rung; MP4 faststart.",
        "- Scaling: the CLI peers use FFmpeg's `scale` filter with its default (bicubic, the same "
        "pixels as `flags=bicubic`); the engine uses the same bicubic filter (B = 0, C = 0.6, "
        "chroma sited at the centre), computed by zimg for 8-bit 4:2:0 sources and by swscale "
        "otherwise; PyAV uses `VideoFrame.reformat`'s default (bilinear), which is what PyAV "
        "users get.",
        f"- {st['rounds']} rounds, systems alternating in each round: {' → '.join(st['order'])}. "
        f"Engine hwaccel: {st['hwaccel']}.",
        *_load_line(res),
        "- Wall and CPU seconds (user + system) and peak resident memory come from `wait4` rusage of "
        "each system's process tree; the engine runs in its own Python process like PyAV. For the "
        "separate-processes peer, CPU and peak memory are sums over its concurrent processes.",
        "- Quality: each rendition decoded, scaled back to the source size with bicubic "
        "(libavfilter `scale`), compared with the decoded source on all of Y, U, V: PSNR as FFmpeg's "
        "`psnr` \"average\", SSIM as `ssim` \"All\" (our numpy code, checked against the filters "
        "in tests/bench), on the last round's renditions, after the timed rounds.",
        "",
    ]


def _load_line(res: dict) -> list[str]:
    loads = [r["load_before"] for s in res["systems"].values() for r in s.get("rounds", [])
             if "load_before" in r]
    if not loads:
        return []
    return [f"- 1-minute load average before each run: {min(loads):.1f}–{max(loads):.1f} on "
            f"{res['machine']['cores']} cores. Other work on the machine lengthens wall times; "
            "CPU seconds and memory move much less."]


def engine_section(res: dict) -> list[str]:
    systems = res["systems"]
    ran = {n: s for n, s in systems.items() if s.get("rounds")}
    lines = [f"## Engine and peers ({res['finished_at']})", ""] + settings_lines(res)

    rows = []
    for n, s in systems.items():
        if not s.get("rounds"):
            continue
        sm = s["summary"]
        rows.append([f"**{n}**" if s["is_engine"] else n, s["label"], _spread(sm["wall_s"]),
                     _spread(sm["cpu_s"]), _spread(sm.get("cores_busy", {})),
                     _spread(sm["peak_rss_mb"], "{:.0f}"), _spread(sm["fps"], "{:.1f}")])
    lines += ["### Time and memory", "",
              f"Median (min–max) over the rounds. Cores busy = CPU s ÷ wall s (this machine has "
              f"{res['machine']['cores']}): below that, the system left cores idle.", ""]
    lines += _table(["system", "what", "wall s", "CPU s", "cores busy", "peak RSS MB", "fps"], rows) + [""]

    if res.get("ratios"):
        lines += ["### Engine ÷ peer", "",
                  "Ratios paired round by round, median (min–max); below 1 the engine is better.", ""]
        rows = [[p, _spread(r["wall_s"], "{:.3f}"), _spread(r["cpu_s"], "{:.3f}"),
                 _spread(r["peak_rss_mb"], "{:.3f}"), _psnr_delta(systems, p)]
                for p, r in res["ratios"].items()]
        lines += _table(["peer", "wall", "CPU", "peak memory", "PSNR engine − peer, dB (per rung)"],
                        rows) + [""]
        lines += targets_section(res)
    if res.get("costs"):
        lines += costs_section(res)

    if any(s.get("rungs") for s in ran.values()):
        lines += quality_section(ran)
    stages = engine_stages(ran)
    if stages:
        lines += stages
    failed = [(n, s["error"]) for n, s in systems.items() if s.get("error")]
    if failed:
        lines += ["### Not measured", ""] + [f"- {n}: {e}" for n, e in failed] + [""]
    lines += [f"![fps per rung]({plots.FPS_PLOT})", ""]
    return lines


def _psnr_delta(systems: dict, peer: str) -> str:
    eng = _engine_name(systems)
    if not eng or not systems[eng].get("rungs") or not systems[peer].get("rungs"):
        return "–"
    theirs = {r["name"]: r["psnr"] for r in systems[peer]["rungs"]}
    return " / ".join(f"{round(r['psnr'] - theirs[r['name']], 2) + 0.0:+.2f}" for r in systems[eng]["rungs"]
                      if r["name"] in theirs)


def _engine_name(systems: dict) -> Optional[str]:
    return next((n for n, s in systems.items() if s["is_engine"] and s.get("rounds")), None)


def targets_section(res: dict) -> list[str]:
    """Issue 2's targets, judged on medians (the min–max shows how close the call is)."""
    ratios, systems = res["ratios"], res["systems"]
    rows = []

    def ratio_row(label: str, peer: str, metric: str, limit: float) -> None:
        r = ratios.get(peer, {}).get(metric)
        if r:
            rows.append([label, _spread(r, "{:.3f}"), "yes" if r["median"] <= limit else "**no**"])

    ratio_row("wall ≤ 0.95 × newest ffmpeg CLI", "ffmpeg-new", "wall_s", 0.95)
    ratio_row("wall ≤ 0.80 × PyAV", "pyav", "wall_s", 0.80)
    ratio_row("CPU s ≤ system ffmpeg CLI", "ffmpeg", "cpu_s", 1.0)
    ratio_row("peak memory ≤ system ffmpeg CLI", "ffmpeg", "peak_rss_mb", 1.0)
    eng = _engine_name(systems)
    ref = systems.get("ffmpeg", {})
    if eng and systems[eng].get("rungs") and ref.get("rungs"):
        ref_psnr = {r["name"]: r["psnr"] for r in ref["rungs"]}
        deltas = [r["psnr"] - ref_psnr[r["name"]] for r in systems[eng]["rungs"] if r["name"] in ref_psnr]
        if deltas:
            worst = min(deltas)
            rows.append([f"per-rung PSNR ≥ system ffmpeg CLI − {PSNR_SLACK_DB} dB",
                         f"worst rung {worst:+.3f} dB", "yes" if worst >= -PSNR_SLACK_DB else "**no**"])
    if not rows:
        return []
    return ["### Targets (issue 2)", ""] + _table(["target", "engine", "met"], rows) + [""]


def costs_section(res: dict) -> list[str]:
    """What the engine's optional work costs: the same run with it ÷ the plain engine run."""
    rows = []
    for name, r in res["costs"].items():
        goal = COST_GOALS.get(name)
        met = "–" if goal is None else f"≤ {goal:g}: " + ("yes" if r["cpu_s"]["median"] <= goal else "**no**")
        rows.append([name, res["systems"][name]["adds"], _spread(r["cpu_s"], "{:.3f}"),
                     _spread(r["wall_s"], "{:.3f}"), _spread(r["peak_rss_mb"], "{:.3f}"), met])
    return (["### Cost of the optional work", "",
             "The engine run that also does it ÷ the plain engine run (MP4s only), paired round by round, "
             "median (min–max): 1.150 is 15 % more.", ""]
            + _table(["system", "adds", "CPU", "wall", "peak memory", "CPU goal"], rows) + [""])


def quality_section(ran: dict) -> list[str]:
    names = [n for n, s in ran.items() if s.get("rungs")]
    rung_names = [r["name"] for r in ran[names[0]]["rungs"]]
    by = {n: {r["name"]: r for r in ran[n]["rungs"]} for n in names}
    rows = []
    for rung in rung_names:
        cells = [rung]
        for n in names:
            r = by[n].get(rung)
            cells.append(f"{r['psnr']:.3f} / {r['ssim']:.4f}" if r else "–")
        rows.append(cells)
    lines = ["### Quality per rung", "",
             "PSNR dB (all planes) / SSIM (all planes) against the source, each rendition scaled "
             "back to the source size with bicubic.", ""]
    lines += _table(["rung"] + names, rows) + [""]
    rows = []
    for rung in rung_names:
        cells = [rung]
        for n in names:
            r = by[n].get(rung)
            cells.append(f"{r['width']}×{r['height']}, {r['frames']} fr, {r['video_kbps']:.0f} kbps"
                         if r else "–")
        rows.append(cells)
    lines += ["Renditions: size, frames, video bitrate.", ""] + _table(["rung"] + names, rows) + [""]
    return lines


def engine_stages(ran: dict) -> list[str]:
    eng = _engine_name(ran)
    if not eng:
        return []
    rounds = [r.get("stage_seconds") for r in ran[eng]["rounds"] if r.get("stage_seconds")]
    if not rounds:
        return []
    from framepress.bench.stats import summary
    keys = list(rounds[0])
    row = [_spread(summary(r.get(k, 0.0) for r in rounds), "{:.3f}") for k in keys]
    return (["### Engine stages", "",
             "Seconds per stage as the engine reports them (stages overlap: rungs run in parallel).", ""]
            + _table(keys, [row]) + [""])


def pipeline_section(res: dict) -> list[str]:
    lines = [f"## Pipeline overhead ({res.get('finished_at', '')})", ""]
    if res.get("skipped"):
        return lines + [f"Skipped: {res['skipped']}", ""]
    split = res["split_s"]
    total = sum(split.values()) or 1.0
    rows = [[k, f"{v:.3f}", f"{100 * v / total:.1f} %"] for k, v in split.items()]
    lines += [res.get("description", ""), ""] + _table(["stage", "seconds (median per task)", "share"], rows)
    if res.get("markdown"):          # the pipeline helper's own per-clip table
        lines += ["", res["markdown"].strip()]
    return lines + ["", f"![overhead split]({plots.OVERHEAD_PLOT})", ""]


def scale_section(res: dict) -> list[str]:
    lines = [f"## Throughput against workers ({res.get('finished_at', '')})", ""]
    if res.get("skipped"):
        return lines + [f"Skipped: {res['skipped']}", ""]
    lines += [res.get("description", ""), ""]
    rows = [[str(p["workers"]), str(p["tasks"]), f"{p['wall_s']:.2f}", f"{p['tasks_per_min']:.1f}",
             f"{p['ideal_tasks_per_min']:.1f}", f"{p['efficiency']:.2f}",
             f"{p['cpu_busy_pct']:.0f} %" if "cpu_busy_pct" in p else "–"] for p in res["points"]]
    lines += _table(["workers", "tasks", "wall s", "tasks/min", "ideal", "efficiency", "CPU busy"], rows)
    return lines + ["", f"![throughput against workers]({plots.SCALE_PLOT})", ""]


def gpu_section(res: dict) -> list[str]:
    lines = [f"## GPU ({res.get('finished_at', '')})", ""]
    if res.get("skipped"):
        return lines + [f"Skipped: {res['skipped']}", ""]
    rows = [[n, s["label"], _spread(s["summary"]["wall_s"]), _spread(s["summary"]["cpu_s"]),
             _spread(s["summary"]["fps"], "{:.1f}"), s["rounds"][-1].get("hwaccel_used", "–")]
            for n, s in res["systems"].items() if s.get("rounds")]
    lines += [f"GPU: {', '.join(res['machine']['gpus']) or 'none reported'}", ""]
    lines += _table(["system", "what", "wall s", "CPU s", "fps", "hwaccel used"], rows) + [""]
    if res.get("ratios"):
        rows = [[p, _spread(r["wall_s"], "{:.3f}"), _spread(r["cpu_s"], "{:.3f}")]
                for p, r in res["ratios"].items()]
        lines += ["GPU engine ÷ peer:", ""] + _table(["peer", "wall", "CPU"], rows) + [""]
    ran = {n: s for n, s in res["systems"].items() if s.get("rounds")}
    if any(s.get("rungs") for s in ran.values()):
        lines += quality_section(ran)
    failed = [(n, s["error"]) for n, s in res["systems"].items() if s.get("error")]
    lines += [f"- {n} not measured: {e}" for n, e in failed]
    return lines + [""]


def render(results: dict, command: str = "") -> str:
    lines = ["# framepress benchmark results", ""]
    if command:
        lines += [f"Written by `{command}`. Numbers are from one machine and one session; rerun "
                  "`framepress bench` to measure yours.", ""]
    any_mode = results.get("engine") or next(iter(results.values()), None)
    if any_mode and any_mode.get("machine"):
        lines += machine_section(results.get("engine") or any_mode)
    if results.get("engine"):
        lines += engine_section(results["engine"])
    if results.get("pipeline"):
        lines += pipeline_section(results["pipeline"])
    if results.get("scale"):
        lines += scale_section(results["scale"])
    if results.get("gpu"):
        lines += gpu_section(results["gpu"])
    return "\n".join(lines).rstrip() + "\n"


_SECTION = re.compile(r"^## .*?(?=^## |\Z)", re.S | re.M)


def _heading(section: str) -> str:
    """A section's heading without the date in brackets: what identifies it across runs."""
    return section.split("\n", 1)[0].split(" (", 1)[0].strip()


def write_report(results: dict, out: Path, command: str = "") -> Path:
    """RESULTS.md from `results`, keeping the sections of the old one that these results do not
    write (those of the modes that write their own: `pertitle`, `split`)."""
    out.mkdir(parents=True, exist_ok=True)
    plots.make_plots(results, out)
    path = out / "RESULTS.md"
    text = render(results, command)
    written = {_heading(s) for s in _SECTION.findall(text)}
    old = path.read_text() if path.is_file() else ""
    kept = [s.rstrip() for s in _SECTION.findall(old) if _heading(s) not in written]
    path.write_text("\n\n".join([text.rstrip(), *kept]) + "\n")
    return path


def put_section(out: Path, lines: list[str]) -> Path:
    """`out/RESULTS.md` with the section `lines` (its first line the heading) in place of an
    earlier one of the same heading, or added at the end; the rest of the file as it was."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "RESULTS.md"
    text = path.read_text() if path.is_file() else "# framepress benchmark results\n"
    new = "\n".join(lines).rstrip() + "\n"
    heading = _heading(new)
    old = next((m for m in _SECTION.finditer(text) if _heading(m.group(0)) == heading), None)
    if old:
        text = (text[:old.start()] + new + "\n" + text[old.end():]).rstrip() + "\n"
    else:
        text = text.rstrip() + "\n\n" + new
    path.write_text(text)
    return path
