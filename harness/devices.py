"""Device profiles: named hardware on which latency is measured (the host, a CUDA GPU)
or estimated (edge devices, from the roofline numbers of a profile)."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import torch

from .errors import BadInput
from .safe_yaml import load_yaml
from .host import host_description
from .profiling.latency import all_threads
from .registry import Registry, current_origin

SHIPPED = Path(__file__).with_name("device_profiles.yaml")
REQUIRED = ("description", "peak_gops", "bandwidth_gbs", "efficiency", "launch_overhead_us", "sources")
OPTIONAL = ("kind", "fixed_overhead_us", "calibration")
ROOFLINE_PRECISIONS = ("fp32", "bf16", "fp16", "int8")
EFFICIENCY_FIELDS = ("compute", "memory", "small_layer_exponent", "full_eff_gflop")


@dataclass(frozen=True)
class Roofline:
    """The numbers a per-layer roofline needs, each with its source."""
    peak_gops: dict            # precision -> dense GOP/s (a MAC is 2 ops)
    bandwidth_gbs: float
    compute_eff: float
    memory_eff: float
    launch_overhead_us: float
    sources: dict
    fixed_overhead_us: float = 0.0   # once per inference (engine launch, copies, sync)
    # compute efficiency of small layers: compute_eff x (flops / full_eff_flops) ** exponent
    # below full_eff_flops, compute_eff above it; exponent 0 is the plain roofline
    small_layer_exponent: float = 0.0
    full_eff_flops: float = 0.0

    def compute_eff_at(self, flops: float) -> float:
        """The compute efficiency of a layer doing ``flops`` operations."""
        from .profiling.estimate import small_layer_efficiency
        return float(small_layer_efficiency(self.compute_eff, flops, self.small_layer_exponent,
                                            self.full_eff_flops))

    def peak_for(self, precision: str) -> tuple[float, str]:
        """(GOP/s, the precision whose peak applies): a precision the device lacks runs at
        the next wider one it has (int8 -> fp16 -> fp32), as TensorRT falls back."""
        order = {"int8": ["int8", "fp16", "bf16", "fp32"], "fp16": ["fp16", "bf16", "fp32"],
                 "bf16": ["bf16", "fp16", "fp32"], "fp32": ["fp32"]}[precision]
        for p in order:
            if p in self.peak_gops:
                return float(self.peak_gops[p]), p
        raise BadInput(f"device profile has no peak_gops for {precision} or fp32")


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    kind: str                     # "measured": run here; "estimated": modelled
    torch_device: str = ""        # for measured profiles: the torch device string
    description: str = ""
    specs: dict = field(default_factory=dict)
    source: str = ""
    roofline: Optional[Roofline] = None
    calibration: dict = field(default_factory=dict)   # fitted numbers and their data, if any

    @property
    def basis(self) -> str:
        """How the estimator's efficiencies and overheads were set: fitted or assumed."""
        if self.kind == "measured":
            return "measured here"
        if self.calibration:
            return "calibrated: " + "; ".join(
                f"{p} fit to {len(c.get('networks', []))} published latencies" for p, c in self.calibration.items())
        return "assumed (not fitted)"

    def available(self) -> bool:
        if self.torch_device.startswith("cuda"):
            return torch.cuda.is_available()
        return bool(self.torch_device)

    def roofline_model(self) -> Roofline:
        """The roofline numbers; the host's are measured and fitted on first use."""
        if self.roofline is not None:
            return self.roofline
        if self.name == "host-cpu":
            from .profiling.host_roofline import host_roofline
            return Roofline(**host_roofline())
        raise BadInput(f"device '{self.name}' has no roofline numbers to estimate latency with; "
                       f"profiles with them: {', '.join(d.name for d in devices if d.roofline)}")


devices: Registry[DeviceProfile] = Registry("device", on_first_use=lambda: load_user_devices())


def register_device(profile: DeviceProfile) -> DeviceProfile:
    return devices.add(profile.name, profile, current_origin())


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise BadInput(f"{where}: expected a positive number, got {value!r}")
    return float(value)


def profile_from_dict(name: str, raw, where: str) -> DeviceProfile:
    """A device profile from its YAML mapping; every missing or bad field is named."""
    if not isinstance(raw, dict):
        raise BadInput(f"{where}: device '{name}' must be a mapping of fields")
    missing = [f for f in REQUIRED if f not in raw]
    if missing:
        raise BadInput(f"{where}: device '{name}' is missing field(s) {', '.join(missing)} "
                       f"(each profile needs {', '.join(REQUIRED)})")
    unknown = sorted(set(raw) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise BadInput(f"{where}: device '{name}' has unknown field(s) {', '.join(unknown)}")
    peaks = raw["peak_gops"]
    if not isinstance(peaks, dict) or "fp32" not in peaks:
        raise BadInput(f"{where}: device '{name}': peak_gops needs at least fp32 (GOP/s per precision)")
    for p in peaks:
        if p not in ROOFLINE_PRECISIONS:
            raise BadInput(f"{where}: device '{name}': peak_gops.{p} is not one of "
                           f"{', '.join(ROOFLINE_PRECISIONS)}")
    eff = raw["efficiency"]
    if not isinstance(eff, dict) or {"compute", "memory"} - set(eff):
        raise BadInput(f"{where}: device '{name}': efficiency needs compute and memory (fractions)")
    unknown_eff = sorted(set(eff) - set(EFFICIENCY_FIELDS))
    if unknown_eff:
        raise BadInput(f"{where}: device '{name}': efficiency has unknown field(s) {', '.join(unknown_eff)} "
                       f"(known: {', '.join(EFFICIENCY_FIELDS)})")
    if ("small_layer_exponent" in eff) != ("full_eff_gflop" in eff):
        raise BadInput(f"{where}: device '{name}': efficiency.small_layer_exponent and "
                       "efficiency.full_eff_gflop go together")
    exponent = eff.get("small_layer_exponent", 0)
    if isinstance(exponent, bool) or not isinstance(exponent, (int, float)) or not 0 <= exponent <= 2:
        raise BadInput(f"{where}: device '{name}': efficiency.small_layer_exponent must be a number "
                       f"from 0 to 2, got {exponent!r}")
    full_flops = (_number(eff["full_eff_gflop"], f"{where}: device '{name}': efficiency.full_eff_gflop") * 1e9
                  if "full_eff_gflop" in eff else 0.0)
    sources = raw["sources"]
    if not isinstance(sources, dict):
        raise BadInput(f"{where}: device '{name}': sources must map each field to where its number comes from")
    missing_src = [f for f in ("peak_gops", "bandwidth_gbs", "efficiency", "launch_overhead_us")
                   if not sources.get(f)]
    if missing_src:
        raise BadInput(f"{where}: device '{name}': sources lacks {', '.join(missing_src)} "
                       "(every number needs its source)")
    if "fixed_overhead_us" in raw and not sources.get("fixed_overhead_us"):
        raise BadInput(f"{where}: device '{name}': sources lacks fixed_overhead_us (every number needs its source)")
    calibration = raw.get("calibration") or {}
    if not isinstance(calibration, dict) or any(not isinstance(c, dict) or not c.get("data")
                                                for c in calibration.values()):
        raise BadInput(f"{where}: device '{name}': calibration must map a precision to its fit, "
                       "each naming its data")
    fixed = raw.get("fixed_overhead_us", 0)
    if fixed != 0:
        fixed = _number(fixed, f"{where}: device '{name}': fixed_overhead_us")
    roof = Roofline({p: _number(v, f"{where}: device '{name}': peak_gops.{p}") for p, v in peaks.items()},
                    _number(raw["bandwidth_gbs"], f"{where}: device '{name}': bandwidth_gbs"),
                    _number(eff["compute"], f"{where}: device '{name}': efficiency.compute"),
                    _number(eff["memory"], f"{where}: device '{name}': efficiency.memory"),
                    _number(raw["launch_overhead_us"], f"{where}: device '{name}': launch_overhead_us"),
                    dict(sources), float(fixed), float(exponent), full_flops)
    return DeviceProfile(name, "estimated", "", str(raw["description"]), {}, str(where), roof, calibration)


def load_device_file(path: str | Path) -> list[DeviceProfile]:
    """Register every profile in a YAML file (top-level keys starting with '_' are YAML
    anchors, not devices)."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"device file not found: {path}")
    raw = load_yaml(path, "device file")
    if not isinstance(raw, dict):
        raise BadInput(f"device file {path}: expected a mapping of device name -> fields")
    out = [profile_from_dict(name, fields, str(path)) for name, fields in raw.items()
           if not str(name).startswith("_")]
    for d in out:
        devices.add(d.name, d, str(path), builtin=path == SHIPPED)
    return out


def load_user_devices() -> None:
    """``AVATARBENCH_DEVICES``: a YAML file or a folder of them (os.pathsep separates several)."""
    for part in filter(None, os.environ.get("AVATARBENCH_DEVICES", "").split(os.pathsep)):
        p = Path(part)
        for f in (sorted(p.glob("*.y*ml")) if p.is_dir() else [p]):
            load_device_file(f)


def _host_cpu() -> DeviceProfile:
    return DeviceProfile("host-cpu", "measured", "cpu", host_description("cpu"),
                         {"threads": all_threads()}, "detected; roofline numbers measured on first use")


devices.add("host-cpu", _host_cpu(), "harness", builtin=True)
devices.add("cuda", DeviceProfile("cuda", "measured", "cuda",
                                  "the first CUDA GPU of this host, when present",
                                  source="detected at run time"), "harness", builtin=True)
load_device_file(SHIPPED)
