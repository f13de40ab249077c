"""Where benchmark clips come from: the Wav2Lip-preprocessed LRS2/LRS3 layout, a folder of
talking-head videos, and Wav2Lip's evaluation pair lists; and loading one clip with the
checks every metric relies on (enough frames, audio and video of one length, finite
samples), each fix reported in a note rather than made silently."""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from ...errors import BadInput
from ...data.audio import RATE, load_audio
from ...data.video import VIDEO_SUFFIXES, numbered_images, read_frames_folder_with_notes, read_video

FPS = 25.0
MIN_FRAMES = 5                          # one sync window (syncnet and Wav2Lip use 5 frames)
AUDIO_SUFFIXES = (".wav", ".mp3", ".m4a", ".aac", ".flac", ".ogg")


@dataclass(frozen=True)
class Item:
    """One clip to score or to drive a generator with.

    ``video`` is a folder of numbered frames or a video file; ``audio`` a media file with
    the driving audio (the video's own, or another clip's for ``kind == 'pair'``).
    ``kind`` is 'lrs', 'video' or 'pair'."""
    name: str
    video: Path
    audio: Path
    kind: str


def _clip_folder_ok(folder: Path) -> bool:
    return folder.is_dir() and (folder / "audio.wav").is_file() and bool(numbered_images(folder))


def _describe_missing(folder: Path) -> str:
    if not folder.is_dir():
        return f"folder {folder} does not exist"
    if not (folder / "audio.wav").is_file():
        return f"{folder / 'audio.wav'} is missing"
    return f"{folder} has no numbered frames (0.jpg, 1.jpg, ...)"


def lrs_items(root, filelist=None) -> list[Item]:
    """Clips of the Wav2Lip-preprocessed layout ``root/speaker/clip/{0.jpg, ..., audio.wav}``.

    With ``filelist`` (lines 'speaker/clip' as in Wav2Lip's filelists/test.txt; anything
    after the first token is ignored) only those clips, in that order; otherwise every
    clip folder under root, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise BadInput(f"LRS data root {root}: not a folder")
    items = []
    if filelist is None:
        for speaker in sorted(p for p in root.iterdir() if p.is_dir()):
            for clip in sorted(p for p in speaker.iterdir() if p.is_dir()):
                if not _clip_folder_ok(clip):
                    raise BadInput(f"LRS data root {root}: clip {speaker.name}/{clip.name}: "
                                   f"{_describe_missing(clip)}")
                items.append(_lrs_item(root, f"{speaker.name}/{clip.name}"))
        if not items:
            raise BadInput(f"LRS data root {root}: no clips (expected speaker/clip/0.jpg ... audio.wav)")
        return items
    for number, name in _filelist_lines(filelist):
        key = name.split()[0].strip("/")
        if not _clip_folder_ok(root / key):
            raise BadInput(f"filelist {filelist}, line {number} ('{key}'): {_describe_missing(root / key)}")
        items.append(_lrs_item(root, key))
    if not items:
        raise BadInput(f"filelist {filelist}: no clips listed")
    return items


def _lrs_item(root: Path, key: str) -> Item:
    return Item(name=key, video=root / key, audio=root / key / "audio.wav", kind="lrs")


def _filelist_lines(filelist) -> list[tuple[int, str]]:
    """(line number, text) of the non-blank, non-comment lines."""
    path = Path(filelist)
    if not path.is_file():
        raise BadInput(f"filelist {path}: no such file")
    lines = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if line and not line.startswith("#"):
            lines.append((number, line))
    return lines


def video_folder_items(root) -> list[Item]:
    """Every video (*.mp4, *.mov, *.mkv, *.avi) under root, each with its own audio;
    named by the path below root without the extension."""
    root = Path(root)
    if not root.is_dir():
        raise BadInput(f"video folder {root}: not a folder")
    videos = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    if not videos:
        raise BadInput(f"video folder {root}: no videos ({', '.join(VIDEO_SUFFIXES)})")
    return [Item(name=p.relative_to(root).with_suffix("").as_posix(), video=p, audio=p, kind="video")
            for p in videos]


def pair_items(filelist, root) -> list[Item]:
    """Pairs in the format of Wav2Lip's evaluation/test_filelists: two names a line.

    The LRS2/LRS3/LRW lists carry names without extensions, the audio source first and
    the video second, each meaning ``root/NAME.mp4`` (gen_videos_from_filelist.py). The
    ReSyncED lists carry file names with extensions, the video first and the audio second
    (real_videos_inference.py). A name without extension may also be a clip folder of the
    preprocessed layout (frames + audio.wav). Items are named 'VIDEO+AUDIO'."""
    root = Path(root)
    if not root.is_dir():
        raise BadInput(f"pair list data root {root}: not a folder")
    items = []
    for number, line in _filelist_lines(filelist):
        tokens = line.split()
        where = f"pair list {filelist}, line {number}"
        if len(tokens) != 2:
            raise BadInput(f"{where}: expected two names (audio video), got {len(tokens)}: '{line}'")
        with_ext = [Path(t).suffix.lower() in VIDEO_SUFFIXES + AUDIO_SUFFIXES for t in tokens]
        if all(with_ext):
            video_name, audio_name = tokens
        elif not any(with_ext):
            audio_name, video_name = tokens
        else:
            raise BadInput(f"{where}: mixes a name with an extension and one without: '{line}'")
        video = _resolve(root, video_name, "video", where)
        audio = _resolve(root, audio_name, "audio", where)
        items.append(Item(name=f"{video_name}+{audio_name}", video=video, audio=audio, kind="pair"))
    if not items:
        raise BadInput(f"pair list {filelist}: no pairs listed")
    return items


def _resolve(root: Path, name: str, role: str, where: str) -> Path:
    direct = root / name
    if Path(name).suffix:
        if direct.is_file():
            return direct
        raise BadInput(f"{where}: {role} {direct} does not exist")
    as_mp4 = root / f"{name}.mp4"
    if as_mp4.is_file():
        return as_mp4
    if _clip_folder_ok(direct):
        return direct if role == "video" else direct / "audio.wav"
    raise BadInput(f"{where}: {role} '{name}' not found (looked for {as_mp4} and for a clip "
                   f"folder {direct} with numbered frames and audio.wav)")


def load_item(item: Item, fps: float = FPS, rate: int = RATE) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(frames uint8 (T, H, W, 3) at ``fps``, audio float32 at ``rate``, notes).

    Audio and video that disagree by more than one frame are trimmed to the shorter and
    a note says by how much; a clip with fewer than 5 frames (one sync window) or audio
    with NaN or infinite samples is bad input."""
    try:
        if Path(item.video).is_dir():
            frames, notes = read_frames_folder_with_notes(item.video)
        else:
            frames, notes = read_video(item.video, fps)
        wav, audio_notes = load_audio(item.audio, rate)    # also rejects NaN / inf samples
    except BadInput as exc:
        raise BadInput(f"clip {item.name}: {exc}") from None
    notes += audio_notes
    _check_length(item, len(frames))
    per_frame = rate / fps
    audio_frames = len(wav) / per_frame
    if abs(audio_frames - len(frames)) > 1:
        if audio_frames > len(frames):
            keep = int(round(len(frames) * per_frame))
            notes.append(f"clip {item.name}: audio is {len(wav) / rate:.2f} s ({audio_frames:.1f} frames) "
                         f"but the video has {len(frames)} frames ({len(frames) / fps:.2f} s); "
                         f"audio trimmed to {keep / rate:.2f} s")
            wav = wav[:keep]
        else:
            keep = int(math.floor(audio_frames))
            notes.append(f"clip {item.name}: video has {len(frames)} frames ({len(frames) / fps:.2f} s) but "
                         f"the audio is {len(wav) / rate:.2f} s ({audio_frames:.1f} frames); video trimmed "
                         f"to {keep} frames")
            frames = frames[:keep]
            _check_length(item, len(frames), "after trimming to the audio")
    return frames, wav, notes


def _check_length(item: Item, n: int, when: Optional[str] = None) -> None:
    if n < MIN_FRAMES:
        suffix = f" {when}" if when else ""
        raise BadInput(f"clip {item.name} has {n} frames{suffix}; at least {MIN_FRAMES} needed "
                       f"(one sync window), from {item.video}")
