"""LMD: landmark distance of the mouth between generated and reference frames.

dlib's 68-point shape predictor (face-recognition-models ships it) places landmarks on
the most confident HOG-detected face of each frame, independently in the generated and the
reference frame. For each frame pair, LMD is the mean over the 20 mouth points (indices
48-67) of the Euclidean distance between corresponding points, divided by the reference
face's inter-ocular distance (outer eye corners, points 36 and 45), so that it does not
depend on the frame resolution. A clip's LMD is the mean over the frame pairs where both
faces are found; the score is the mean over clips. The unnormalised pixel distance is
kept in the stats."""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..canonical_weights import MissingWeights
from ..samples import Clip
from ..errors import BadInput
from .base import Result, register_quality_metric
from .identity import UPSAMPLE, best_face, dlib_object, dlib_provenance

PREDICTOR = "shape_predictor_68_face_landmarks.dat"
MOUTH = slice(48, 68)
EYE_CORNERS = (36, 45)
BACKEND = "dlib 68-point shape predictor (face-recognition-models) + HOG detector"


def landmarks68(image: np.ndarray) -> Optional[np.ndarray]:
    """(68, 2) float landmarks (x, y) of the most confident face, or None."""
    image = np.ascontiguousarray(image)
    rect = best_face(image)
    if rect is None:
        return None
    shape = dlib_object("shape", PREDICTOR)(image, rect)
    return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)


def mouth_distance(fake: np.ndarray, real: np.ndarray) -> tuple[float, float]:
    """(normalised, pixel) mean mouth landmark distance of one pair of (68, 2) sets."""
    px = float(np.linalg.norm(fake[MOUTH] - real[MOUTH], axis=1).mean())
    iod = float(np.linalg.norm(real[EYE_CORNERS[0]] - real[EYE_CORNERS[1]]))
    return px / max(iod, 1e-6), px


@register_quality_metric("lmd", direction="lower", unit="IOD",
                         options={},
                         description="Mouth landmark distance (dlib 68-point, points 48-67) between "
                                     "generated and reference frames, normalised by the reference "
                                     "inter-ocular distance")
def lmd(clips: list[Clip], options: dict) -> Result:
    if not clips:
        raise BadInput("lmd: no clips to score")
    try:
        prov = dlib_provenance(PREDICTOR)
        dlib_object("detector")
    except MissingWeights as exc:
        return Result(None, retry=True, reason=str(exc), backend=BACKEND)
    per_clip, per_clip_px, fake_miss, real_miss, scored, faceless = {}, {}, {}, {}, {}, {}
    for clip in clips:
        where = clip.source or clip.name
        clip.paired("lmd")
        values, pixels, misses_f, misses_r = [], [], [], []
        for i, (f, r) in enumerate(zip(clip.fake, clip.real)):
            lr = landmarks68(r)
            lf = landmarks68(f)
            if lr is None:
                misses_r.append(i)
            if lf is None:
                misses_f.append(i)
            if lr is None or lf is None:
                continue
            v, px = mouth_distance(lf, lr)
            values.append(v)
            pixels.append(px)
        if not values:
            if len(misses_r) == len(clip.real):
                raise BadInput(f"{where}: dlib finds no face in any of its {len(clip.real)} reference frames")
            faceless[clip.name] = len(misses_f)   # the generated frames hold no face: a result
            continue
        per_clip[clip.name], per_clip_px[clip.name] = float(np.mean(values)), float(np.mean(pixels))
        fake_miss[clip.name], real_miss[clip.name], scored[clip.name] = misses_f, misses_r, len(values)
    if not per_clip:
        from .identity import no_face_reason
        return Result(None, reason=no_face_reason("dlib", faceless), backend=BACKEND)
    values = list(per_clip.values())
    return Result(
        float(np.mean(values)), n=len(values),
        stats={"per_clip": per_clip, "per_clip_pixels": per_clip_px, "std": float(np.std(values)),
               "frames_scored": scored, "clips_without_face": faceless,
               "generated_frames_without_face": {k: len(v) for k, v in fake_miss.items()},
               "reference_frames_without_face": {k: len(v) for k, v in real_miss.items()}},
        backend=BACKEND,
        settings={"landmarks": "dlib shape_predictor_68_face_landmarks, mouth points 48-67",
                  "detector": f"dlib HOG frontal face detector, upsample {UPSAMPLE}, most confident face, "
                              f"each frame on its own",
                  "normalisation": "divided by the reference frame's inter-ocular distance "
                                   "(outer eye corners, points 36 and 45)",
                  "aggregate": "mean over mouth points, then over frame pairs with both faces "
                               "found, then over clips",
                  "weights": prov})
