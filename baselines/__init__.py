"""Shipped model variants, written against the public harness API only."""
from . import ground_truth, syncnet, wav2lip  # noqa: F401  (importing registers the variants)
