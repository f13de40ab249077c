"""Shipped model variants, written against the public harness API only."""
from . import ground_truth, syncnet, wav2lip, wav2lip_disc  # noqa: F401  (importing registers the variants)
