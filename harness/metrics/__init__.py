"""Metric registry; importing this package registers the built-in metrics."""
from . import efficiency, remote  # noqa: F401
from .base import Cell, Metric, Result, get_metric, metrics, register_metric

__all__ = ["Cell", "Metric", "Result", "get_metric", "metrics", "register_metric"]
