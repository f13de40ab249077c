"""The offset search LSE-D and LSE-C share, whichever network embeds the windows: how many
windows a clip gives, the distance of every video window to the audio windows shifted by
-vshift..vshift, and syncnet_python's min / median-minus-min on the mean distances."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import BadInput
from ..samples import AUDIO_RATE

FRAMES_PER_WINDOW = 5
SAMPLES_PER_FRAME = 640          # 16 kHz / 25 fps, as syncnet_python hard-codes it


class TooShort(BadInput):
    """A clip with no complete sync window: left out of a multi-clip score, and the reason
    when no clip is long enough."""


@dataclass
class SyncScore:
    offset: int
    lse_d: float      # syncnet_python's "minval"
    lse_c: float      # syncnet_python's "conf"
    windows: int
    note: str = ""    # audio and video lengths differ (the reference warns and scores the overlap)


def window_count(n_frames: int, n_audio_samples: int, where: str) -> tuple[int, int]:
    """(frames scored, windows): syncnet_python's ``min_length`` and ``min_length - 5``
    windows (one fewer than would fit, as the reference counts); TooShort when none."""
    min_length = min(n_frames, n_audio_samples // SAMPLES_PER_FRAME)
    last = min_length - FRAMES_PER_WINDOW
    if last <= 0:
        raise TooShort(f"{where}: too short for lip-sync scoring: {n_frames} frames and "
                       f"{n_audio_samples / AUDIO_RATE:.3f} s of audio give no complete "
                       f"{FRAMES_PER_WINDOW}-frame window (need at least {FRAMES_PER_WINDOW + 1} "
                       f"frames and {(FRAMES_PER_WINDOW + 1) * SAMPLES_PER_FRAME} audio samples)")
    return min_length, last


def offset_distances(video_feat: torch.Tensor, audio_feat: torch.Tensor, vshift: int) -> torch.Tensor:
    """(windows, 2*vshift+1) distances between each video window and the audio windows
    shifted by -vshift..vshift (zero features beyond the ends, as the reference pads)."""
    span = 2 * vshift + 1
    padded = torch.nn.functional.pad(audio_feat, (0, 0, vshift, vshift))
    shifted = padded.unfold(0, span, 1).transpose(1, 2)            # (N, span, D)
    return torch.nn.functional.pairwise_distance(video_feat[:, None, :].expand_as(shifted), shifted)


def offset_score(video_feat: torch.Tensor, audio_feat: torch.Tensor, vshift: int) -> tuple[int, float, float]:
    """(offset, LSE-D, LSE-C): the mean distance over windows at each offset, its minimum,
    the median minus that minimum, and the offset in syncnet_python's sign."""
    mdist = offset_distances(video_feat, audio_feat, vshift).mean(0)
    minval, minidx = torch.min(mdist, 0)
    conf = torch.median(mdist) - minval
    return int(vshift - minidx), float(minval), float(conf)


def length_note(n_frames: int, n_audio_samples: int, min_length: int, fps: float) -> str:
    """A note when audio and video lengths differ by a frame or more (the overlap is scored)."""
    if abs(n_audio_samples / SAMPLES_PER_FRAME - n_frames) < 1:
        return ""
    return (f"audio lasts {n_audio_samples / AUDIO_RATE:.3f} s and video {n_frames / fps:.3f} s; "
            f"scored the first {min_length} frames, as syncnet_python does")
