"""AvatarBench: benchmark and evaluation harness for compressed talking-face generators.

Public API (plugins and baselines use only this)::

    register_variant, register_family, register_metric, register_suite, register_device,
    get_variant, run_suite, load_run, make_table, plot_pareto
"""
__version__ = "0.1.0"

from .errors import BadInput
from .variants import Family, Variant, get_variant, register_family, register_variant
from .metrics import Cell, Metric, Result, register_metric
from .suite import register_suite
from .devices import DeviceProfile, register_device
from .results import load_run
from .runner import run_suite
from .report import make_table, plot_pareto

__all__ = ["BadInput", "Cell", "DeviceProfile", "Family", "Metric", "Result", "Variant",
           "get_variant", "load_run", "make_table", "plot_pareto", "register_device",
           "register_family", "register_metric", "register_suite", "register_variant",
           "run_suite", "__version__"]
