"""PSNR and SSIM of each generated frame against its reference frame.

Both equal scikit-image's functions frame by frame, computed for many frames at once:
- PSNR = ``skimage.metrics.peak_signal_noise_ratio(real, fake, data_range=255)``: the
  mean squared error over all pixels and channels of one frame, in float64.
- SSIM = ``skimage.metrics.structural_similarity(real, fake, gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=255, channel_axis=-1)``: an 11x11
  Gaussian window (sigma 1.5, truncated at 3.5 sigma, mirrored borders), K1 0.01, K2
  0.03, population (co)variances, the SSIM map of each channel averaged after cropping
  the 5-pixel border the window cannot see, then the mean of the three channels.
Scores are computed per frame, then averaged over all frames of all clips; per-clip means
are kept in ``stats``.

Option ``region``: ``frame`` (the whole frame), ``face`` (each frame's face box, rows
y1..y2 and columns x1..x2 of the clip's boxes, clipped to the frame) or ``mouth`` (the
lower half of the box, rows y1 + (y2 - y1) // 2 .. y2: what Wav2Lip masks and
regenerates). Both functions then see the cropped arrays, so the scores equal
scikit-image's on those crops."""
from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import ndimage

from ..samples import Clip
from ..errors import BadInput
from .base import Result, register_quality_metric
from .options import Option

DATA_RANGE = 255.0
SIGMA, TRUNCATE, K1, K2 = 1.5, 3.5, 0.01, 0.03
RADIUS = int(TRUNCATE * SIGMA + 0.5)       # 5, as scipy.ndimage sizes the kernel
WINDOW = 2 * RADIUS + 1                     # 11
CHUNK_VALUES = 2_000_000                     # pixel values per vectorised step (bounds memory)
REGIONS = ("frame", "face", "mouth")
REGION_SCHEMA = {"region": Option("choice", choices=REGIONS)}
REGION_NOTES = {"frame": "the whole frame",
                "face": "each frame's face box (clip boxes x1..x2, y1..y2, clipped to the frame)",
                "mouth": "lower half of each frame's face box (rows y1 + (y2 - y1) // 2 .. y2)"}


def _chunk(frames: np.ndarray) -> int:
    """Frames per step: about 16 MB per float64 array, a few arrays alive at once."""
    return max(1, CHUNK_VALUES // max(1, int(np.prod(frames.shape[1:]))))


def psnr_frames(fake: np.ndarray, real: np.ndarray) -> np.ndarray:
    """PSNR in dB of each frame pair (N,); identical frames give inf, as in scikit-image."""
    _check_pair(fake, real, "psnr")
    out = np.empty(len(fake), dtype=np.float64)
    step = _chunk(fake)
    for s in range(0, len(fake), step):
        diff = fake[s:s + step].astype(np.float64) - real[s:s + step].astype(np.float64)
        mse = np.mean(diff ** 2, axis=(1, 2, 3), dtype=np.float64)
        with np.errstate(divide="ignore"):
            out[s:s + len(diff)] = 10 * np.log10(DATA_RANGE ** 2 / mse)
    return out


def _smooth(a: np.ndarray) -> np.ndarray:
    return ndimage.gaussian_filter(a, sigma=SIGMA, truncate=TRUNCATE, mode="reflect", axes=(1, 2))


def ssim_frames(fake: np.ndarray, real: np.ndarray) -> np.ndarray:
    """SSIM of each frame pair (N,)."""
    _check_pair(fake, real, "ssim")
    if min(fake.shape[1:3]) < WINDOW:
        raise BadInput(f"ssim: frames of {fake.shape[1]}x{fake.shape[2]} are smaller than the "
                       f"{WINDOW}x{WINDOW} window")
    c1, c2 = (K1 * DATA_RANGE) ** 2, (K2 * DATA_RANGE) ** 2
    out = np.empty(len(fake), dtype=np.float64)
    step = _chunk(fake)
    for s in range(0, len(fake), step):
        x = real[s:s + step].astype(np.float64)
        y = fake[s:s + step].astype(np.float64)
        ux, uy = _smooth(x), _smooth(y)
        vx = _smooth(x * x) - ux * ux
        vy = _smooth(y * y) - uy * uy
        vxy = _smooth(x * y) - ux * uy
        ssim_map = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux ** 2 + uy ** 2 + c1) * (vx + vy + c2))
        inner = ssim_map[:, RADIUS:-RADIUS, RADIUS:-RADIUS, :]
        per_channel = inner.mean(axis=(1, 2), dtype=np.float64)
        out[s:s + len(x)] = per_channel.mean(axis=1)
    return out


def _check_pair(fake: np.ndarray, real: np.ndarray, metric: str) -> None:
    if fake.shape != real.shape:
        raise BadInput(f"{metric}: generated frames {fake.shape} and reference frames {real.shape} "
                       f"differ in shape")


def region_boxes(clip: Clip, region: str, metric: str) -> np.ndarray:
    """(T, 4) x1, y1, x2, y2 of the scored region in each frame, in frame pixels."""
    t, h, w = clip.fake.shape[:3]
    where = clip.source or clip.name
    if region == "frame":
        return np.tile(np.array([[0, 0, w, h]]), (t, 1))
    if clip.boxes is None:
        raise BadInput(f"{metric}: clip {where} has no face boxes; region={region} scores inside "
                       "each frame's face box")
    given = np.asarray(clip.boxes)
    if given.shape != (t, 4):
        raise BadInput(f"{metric}: clip {where}: face boxes have shape {given.shape}, expected ({t}, 4)")
    boxes = given.astype(np.int64)
    x1, x2 = np.clip(boxes[:, 0], 0, w), np.clip(boxes[:, 2], 0, w)
    y1, y2 = np.clip(boxes[:, 1], 0, h), np.clip(boxes[:, 3], 0, h)
    if region == "mouth":
        y1 = y1 + (y2 - y1) // 2
    empty = np.flatnonzero((x2 <= x1) | (y2 <= y1))
    if len(empty):
        raise BadInput(f"{metric}: clip {where}: frame {empty[0]}'s face box {given[empty[0]].tolist()} "
                       f"leaves no {region} region inside the {w}x{h} frame")
    return np.stack([x1, y1, x2, y2], axis=1)


def region_scores(fake: np.ndarray, real: np.ndarray, boxes: np.ndarray, per_frame: Callable) -> np.ndarray:
    """``per_frame`` on the region of each frame; frames with the same box are scored together."""
    out = np.empty(len(fake), dtype=np.float64)
    groups: dict = {}
    for i, box in enumerate(map(tuple, boxes)):
        groups.setdefault(box, []).append(i)
    for (x1, y1, x2, y2), idx in groups.items():
        out[idx] = per_frame(fake[idx, y1:y2, x1:x2], real[idx, y1:y2, x1:x2])
    return out


def _paired_score(clips: list[Clip], metric: str, per_frame: Callable,
                  region: str = "frame") -> tuple[np.ndarray, dict]:
    if not clips:
        raise BadInput(f"{metric}: no clips to score")
    if region not in REGIONS:
        raise BadInput(f"{metric}: option region={region!r} is not one of {', '.join(REGIONS)}")
    values, per_clip = [], {}
    for c in clips:
        where = c.source or c.name
        c.paired(metric)
        boxes = region_boxes(c, region, metric) if region != "frame" else None
        try:
            v = per_frame(c.fake, c.real) if boxes is None else region_scores(c.fake, c.real, boxes, per_frame)
        except BadInput as exc:
            raise BadInput(f"clip {where}: {exc}") from exc
        per_clip[c.name] = float(v.mean())
        values.append(v)
    return np.concatenate(values), per_clip


@register_quality_metric(
    "psnr", direction="higher", unit="dB", options={"region": "frame"}, schema=REGION_SCHEMA,
    description="PSNR (scikit-image, data range 255) of each generated frame against its "
                "reference frame (or of its face or mouth region), mean over all frames")
def psnr(clips: list[Clip], options: dict) -> Result:
    region = options.get("region", "frame")
    values, per_clip = _paired_score(clips, "psnr", psnr_frames, region)
    stats = {"per_clip": per_clip, "std": float(np.std(values)) if np.isfinite(values).all() else None}
    identical = int(np.isinf(values).sum())
    if identical:
        stats["identical_frames"] = identical
        stats["note"] = f"{identical} frame(s) equal their reference (infinite PSNR), so the mean is inf"
    return Result(float(values.mean()), n=len(values), stats=stats, backend="numpy (= skimage.metrics.peak_signal_noise_ratio)",
                  settings={"region": region, "region_pixels": REGION_NOTES[region], "data_range": DATA_RANGE,
                            "mse": "per frame over all pixels and channels (of the region), float64",
                            "aggregate": "PSNR per frame, then the mean over all frames of all clips"})


@register_quality_metric(
    "ssim", direction="higher", unit="SSIM", options={"region": "frame"}, schema=REGION_SCHEMA,
    description="SSIM (Gaussian 11x11 window, sigma 1.5; = scikit-image structural_similarity) of "
                "each generated frame against its reference frame (or of its face or mouth region), "
                "mean over all frames")
def ssim(clips: list[Clip], options: dict) -> Result:
    region = options.get("region", "frame")
    values, per_clip = _paired_score(clips, "ssim", ssim_frames, region)
    return Result(float(values.mean()), n=len(values), stats={"per_clip": per_clip, "std": float(np.std(values))},
                  backend="scipy.ndimage (= skimage.metrics.structural_similarity)",
                  settings={"region": region, "region_pixels": REGION_NOTES[region],
                            "window": f"gaussian {WINDOW}x{WINDOW}, sigma {SIGMA}, truncate {TRUNCATE}, mode reflect",
                            "K1": K1, "K2": K2, "use_sample_covariance": False, "data_range": DATA_RANGE,
                            "channels": "per channel, then the mean", "border": f"{RADIUS} pixels cropped",
                            "aggregate": "SSIM per frame, then the mean over all frames of all clips"})
