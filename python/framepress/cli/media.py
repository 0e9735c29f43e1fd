"""`framepress probe` and `framepress transcode`: the engine from the command line."""
from __future__ import annotations

import json
import sys

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn
from rich.table import Table

from framepress import engine
from framepress.cli import cli


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


@cli.command()
@click.argument("input", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def probe(input: str, as_json: bool) -> None:
    """Show a media file's duration and streams."""
    info = engine.probe(input)
    if as_json:
        click.echo(json.dumps(info.to_dict()))
        return
    console = Console()
    console.print(f"[bold]{input}[/]  {info.format}  {info.duration:.3f} s  {info.bitrate / 1000:.0f} kb/s")
    table = Table("#", "type", "codec", "details")
    for s in info.streams:
        if s.type == "video":
            details = f"{s.width}x{s.height} {s.fps:.3f} fps {s.pix_fmt}" + (f" rotation {s.rotation:g}" if s.rotation else "")
        elif s.type == "audio":
            details = f"{s.sample_rate} Hz, {s.channels} ch"
        else:
            details = ""
        table.add_row(str(s.index), s.type, s.codec, details)
    console.print(table)


@cli.command()
@click.argument("input", type=click.Path(dir_okay=False))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False), help="Output directory.")
@click.option("--ladder", default="default", show_default=True, help="Built-in ladder name or ladder JSON file.")
@click.option("--hls", is_flag=True, help="Also write an HLS master playlist with fMP4 segments.")
@click.option("--dash", is_flag=True, help="Also write a DASH manifest over the same segments (implies --hls).")
@click.option("--thumbnails", type=click.FloatRange(min=0), default=0, metavar="SECONDS",
              help="Write a poster, sprite sheets with a tile every SECONDS and their WebVTT (0: none).")
@click.option("--quality", is_flag=True, help="Measure each rendition's PSNR and SSIM against the source.")
@click.option("--hwaccel", type=click.Choice(engine.HWACCEL_MODES), default="auto", show_default=True)
@click.option("--start", type=float, default=None, help="Seconds from the first frame: encode from here (video only).")
@click.option("--end", type=float, default=None, help="Seconds from the first frame: encode the frames before this.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def transcode(input: str, out_dir: str, ladder: str, hls: bool, dash: bool, thumbnails: float, quality: bool,
              hwaccel: str, start: float | None, end: float | None, as_json: bool) -> None:
    """Transcode INPUT to every rung of a ladder (or only the part from --start to --end)."""
    show_bar = not as_json and sys.stderr.isatty()
    if show_bar:
        with Progress(TextColumn("transcoding"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn(),
                      TextColumn("{task.fields[fps]:.0f} fps"), console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("transcode", total=1.0, fps=0.0)
            result = engine.transcode(input, out_dir, ladder, hls=hls, dash=dash, thumbnails=thumbnails,
                                      quality=quality, hwaccel=hwaccel, start=start, end=end,
                                      on_progress=lambda p: bar.update(task, completed=p.fraction, fps=p.fps))
    else:
        result = engine.transcode(input, out_dir, ladder, hls=hls, dash=dash, thumbnails=thumbnails,
                                  quality=quality, hwaccel=hwaccel, start=start, end=end)
    if as_json:
        click.echo(json.dumps(result.to_dict()))
        return
    console = Console()
    columns = ["rung", "size", "frames", "bitrate", "bytes", "encode fps"] + (["PSNR", "SSIM"] if quality else [])
    table = Table(*columns, "path", title=f"{input} → {out_dir} ({result.hwaccel_used}: {result.hwaccel_reason})")
    for r in result.renditions:
        measured = [f"{r.psnr:.2f} dB", f"{r.ssim:.4f}"] if quality else []
        table.add_row(r.name, f"{r.width}x{r.height}", str(r.frames), f"{r.bitrate / 1000:.0f} kb/s",
                      _human_bytes(r.bytes), f"{r.encode_fps:.1f}", *measured, r.path)
    console.print(table)
    if result.hls_master:
        console.print(f"HLS master playlist: {result.hls_master}")
    if result.dash_manifest:
        console.print(f"DASH manifest: {result.dash_manifest}", soft_wrap=True)
    if result.thumbnails:
        console.print(f"thumbnails: {result.thumbnails.poster}, {len(result.thumbnails.sprites)} sprite sheet(s), "
                      f"{result.thumbnails.vtt}", soft_wrap=True)
    a = result.audio
    if a.index >= 0:
        language = f", {a.language}" if a.language else ""
        console.print(f"audio: stream {a.index} ({a.codec}{language}) → AAC {a.channel_layout}, {a.sample_rate} Hz")
    for warning in a.warnings:
        console.print(f"[yellow]warning:[/] {warning}")
    console.print(f"{result.decoded_frames} frames in {result.seconds.get('total', 0):.2f} s")
