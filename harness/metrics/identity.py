"""Identity preservation (CSIM): cosine similarity between the face embedding of every
generated frame and that of the source identity.

``identity`` is facenet-pytorch's pipeline: its MTCNN (weights ship in the wheel) finds
and aligns the face, fed a PIL RGB image as facenet-pytorch's examples do, and
InceptionResnetV1 with the canonical VGGFace2 weights embeds it. Both are the package's
own classes; the harness only picks frames and averages. ``identity_dlib`` is an offline
alternative on dlib's 128-d face recognition ResNet, whose weights ship in the
face-recognition-models package. Values from the two backbones are not comparable.

The source identity is ``clip.identity`` when given, else the first reference frame.
Scores are the mean over a clip's frames with a detected face, then the mean over clips."""
from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Optional

import numpy as np
import torch

from ..canonical_weights import MissingWeights, load_state
from ..samples import Clip
from ..errors import BadInput
from ..checkpoints import sha256_of
from .base import Consumes, Result, register_quality_metric

WEIGHTS = "20180402-114759-vggface2.pt"
BACKEND = "facenet-pytorch InceptionResnetV1 vggface2 + MTCNN"
DLIB_BACKEND = "dlib face_recognition_resnet_model_v1 (face-recognition-models) + HOG detector + 5-point alignment"
IMAGE_SIZE = 160

_lock = threading.Lock()
_cache: dict = {}


# ------------------------------------------------------------- facenet-pytorch

def aligner():
    """facenet-pytorch's MTCNN as the identity metric uses it (built once)."""
    with _lock:
        if "mtcnn" not in _cache:
            from facenet_pytorch import MTCNN
            _cache["mtcnn"] = MTCNN(image_size=IMAGE_SIZE, margin=0, post_process=True, device="cpu")
        return _cache["mtcnn"]


def align(frame: np.ndarray) -> Optional[torch.Tensor]:
    """The (3, 160, 160) standardised face crop MTCNN returns for an RGB uint8 frame, or
    None where it finds no face."""
    from PIL import Image
    with torch.no_grad():
        return aligner()(Image.fromarray(np.ascontiguousarray(frame)))


def embedder(state: dict[str, torch.Tensor], sha256: str):
    """InceptionResnetV1 holding ``state`` (its classifier head included, so the
    checkpoint loads strictly), returning L2-normalised 512-d embeddings."""
    from facenet_pytorch import InceptionResnetV1
    with _lock:
        if _cache.get("embedder_sha") != sha256:
            classes = state["logits.weight"].shape[0] if "logits.weight" in state else None
            model = InceptionResnetV1(pretrained=None, classify=classes is not None, num_classes=classes)
            model.load_state_dict(state, strict=True)
            model.classify = False
            _cache["embedder"], _cache["embedder_sha"] = model.eval(), sha256
        return _cache["embedder"]


def embed(model, faces: torch.Tensor, batch_size: int = 32) -> torch.Tensor:
    """(N, 512) embeddings of aligned crops (N, 3, 160, 160)."""
    out = []
    with torch.no_grad():
        for i in range(0, len(faces), batch_size):
            out.append(model(faces[i:i + batch_size]))
    return torch.cat(out, 0) if out else torch.zeros((0, 512))


def source_image(clip: Clip, metric: str) -> tuple[np.ndarray, str]:
    where = clip.source or clip.name
    if clip.identity is not None:
        image = np.asarray(clip.identity)
        if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
            raise BadInput(f"{where}: identity image must be uint8 (H, W, 3) RGB, got "
                           f"{image.dtype} {image.shape}")
        return image, "clip.identity"
    if clip.real is not None:
        return clip.real[0], "first reference frame"
    raise BadInput(f"{where}: {metric} needs the source identity (clip.identity or reference frames)")


def no_face_reason(detector: str, faceless: dict) -> str:
    """Why a face metric has no value: no generated frame of any clip holds a face."""
    names = ", ".join(f"{k} ({v} frames)" for k, v in list(faceless.items())[:5])
    return (f"{detector} finds no face in any generated frame of the {len(faceless)} clips "
            f"({names}{', ...' if len(faceless) > 5 else ''}); the generator's output has no "
            "recognisable face, so there is nothing to compare")


def _aggregate(per_clip: dict, extra_stats: dict, backend: str, settings: dict) -> Result:
    values = list(per_clip.values())
    return Result(float(np.mean(values)), n=len(values),
                  stats={"per_clip": per_clip, "std": float(np.std(values)), **extra_stats},
                  backend=backend, settings=settings)


@register_quality_metric("identity", direction="higher", unit="cosine",
                         consumes=Consumes(reference="none", identity=True),
                         options={"batch_size": 32},
                         description="Identity similarity (CSIM): cosine similarity of facenet-pytorch "
                                     "InceptionResnetV1 (VGGFace2) embeddings of MTCNN-aligned faces "
                                     "to the source identity")
def identity(clips: list[Clip], options: dict) -> Result:
    if not clips:
        raise BadInput("identity: no clips to score")
    batch_size = int(options.get("batch_size", 32))
    try:
        state, prov = load_state(WEIGHTS)
    except MissingWeights as exc:
        return Result(None, retry=True, reason=str(exc), backend=BACKEND)
    model = embedder(state, prov["sha256"])
    per_clip, missed, scored, sources, faceless = {}, {}, {}, {}, {}
    for clip in clips:
        where = clip.source or clip.name
        image, sources[clip.name] = source_image(clip, "identity")
        src_face = align(image)
        if src_face is None:
            raise BadInput(f"{where}: MTCNN finds no face in the source identity image "
                           f"({sources[clip.name]})")
        faces, misses = [], []
        for i, frame in enumerate(clip.fake):
            face = align(frame)
            if face is None:
                misses.append(i)
            else:
                faces.append(face)
        if not faces:   # the generator's output holds no face: a result, not bad input
            faceless[clip.name] = len(clip.fake)
            continue
        emb = embed(model, torch.stack(faces), batch_size)
        ref = embed(model, src_face[None])
        sims = torch.nn.functional.cosine_similarity(emb, ref.expand_as(emb), dim=1)
        per_clip[clip.name] = float(sims.mean())
        missed[clip.name], scored[clip.name] = misses, len(faces)
    if not per_clip:
        return Result(None, reason=no_face_reason("MTCNN", faceless), backend=BACKEND)
    return _aggregate(
        per_clip, {"clips_without_face": faceless, "frames_scored": scored, "frames_without_face": {k: len(v) for k, v in missed.items()},
                   "frames_without_face_index": {k: v[:50] for k, v in missed.items() if v}},
        BACKEND,
        {"aligner": f"facenet_pytorch.MTCNN(image_size={IMAGE_SIZE}, margin=0, post_process=True), "
                    f"PIL RGB input, largest face",
         "embedding": "InceptionResnetV1 vggface2, L2-normalised 512-d",
         "similarity": "cosine to the source identity", "source": sorted(set(sources.values())),
         "aggregate": "mean over frames with a face, then mean over clips",
         "batch_size": batch_size, "weights": prov})


# ------------------------------------------------------------- dlib (offline)

def dlib_model_path(file: str) -> Path:
    """A .dat file that ships in face-recognition-models (located without pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeights(f"the face-recognition-models package (which ships {file}) is not "
                             f"installed; install it with 'pip install face-recognition-models'")
    path = Path(list(spec.submodule_search_locations)[0]) / "models" / file
    if not path.is_file():
        raise MissingWeights(f"{file} is missing from the face-recognition-models package at {path.parent}")
    return path


def dlib_provenance(file: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version
    path = dlib_model_path(file)
    key = ("sha", str(path))
    with _lock:
        if key not in _cache:
            _cache[key] = sha256_of(path)
    try:
        pkg = version("face-recognition-models")
    except PackageNotFoundError:
        pkg = "unknown"
    return {"file": file, "path": str(path), "sha256": _cache[key],
            "check": f"packaged (face-recognition-models {pkg})"}


def dlib_object(kind: str, file: Optional[str] = None):
    """dlib's HOG face detector, or a shape predictor / recognition model from a .dat."""
    try:
        import dlib
    except ImportError as exc:
        raise MissingWeights(f"dlib is not installed ('pip install dlib-bin'): {exc}") from None
    key = (kind, file)
    with _lock:
        if key not in _cache:
            if kind == "detector":
                _cache[key] = dlib.get_frontal_face_detector()
            elif kind == "shape":
                _cache[key] = dlib.shape_predictor(str(dlib_model_path(file)))
            else:
                _cache[key] = dlib.face_recognition_model_v1(str(dlib_model_path(file)))
        return _cache[key]


UPSAMPLE = 1     # face_recognition's default: finds faces down to about 40 px


def best_face(image: np.ndarray):
    """dlib rectangle of the most confident HOG detection, or None. (Confidence, not
    size: HOG false positives on clothing can be as large as the face.)"""
    rects, scores, _ = dlib_object("detector").run(np.ascontiguousarray(image), UPSAMPLE, 0.0)
    return rects[int(np.argmax(scores))] if len(rects) else None


def dlib_descriptor(image: np.ndarray) -> Optional[np.ndarray]:
    """128-d descriptor of the most confident face (5-point alignment, no jitter), or None."""
    image = np.ascontiguousarray(image)
    rect = best_face(image)
    if rect is None:
        return None
    shape = dlib_object("shape", "shape_predictor_5_face_landmarks.dat")(image, rect)
    net = dlib_object("recognition", "dlib_face_recognition_resnet_model_v1.dat")
    return np.asarray(net.compute_face_descriptor(image, shape, 1), dtype=np.float64)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))


@register_quality_metric("identity_dlib", direction="higher", unit="cosine", options={},
                         consumes=Consumes(reference="none", identity=True),
                         description="Identity similarity on dlib's 128-d face recognition ResNet "
                                     "(offline; weights ship in face-recognition-models); not "
                                     "comparable with 'identity'")
def identity_dlib(clips: list[Clip], options: dict) -> Result:
    if not clips:
        raise BadInput("identity_dlib: no clips to score")
    try:
        prov = [dlib_provenance(f) for f in ("shape_predictor_5_face_landmarks.dat",
                                             "dlib_face_recognition_resnet_model_v1.dat")]
        dlib_object("detector")
    except MissingWeights as exc:
        return Result(None, retry=True, reason=str(exc), backend=DLIB_BACKEND)
    per_clip, missed, sources, faceless = {}, {}, {}, {}
    for clip in clips:
        where = clip.source or clip.name
        image, sources[clip.name] = source_image(clip, "identity_dlib")
        ref = dlib_descriptor(image)
        if ref is None:
            raise BadInput(f"{where}: dlib finds no face in the source identity image ({sources[clip.name]})")
        sims, misses = [], []
        for i, frame in enumerate(clip.fake):
            d = dlib_descriptor(frame)
            if d is None:
                misses.append(i)
            else:
                sims.append(_cosine(d, ref))
        if not sims:
            faceless[clip.name] = len(clip.fake)
            continue
        per_clip[clip.name], missed[clip.name] = float(np.mean(sims)), misses
    if not per_clip:
        return Result(None, reason=no_face_reason("dlib", faceless), backend=DLIB_BACKEND)
    return _aggregate(
        per_clip, {"clips_without_face": faceless, "frames_without_face": {k: len(v) for k, v in missed.items()},
                   "frames_without_face_index": {k: v[:50] for k, v in missed.items() if v}},
        DLIB_BACKEND,
        {"detector": f"dlib HOG frontal face detector, upsample {UPSAMPLE}, most confident face",
         "alignment": "shape_predictor_5_face_landmarks", "jitter": "none (num_jitters=1)",
         "similarity": "cosine of 128-d descriptors", "source": sorted(set(sources.values())),
         "aggregate": "mean over frames with a face, then mean over clips", "weights": prov})
