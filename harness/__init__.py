"""AvatarBench: benchmark and evaluation harness for compressed talking-face generators.

Public API (plugins and baselines use only this)::

    register_variant, register_family, register_metric, register_quality_metric,
    register_suite, register_device, register_loss, get_variant, run_suite, load_run,
    make_table, plot_pareto

Importing ``harness`` loads what registration needs and nothing above it: ``run_suite``,
``load_run``, ``make_table`` and ``plot_pareto`` are imported on first use, so a plugin
or baseline that registers a model does not pull in the runner or the reports.
"""
from .version import __version__
from .errors import BadInput
from .registry import add_builtin_source
from .variants import Family, Materialized, Variant, register_family, register_variant
from .derive import get_variant
from .metrics import Cell, Consumes, Metric, Result, register_metric, register_quality_metric
from .devices import DeviceProfile, register_device
from .train.losses import register_loss

# what ships with the harness registers the way a plugin does, on first look-up
add_builtin_source("harness.families.lipsync")
add_builtin_source("baselines")

_LAZY = {"run_suite": "runner", "load_run": "records", "make_table": "report",
         "plot_pareto": "report", "register_suite": "suite"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'harness' has no attribute {name!r}")


__all__ = ["BadInput", "Cell", "Consumes", "DeviceProfile", "Family", "Materialized", "Metric",
           "Result", "Variant", "get_variant", "load_run", "make_table", "plot_pareto",
           "register_device", "register_family", "register_loss", "register_metric", "register_quality_metric",
           "register_suite", "register_variant", "run_suite", "__version__"]
