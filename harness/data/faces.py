"""Face boxes for talking-head clips, as Wav2Lip's inference takes them.

Detection uses facenet-pytorch's MTCNN (its weights ship inside the wheel, so this
works offline); the box handling is Wav2Lip's: clip to the image, integer corners, pad
(top 0, bottom 10, left 0, right 0) so the chin is inside, then average each box with
the next four (five-frame window). Boxes are cached per clip under
``$AVATARBENCH_CACHE/faces/`` because detection is the slow part of every re-run."""
from __future__ import annotations

import hashlib
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Optional

import numpy as np

from ..cache import atomic_path
from ..errors import BadInput

PADS = (0, 10, 0, 0)      # top, bottom, left, right (Wav2Lip inference's default)
SMOOTH_WINDOW = 5
BATCH = 16

_DETECTOR = None


def _mtcnn():
    global _DETECTOR
    if _DETECTOR is None:
        from facenet_pytorch import MTCNN
        _DETECTOR = MTCNN(select_largest=True, keep_all=False, device="cpu")
    return _DETECTOR


def _detect(frames: np.ndarray) -> list[Optional[np.ndarray]]:
    """One float box (x1, y1, x2, y2) per frame, the largest face, or None where MTCNN
    finds no face."""
    import torch
    detector = _mtcnn()
    out: list[Optional[np.ndarray]] = []
    with torch.no_grad():
        for start in range(0, len(frames), BATCH):
            boxes, _ = detector.detect(np.ascontiguousarray(frames[start:start + BATCH]))
            for b in boxes:
                out.append(None if b is None or len(b) == 0 else np.asarray(b[0], np.float64))
    return out


def _settings() -> dict:
    try:
        facenet = version("facenet-pytorch")
    except PackageNotFoundError:
        facenet = "unknown"
    return {"detector": "facenet-pytorch MTCNN select_largest", "facenet_pytorch": facenet,
            "pads": list(PADS), "smooth": SMOOTH_WINDOW}


def _cache_file(frames: np.ndarray, cache_key: Optional[str]) -> Path:
    from ..cache import cache_root
    if cache_key is None:
        h = hashlib.sha256()
        h.update(repr((frames.shape, str(frames.dtype), sorted(_settings().items()))).encode())
        h.update(np.ascontiguousarray(frames).tobytes())
        name = h.hexdigest()
    elif re.fullmatch(r"[A-Za-z0-9._-]+", cache_key) and cache_key not in (".", ".."):
        name = cache_key
    else:    # keys such as 'speaker/clip': readable, and distinct from 'speaker_clip'
        safe = re.sub(r"[^A-Za-z0-9._-]+", "_", cache_key).strip("._") or "clip"
        name = f"{safe}-{hashlib.sha256(cache_key.encode()).hexdigest()[:10]}"
    settings = hashlib.sha256(repr(sorted(_settings().items())).encode()).hexdigest()[:10]
    return cache_root() / "faces" / settings / f"{name}.npy"   # new detector settings: new boxes


def face_boxes(frames: np.ndarray, cache_key: Optional[str] = None, name: str = "") -> np.ndarray:
    """(T, 4) int boxes x1, y1, x2, y2 of the face in every frame.

    ``cache_key`` names the clip in the cache (it must change when the frames do); without
    it the cache file is named by the sha256 of the frames and the detector settings.
    ``name`` says which clip in error messages. A frame without a face is bad input."""
    frames = np.asarray(frames)
    label = name or cache_key or "clip"
    if frames.ndim != 4 or frames.shape[-1] != 3 or len(frames) == 0:
        raise BadInput(f"{label}: expected frames (T, H, W, 3), got shape {frames.shape}")
    path = _cache_file(frames, cache_key)
    if path.is_file():
        try:
            cached = np.load(path, allow_pickle=False)
            if cached.shape == (len(frames), 4):
                return cached.astype(np.int64)
        except (OSError, ValueError):
            pass     # unreadable cache entry: detect again and overwrite it
    detections = _detect(frames)
    boxes = smooth_boxes(pad_boxes(detections, frames.shape[1:3], label), SMOOTH_WINDOW)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, boxes)
    return boxes


def pad_boxes(detections, image_hw, label: str = "clip", pads=PADS) -> np.ndarray:
    """Wav2Lip's box handling: corners clipped at 0 and truncated to int, padded by
    (top, bottom, left, right) and clipped to the image."""
    height, width = image_hw
    top, bottom, left, right = pads
    rows = []
    for i, det in enumerate(detections):
        if det is None:
            raise BadInput(f"{label}: no face found in frame {i}; every frame needs a visible face")
        x1, y1, x2, y2 = (int(v) for v in np.clip(np.asarray(det, np.float64)[:4], 0, None))
        rows.append([max(0, x1 - left), max(0, y1 - top), min(width, x2 + right), min(height, y2 + bottom)])
    return np.asarray(rows, dtype=np.int64)


def smooth_boxes(boxes: np.ndarray, window: int = SMOOTH_WINDOW) -> np.ndarray:
    """Each box becomes the mean of itself and the next ``window - 1`` boxes; the last
    ``window - 1`` boxes use the final window. Updated in place on an int array, as
    Wav2Lip does, so means are truncated and the tail windows see already-smoothed boxes.
    (With fewer boxes than ``window`` Wav2Lip's slice wraps around; here the window is
    simply all boxes. Such clips are shorter than one sync window and rejected anyway.)"""
    boxes = np.array(boxes, dtype=np.int64)
    n = len(boxes)
    for i in range(n):
        chunk = boxes[max(0, n - window):] if i + window > n else boxes[i:i + window]
        boxes[i] = np.mean(chunk, axis=0)
    return boxes


def crop_faces(frames: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """(T, size, size, 3) face crops, each box resized with bilinear interpolation
    (OpenCV's INTER_LINEAR, as Wav2Lip resizes its face crops)."""
    import cv2
    frames = np.asarray(frames)
    boxes = np.asarray(boxes)
    if len(boxes) != len(frames):
        raise BadInput(f"crop faces: {len(frames)} frames but {len(boxes)} boxes")
    out = np.empty((len(frames), size, size, 3), np.uint8)
    for i, (frame, (x1, y1, x2, y2)) in enumerate(zip(frames, boxes.astype(int))):
        crop = frame[max(0, y1):y2, max(0, x1):x2]
        if crop.size == 0:
            raise BadInput(f"crop faces: box {x1, y1, x2, y2} of frame {i} is empty")
        out[i] = cv2.resize(crop, (size, size), interpolation=cv2.INTER_LINEAR)
    return out
