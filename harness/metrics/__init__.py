"""Metric registry; importing this package registers the built-in metrics."""
from . import efficiency, remote_latency  # noqa: F401
from . import fid, identity, image, kid, lmd, lse, perceptual  # noqa: F401  (quality metrics)
from .base import (Cell, Consumes, Metric, Result, get_metric, metrics, register_metric,
                   register_quality_metric)

__all__ = ["Cell", "Consumes", "Metric", "Result", "get_metric", "metrics", "register_metric",
           "register_quality_metric"]
