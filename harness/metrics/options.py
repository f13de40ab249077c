"""Typed, ranged metric options, checked when a suite (or ``score --option``) is read,
so a mistyped value is bad input before anything runs, not a failure deep in a cell.

A metric declares specs for the options that need more than their default's type
(``schema=``); common names (batch_size, device, threads, rounds ...) share one spec;
any other option takes the type of its default."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Optional

from ..errors import BadInput


@dataclass(frozen=True)
class Option:
    kind: str                       # int, number, str, bool, choice, threads, device
    min: Optional[float] = None
    max: Optional[float] = None
    choices: tuple = ()


COMMON = {
    "batch_size": Option("int", 1, 4096), "device": Option("device"), "threads": Option("threads"),
    "warmup": Option("int", 0, 10_000), "warmup_s": Option("number", 0, 600),
    "rounds": Option("int", 1, 10_000), "reps": Option("int", 1, 100_000),
    "runs": Option("int", 1, 100_000), "seed": Option("int", 0, 2**32 - 1),
}


def spec_for(name: str, default: Any, schema: dict) -> Option:
    if name in schema:
        return schema[name]
    if name in COMMON:
        return COMMON[name]
    if isinstance(default, bool):
        return Option("bool")
    if isinstance(default, int):
        return Option("int")
    if isinstance(default, float):
        return Option("number")
    return Option("str")


def _range(value, spec: Option) -> str:
    if spec.min is not None and value < spec.min:
        return f"at least {spec.min:g}"
    if spec.max is not None and value > spec.max:
        return f"at most {spec.max:g}"
    return ""


def check_option(metric: str, name: str, value: Any, spec: Option, where: str) -> Any:
    """The value, checked (and an int given for a number made a float); else BadInput."""
    def bad(expected: str) -> BadInput:
        return BadInput(f"{where}: metric '{metric}' option {name}={value!r}: expected {expected}")
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if spec.kind == "int":
        if not is_int:
            raise bad("a whole number")
        if _range(value, spec):
            raise bad(f"a whole number {_range(value, spec)}")
    elif spec.kind == "number":
        if not (is_int or isinstance(value, float)) or value != value:
            raise bad("a number")
        if _range(value, spec):
            raise bad(f"a number {_range(value, spec)}")
        value = float(value)
    elif spec.kind == "bool":
        if not isinstance(value, bool):
            raise bad("true or false")
    elif spec.kind == "choice":
        if value not in spec.choices:
            raise bad("one of " + ", ".join(map(str, spec.choices)))
    elif spec.kind == "threads":
        if value != "all" and not (is_int and 1 <= value <= 1024):
            raise bad("'all' or a whole number of threads of at least 1")
    elif spec.kind == "device":
        if not isinstance(value, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", value):
            raise bad("cpu, cuda or cuda:N")
        if value.startswith("cuda"):
            import torch
            index = int(value.partition(":")[2] or 0)
            if not torch.cuda.is_available() or index >= torch.cuda.device_count():
                raise bad(f"a device this host has ({torch.cuda.device_count()} CUDA device(s) here)")
    elif not isinstance(value, str):
        raise bad("text")
    return value
