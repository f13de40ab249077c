"""Video and frame-folder input/output through the ffmpeg binary imageio-ffmpeg ships,
so no system ffmpeg is needed and every machine decodes with the same build.

Frames are uint8 RGB arrays (T, H, W, 3). Anything that cannot be read in full (a
corrupt or truncated file, an empty one) is bad input naming the file, never a clip
silently cut short."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import BadInput
from .audio import RATE, ffmpeg_error_line, to_int16

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".webm")
DEFAULT_CRF = 23    # libx264's own default, which Wav2Lip's scripts end up with


def _ffmpeg() -> str:
    import imageio_ffmpeg
    return imageio_ffmpeg.get_ffmpeg_exe()


def read_video(path, fps: float = 25.0) -> tuple[np.ndarray, list[str]]:
    """All frames of the first video stream at ``fps`` and notes on what was changed.

    A source at another frame rate goes through ffmpeg's ``fps`` filter (frames dropped
    or repeated to the nearest timestamp) and a note says so."""
    import imageio_ffmpeg
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"video {path}: no such file")
    if path.stat().st_size == 0:
        raise BadInput(f"video {path}: empty file")
    meta = _probe(path)
    notes = []
    source_fps = float(meta.get("fps") or 0.0)
    output_params = []
    if abs(source_fps - fps) > 1e-3:
        output_params = ["-vf", f"fps={fps:g}"]
        shown = f"{source_fps:g}" if source_fps > 0 else "an unknown rate"
        notes.append(f"video {path}: converted {shown} -> {fps:g} fps (ffmpeg fps filter)")
    width, height = meta["size"]
    frames = []
    try:
        gen = imageio_ffmpeg.read_frames(str(path), output_params=output_params)
        next(gen)
        for raw in gen:
            frames.append(np.frombuffer(raw, np.uint8).reshape(height, width, 3))
    except (OSError, RuntimeError, ValueError) as exc:    # ValueError: frames not of the probed size
        raise BadInput(f"video {path}: decoding failed ({ffmpeg_error_line(str(exc), 'video')})") from None
    if not frames:
        raise BadInput(f"video {path}: no video frames could be decoded "
                       f"({_decode_errors(path) or 'no video stream?'})")
    _check_complete(path, len(frames), float(meta.get("duration") or 0.0), fps, notes)
    return np.stack(frames), notes


def _probe(path: Path) -> dict:
    """imageio-ffmpeg's metadata of ``path`` (fps, duration, size); BadInput if ffmpeg
    cannot open it as a video."""
    import imageio_ffmpeg
    gen = imageio_ffmpeg.read_frames(str(path))
    try:
        return next(gen)
    except (OSError, RuntimeError, StopIteration, KeyError, ValueError) as exc:
        reason = ffmpeg_error_line(str(exc), "video")
        raise BadInput(f"video {path}: not a readable video ({reason})") from None
    finally:
        gen.close()


def _decode_errors(path: Path) -> str:
    """The first decoding error ffmpeg reports for the video stream ('' if none)."""
    proc = subprocess.run([_ffmpeg(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(path),
                           "-map", "0:v:0", "-f", "null", "-"], capture_output=True)
    log = proc.stderr.decode("utf-8", "replace").strip()
    return ffmpeg_error_line(log, "video") if (log or proc.returncode) else ""


def _check_complete(path: Path, n: int, duration: float, fps: float, notes: list) -> None:
    """A file whose index promises more frames than could be decoded is truncated or
    damaged, unless ffmpeg finds nothing wrong (then another stream, usually audio,
    is simply longer than the video)."""
    expected = duration * fps
    if duration <= 0 or n >= expected - 1.5:
        return
    error = _decode_errors(path)
    if error:
        raise BadInput(f"video {path}: truncated or damaged: decoded {n} frames of about "
                       f"{expected:.0f} the container declares ({error})")
    notes.append(f"video {path}: {n} frames ({n / fps:.2f} s) while the file lasts "
                 f"{duration:.2f} s (another stream is longer)")


def write_video(path, frames: np.ndarray, fps: float = 25.0, audio: Optional[np.ndarray] = None,
                rate: int = RATE, crf: int = DEFAULT_CRF) -> Path:
    """Write H.264 mp4 (yuv420p; yuv444p when a side is odd, which 4:2:0 cannot hold,
    so the frame size survives) and mux ``audio`` as AAC when given.

    The file appears only when complete (written beside it, then renamed)."""
    import imageio_ffmpeg
    path = Path(path)
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise BadInput(f"video {path}: expected uint8 frames (T, H, W, 3), got "
                       f"{frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    pix_fmt = "yuv420p" if height % 2 == 0 and width % 2 == 0 else "yuv444p"
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".avatarbench-", dir=path.parent))
    try:
        output_params = ["-crf", str(int(crf))]
        audio_path = None
        if audio is not None:
            audio_path = str(_write_wav(np.asarray(audio), rate, work / "audio.wav", path))
            output_params += ["-b:a", "128k"]
        partial = work / "video.mp4"
        writer = imageio_ffmpeg.write_frames(
            str(partial), (width, height), fps=fps, codec="libx264", pix_fmt_in="rgb24",
            pix_fmt_out=pix_fmt, quality=None, macro_block_size=1, output_params=output_params,
            ffmpeg_log_level="error", audio_path=audio_path, audio_codec="aac")
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(frame))
        writer.close()
        with open(partial, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(partial, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path


def _write_wav(audio: np.ndarray, rate: int, wav: Path, target: Path) -> Path:
    from scipy.io import wavfile
    if audio.ndim != 1 or audio.size == 0 or not np.all(np.isfinite(audio)):
        raise BadInput(f"video {target}: audio must be finite mono samples, got "
                       f"{audio.dtype} {audio.shape}")
    wavfile.write(str(wav), int(rate), to_int16(audio))
    return wav


def numbered_images(folder) -> list[Path]:
    """Images named by frame number (0.jpg, 1.jpg, ...; jpg or png) in numeric order."""
    folder = Path(folder)
    found = [p for p in folder.iterdir()
             if p.suffix.lower() in IMAGE_SUFFIXES and re.fullmatch(r"\d+", p.stem)]
    return sorted(found, key=lambda p: int(p.stem))


def rgb8(im, where: str) -> np.ndarray:
    """A PIL image as (H, W, 3) uint8 RGB. 16-bit images (grayscale 'I;16', or 'I' holding
    16-bit values) are scaled to 8 bits (v * 255 / 65535, rounded), not clipped, which
    would leave two levels; floating-point images are refused."""
    if im.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        arr = np.asarray(im).astype(np.int64)
        if arr.min() < 0 or arr.max() > 65535:
            raise BadInput(f"{where}: {im.mode} image with values outside 0..65535")
        gray = np.round(arr * (255.0 / 65535.0)).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if im.mode == "F":
        raise BadInput(f"{where}: floating-point image (mode F); save frames as 8- or 16-bit images")
    return np.asarray(im.convert("RGB"))


def read_frames_folder(folder) -> np.ndarray:
    """(T, H, W, 3) uint8 RGB frames from numbered images; every image must decode and
    all must share one size."""
    return read_frames_folder_with_notes(folder)[0]


def read_frames_folder_with_notes(folder) -> tuple[np.ndarray, list[str]]:
    """``read_frames_folder`` plus a note when the numbering has gaps (Wav2Lip's
    preprocessing skips frames where it found no face, so real clips can have them)."""
    from PIL import Image
    folder = Path(folder)
    if not folder.is_dir():
        raise BadInput(f"frames folder {folder}: not a folder")
    paths = numbered_images(folder)
    if not paths:
        raise BadInput(f"frames folder {folder}: no numbered images (0.jpg, 1.jpg, ... or .png)")
    frames = []
    for p in paths:
        try:
            with Image.open(p) as im:
                frame = rgb8(im, f"frames folder {folder}: image {p.name}")
        except BadInput:
            raise
        except Exception as exc:  # PIL raises several types for damaged files
            raise BadInput(f"frames folder {folder}: image {p.name} cannot be read ({exc})") from None
        if frames and frame.shape != frames[0].shape:
            raise BadInput(f"frames folder {folder}: image {p.name} is {frame.shape[1]}x{frame.shape[0]} "
                           f"but {paths[0].name} is {frames[0].shape[1]}x{frames[0].shape[0]}; "
                           f"all frames must share one size")
        frames.append(frame)
    numbers = [int(p.stem) for p in paths]
    notes = []
    missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
    if missing or numbers[0] != 0:
        shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
        notes.append(f"frames folder {folder}: numbering starts at {numbers[0]}"
                     + (f" and skips {len(missing)} number(s) ({shown})" if missing else "")
                     + "; frames are read in order, so audio alignment may drift")
    return np.stack(frames), notes
