"""The FID Inception network and its features, shared by ``fid`` and ``kid``.

The network is pytorch-fid's own ``InceptionV3`` (pool3, 2048-d, bilinear resize to 299,
inputs scaled to [-1, 1], the TensorFlow-ported FID blocks), so a score made here is a
pytorch-fid score. Only the weights come from elsewhere: the canonical file found by
``harness.canonical_weights`` (hash-checked, loaded without running pickled code), never
pytorch-fid's own download.

Frames go in as they come out of pytorch-fid's loader: uint8 RGB -> float32 / 255 in
channel-first layout (what ``torchvision.transforms.ToTensor`` makes of a PIL image).
Reference ("real") features and statistics are cached on disk, keyed by the frames'
bytes and by every setting that can change a number."""
from __future__ import annotations

import hashlib
import json
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union
from unittest import mock

import numpy as np
import torch

from .. import canonical_weights
from ..cache import atomic_path, cache_root
from ..errors import BadInput

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
DIMS = 2048
SETTINGS = {"dims": DIMS, "block": "pool3", "resize_input": True, "resize": "bilinear 299x299",
            "normalize_input": True, "use_fid_inception": True,
            "preprocess": "uint8 RGB -> float32 / 255 (ToTensor), CHW"}
PROGRESS_FROM = 500          # inputs with at least this many frames get a progress bar

Frames = Union[np.ndarray, Sequence[np.ndarray]]
Loaded = tuple[torch.nn.Module, dict]          # (network, weights provenance)

_lock = threading.Lock()
_models: dict[tuple, torch.nn.Module] = {}
_recent: "OrderedDict[str, np.ndarray]" = OrderedDict()   # features of the last few inputs
_RECENT_MAX = 4


def package_versions() -> dict:
    """Versions of everything the features depend on (part of every cache key)."""
    import scipy
    import torchvision
    from importlib.metadata import PackageNotFoundError, version
    try:
        fid_version = version("pytorch-fid")
    except PackageNotFoundError:
        fid_version = "unknown"
    return {"torch": torch.__version__, "torchvision": torchvision.__version__,
            "pytorch_fid": fid_version, "numpy": np.__version__, "scipy": scipy.__version__}


def load_model(device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """pytorch-fid's InceptionV3 (2048-d pool3) with the canonical weights, and their
    provenance. Raises ``MissingWeights`` when the file is nowhere to be found.

    pytorch-fid builds its network and loads the weights from its release URL inside
    one function (``fid_inception_v3``) and offers no argument to pass a state dict.
    Rather than copying its block definitions, the module-level download function it
    calls is replaced, only while the network is built, by one that returns the state
    dict already read and hash-checked here. The network definition and its strict
    ``load_state_dict`` stay pytorch-fid's own, and nothing is downloaded."""
    path, provenance = canonical_weights.resolve(WEIGHTS_FILE)
    key = (str(path), provenance["sha256"], provenance["check"], str(device))
    with _lock:
        if key not in _models:
            import pytorch_fid.inception as fid_inception
            state, provenance = canonical_weights.load_state(WEIGHTS_FILE)

            def canonical_state(url, *args, **kwargs):
                return state

            try:
                with mock.patch.object(fid_inception, "load_state_dict_from_url", canonical_state):
                    model = fid_inception.InceptionV3(
                        [fid_inception.InceptionV3.BLOCK_INDEX_BY_DIM[DIMS]],
                        resize_input=True, normalize_input=True, use_fid_inception=True)
            except RuntimeError as exc:       # load_state_dict: missing/unexpected keys, shapes
                raise BadInput(f"weights {path} do not fit pytorch-fid's InceptionV3: "
                               f"{str(exc).splitlines()[0]}") from exc
            _models.clear()                   # one network at a time (about 100 MB)
            _models[key] = model.to(device).eval()
    return _models[key], provenance


def _as_list(frames: Frames) -> list[np.ndarray]:
    arrays = [frames] if isinstance(frames, np.ndarray) else list(frames)
    for i, a in enumerate(arrays):
        if not isinstance(a, np.ndarray) or a.ndim != 4 or a.shape[-1] != 3 or a.dtype != np.uint8:
            shape = getattr(a, "shape", type(a).__name__)
            raise BadInput(f"Inception features: input {i} must be uint8 frames (N, H, W, 3), "
                           f"got {getattr(a, 'dtype', '')} {shape}")
    return arrays


def _batches(arrays: list[np.ndarray], batch_size: int) -> Iterable[np.ndarray]:
    """Batches of at most ``batch_size`` frames; a batch never mixes frame sizes (the
    network resizes every frame to 299x299 itself, so sizes may differ between clips)."""
    pending: list[np.ndarray] = []
    count = 0
    for a in arrays:
        start = 0
        while start < len(a):
            if pending and pending[0].shape[1:] != a.shape[1:]:
                yield np.concatenate(pending, 0)
                pending, count = [], 0
            take = min(batch_size - count, len(a) - start)
            pending.append(a[start:start + take])
            count += take
            start += take
            if count == batch_size:
                yield np.concatenate(pending, 0)
                pending, count = [], 0
    if pending:
        yield np.concatenate(pending, 0)


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [0, 1], contiguous, as ToTensor and the
    DataLoader's stacking make it (the layout matters: a channels-last tensor would send
    the resize and convolutions down other kernels with other rounding)."""
    return torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).contiguous() \
        .to(torch.float32).div(255)


def _digest(arrays: list[np.ndarray]) -> str:
    """sha256 of the frames in order. Only frame sizes and pixels count, not how the frames
    are split into clips (the features do not depend on it: see ``_batches``)."""
    h = hashlib.sha256()
    size = None
    for a in arrays:
        if a.shape[1:] != size:
            size = a.shape[1:]
            h.update(f"|{size[0]}x{size[1]}|".encode())
        h.update(np.ascontiguousarray(a).data)
    return h.hexdigest()


def cache_key(arrays: list[np.ndarray], provenance: dict, batch_size: int, device: str) -> str:
    """sha256 over the frames and every setting that can change the features."""
    settings = {**SETTINGS, "weights_sha256": provenance["sha256"], "batch_size": batch_size,
                "device": torch.device(device).type, "versions": package_versions()}
    h = hashlib.sha256(_digest(arrays).encode())
    h.update(json.dumps(settings, sort_keys=True).encode())
    return h.hexdigest()


def features(frames: Frames, batch_size: int = 50, device: str = "cpu",
             loaded: Optional[Loaded] = None) -> np.ndarray:
    """pool3 features (N, 2048) float64 of uint8 RGB frames, in input order.

    ``frames`` is one array (N, H, W, 3) or a list of them (clips of any frame size).
    The network's float32 outputs are stored in float64, as pytorch-fid does.
    ``loaded``: what ``load_model(device)`` returned, to skip finding and hashing the
    weights again."""
    arrays = _as_list(frames)
    model, provenance = loaded or load_model(device)
    return _features(arrays, model, cache_key(arrays, provenance, batch_size, device),
                     batch_size, device)


def _features(arrays: list[np.ndarray], model: torch.nn.Module, key: str, batch_size: int,
              device: str) -> np.ndarray:
    if batch_size < 1:
        raise BadInput(f"Inception features: batch_size must be at least 1, got {batch_size}")
    if key in _recent:
        _recent.move_to_end(key)
        return _recent[key].copy()
    total = sum(len(a) for a in arrays)
    out = np.empty((total, DIMS), dtype=np.float64)
    from tqdm import tqdm
    bar = tqdm(total=total, unit="img", desc="Inception features", file=sys.stderr,
               disable=True if total < PROGRESS_FROM else None)
    start = 0
    with torch.inference_mode():
        for batch in _batches(arrays, batch_size):
            pred = model(to_tensor(batch).to(device))[0]
            if pred.shape[2] != 1 or pred.shape[3] != 1:
                pred = torch.nn.functional.adaptive_avg_pool2d(pred, output_size=(1, 1))
            out[start:start + len(batch)] = pred.squeeze(3).squeeze(2).cpu().numpy()
            start += len(batch)
            bar.update(len(batch))
    bar.close()
    _recent[key] = out
    while len(_recent) > _RECENT_MAX:
        _recent.popitem(last=False)
    return out.copy()


def statistics(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of features, exactly as pytorch-fid computes them."""
    return np.mean(feats, axis=0), np.cov(feats, rowvar=False)


def _cached(path: Path, names: tuple[str, ...]) -> Optional[dict]:
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as f:
            return {n: f[n] for n in names}
    except (OSError, ValueError, KeyError):
        return None                 # a damaged cache entry is recomputed, not trusted


def _store(path: Path, **arrays) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:   # a reader never sees half a file
        np.savez(f, **arrays)


def reference_statistics(frames: Frames, batch_size: int = 50, device: str = "cpu",
                         loaded: Optional[Loaded] = None) -> tuple[np.ndarray, np.ndarray, dict]:
    """(mu, sigma, info) of reference frames, cached under ``$AVATARBENCH_CACHE/fid/``.

    ``info`` says whether the cache was used and which file holds the statistics."""
    arrays = _as_list(frames)
    model, provenance = loaded or load_model(device)
    key = cache_key(arrays, provenance, batch_size, device)
    path = cache_root() / "fid" / f"{key}.npz"
    hit = _cached(path, ("mu", "sigma"))
    if hit is not None:
        return hit["mu"], hit["sigma"], {"cache": "hit", "path": str(path)}
    mu, sigma = statistics(_features(arrays, model, key, batch_size, device))
    _store(path, mu=mu, sigma=sigma)
    return mu, sigma, {"cache": "stored", "path": str(path)}


def reference_features(frames: Frames, batch_size: int = 50, device: str = "cpu",
                       loaded: Optional[Loaded] = None) -> tuple[np.ndarray, dict]:
    """Features of reference frames, cached under ``$AVATARBENCH_CACHE/kid/``.

    Stored as float32, which loses nothing: the network's outputs are float32."""
    arrays = _as_list(frames)
    model, provenance = loaded or load_model(device)
    key = cache_key(arrays, provenance, batch_size, device)
    path = cache_root() / "kid" / f"{key}.npz"
    hit = _cached(path, ("features",))
    if hit is not None:
        return hit["features"].astype(np.float64), {"cache": "hit", "path": str(path)}
    feats = _features(arrays, model, key, batch_size, device)
    _store(path, features=feats.astype(np.float32))
    return feats, {"cache": "stored", "path": str(path)}
