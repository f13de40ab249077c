"""Quantization recipes: what a derived variant is made with, validated and hashed."""
from __future__ import annotations

import hashlib
import json
from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ..errors import BadInput, unknown_name

BACKENDS = {
    "pt2e": "PT2E post-training static quantization (torchao X86InductorQuantizer, run by Inductor)",
    "torch": "PyTorch post-training static quantization (torch.ao, FX graph mode)",
    "onnxruntime": "ONNX export run by ONNX Runtime (fp32, or int8 QDQ static)",
    "cast": "a plain cast of every weight and activation (bf16, fp16)",
}
INT8_BACKENDS = ("pt2e", "torch")      # share the INT8 and mixed-precision machinery
PRECISIONS_BY_BACKEND = {"pt2e": ("int8", "mixed"), "torch": ("int8", "mixed"), "onnxruntime": ("fp32", "int8"),
                         "cast": ("bf16", "fp16")}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Calibration(_Strict):
    batches: int = Field(8, ge=1)
    batch_size: int = Field(1, ge=1)
    seed: int = 0


class Mixed(_Strict):
    high: Literal["fp16", "fp32"] = "fp16"   # the precision the sensitive layers keep (the seed's FP16)
    k: Optional[int] = Field(None, ge=0)    # keep this many layers high; None: choose from the sweep
    sweep: list[int] = [0, 1, 2, 4, 8]
    target: float = Field(0.5, gt=0, le=1)  # error <= target x the all-INT8 error ...
    max_latency: float = Field(1.2, gt=0)   # ... and latency <= max_latency x the all-INT8 latency


class Recipe(_Strict):
    backend: str = "pt2e"
    precision: str = "int8"
    per_channel: bool = True
    engine: str = "x86"                     # torch.backends.quantized engine (backend torch)
    fold_bn: bool = True
    subpixel: bool = True                   # ConvTranspose2d rewritten as Conv2d + PixelShuffle
    float_layers: list[str] = []            # layers kept in float whatever the precision
    calibration: Calibration = Calibration()
    mixed: Mixed = Mixed()

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, v):
        if v not in BACKENDS:
            raise ValueError(str(unknown_name("quantization backend", v, BACKENDS)))
        return v

    def check(self, where: str) -> "Recipe":
        allowed = PRECISIONS_BY_BACKEND[self.backend]
        if self.precision not in allowed:
            raise BadInput(f"{where}: backend '{self.backend}' makes precision "
                           f"{' or '.join(allowed)}, not '{self.precision}'")
        if self.backend == "pt2e" and not self.per_channel:
            raise BadInput(f"{where}: backend 'pt2e' quantizes weights per channel "
                           "(X86InductorQuantizer); per_channel: false needs backend torch or onnxruntime")
        return self

    def digest(self) -> str:
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def parse_recipe(raw: dict, where: str) -> Recipe:
    if not isinstance(raw, dict):
        raise BadInput(f"{where}: quantize must be a mapping, got {type(raw).__name__}")
    try:
        return Recipe.model_validate(raw).check(where)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
            msg = err["msg"].removeprefix("Value error, ")
            parts.append(f"quantize.{loc}: {msg}")
        raise BadInput(f"{where}: " + "; ".join(parts)) from None
