"""SyncNet ("S" of syncnet_python) and a converter for its ``syncnet_v2.model`` file.

The definition below keeps syncnet_python's module names, so its state dict has exactly
the keys of ``syncnet_python.SyncNetModel.S`` and the official weights load unchanged.

``syncnet_v2.model`` is a pickle (a state dict, or, as some copies are, a whole pickled
module). Unpickling a module normally imports and runs whatever the pickle names, so the
converter loads it with torch's ``weights_only`` unpickler and lets through only inert
stand-ins for the classes the file is expected to mention; anything else is refused. The
result is cached as a plain state dict and read back with ``weights_only=True``."""
from __future__ import annotations

import functools
import pickle
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..cache import atomic_path, cache_root
from ..canonical_weights import register_converter
from ..errors import BadInput
from ..checkpoints import check_fit, read_state_dict, sha256_of

EMBEDDING = 1024


def _conv_bn_relu(conv: nn.Module, channels: int, bn=nn.BatchNorm2d) -> list[nn.Module]:
    return [conv, bn(channels), nn.ReLU(inplace=True)]


def _audio_trunk() -> nn.Sequential:
    """MFCC window (1, 13, 20) -> (512, 1, 1)."""
    conv = lambda cin, cout, **kw: nn.Conv2d(cin, cout, kernel_size=(3, 3), padding=(1, 1), **kw)
    layers = (_conv_bn_relu(conv(1, 64, stride=(1, 1)), 64)
              + [nn.MaxPool2d(kernel_size=(1, 1), stride=(1, 1))]
              + _conv_bn_relu(conv(64, 192, stride=(1, 1)), 192)
              + [nn.MaxPool2d(kernel_size=(3, 3), stride=(1, 2))]
              + _conv_bn_relu(conv(192, 384), 384)
              + _conv_bn_relu(conv(384, 256), 256)
              + _conv_bn_relu(conv(256, 256), 256)
              + [nn.MaxPool2d(kernel_size=(3, 3), stride=(2, 2))]
              + [nn.Conv2d(256, 512, kernel_size=(5, 4), padding=(0, 0)), nn.BatchNorm2d(512), nn.ReLU()])
    return nn.Sequential(*layers)


def _lip_trunk() -> nn.Sequential:
    """Five face crops (3, 5, 224, 224) -> (512, 1, 1, 1)."""
    bn3 = nn.BatchNorm3d
    flat = lambda cin, cout: nn.Conv3d(cin, cout, kernel_size=(1, 3, 3), padding=(0, 1, 1))
    layers = (_conv_bn_relu(nn.Conv3d(3, 96, kernel_size=(5, 7, 7), stride=(1, 2, 2), padding=0), 96, bn3)
              + [nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2))]
              + _conv_bn_relu(nn.Conv3d(96, 256, kernel_size=(1, 5, 5), stride=(1, 2, 2),
                                        padding=(0, 1, 1)), 256, bn3)
              + [nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1))]
              + _conv_bn_relu(flat(256, 256), 256, bn3)
              + _conv_bn_relu(flat(256, 256), 256, bn3)
              + _conv_bn_relu(flat(256, 256), 256, bn3)
              + [nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2))]
              + _conv_bn_relu(nn.Conv3d(256, 512, kernel_size=(1, 6, 6), padding=0), 512, bn3))
    return nn.Sequential(*layers)


def _head(out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, out))


class S(nn.Module):
    """syncnet_python's SyncNet: a lip stream and an audio stream into one 1024-d space."""

    def __init__(self, num_layers_in_fc_layers: int = EMBEDDING):
        super().__init__()
        self.netcnnaud = _audio_trunk()
        self.netfcaud = _head(num_layers_in_fc_layers)
        self.netfclip = _head(num_layers_in_fc_layers)
        self.netcnnlip = _lip_trunk()

    def forward_aud(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 13, 20) MFCC windows -> (N, 1024)."""
        return self.netfcaud(self.netcnnaud(x).flatten(1))

    def forward_lip(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, 5, 224, 224) BGR crops in 0..255 -> (N, 1024)."""
        return self.netfclip(self.netcnnlip(x).flatten(1))


# ---------------------------------------------------------------- restricted loading

class PickledStandIn:
    """Inert placeholder for a class a pickle names: it only receives the pickled
    ``__dict__`` (no ``__setstate__``, no methods that run on load)."""
    pickled_name = ""
    dump_patches = False    # read by torch's legacy loader when it compares saved source


def _stand_in(name: str) -> type:
    return type(name.rpartition(".")[2], (PickledStandIn,), {"pickled_name": name})


def _no_backend():
    """Old PyTorch pickled modules with a ``_backend`` made by calling this; it carries
    no data, so the stand-in returns nothing."""
    return None


_NN_CLASSES = {
    "container": ["Sequential"],
    "conv": ["Conv2d", "Conv3d"],
    "batchnorm": ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"],
    "activation": ["ReLU"],
    "pooling": ["MaxPool2d", "MaxPool3d"],
    "linear": ["Linear"],
}
_MODEL_NAMES = ["SyncNetModel.S", "syncnet_python.SyncNetModel.S", "__main__.S"]


@functools.lru_cache(maxsize=1)
def _stand_ins() -> tuple[tuple[Any, str], ...]:
    names = list(_MODEL_NAMES)
    for mod, classes in _NN_CLASSES.items():
        names += [f"torch.nn.modules.{mod}.{c}" for c in classes]
    pairs = [(_stand_in(n), n) for n in names]
    pairs.append((_no_backend, "torch.nn.backends.thnn._get_thnn_function_backend"))
    return tuple(pairs)


def allowed_globals() -> list[tuple[Any, str]]:
    """(stand-in, name) pairs for everything syncnet_v2.model may legitimately name.
    Tensors, storages, OrderedDict and set are already allowed by torch itself."""
    return list(_stand_ins())


def _refused_global(exc: Exception) -> str:
    text = str(exc)
    m = (re.search(r"GLOBAL (\S+)", text) or re.search(r"unrecognized function (\S+)", text)
         or re.search(r"global '([^']+)'", text))
    return m.group(1) if m else text.strip().splitlines()[0] if text.strip() else type(exc).__name__


class _RefusedBuild(pickle.UnpicklingError):
    pass


class _RestrictedUnpickler(pickle._Unpickler):
    """Resolves only torch's own weights-only allow-list (tensor rebuild functions,
    storages, dtypes, OrderedDict, set) and the stand-ins; every other global is refused
    before anything is called. Used for PyTorch's legacy (non-zip) format, whose pickled
    modules torch's weights-only loader does not accept.

    BUILD, pickle's way of setting attributes, is the other way a pickle can act: applied
    to an allow-listed class it would rewrite that class (its name, module, flags torch's
    loader reads). Here BUILD only fills the ``__dict__`` of a stand-in *instance* (a
    pickled layer's parameters and children); on anything else it is refused. This is the
    pure-Python unpickler, whose opcode table can be changed."""
    dispatch = dict(pickle._Unpickler.dispatch)

    def _load_build(self):
        state = self.stack.pop()
        inst = self.stack[-1]
        if not isinstance(inst, PickledStandIn) or not isinstance(state, dict) \
                or not all(isinstance(k, str) for k in state):
            what = inst.__name__ if isinstance(inst, type) else type(inst).__name__
            raise _RefusedBuild(f"it sets attributes on {what}, which only pickled layers may have")
        inst.__dict__.update(state)

    dispatch[pickle.BUILD[0]] = _load_build

    def find_class(self, module: str, name: str):
        import _compat_pickle
        # Python 2 names (``__builtin__.set``), mapped as pickle's own find_class does
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        full = f"{module}.{name}"
        allowed = _legacy_allowed()
        if full in allowed:
            return allowed[full]
        raise pickle.UnpicklingError(f"global '{full}' is not allowed")


def _legacy_allowed() -> dict[str, Any]:
    """torch's own weights-only allow-list plus the stand-ins."""
    from torch import _weights_only_unpickler as wo
    return {**wo._get_allowed_globals(), **{n: obj for obj, n in _stand_ins()}}


class _RestrictedPickle:
    """The two names ``torch.load(pickle_module=...)`` uses, both restricted."""
    Unpickler = _RestrictedUnpickler

    @staticmethod
    def load(file, **kw):
        return _RestrictedUnpickler(file, **kw).load()


def restricted_load(path: Path) -> Any:
    """Unpickle ``path`` allowing only tensors, plain containers and the stand-ins.

    Zip-format files go through ``torch.load(weights_only=True)`` with the stand-ins
    allow-listed; legacy-format files through the same allow-list in a restricted
    ``pickle.Unpickler`` (``find_class`` is the only way a pickle reaches a callable)."""
    import warnings
    import zipfile
    try:
        if zipfile.is_zipfile(path):
            with torch.serialization.safe_globals(allowed_globals()):
                return torch.load(path, map_location="cpu", weights_only=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")     # "couldn't retrieve source code" of stand-ins
            return torch.load(path, map_location="cpu", weights_only=False,
                              pickle_module=_RestrictedPickle)
    except _RefusedBuild as exc:
        raise BadInput(f"weights {path}: refusing to load it; {exc}: a SyncNet checkpoint holds "
                       "tensors and layers, nothing that changes code") from exc
    except pickle.UnpicklingError as exc:
        raise BadInput(f"weights {path}: refusing to load it; it names the global "
                       f"'{_refused_global(exc)}', which is not part of a SyncNet checkpoint and "
                       f"could run code when unpickled") from exc
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, AttributeError,
            TypeError, IndexError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BadInput(f"weights {path}: cannot read it as a PyTorch pickle ({type(exc).__name__}: "
                       f"{first})") from exc


def _walk(obj: Any, prefix: str, out: dict) -> None:
    """Flatten a rebuilt module tree the way ``nn.Module.state_dict`` names it."""
    state = getattr(obj, "__dict__", {})
    skip = set(state.get("_non_persistent_buffers_set") or ())
    for name, value in (state.get("_parameters") or {}).items():
        if value is not None:
            out[prefix + name] = value.detach().clone() if isinstance(value, torch.Tensor) else value
    for name, value in (state.get("_buffers") or {}).items():
        if value is not None and name not in skip:
            out[prefix + name] = value.detach().clone() if isinstance(value, torch.Tensor) else value
    for name, child in (state.get("_modules") or {}).items():
        if child is not None:
            _walk(child, f"{prefix}{name}.", out)


def _as_state_dict(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    if isinstance(obj, PickledStandIn):
        out: dict = OrderedDict()
        _walk(obj, "", out)
    elif isinstance(obj, dict):
        if isinstance(obj.get("state_dict"), dict):
            obj = obj["state_dict"]
        out = OrderedDict((k.decode() if isinstance(k, bytes) else k, v) for k, v in obj.items())
    else:
        raise BadInput(f"weights {path}: expected a SyncNet module or state dict, got {type(obj).__name__}")
    for strip in ("module.", "__S__."):
        if out and all(k.startswith(strip) for k in out):
            out = OrderedDict((k[len(strip):], v) for k, v in out.items())
    bad = [k for k, v in out.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise BadInput(f"weights {path}: entries that are not tensors: {', '.join(bad[:5])}")
    return out


def check_against_model(state: dict[str, torch.Tensor], path: Path) -> dict[str, torch.Tensor]:
    """Same keys and shapes as ``S().state_dict()``; BatchNorm counters that old PyTorch
    did not save are filled with 0 (they do not affect evaluation)."""
    expected = S().state_dict()
    state = OrderedDict(state)
    for k, v in expected.items():
        if k not in state and k.endswith("num_batches_tracked"):
            state[k] = torch.zeros_like(v)
    check_fit(state, expected, f"weights {path} do not fit syncnet_python's SyncNet (S)")
    return OrderedDict((k, state[k].to(v.dtype).contiguous()) for k, v in expected.items())


def converted_path(path: Path, digest: str) -> Path:
    return cache_root() / "weights" / f"syncnet_v2-{digest[:12]}.pt"


def convert_syncnet_v2(path: str | Path) -> dict[str, torch.Tensor]:
    """``syncnet_v2.model`` as a plain state dict with the keys of ``S().state_dict()``.

    Converted once per file content, cached under ``$AVATARBENCH_CACHE/weights/``, and
    read back from there with ``weights_only=True``."""
    path = Path(path)
    cached = converted_path(path, sha256_of(path))
    if cached.is_file():
        try:
            return check_against_model(read_state_dict(cached), cached)
        except BadInput:
            cached.unlink(missing_ok=True)     # a stale or damaged cache entry: convert again
    state = check_against_model(_as_state_dict(restricted_load(path), path), path)
    with atomic_path(cached) as tmp:
        torch.save(state, tmp)
    return state


def build(state: dict[str, torch.Tensor], device: str = "cpu") -> S:
    model = S()
    model.load_state_dict(state, strict=True)
    return model.to(device).eval()


register_converter("syncnet_v2.model", convert_syncnet_v2)
