"""``avatarbench score METRIC``: one quality metric on folders of frames or on videos,
without a suite (as the pytorch-fid command line does for FID).

``--fake`` and ``--real`` each take a folder of numbered images, a video file, or a folder
of videos (videos pair up by file name). Audio for lip sync comes from each video, or
from ``--audio``. Clips go to the same ``score(clips, options)`` a suite run calls."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np

from .samples import Clip
from .data.video import VIDEO_SUFFIXES
from .errors import BadInput

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}   # any image a user may score


def _kind(path: Path) -> str:
    if path.is_file():
        if path.suffix.lower() in VIDEO_SUFFIXES:
            return "video"
        if path.suffix.lower() in IMAGE_SUFFIXES:
            return "image"
        raise BadInput(f"{path}: not an image ({', '.join(sorted(IMAGE_SUFFIXES))}) or a video "
                       f"({', '.join(sorted(VIDEO_SUFFIXES))})")
    if path.is_dir():
        suffixes = {p.suffix.lower() for p in path.iterdir() if p.is_file()}
        if suffixes & IMAGE_SUFFIXES:
            return "images"
        if suffixes & set(VIDEO_SUFFIXES):
            return "videos"
        raise BadInput(f"{path}: folder holds no images or videos")
    raise BadInput(f"{path}: no such file or folder")


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    from .data.video import rgb8
    try:
        with Image.open(path) as im:
            return rgb8(im, str(path))[None]
    except BadInput:
        raise
    except Exception as exc:
        raise BadInput(f"{path}: unreadable image ({type(exc).__name__}: {exc})") from exc


def _read_images(folder: Path) -> np.ndarray:
    """Every image of a folder (any names, as pytorch-fid takes them): numbered names in
    numeric order (0.jpg, 1.jpg, ..., 10.jpg), others by name."""
    from .data.video import numbered_images, read_frames_folder
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(numbered_images(folder)) == len(files):
        return read_frames_folder(folder)
    frames = [_read_image(p)[0] for p in files]
    sizes = {f.shape for f in frames}
    if len(sizes) > 1:
        raise BadInput(f"{folder}: images differ in size ({', '.join(map(str, sorted(sizes)[:3]))}); "
                       "resize them to one size first")
    return np.stack(frames)


def _media(path: Path, want_audio: bool, notes: list[str]) -> list[tuple[str, np.ndarray, Optional[np.ndarray]]]:
    """(name, frames, audio or None) for each clip at ``path``."""
    from .data.audio import load_audio
    from .data.video import read_video
    kind = _kind(path)
    if kind == "image":
        return [(path.stem, _read_image(path), None)]
    if kind == "images":
        return [(path.name, _read_images(path), None)]
    files = [path] if kind == "video" else sorted(p for p in path.iterdir()
                                                  if p.suffix.lower() in VIDEO_SUFFIXES)
    out = []
    for f in files:
        frames, n = read_video(f)
        notes += n
        audio = None
        if want_audio:
            audio, n = load_audio(f)
            notes += n
        out.append((f.stem, frames, audio))
    return out


def build_clips(metric, fake: str, real: Optional[str] = None, audio: Optional[str] = None,
                identity: Optional[str] = None) -> tuple[list[Clip], list[str]]:
    from .data.audio import load_audio
    notes: list[str] = []
    wants_audio = metric.consumes.audio
    fakes = _media(Path(fake), wants_audio and not audio, notes)
    reals = _media(Path(real), False, notes) if real else []
    if audio:
        wav, n = load_audio(audio)
        notes += n
        fakes = [(name, frames, wav) for name, frames, _ in fakes]
    ident = None
    if identity:
        ident_frames = _media(Path(identity), False, notes)[0][1]
        ident = ident_frames[0]
    unpaired = metric.consumes.reference == "set"
    if reals and len(reals) != len(fakes) and not unpaired:
        raise BadInput(f"{metric.name}: --fake has {len(fakes)} clips but --real has {len(reals)}; "
                       "videos pair up by file name")
    if reals and len(reals) > 1 and not unpaired:
        by_name = {name: frames for name, frames, _ in reals}
        missing = [name for name, _, _ in fakes if name not in by_name]
        if missing:
            raise BadInput(f"no reference video named like {', '.join(missing[:5])} in {real}")
        reals = [(name, by_name[name], None) for name, _, _ in fakes]
    if unpaired and len(reals) > len(fakes):
        # two sets, not pairs: the surplus reference clips join the last clip's
        extra = [f for _, f, _ in reals[len(fakes) - 1:]]
        if len({f.shape[1:] for f in extra}) > 1:
            raise BadInput(f"{metric.name}: --real has more clips than --fake and they differ in "
                           "frame size; give as many --fake clips as --real clips")
        reals = reals[:len(fakes) - 1] + [("real", np.concatenate(extra), None)]
    clips = []
    for i, (name, frames, wav) in enumerate(fakes):
        ref = reals[i][1] if i < len(reals) else None
        clips.append(Clip(name=name, fake=frames, real=ref, audio=wav,
                          identity=ident if ident is not None else (ref[0] if ref is not None else None),
                          source=_source(Path(fake), name)))
    return clips, notes


def _source(path: Path, name: str) -> str:
    """The file or folder a clip came from, for messages."""
    if path.is_dir() and _kind(path) == "videos":
        match = [p for p in path.iterdir() if p.stem == name]
        return str(match[0]) if match else str(path / name)
    return str(path)


def parse_options(pairs: list[str], metric) -> dict:
    from .safe_yaml import load_yaml_text
    given = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise BadInput(f"--option {pair!r}: expected KEY=VALUE")
        given[key] = load_yaml_text(value, f"--option {key}")
    return metric.resolve_options(given, "--option")


def score(metric_name: str, fake: str, real: Optional[str] = None, audio: Optional[str] = None,
          identity: Optional[str] = None, options: Optional[list[str]] = None):
    """Returns (metric, Result, notes)."""
    from .metrics import get_metric
    from .registry import load_builtins
    load_builtins()
    metric = get_metric(metric_name)
    if metric.score is None or metric.consumes is None or metric.consumes.sample != "frames":
        from .metrics import metrics
        quality = [m.name for m in metrics if m.score is not None and m.consumes.sample == "frames"]
        raise BadInput(f"metric '{metric_name}' measures a model, not frames; "
                       f"score takes one of: {', '.join(quality)}")
    opts = parse_options(options or [], metric)
    clips, notes = build_clips(metric, fake, real, audio, identity)
    return metric, metric.score(clips, opts), notes
