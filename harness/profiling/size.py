import io

import torch
from torch import nn


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def serialized_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(state_dict)`` at the model's own dtypes (buffers included)."""
    buf = io.BytesIO()
    torch.save(model.state_dict(), buf)
    return buf.getbuffer().nbytes
