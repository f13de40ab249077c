"""AvatarBench: benchmark and evaluation harness for compressed talking-face generators."""
__version__ = "0.1.0"

from .errors import BadInput
from .variants import Family, Variant, get_variant, register_family, register_variant

__all__ = ["BadInput", "Family", "Variant", "get_variant", "register_family", "register_variant",
           "__version__"]
