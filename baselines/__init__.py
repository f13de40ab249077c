"""Shipped model variants, written against the public harness API only."""
from . import syncnet, wav2lip  # noqa: F401  (importing registers the variants)
