"""LSE-D and LSE-C: lip-sync error distance and confidence, as syncnet_python measures them.

For each clip, SyncNet embeds every 5-frame window of 224x224 face crops and every
20-column MFCC window (4 columns per video frame); the mean distance between the two
streams is taken at audio offsets -vshift..vshift. LSE-D is the smallest mean distance,
LSE-C the median minus that minimum, and the offset is where the minimum lies. This is
``SyncNetInstance.evaluate`` step for step (including its ``min_length - 5`` windows);
only the forward passes are batched. Scores are per clip, then the mean over clips,
as Wav2Lip's evaluation scripts report them.

Option ``evaluator``: the path of a harness-trained SyncNet_color checkpoint scores with that
network instead (``lse_expert``); such values are recorded as not comparable with published
LSE."""
from __future__ import annotations

import hashlib
import warnings
from collections import OrderedDict

import numpy as np
import torch

from ..canonical_weights import MissingWeights, load_state
from ..samples import AUDIO_RATE, Clip
from ..errors import BadInput
from .base import Consumes, Result, register_quality_metric
from .options import Option
from .sync_offsets import (FRAMES_PER_WINDOW, SAMPLES_PER_FRAME, SyncScore, TooShort,  # noqa: F401
                           length_note, offset_distances, offset_score, window_count)
from .syncnet_model import build

WEIGHTS = "syncnet_v2.model"
MFCC_PER_FRAME = 4
MFCC_PER_WINDOW = 20
CROP = 224
CROP_SCALE = 0.40
SMOOTH_KERNEL = 13
PAD_VALUE = 110
FPS = 25.0
BACKEND = "syncnet_python SyncNet (S) syncnet_v2"

# evaluator: "" for syncnet_python's SyncNet, else a checkpoint of a harness-trained
# SyncNet_color (lse_expert; its values are not comparable with published LSE)
OPTIONS = {"vshift": 15, "batch_size": 20, "device": "cpu", "evaluator": ""}
# offsets -vshift..vshift; each one compares every window of a clip
SCHEMA = {"vshift": Option("int", 1, 100)}


# ----------------------------------------------------------------- face crops

def syncnet_crops(frames: np.ndarray, boxes: np.ndarray, crop_scale: float = CROP_SCALE) -> np.ndarray:
    """(T, 224, 224, 3) crops with syncnet_python's geometry: box centres and half-sizes
    median-filtered over time (kernel 13, zero-padded ends as scipy's medfilt does), the
    frame padded with grey 110, rows from cy - s to cy + s(1 + 2cs), columns
    cx +- s(1 + cs), resized bilinearly. Channel order is kept."""
    import cv2
    from scipy.signal import medfilt
    boxes = np.asarray(boxes, dtype=np.float64)
    half = np.maximum(boxes[:, 3] - boxes[:, 1], boxes[:, 2] - boxes[:, 0]) / 2
    cx = (boxes[:, 0] + boxes[:, 2]) / 2
    cy = (boxes[:, 1] + boxes[:, 3]) / 2
    # the reference runs on tracks of 50+ frames; for very short clips a kernel of 13
    # would be mostly zero padding, so it shrinks to the longest odd length that fits
    kernel = SMOOTH_KERNEL if len(boxes) >= 7 else max(1, len(boxes) - (1 - len(boxes) % 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)    # "zero-padded": intended, as in the reference
        half, cx, cy = (medfilt(v, kernel) for v in (half, cx, cy))
    out = np.empty((len(frames), CROP, CROP, 3), np.uint8)
    for i, frame in enumerate(frames):
        s = half[i]
        pad = int(s * (1 + 2 * crop_scale))
        padded = np.pad(frame, ((pad, pad), (pad, pad), (0, 0)), constant_values=PAD_VALUE)
        my, mx = cy[i] + pad, cx[i] + pad
        y1, y2 = int(my - s), int(my + s * (1 + 2 * crop_scale))
        x1, x2 = int(mx - s * (1 + crop_scale)), int(mx + s * (1 + crop_scale))
        region = padded[max(y1, 0):y2, max(x1, 0):x2]
        if region.size == 0:
            raise BadInput(f"frame {i}: face box {boxes[i].tolist()} gives an empty syncnet crop")
        out[i] = cv2.resize(region, (CROP, CROP))
    return out


def clip_boxes(clip: Clip) -> tuple[np.ndarray, str]:
    """(T, 4) face boxes of the generated frames: the clip's, else detected; and their source."""
    where = clip.source or clip.name
    if clip.boxes is not None:
        boxes, how = np.asarray(clip.boxes), "clip boxes"
    else:
        from ..data.faces import face_boxes
        boxes, how = face_boxes(clip.fake, name=where), "harness.data.faces.face_boxes"
    if boxes.shape != (len(clip.fake), 4):
        raise BadInput(f"{where}: face boxes have shape {boxes.shape}, expected ({len(clip.fake)}, 4)")
    return boxes, how


def clip_faces(clip: Clip) -> tuple[np.ndarray, str]:
    """RGB 224x224 face crops of the generated frames and where they came from."""
    where = clip.source or clip.name
    faces = clip.extras.get("faces224") if clip.extras else None
    if faces is not None:
        faces = np.asarray(faces)
        if faces.ndim != 4 or faces.shape[1:] != (CROP, CROP, 3) or faces.dtype != np.uint8:
            raise BadInput(f"{where}: extras['faces224'] must be uint8 (T, 224, 224, 3), "
                           f"got {faces.dtype} {faces.shape}")
        return faces, "extras faces224"
    boxes, how = clip_boxes(clip)
    try:
        return syncnet_crops(clip.fake, boxes), how + " + syncnet_python crop"
    except BadInput as exc:
        raise BadInput(f"{where}: {exc}") from None


# ----------------------------------------------------------------- scoring

def _windows_forward(fn, source: torch.Tensor, starts: range, width: int, step: int,
                     batch_size: int, device: str) -> torch.Tensor:
    """Embeddings of ``source[..., s*step : s*step + width]`` along its time axis (2 for
    video (1, 3, T, H, W), 3 for MFCC (1, 1, 13, T)), ``batch_size`` windows per pass."""
    axis = 2 if source.dim() == 5 else 3
    feats = []
    for b in range(0, len(starts), batch_size):
        chunk = [source.narrow(axis, s * step, width) for s in starts[b:b + batch_size]]
        feats.append(fn(torch.cat(chunk, 0).to(device)).cpu())
    return torch.cat(feats, 0)


def sync_score(model, faces_bgr: np.ndarray, mfcc: np.ndarray, n_audio_samples: int,
               vshift: int, batch_size: int, device: str, where: str) -> SyncScore:
    """syncnet_python's evaluate on in-memory crops (BGR, 0..255) and MFCC (13, M)."""
    min_length, last = window_count(len(faces_bgr), n_audio_samples, where)
    video = torch.from_numpy(np.ascontiguousarray(faces_bgr).astype(np.float32))
    video = video.permute(3, 0, 1, 2).unsqueeze(0)                # (1, 3, T, H, W)
    audio = torch.from_numpy(np.asarray(mfcc, dtype=np.float64)).float()[None, None]
    starts = range(last)
    with torch.no_grad():
        vf = _windows_forward(model.forward_lip, video, starts, FRAMES_PER_WINDOW, 1, batch_size, device)
        af = _windows_forward(model.forward_aud, audio, starts, MFCC_PER_WINDOW, MFCC_PER_FRAME,
                              batch_size, device)
    offset, minval, conf = offset_score(vf, af, vshift)
    return SyncScore(offset=offset, lse_d=minval, lse_c=conf, windows=last,
                     note=length_note(len(faces_bgr), n_audio_samples, min_length, FPS))


# ----------------------------------------------------------------- model and cache

_MODELS: dict = {}
_SCORES: "OrderedDict[str, tuple[SyncScore, str]]" = OrderedDict()
_MAX_CACHED = 4096


def _model(state: dict, sha256: str, device: str):
    key = (sha256, device)
    if key not in _MODELS:
        _MODELS.clear()
        _MODELS[key] = build(state, device)
    return _MODELS[key]


def _clip_key(clip: Clip, vshift: int, sha256: str) -> str:
    """Content key, so that lse_d and lse_c of the same clips share one SyncNet pass."""
    h = hashlib.sha256(repr((clip.fake.shape, vshift, sha256, clip.fps)).encode())
    h.update(np.ascontiguousarray(clip.fake).tobytes())
    for part in (clip.boxes, clip.extras.get("faces224") if clip.extras else None, clip.audio):
        h.update(b"|" if part is None else np.ascontiguousarray(part).tobytes())
    return h.hexdigest()


def _check_clip(clip: Clip) -> None:
    where = clip.source or clip.name
    if clip.audio is None:
        raise BadInput(f"{where}: no audio; LSE needs the driving audio of the clip")
    if abs(clip.fps - FPS) > 1e-6:
        raise BadInput(f"{where}: {clip.fps} fps; syncnet_python's protocol needs 25 fps video "
                       f"(4 MFCC columns per frame); resample the video to 25 fps first")


def _cached(clip: Clip, vshift: int, sha256: str, compute) -> tuple[SyncScore, str]:
    key = _clip_key(clip, vshift, sha256)
    if key not in _SCORES:
        _SCORES[key] = compute()
        while len(_SCORES) > _MAX_CACHED:
            _SCORES.popitem(last=False)
    return _SCORES[key]


def score_clip(clip: Clip, model, options: dict, sha256: str) -> tuple[SyncScore, str]:
    from ..data.audio import syncnet_mfcc
    _check_clip(clip)

    def compute():
        faces, how = clip_faces(clip)
        audio = np.asarray(clip.audio, dtype=np.float32).reshape(-1)
        mfcc = syncnet_mfcc(audio, AUDIO_RATE)
        return sync_score(model, faces[..., ::-1], mfcc, len(audio), options["vshift"],
                          options["batch_size"], options["device"], clip.source or clip.name), how
    return _cached(clip, options["vshift"], sha256, compute)


def expert_score_clip(clip: Clip, model, options: dict, sha256: str) -> tuple[SyncScore, str]:
    """A clip's LSE with a harness-trained SyncNet_color (``lse_expert``)."""
    from .lse_expert import expert_score
    _check_clip(clip)

    def compute():
        boxes, how = clip_boxes(clip)
        audio = np.asarray(clip.audio, dtype=np.float32).reshape(-1)
        return expert_score(model, clip.fake, boxes, audio, options["vshift"], options["batch_size"],
                            options["device"], clip.source or clip.name), how + " + 96x96 protocol crop"
    return _cached(clip, options["vshift"], "expert:" + sha256, compute)


def _check_options(options: dict) -> dict:
    opts = {**OPTIONS, **options}
    for name, least in (("vshift", 0), ("batch_size", 1)):
        value = opts[name]
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise BadInput(f"LSE option {name} must be an integer >= {least}, got {value!r}")
    if not isinstance(opts["evaluator"], str):
        raise BadInput(f"LSE option evaluator must be a checkpoint path or empty, got {opts['evaluator']!r}")
    return opts


def _score(clips: list[Clip], options: dict, which: str) -> Result:
    opts = _check_options(options)
    if not clips:
        raise BadInput(f"{which}: no clips to score")
    if opts["evaluator"]:
        from . import lse_expert
        model, prov = lse_expert.load_evaluator(opts["evaluator"], opts["device"])
        score = lambda clip: expert_score_clip(clip, model, opts, prov["sha256"])
        backend = f"harness-trained SyncNet_color evaluator, file sha256 {prov['sha256']}"
        settings = lse_expert.settings(opts, prov)
    else:
        try:
            state, prov = load_state(WEIGHTS)
        except MissingWeights as exc:
            return Result(None, retry=True, reason=str(exc), backend=BACKEND)
        model = _model(state, prov["sha256"], opts["device"])
        score = lambda clip: score_clip(clip, model, opts, prov["sha256"])
        backend = BACKEND
        settings = {"vshift": opts["vshift"], "batch_size": opts["batch_size"], "crop": CROP,
                    "crop_scale": CROP_SCALE, "box_smoothing": f"median filter {SMOOTH_KERNEL} (shorter for clips under 7 frames)",
                    "faces_note": "boxes from the generation protocol (or MTCNN), not syncnet_python's "
                                  "S3FD tracks; compare with the ground-truth row of the same run",
                    "color": "BGR 0..255 (cv2.imread order)",
                    "mfcc": "python_speech_features.mfcc defaults on int16 samples, 16 kHz",
                    "window": f"{FRAMES_PER_WINDOW} frames / {MFCC_PER_WINDOW} MFCC columns",
                    "aggregate": "mean over clips of per-clip scores", "weights": prov}
    per_clip, offsets, windows, crops, notes, short = {}, {}, {}, set(), [], []
    for clip in clips:
        try:
            s, how = score(clip)
        except TooShort as exc:
            short.append(str(exc))
            continue
        per_clip[clip.name] = getattr(s, which)
        offsets[clip.name] = s.offset
        windows[clip.name] = s.windows
        crops.add(how)
        if s.note:
            notes.append(f"{clip.source or clip.name}: {s.note}")
    if not per_clip:
        return Result(None, reason="no clip is long enough for lip-sync scoring: " + "; ".join(short[:3]),
                      backend=backend)
    values = list(per_clip.values())
    return Result(
        float(np.mean(values)), n=len(values),
        stats={"per_clip": per_clip, "offset": offsets, "windows": windows,
               "std": float(np.std(values)), **({"notes": notes} if notes else {}),
               **({"clips_too_short": short} if short else {})},
        backend=backend, settings={**settings, "faces_from": sorted(crops)})


LSE_CONSUMES = Consumes(reference="none", audio=True)   # a clip and its driving audio


@register_quality_metric("lse_d", consumes=LSE_CONSUMES, direction="lower", unit="distance", options=dict(OPTIONS), schema=SCHEMA,
                         description="Lip-sync error distance (syncnet_python min mean distance), "
                                     "mean over clips")
def lse_d(clips: list[Clip], options: dict) -> Result:
    return _score(clips, options, "lse_d")


@register_quality_metric("lse_c", consumes=LSE_CONSUMES, direction="higher", unit="confidence", options=dict(OPTIONS), schema=SCHEMA,
                         description="Lip-sync error confidence (syncnet_python median minus min "
                                     "distance), mean over clips")
def lse_c(clips: list[Clip], options: dict) -> Result:
    return _score(clips, options, "lse_c")
