"""LSE-D and LSE-C measured with a harness-trained lip-sync expert instead of
syncnet_python's SyncNet (LSE option ``evaluator``: the path of a checkpoint).

The network is Wav2Lip's expert, SyncNet_color, built through the variant registry
(``wav2lip-syncnet``) and loaded from a plain state dict. Its inputs are the ones it is
trained on: the generation protocol's 96x96 BGR face crop of each frame's box, scaled to
0..1, lower half (48x96); a video window at frame t stacks frames t..t+4 on the channels
(15x48x96); its audio window is the 16 columns of ``harness.data.audio.wav2lip_mel``
starting at column int(80 t / 25). One forward pass embeds a batch of (audio, video)
window pairs. The number of windows is the canonical path's (``min_length - 5``), less any
whose mel window would run past the end of the spectrogram. The offset search, LSE-D and
LSE-C are the canonical arithmetic (``sync_offsets``). The values depend on how the
evaluator was trained: they are not comparable with published LSE."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..checkpoints import check_fit, read_state_dict, sha256_of
from ..errors import BadInput
from .sync_offsets import FRAMES_PER_WINDOW, SyncScore, length_note, offset_score, window_count

EVALUATOR_VARIANT = "wav2lip-syncnet"
FACE_SIZE = 96
MEL_COLUMNS = 16
MEL_PER_SECOND = 80
FPS = 25
NOT_COMPARABLE = "no: not syncnet_python's SyncNet; values are not comparable with published LSE"

_MODELS: dict = {}


def load_evaluator(path: str, device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """The SyncNet_color network with the checkpoint's weights (eval mode, on ``device``)
    and {"file", "sha256"}; BadInput naming the option when the file is missing or does
    not fit the architecture."""
    from ..derive import get_variant
    p = Path(path).expanduser()
    if not p.is_file():
        raise BadInput(f"LSE option evaluator={path!r}: no such file {p} (a state dict of "
                       f"Wav2Lip's SyncNet_color, variant '{EVALUATOR_VARIANT}')")
    sha = sha256_of(p)
    key = (sha, device)
    if key not in _MODELS:
        try:
            state = read_state_dict(p)
        except BadInput as exc:
            raise BadInput(f"LSE option evaluator={path!r}: {exc}") from None
        model = get_variant(EVALUATOR_VARIANT).build()
        check_fit(state, model.state_dict(), f"LSE option evaluator={path!r}: {p} does not fit "
                                             f"Wav2Lip's SyncNet_color (variant '{EVALUATOR_VARIANT}')")
        model.load_state_dict(state, strict=True)
        _MODELS.clear()
        _MODELS[key] = model.to(device).eval()
    return _MODELS[key], {"file": str(p), "sha256": sha}


def expert_faces(frames: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """(T, 3, 48, 96) float32: the lower half of each frame's 96x96 BGR face crop, 0..1."""
    from ..families.lipsync.protocol import face_crop
    faces = np.stack([face_crop(f, b) for f, b in zip(frames, boxes)])
    return (faces[:, FACE_SIZE // 2:].transpose(0, 3, 1, 2) / 255.0).astype(np.float32)


def mel_start(t: int) -> int:
    """First mel column of the audio window of video frame t (80 columns a second, 25 fps)."""
    return MEL_PER_SECOND * t // FPS


def expert_windows(faces: np.ndarray, mel: np.ndarray, windows: int) -> tuple[np.ndarray, np.ndarray]:
    """(video (W, 15, 48, 96), audio (W, 1, 80, 16)) for windows 0..W-1: frames t..t+4 on
    the channels (frame t first), and the mel window at ``mel_start(t)``."""
    video = np.stack([faces[t:t + FRAMES_PER_WINDOW].reshape(-1, *faces.shape[2:]) for t in range(windows)])
    audio = np.stack([mel[:, mel_start(t):mel_start(t) + MEL_COLUMNS] for t in range(windows)])[:, None]
    return video, audio.astype(np.float32)


def embeddings(model, video: np.ndarray, audio: np.ndarray, batch_size: int,
               device: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(video embeddings, audio embeddings), (W, D) each, ``batch_size`` window pairs a pass."""
    vf, af = [], []
    with torch.no_grad():
        for s in range(0, len(video), batch_size):
            a, v = model(torch.from_numpy(audio[s:s + batch_size]).to(device),
                         torch.from_numpy(video[s:s + batch_size]).to(device))
            af.append(a.float().cpu())
            vf.append(v.float().cpu())
    return torch.cat(vf), torch.cat(af)


def expert_score(model, frames: np.ndarray, boxes: np.ndarray, wav: np.ndarray, vshift: int,
                 batch_size: int, device: str, where: str) -> SyncScore:
    """LSE of one clip (RGB frames, their face boxes, the driving audio at 16 kHz)."""
    from ..data.audio import wav2lip_mel
    min_length, last = window_count(len(frames), len(wav), where)
    mel = wav2lip_mel(wav)
    fitting = sum(1 for t in range(last) if mel_start(t) + MEL_COLUMNS <= mel.shape[1])
    faces = expert_faces(frames[:min_length], boxes[:min_length])
    vf, af = embeddings(model, *expert_windows(faces, mel, fitting), batch_size, device)
    offset, minval, conf = offset_score(vf, af, vshift)
    return SyncScore(offset=offset, lse_d=minval, lse_c=conf, windows=fitting,
                     note=length_note(len(frames), len(wav), min_length, FPS))


def settings(opts: dict, weights: dict) -> dict:
    return {"evaluator": opts["evaluator"], "comparable": NOT_COMPARABLE, "vshift": opts["vshift"],
            "batch_size": opts["batch_size"], "network": f"Wav2Lip SyncNet_color (variant {EVALUATOR_VARIANT})",
            "faces": "the generation protocol's 96x96 crop of each frame's box, BGR, /255, lower half 48x96",
            "window": f"{FRAMES_PER_WINDOW} frames (15 channels, frame t first) / {MEL_COLUMNS} mel "
                      f"columns from int({MEL_PER_SECOND} t / {FPS})",
            "mel": "harness.data.audio.wav2lip_mel", "windows": "min(frames, audio samples // 640) - 5, "
            "less those whose mel window runs past the end",
            "aggregate": "mean over clips of per-clip scores", "weights": weights}
