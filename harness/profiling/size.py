import io

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def serialized_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(state_dict)`` at the model's own dtypes (buffers included), or
    the model's own ``serialized_bytes()`` where it has one (an ONNX Runtime session: its file)."""
    own = getattr(model, "serialized_bytes", None)
    if callable(own):
        return int(own())
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes
