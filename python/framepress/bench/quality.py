"""PSNR and SSIM of a rendition against its source, computed the way FFmpeg's filters do.

Each rendition frame is scaled back to the source size with bicubic (swscale through PyAV, the
same scaler as FFmpeg's `scale=W:H:flags=bicubic`), then compared plane by plane on 8-bit YUV:

- PSNR as `psnr` reports "average": per-frame MSE of each plane, weighted by plane size, averaged
  over frames, then 10·log10(255²/MSE) (an aggregate MSE, not a mean of per-frame PSNRs).
- SSIM as `ssim` reports "All": sums over 4×4 blocks, 8×8 windows stepping by 4 (x264's
  approximation), per plane the mean over windows, planes weighted by size, mean over frames.

Frames are paired in presentation order; the pair stops at the shorter stream, like the filters.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterator

import av
import numpy as np

PIXEL_MAX = 255
SSIM_C1 = int(0.01 * 0.01 * PIXEL_MAX * PIXEL_MAX * 64 + 0.5)
SSIM_C2 = int(0.03 * 0.03 * PIXEL_MAX * PIXEL_MAX * 64 * 63 + 0.5)
PLANES = "YUV"


@dataclass
class Quality:
    psnr: float       # dB, all planes (FFmpeg's "average")
    psnr_y: float     # dB, luma only
    ssim: float       # all planes (FFmpeg's "All")
    ssim_y: float
    frames: int

    def to_dict(self) -> dict:
        return asdict(self)


def _planes(frame: av.VideoFrame) -> list[np.ndarray]:
    out = []
    for plane in frame.planes:
        rows = np.frombuffer(plane, np.uint8).reshape(-1, plane.line_size)
        out.append(rows[: plane.height, : plane.width])
    return out


def _scaler(stream: av.video.stream.VideoStream, width: int, height: int) -> av.filter.Graph:
    """A libavfilter `scale` (bicubic) to width×height yuv420p: the very filter the CLI uses,
    chroma siting included, so figures agree with `ffmpeg -lavfi scale,psnr`."""
    graph = av.filter.Graph()
    chain = [graph.add_buffer(template=stream),
             graph.add("scale", f"{width}:{height}:flags=bicubic"),
             graph.add("format", "yuv420p"),
             graph.add("buffersink")]
    for a, b in zip(chain, chain[1:]):
        a.link_to(b)
    graph.configure()
    return graph


def _frames(path: str, width: int, height: int) -> Iterator[list[np.ndarray]]:
    """8-bit yuv420p planes of every frame, scaled to width×height with bicubic when needed."""
    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        graph = None
        for frame in container.decode(stream):
            if frame.width == width and frame.height == height and frame.format.name == "yuv420p":
                yield _planes(frame)
                continue
            graph = graph or _scaler(stream, width, height)
            graph.push(frame)
            yield _planes(graph.pull())


def plane_mse(a: np.ndarray, b: np.ndarray) -> float:
    d = a.astype(np.int32) - b.astype(np.int32)
    return float(np.einsum("ij,ij->", d, d, dtype=np.int64)) / d.size


def plane_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of one plane over 8×8 windows at a 4-pixel step (FFmpeg's ssim_plane)."""
    h4, w4 = a.shape[0] // 4, a.shape[1] // 4
    if h4 < 2 or w4 < 2:
        return 1.0 if np.array_equal(a, b) else 0.0
    a = a[: h4 * 4, : w4 * 4].astype(np.int32)
    b = b[: h4 * 4, : w4 * 4].astype(np.int32)

    def blocks(x: np.ndarray) -> np.ndarray:        # sums over 4×4 blocks (int32 cannot overflow)
        rows = x[0::4] + x[1::4] + x[2::4] + x[3::4]
        return rows[:, 0::4] + rows[:, 1::4] + rows[:, 2::4] + rows[:, 3::4]

    def windows(x: np.ndarray) -> np.ndarray:       # 2×2 neighbouring blocks = one 8×8 window
        return x[:-1, :-1] + x[1:, :-1] + x[:-1, 1:] + x[1:, 1:]

    s1, s2 = windows(blocks(a)), windows(blocks(b))
    ss, s12 = windows(blocks(a * a + b * b)), windows(blocks(a * b))
    variance = ss * 64 - s1 * s1 - s2 * s2
    covariance = s12 * 64 - s1 * s2
    # Every integer term stays below 2**31 for 8-bit input, as in FFmpeg's int version.
    num = (2 * s1 * s2 + SSIM_C1).astype(np.float64) * (2 * covariance + SSIM_C2)
    den = (s1 * s1 + s2 * s2 + SSIM_C1).astype(np.float64) * (variance + SSIM_C2)
    return float((num / den).mean())


def _db(mse: float) -> float:
    return math.inf if mse <= 0 else 10.0 * math.log10(PIXEL_MAX * PIXEL_MAX / mse)


def psnr(rendition: str, source: str) -> float:
    """PSNR alone (FFmpeg's "average", all planes) of `rendition` against `source` at its size:
    what `compare` gives, without the cost of SSIM."""
    with av.open(source) as c:
        width, height = c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height
    mse_all = 0.0
    frames = 0
    for dist, ref in zip(_frames(rendition, width, height), _frames(source, width, height)):
        sizes = [p.size for p in ref]
        mse_all += sum(plane_mse(d, r) * s for d, r, s in zip(dist, ref, sizes)) / sum(sizes)
        frames += 1
    if not frames:
        raise ValueError(f"no frames to compare in {rendition!r}")
    return _db(mse_all / frames)


def compare(rendition: str, source: str) -> Quality:
    """PSNR and SSIM of `rendition` (any size) against `source` at the source's size."""
    with av.open(source) as c:
        width, height = c.streams.video[0].codec_context.width, c.streams.video[0].codec_context.height
    mse_sum = [0.0, 0.0, 0.0]
    ssim_sum = [0.0, 0.0, 0.0]
    frames = 0
    weights = None
    for dist, ref in zip(_frames(rendition, width, height), _frames(source, width, height)):
        if weights is None:
            sizes = [p.size for p in ref]
            weights = [s / sum(sizes) for s in sizes]
        for i in range(3):
            mse_sum[i] += plane_mse(dist[i], ref[i])
            ssim_sum[i] += plane_ssim(dist[i], ref[i])
        frames += 1
    if not frames:
        raise ValueError(f"no frames to compare in {rendition!r}")
    mse_all = sum(w * m for w, m in zip(weights, mse_sum)) / frames
    return Quality(psnr=_db(mse_all), psnr_y=_db(mse_sum[0] / frames),
                   ssim=sum(w * s for w, s in zip(weights, ssim_sum)) / frames,
                   ssim_y=ssim_sum[0] / frames, frames=frames)
