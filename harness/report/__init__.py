from .plot import plot_pareto
from .render import make_table

__all__ = ["make_table", "plot_pareto"]
