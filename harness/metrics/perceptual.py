"""LPIPS: the lpips package's perceptual distance (AlexNet trunk, v0.1 linear heads)
between each generated frame and its reference frame.

The network is ``lpips.LPIPS(net="alex", version="0.1")`` itself, with the linear heads
that ship in the package. Its AlexNet trunk would normally come from torchvision's
download; here it is built untrained (``pnet_rand=True``, so nothing is fetched) and then
given the canonical ``alexnet-owt-7be5be79.pth`` weights (hash-checked, loaded without
running pickled code), mapped from torchvision's ``features.<i>`` names onto lpips'
``slice<k>.<i>`` names by layer index. Frames enter as ``lpips.im2tensor`` makes them:
uint8 / 127.5 - 1, in [-1, 1]."""
from __future__ import annotations

import threading
import warnings

import numpy as np
import torch

from .. import canonical_weights
from ..canonical_weights import MissingWeights
from ..samples import Clip
from ..errors import BadInput
from ..checkpoints import sha256_of
from .base import Result, register_quality_metric

WEIGHTS_FILE = "alexnet-owt-7be5be79.pth"
NET, VERSION = "alex", "0.1"

_lock = threading.Lock()
_models: dict[tuple, tuple[torch.nn.Module, dict]] = {}


def _heads_file() -> str:
    import inspect
    import os
    import lpips
    return os.path.join(os.path.dirname(inspect.getfile(lpips.LPIPS)), "weights", f"v{VERSION}", f"{NET}.pth")


def trunk_state(model: torch.nn.Module, alexnet_state: dict[str, torch.Tensor], path: str) -> dict:
    """torchvision AlexNet ``features.<i>.<param>`` tensors under lpips' ``slice<k>.<i>.<param>``
    names; every trunk parameter must be found, with its shape."""
    out, missing, wrong = {}, [], []
    for name, target in model.net.state_dict().items():
        _, index, param = name.split(".")
        source = f"features.{index}.{param}"
        if source not in alexnet_state:
            missing.append(source)
        elif alexnet_state[source].shape != target.shape:
            wrong.append(f"{source} {tuple(alexnet_state[source].shape)} vs {tuple(target.shape)}")
        else:
            out[name] = alexnet_state[source]
    if missing or wrong:
        raise BadInput(f"weights {path} do not fit the LPIPS AlexNet trunk: "
                       + "; ".join(filter(None, [missing and f"missing {', '.join(missing)}",
                                                 wrong and f"shape mismatch {', '.join(wrong)}"])))
    return out


def load_model(device: str = "cpu") -> tuple[torch.nn.Module, dict]:
    """lpips.LPIPS(alex, v0.1) with the canonical AlexNet trunk, and the provenance of both
    the trunk and the package's linear heads. Raises ``MissingWeights`` without the trunk."""
    path, provenance = canonical_weights.resolve(WEIGHTS_FILE)
    key = (str(path), provenance["sha256"], provenance["check"], str(device))
    with _lock:
        if key not in _models:
            import lpips
            state, provenance = canonical_weights.load_state(WEIGHTS_FILE)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")      # torchvision's notice about `pretrained`
                model = lpips.LPIPS(net=NET, version=VERSION, pnet_rand=True, verbose=False)
            model.net.load_state_dict(trunk_state(model, state, str(path)), strict=True)
            heads = _heads_file()
            provenance = {**provenance, "heads": {"file": heads, "sha256": sha256_of(heads),
                                                  "package": f"lpips {_lpips_version()}"}}
            _models.clear()
            _models[key] = (model.to(device).eval(), provenance)
    return _models[key]


def _lpips_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("lpips")
    except PackageNotFoundError:
        return "unknown"


def to_tensor(batch: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> float32 (N, 3, H, W) in [-1, 1], rounded as lpips.im2tensor
    rounds (the division happens in float64, then one cast to float32)."""
    x = torch.from_numpy(np.ascontiguousarray(batch)).permute(0, 3, 1, 2).contiguous()
    return (x.to(torch.float64) / 127.5 - 1.0).to(torch.float32)


def distances(model: torch.nn.Module, fake: np.ndarray, real: np.ndarray, batch_size: int = 32,
              device: str = "cpu") -> np.ndarray:
    """LPIPS of each pair of frames (N,) float64."""
    if fake.shape != real.shape:
        raise BadInput(f"LPIPS: generated frames {fake.shape} and reference frames {real.shape} differ in shape")
    out = np.empty(len(fake), dtype=np.float64)
    with torch.inference_mode():
        for start in range(0, len(fake), batch_size):
            a = to_tensor(fake[start:start + batch_size]).to(device)
            b = to_tensor(real[start:start + batch_size]).to(device)
            out[start:start + len(a)] = model(a, b).reshape(-1).cpu().numpy()
    return out


@register_quality_metric(
    "lpips", direction="lower", unit="LPIPS",
    options={"batch_size": 32, "device": "cpu"},
    description="LPIPS (lpips package, AlexNet trunk, v0.1 heads, inputs in [-1, 1]) of each "
                "generated frame against its reference frame, mean over all frames")
def score(clips: list[Clip], options: dict) -> Result:
    batch_size, device = int(options["batch_size"]), str(options["device"])
    if batch_size < 1:
        raise BadInput(f"lpips: batch_size must be at least 1, got {batch_size}")
    settings = {"net": NET, "version": VERSION, "input": "uint8 / 127.5 - 1 (lpips.im2tensor)",
                "spatial": False, "batch_size": batch_size, "device": device,
                "aggregate": "mean over all frames of all clips"}
    backend = f"lpips {_lpips_version()}"
    if not clips:
        raise BadInput("lpips: no clips to score")
    for c in clips:
        c.paired("lpips")
    try:
        model, provenance = load_model(device)
    except MissingWeights as exc:
        return Result(None, retry=True, backend=backend, settings=settings, reason=str(exc))
    settings["weights"] = provenance
    per_clip, values = {}, []
    for c in clips:
        try:
            d = distances(model, c.fake, c.real, batch_size, device)
        except RuntimeError as exc:   # e.g. frames too small for AlexNet's strides
            raise BadInput(f"lpips: clip {c.source or c.name} (frames {c.fake.shape[1:3]}): "
                           f"{str(exc).splitlines()[0]}") from exc
        per_clip[c.name] = float(d.mean())
        values.append(d)
    allv = np.concatenate(values)
    return Result(float(allv.mean()), n=len(allv), stats={"per_clip": per_clip, "std": float(allv.std())},
                  backend=backend, settings=settings)
