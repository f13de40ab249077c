"""How a face moves in its frames and in its crops: the statistics that make a lip-sync
benchmark hard (a face that is pixel-static in its crop lets a copy of the reference
frame win). Measured with the harness's own detector (facenet-pytorch MTCNN, raw boxes)
and landmarks (dlib's 68 points), so a real clip and a synthetic one are measured alike.
All sizes are relative to the face box, so clips of any resolution compare."""
from __future__ import annotations

from typing import Optional

import numpy as np

STABLE = slice(0, 48)       # jaw, brows, nose, eyes: the points the mouth does not move


def _roll(points: np.ndarray) -> float:
    eye = points[42:48].mean(0) - points[36:42].mean(0)
    return float(np.degrees(np.arctan2(eye[1], eye[0])))


def clip_motion(frames: np.ndarray, crop_boxes: Optional[np.ndarray] = None) -> dict:
    """Per-frame motion statistics of the face in ``frames`` (T, H, W, 3): medians over
    frame pairs of the detected box's centre step and size change, the head roll's range
    and step (eye line of the landmarks), and the landmarks' step and spread in crop
    coordinates. ``crop_boxes`` (T, 4) are the crops a data set stores (the synthetic
    data's tracked boxes); by default the raw detections, as a preprocessing script that
    crops each frame's detection makes them."""
    from ..data.faces import _detect
    from .lmd import landmarks68
    dets = _detect(frames)
    keep = [i for i, d in enumerate(dets) if d is not None]
    boxes = np.array([dets[i][:4] for i in keep])
    side = np.sqrt((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    consecutive = np.diff(keep) == 1
    step = np.linalg.norm(np.diff(centre, axis=0), axis=1) / side[1:]
    dscale = np.abs(np.diff(np.log(side)))
    crops = np.asarray(crop_boxes, float) if crop_boxes is not None else None
    marks, rolls, in_crop = [], [], []
    for i in range(len(frames)):
        pts = landmarks68(frames[i])
        if pts is None:
            marks.append(None)
            continue
        rolls.append((i, _roll(pts)))
        box = crops[i] if crops is not None else (dets[i][:4] if dets[i] is not None else None)
        if box is None:
            marks.append(None)
            continue
        s = np.sqrt((box[2] - box[0]) * (box[3] - box[1]))
        marks.append((pts[STABLE] - box[:2]) / s)
    pairs = [(a, b) for a, b in zip(marks[:-1], marks[1:]) if a is not None and b is not None]
    crop_step = [float(np.linalg.norm(b - a, axis=1).mean()) for a, b in pairs]
    found = np.array([m for m in marks if m is not None])
    roll_v = np.array([r for _, r in rolls])
    roll_steps = [abs(r2 - r1) for (i1, r1), (i2, r2) in zip(rolls[:-1], rolls[1:]) if i2 == i1 + 1]
    pct = lambda v: round(100 * float(np.median(v)), 2) if len(v) else None   # noqa: E731
    return {
        "frames": len(frames), "faces": len(keep), "landmarks": len(found),
        "box_step_pct": pct(step[consecutive]),
        "box_scale_step_pct": pct(dscale[consecutive]),
        "roll_range_deg": round(float(np.percentile(roll_v, 95) - np.percentile(roll_v, 5)), 2) if len(roll_v) else None,
        "roll_step_deg": round(float(np.median(roll_steps)), 3) if roll_steps else None,
        "in_crop_step_pct": pct(crop_step),
        "in_crop_spread_pct": round(100 * float(found.std(axis=0).mean()), 2) if len(found) > 1 else None,
    }
