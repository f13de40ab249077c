"""What quality metrics consume: clips of generated frames beside their references.

The runner builds clips with the lip-sync generation protocol (``harness.families.lipsync``);
``avatarbench score`` builds them from folders of images or from video files. Metrics
never read files themselves, so both paths score exactly the same arrays."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numpy as np

AUDIO_RATE = 16000
FPS = 25.0


@dataclass
class Clip:
    """One clip. Frames are uint8 arrays (T, H, W, 3) in RGB order."""
    name: str
    fake: np.ndarray                          # generated frames (or the frames being scored)
    real: Optional[np.ndarray] = None         # ground truth, frame-aligned with ``fake``
    audio: Optional[np.ndarray] = None        # float32 mono at AUDIO_RATE, the driving audio
    fps: float = FPS
    boxes: Optional[np.ndarray] = None        # (T, 4) x1, y1, x2, y2 face boxes in ``fake``
    identity: Optional[np.ndarray] = None     # (H, W, 3) uint8 RGB frame of the source identity
    source: str = ""                          # where the clip came from (for messages)
    extras: dict = field(default_factory=dict)

    def __post_init__(self):
        _check_frames(self.fake, f"{self.source or self.name}: generated frames")
        if self.real is not None:
            _check_frames(self.real, f"{self.source or self.name}: reference frames")

    def paired(self, metric: str) -> tuple[np.ndarray, np.ndarray]:
        """(fake, real) for metrics that compare frame i with frame i."""
        from .errors import BadInput
        where = self.source or self.name
        if self.real is None:
            raise BadInput(f"{metric}: clip {where} has no reference frames; {metric} compares each "
                           "generated frame with its reference frame")
        if len(self.real) != len(self.fake) or self.real.shape[1:] != self.fake.shape[1:]:
            raise BadInput(f"{metric}: clip {where}: {len(self.fake)} generated frames of "
                           f"{self.fake.shape[1:3]} but {len(self.real)} reference frames of "
                           f"{self.real.shape[1:3]}; they must pair one to one at one size")
        return self.fake, self.real


def _check_frames(frames, what: str) -> None:
    from .errors import BadInput
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
        shape = getattr(frames, "shape", type(frames).__name__)
        raise BadInput(f"{what}: expected uint8 frames of shape (T, H, W, 3), got {shape}")
    if frames.dtype != np.uint8:
        raise BadInput(f"{what}: expected uint8 frames, got {frames.dtype}")
    if len(frames) == 0:
        raise BadInput(f"{what}: no frames")


def all_frames(clips: list[Clip], which: str = "fake") -> np.ndarray:
    """Frames of every clip stacked (clips may differ in size only if the caller resizes)."""
    arrays = [getattr(c, which) for c in clips if getattr(c, which) is not None]
    return np.concatenate(arrays, 0) if arrays else np.zeros((0, 1, 1, 3), np.uint8)
