"""The per-title section of RESULTS.md and its plots (one PNG per source: PSNR against bitrate,
both ladders). The section is put in place of an earlier one, leaving the rest of the file as it
was (the other sections come from other runs)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: E402

from framepress.bench.report import put_section  # noqa: E402

HEADING = "## Per-title ladders"


def plot_name(source: str) -> str:
    return f"pertitle_{source}.png"


def plot_source(s: dict, out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for label, key, style in (("fixed (default)", "fixed", "o-"), ("per-title (auto)", "per_title", "s-")):
        rungs = sorted(s[key]["rungs"], key=lambda r: r["bitrate"])
        ax.plot([r["bitrate"] / 1e6 for r in rungs], [r["psnr"] for r in rungs], style, label=label)
        for r in rungs:
            ax.annotate(r["name"], (r["bitrate"] / 1e6, r["psnr"]), textcoords="offset points",
                        xytext=(4, -10), fontsize=7)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("video bitrate, Mb/s (log)")
    ax.set_ylabel("PSNR against the source, dB")
    bd = s["bd_rate_pct"]
    ax.set_title(f"{s['name']} ({s['kind']}): BD-rate "
                 + ("n/a" if bd is None else f"{bd:+.1f} %")
                 + (f", BD-PSNR {s['bd_psnr_db']:+.2f} dB" if s["bd_psnr_db"] is not None else ""))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = out / plot_name(s["name"])
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _kb(bps: int) -> str:
    return f"{bps / 1000:,.0f}"


def _opt(v, fmt: str) -> str:
    return "n/a" if v is None else fmt.format(v)


def section(res: dict, command: str) -> list[str]:
    st = res["settings"]
    lines = [f"{HEADING} ({res['finished_at']})", "",
             f"Written by `{command}`. Sources {st['size']}, {st['fps']} fps, {st['seconds']:g} s, "
             "generated with FFmpeg's lavfi and encoded as mezzanines (x264 CRF 14, at most 20 Mb/s); both "
             f"ladders on the CPU. Fixed: `{st['fixed']}`; per-title: `{st['per_title']}` (the same "
             "rungs, each rung's bitrate chosen from CRF 23 trial encodes, at most the fixed "
             "one's). Quality: PSNR (all planes, FFmpeg's \"average\") of each rendition scaled "
             "back to the source size; VMAF is not measured (this FFmpeg has no libvmaf). BD-rate "
             "and BD-PSNR over each ladder's rungs (`framepress.bench.bdrate`); negative BD-rate: "
             "fewer bits for the same quality. Analysis share: the analysis' wall (CPU) time over "
             "the per-title transcode's.", ""]
    rows = []
    for s in res["sources"]:
        a = s["analysis"]
        rows.append([s["name"], s["kind"], _opt(s["bd_rate_pct"], "{:+.1f} %"),
                     _opt(s["bd_psnr_db"], "{:+.2f} dB"), _kb(s["bits"]["fixed"]),
                     _kb(s["bits"]["per_title"]), f"{a['wall_s']:.2f} s",
                     f"{a['share_wall']:.1%} ({_opt(a['share_cpu'], '{:.1%}')})",
                     "whole source" if a["whole_source"] else f"{len(a['stretches'])} stretches"])
    header = ["source", "kind", "BD-rate", "BD-PSNR", "kb/s fixed (all rungs)", "kb/s per-title",
              "analysis", "share wall (CPU)", "analysed"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows] + [""]
    lines += ["### Bits and PSNR per rung", "",
              "| source | rung | fixed kb/s | fixed PSNR | per-title kb/s | per-title PSNR | why |",
              "|---|---|---|---|---|---|---|"]
    for s in res["sources"]:
        fixed = {r["name"]: r for r in s["fixed"]["rungs"]}
        chosen = {r["name"]: r for r in s["per_title"]["rungs"]}
        why = {c["name"]: c["reason"] for c in s["per_title"]["choice"]["rungs"]}
        for name in list(dict.fromkeys([*fixed, *chosen])):
            cells = [s["name"], name]
            for r in (fixed.get(name), chosen.get(name)):
                cells += [_kb(r["bitrate"]), f"{r['psnr']:.2f}"] if r else ["–", "–"]
            cells.append(why.get(name, "").replace("|", "/"))
            lines.append("| " + " | ".join(cells) + " |")
    sm = res["summary"]
    lines += ["", "### Goals", "", "| goal | measured | met |", "|---|---|---|"]
    measured = [_opt(sm["easy_bd_rate_mean_pct"], "mean BD-rate {:+.1f} %"),
                _opt(sm["hard_bd_psnr_min_db"], "lowest BD-PSNR {:+.2f} dB"),
                f"largest share {_opt(sm['analysis_share_wall_max'], '{:.1%}')} wall "
                f"({_opt(sm['analysis_share_cpu_max'], '{:.1%}')} CPU)"]
    for (goal, met), m in zip(sm["goals"].items(), measured):
        lines.append(f"| {goal} | {m} | {'yes' if met else 'no'} |")
    lines += ["", "Plots: " + ", ".join(f"`{plot_name(s['name'])}`" for s in res["sources"]), ""]
    return lines


def write_section(res: dict, out: Path, command: str) -> Path:
    """Plots under `out`, and the section put into `out/RESULTS.md` in place of an earlier one."""
    out.mkdir(parents=True, exist_ok=True)
    for s in res["sources"]:
        plot_source(s, out)
    return put_section(out, section(res, command))


__all__ = ["write_section", "section", "plot_source"]
