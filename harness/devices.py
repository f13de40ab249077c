"""Device profiles: named hardware on which latency is measured (or, later, estimated)."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .registry import Registry, current_origin


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    kind: str                     # "measured": run here; "estimated": modelled
    torch_device: str = ""        # for measured profiles: the torch device string
    description: str = ""
    specs: dict = field(default_factory=dict)
    source: str = ""

    def available(self) -> bool:
        if self.torch_device.startswith("cuda"):
            return torch.cuda.is_available()
        return bool(self.torch_device)


devices: Registry[DeviceProfile] = Registry("device")


def register_device(profile: DeviceProfile) -> DeviceProfile:
    return devices.add(profile.name, profile, current_origin())


def _host_cpu() -> DeviceProfile:
    from .metrics.efficiency import host_description
    from .profiling.latency import all_threads
    return DeviceProfile("host-cpu", "measured", "cpu", host_description("cpu"),
                         {"threads": all_threads()}, "detected")


devices.add("host-cpu", _host_cpu(), "harness", builtin=True)
devices.add("cuda", DeviceProfile("cuda", "measured", "cuda",
                                  "the first CUDA GPU of this host, when present",
                                  source="detected at run time"), "harness", builtin=True)
