"""Training samples for the lip-sync family, drawn as Wav2Lip's training scripts draw them
(``color_syncnet_train.py`` and ``wav2lip_train.py``), from the LRS layout
(``SPEAKER/CLIP/{0.jpg ...}, audio.wav`` and ``filelists/SPLIT.txt``).

Sample ``index`` is drawn with its own generator, seeded by (seed, index): the same index
gives the same sample in any process, so a resumed or distributed run sees exactly the
data an uninterrupted single run would. Wav2Lip redraws a sample whose window falls off
the clip; here the start is drawn among the frames whose windows fit, which is the same
distribution."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ...errors import BadInput
from .datasets import Item, lrs_items

IMG = 96
MEL_STEP = 16
FPS = 25.0


def split_items(root: str | Path, split: str) -> list[Item]:
    """The clips of ``filelists/SPLIT.txt`` under ``root``."""
    root = Path(root)
    filelist = root / "filelists" / f"{split}.txt"
    if not filelist.is_file():
        raise BadInput(f"training data {root}: no {filelist.relative_to(root)} (the LRS layout lists "
                       f"each split's clips in filelists/train.txt, val.txt, test.txt)")
    return lrs_items(root, filelist)


def mel_start(frame: int) -> int:
    """Wav2Lip's ``crop_audio_window``: the first mel column of frame ``frame``."""
    return int(80.0 * (frame / FPS))


class ClipStore:
    """Frames (96x96 BGR uint8, as cv2.imread and cv2.resize give them) and the mel
    spectrogram of each clip, read once per process."""

    def __init__(self, items: list[Item]):
        self.items = items
        self._cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}

    def __len__(self) -> int:
        return len(self.items)

    def get(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k not in self._cache:
            import cv2
            from ...data.audio import load_audio, wav2lip_mel
            from ...data.video import numbered_images
            item = self.items[k]
            frames = []
            for path in numbered_images(item.video):
                img = cv2.imread(str(path))
                if img is None:
                    raise BadInput(f"clip {item.name}: cannot read frame {path}")
                frames.append(cv2.resize(img, (IMG, IMG)))
            wav, _ = load_audio(item.audio)
            mel = wav2lip_mel(wav)
            if not np.isfinite(mel).all():
                raise BadInput(f"clip {item.name}: the audio gives NaN or infinite mel values")
            self._cache[k] = (np.stack(frames), mel.astype(np.float32))
        return self._cache[k]


def _window(frames: np.ndarray, start: int, n: int) -> np.ndarray:
    """(3, n, 96, 96) float32 in 0..1, BGR (Wav2Lip's ``prepare_window``)."""
    return (frames[start:start + n].astype(np.float32) / 255.0).transpose(3, 0, 1, 2)


def _mel_window(mel: np.ndarray, frame: int) -> np.ndarray:
    s = mel_start(frame)
    return mel[:, s:s + MEL_STEP]


class _Samples(torch.utils.data.Dataset):
    """Samples drawn by index from the clips of ``store``; ``length`` is only an upper
    bound for samplers (indices are drawn, not enumerated)."""

    def __init__(self, store: ClipStore, seed: int, window: int = 5, length: int = 10**9):
        self.store, self.seed, self.window, self.length = store, seed, window, length

    def __len__(self) -> int:
        return self.length


class ExpertSamples(_Samples):
    """SyncNet_color samples: a clip, a frame and another frame; label 1 (the video
    window starts at the frame) or 0 (at the other frame), 50/50; the audio window is
    always the frame's. Returns mel (1, 80, 16), faces (15, 48, 96) (lower halves of 5
    frames on channels, BGR / 255) and the label."""

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, int(index)])
        for _ in range(100):
            frames, mel = self.store.get(int(rng.integers(len(self.store))))
            fits = [f for f in range(len(frames) - self.window + 1)
                    if mel_start(f) + MEL_STEP <= mel.shape[1]]
            if len(fits) >= 2:
                break
        else:
            raise BadInput("expert training: no clip has two sync windows (clips need more than "
                           f"{self.window + 1} frames with their audio)")
        frame, other = rng.choice(fits, 2, replace=False)
        label = 1.0 if rng.random() < 0.5 else 0.0
        chosen = frame if label == 1.0 else other
        x = _window(frames, int(chosen), self.window)           # (3, T, 96, 96)
        x = np.concatenate(list(x.transpose(1, 0, 2, 3)), axis=0)[:, IMG // 2:]   # (3T, 48, 96)
        m = _mel_window(mel, int(frame))[None]
        return torch.from_numpy(m.copy()), torch.from_numpy(np.ascontiguousarray(x)), torch.tensor(label)


class GeneratorSamples(_Samples):
    """Wav2Lip generator samples: the 5-frame window (its lower half zeroed) and another
    window of the same clip as reference (6 channels), one mel window per frame starting
    at frame ``f + k - 1``, the first frame's mel window (for the sync loss) and the real
    window. Returns a dict of tensors: x (6, T, 96, 96), indiv_mels (T, 1, 80, 16),
    mel (1, 80, 16), y (3, T, 96, 96)."""

    def __getitem__(self, index: int):
        rng = np.random.default_rng([self.seed, int(index)])
        t = self.window
        for _ in range(100):
            frames, mel = self.store.get(int(rng.integers(len(self.store))))
            n = len(frames)
            fits = [f for f in range(1, n - t + 1)
                    if mel_start(f + t - 2) + MEL_STEP <= mel.shape[1]]
            if fits and n - t + 1 >= 2:
                break
        else:
            raise BadInput(f"generator training: no clip is long enough for a {t}-frame window "
                           "with its audio and a second reference window")
        frame = int(rng.choice(fits))
        other = int(rng.choice([f for f in range(n - t + 1) if f != frame]))
        y = _window(frames, frame, t)
        masked = y.copy()
        masked[:, :, IMG // 2:] = 0.0
        x = np.concatenate([masked, _window(frames, other, t)], axis=0)
        indiv = np.stack([_mel_window(mel, frame + k - 1) for k in range(t)])[:, None]
        m = _mel_window(mel, frame)[None]
        return {"x": torch.from_numpy(x), "indiv_mels": torch.from_numpy(indiv.copy()),
                "mel": torch.from_numpy(m.copy()), "y": torch.from_numpy(y)}
