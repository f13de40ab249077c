"""The lip-sync generation protocol: a variant lip-syncs each (video, audio) item of a
suite's data the way Wav2Lip's ``inference.py`` does, and the result is kept as a video.

Per item: face boxes (detected, padded 0/10/0/0 and smoothed over 5 frames); mel windows of
16 columns starting at ``int(i * 80 / fps)``, the last window taken from the end of the
spectrogram; video frames reused cyclically if the audio is longer; each face resized to
96x96 (BGR, as the model was trained), its lower half zeroed and stacked with an unmasked
reference face; the prediction scaled to 0..255, truncated to uint8, resized back to the box
and pasted into the frame. The generated video is written with the driving audio and cached
under ``$AVATARBENCH_CACHE/generated`` keyed by the variant (name, precision, weights or
seed and values, recipe), the reference rule when it is not the default, and the item's data
hash. Metrics read the frames back from that video, so they score what a viewer would see.
The ground-truth variant returns the unmasked face unchanged, so ground truth goes through
the same resize, paste and encode.

The reference face (the suite's ``data.reference``): ``frame``, as ``inference.py``, is the
target frame itself, unmasked; for an own-audio reconstruction that shows the model the
answer. ``first`` is the clip's first frame's face for every generated frame, so the mouth
must come from the audio. A ground-truth variant is always given the target frame as its
reference (under ``first`` too), so its row stays the real frames.

Where this differs from Wav2Lip's scripts (and is recorded as such): faces are found by
facenet-pytorch's MTCNN (largest face), not S3FD; a clip's audio and video are first
trimmed to the shorter of the two (``data.datasets.load_item``), so frames are reused only
for the window past the end; every layout uses ``inference.py``'s settings, including pair
lists, for which Wav2Lip's evaluation script pads boxes by 0 and takes no end window."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from tqdm import tqdm

from ...errors import BadInput
from ...samples import AUDIO_RATE, FPS, Clip
from .dataspec import REFERENCES, DataSpec, items_of

FACE_SIZE = 96
MEL_STEP = 16
PROTOCOL_VERSION = 1


def mel_chunk_count(n_columns: int, fps: float = FPS) -> int:
    """How many windows Wav2Lip's inference takes from a spectrogram of ``n_columns``."""
    step = 80.0 / fps
    full = 0
    while int(full * step) + MEL_STEP <= n_columns:
        full += 1
    return full + 1   # the loop ends with one window taken from the end


def _boxes_for(item, frames: np.ndarray, digest: str) -> np.ndarray:
    if Path(item.video).is_dir():   # Wav2Lip-preprocessed frames are face crops already
        h, w = frames.shape[1:3]
        return np.tile(np.array([[0, 0, w, h]]), (len(frames), 1))
    from ...data.faces import face_boxes
    return face_boxes(frames, cache_key=digest, name=item.name)


def _item_digest(item) -> str:
    from ...checkpoints import sha256_of
    h = hashlib.sha256()
    for p in (Path(item.video), Path(item.audio)):
        if p.is_dir():
            for f in sorted(p.iterdir()):
                if f.is_file():
                    h.update(f.name.encode() + sha256_of(f).encode())
        elif p.is_file():
            h.update(sha256_of(p).encode())
    return h.hexdigest()


def generate(model: torch.nn.Module, frames: np.ndarray, boxes: np.ndarray, mel: np.ndarray,
             dtype: torch.dtype = torch.float32, device: str = "cpu", batch_size: int = 32,
             fps: float = FPS, what: str = "the model",
             reference: str = "frame") -> tuple[np.ndarray, np.ndarray]:
    """Lip-sync ``frames`` (RGB uint8) to ``mel``; returns (generated frames, the source
    frames they were made from), both ``len(mel windows)`` long. ``reference`` is what the
    unmasked half of the face input shows: ``frame`` the target frame, ``first`` the first
    frame's face (``dataspec.REFERENCES``)."""
    import cv2
    from ...data.audio import mel_windows

    if reference not in REFERENCES:
        raise BadInput(f"generation: reference {reference!r} is not one of {', '.join(REFERENCES)}")
    n = mel_chunk_count(mel.shape[1], fps)
    windows = mel_windows(mel, n, fps)
    src = np.stack([frames[i % len(frames)] for i in range(n)])
    out = src.copy()
    first = face_crop(src[0], boxes[0]) if reference == "first" else None
    for start in range(0, n, batch_size):
        idx = range(start, min(n, start + batch_size))
        faces = np.asarray([face_crop(src[i], boxes[i % len(boxes)]) for i in idx])
        masked = faces.copy()
        masked[:, FACE_SIZE // 2:] = 0
        shown = faces if first is None else np.broadcast_to(first, faces.shape)
        face_in = np.concatenate((masked, shown), axis=3) / 255.0
        face_t = torch.from_numpy(face_in.transpose(0, 3, 1, 2)).to(device=device, dtype=dtype)
        mel_t = torch.from_numpy(windows[list(idx)][:, None]).to(device=device, dtype=dtype)
        with torch.inference_mode():
            pred = model(mel_t, face_t)
        want = (len(idx), 3, FACE_SIZE, FACE_SIZE)
        if not isinstance(pred, torch.Tensor) or tuple(pred.shape) != want:
            got = tuple(pred.shape) if isinstance(pred, torch.Tensor) else type(pred).__name__
            raise BadInput(f"{what} returned {got} for {len(idx)} frames; a lip-sync generator "
                           f"returns (N, 3, {FACE_SIZE}, {FACE_SIZE}) faces, i.e. (3, 96, 96) per frame")
        pred = pred.float().cpu().numpy()
        if not np.isfinite(pred).all():
            raise BadInput(f"the model produced NaN or infinite values (frames {idx.start}-{idx.stop - 1})")
        pred = pred.transpose(0, 2, 3, 1) * 255.0
        for j, i in enumerate(idx):
            x1, y1, x2, y2 = (int(v) for v in boxes[i % len(boxes)])
            patch = cv2.resize(pred[j].astype(np.uint8), (x2 - x1, y2 - y1))
            out[i, y1:y2, x1:x2] = cv2.cvtColor(patch, cv2.COLOR_BGR2RGB)
    return out, src


def face_crop(frame: np.ndarray, box) -> np.ndarray:
    """The box region of an RGB frame as a 96x96 BGR face (uint8), as generators see it."""
    import cv2
    x1, y1, x2, y2 = (int(v) for v in box)
    return cv2.resize(cv2.cvtColor(frame[y1:y2, x1:x2], cv2.COLOR_RGB2BGR), (FACE_SIZE, FACE_SIZE))


def reference_rule(cell) -> str:
    """The reference rule this cell's variant is generated with: the suite's, except that a
    ground-truth variant always sees the target frame (so it reproduces the real frames)."""
    spec = cell.data
    rule = spec.reference if spec is not None else "frame"
    return "frame" if cell.variant.ground_truth else rule


def variant_key(cell) -> dict:
    """What identifies the generator: a changed weight, seed or recipe is a new key."""
    from ...cache import state_sha256
    v = cell.variant
    cell.model()
    random_init = not cell.weights_sha256 and v.recipe is None
    key = {"variant": v.name, "precision": v.precision, "weights_sha256": cell.weights_sha256,
           "seed": cell.seed if not cell.weights_sha256 else None,
           # a random-init model is identified by its values (a changed plugin or seed)
           "state_sha256": state_sha256(cell.float_model()) if random_init else None,
           "recipe": (cell.provenance.get("quantize") or {}).get("recipe_hash"),
           "ground_truth": v.ground_truth, "protocol": PROTOCOL_VERSION}
    if reference_rule(cell) != "frame":   # the default adds nothing: earlier videos stay valid
        key["reference"] = reference_rule(cell)
    return key


def _read_cached(video: Path) -> Optional[np.ndarray]:
    """The frames of a cached video, or None when there is none or it is damaged (made again)."""
    from ...data.video import read_video
    if not video.is_file():
        return None
    try:
        return read_video(video, FPS)[0]
    except BadInput:
        return None


def clips_for_cell(cell) -> tuple[list[Clip], dict]:
    """Generate (or read from the cache) the variant's videos on the suite's data;
    returns the clips and how they were made."""
    spec: Optional[DataSpec] = cell.data
    if spec is None:
        raise BadInput("metric needs generated video, but the suite has no data section")
    from ...cache import cache_root, write_atomic
    from ...data.audio import wav2lip_mel
    from ...data.video import read_video, write_video
    from .datasets import load_item

    key = variant_key(cell)
    key_hash = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_root() / "generated" / f"{cell.variant.name.replace('/', '_')}-{key_hash}"
    clips, notes = [], []
    model = cell.model()
    items = items_of(spec)
    for item in tqdm(items, desc=f"generate {cell.variant.name}", unit="clip", leave=False, disable=None):
        frames, wav, item_notes = load_item(item)
        notes += item_notes
        digest = _item_digest(item)
        boxes = _boxes_for(item, frames, digest)
        video = folder / f"{digest[:24]}.mp4"
        fake = _read_cached(video)
        if fake is None:
            mel = wav2lip_mel(wav)
            fake, _ = generate(model, frames, boxes, mel, what=f"variant '{cell.variant.name}'",
                               dtype=cell.variant.dtype,
                               device=cell.device, batch_size=spec.batch_size,
                               reference=reference_rule(cell))
            video.parent.mkdir(parents=True, exist_ok=True)
            write_video(video, fake, FPS, audio=wav, rate=AUDIO_RATE)   # appears only when complete
            write_atomic(video.with_suffix(".json"), json.dumps({"item": item.name, **key}, indent=1))
            fake, _ = read_video(video, FPS)
        n = len(fake)
        real = np.stack([frames[i % len(frames)] for i in range(n)])
        cyc_boxes = np.stack([boxes[i % len(boxes)] for i in range(n)])
        clips.append(Clip(name=item.name, fake=fake, real=real, audio=wav, fps=FPS,
                          boxes=cyc_boxes, identity=frames[0], source=str(item.video),
                          extras={"video": str(video), "notes": item_notes}))
    generation = {"data": spec.describe(), "videos": str(folder), "key": key,
                                "protocol": "Wav2Lip inference.py; faces: MTCNN (facenet-pytorch), "
                                            "pads 0/10/0/0, 5-frame smoothing" if spec.layout != "lrs"
                                            else "Wav2Lip inference.py; faces: the preprocessed crops",
                                "reference": _reference_note(cell),
                                "clips": len(clips), "notes": notes}
    return clips, generation


def _reference_note(cell) -> str:
    rule = reference_rule(cell)
    note = f"{rule}: {REFERENCES[rule]}"
    if cell.variant.ground_truth and cell.data.reference != rule:
        note += f"; suite rule {cell.data.reference}, but a ground-truth variant is given the target frame"
    return note
