"""The machine this process runs on: its name for records, and checks of a torch device."""
from __future__ import annotations

import platform

import torch

from .errors import BadInput


def host_description(device: str) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    name = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{name} (host CPU)"


def check_device(device: str) -> None:
    if device != "cpu" and not device.startswith("cuda"):
        raise BadInput(f"--device {device}: expected cpu or cuda[:N]")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f"--device {device}: no CUDA device is available on this host")
