"""Accuracy/cost scatter plots with the Pareto front marked, from run records."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import pandas as pd

from ..errors import BadInput
from .common import display_value, label, metric_meta, ordered

MARKERS = {"fp32": "o", "bf16": "s", "fp16": "D", "int8": "^", "mixed": "P"}
COLORS = {"teacher": "tab:red", "student": "tab:blue", "quantized": "tab:green", "reference": "tab:gray"}


def pareto_front(points: list[tuple[float, float]], x_lower: bool, y_lower: bool) -> list[int]:
    """Indices of points no other point beats on both axes (ties do not dominate)."""
    def better_or_equal(a, b, lower):
        return a <= b if lower else a >= b

    front = []
    for i, (xi, yi) in enumerate(points):
        dominated = any(
            better_or_equal(xj, xi, x_lower) and better_or_equal(yj, yi, y_lower) and (xj, yj) != (xi, yi)
            for j, (xj, yj) in enumerate(points) if j != i)
        if not dominated:
            front.append(i)
    return front


def _wants_log(vals: list[float]) -> bool:
    return min(vals) > 0 and max(vals) / min(vals) > 10


def plot_pareto(df: pd.DataFrame, x: str, y: str, out: Optional[str | Path] = None,
                title: str = "") -> list[Path]:
    """Scatter ``y`` against ``x`` for every variant with both values; mark the Pareto front.
    Writes PNG and SVG (``out`` without suffix, or with either); returns the paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for m in (x, y):
        if m not in set(df["metric"]):
            raise BadInput(f"no records for metric '{m}'; recorded: {', '.join(ordered(df['metric']))}")
    pts, names, recs = [], [], []
    for v in ordered(df["variant"]):
        xv, xs, xr = display_value(df, v, x)
        yv, ys, _ = display_value(df, v, y)
        if xs == "ok" and ys == "ok":
            pts.append((xv, yv))
            names.append(v)
            recs.append(xr)
    if not pts:
        raise BadInput(f"no variant has ok records for both '{x}' and '{y}'")
    xl, yl = metric_meta(df, x)["direction"] == "lower", metric_meta(df, y)["direction"] == "lower"
    front = pareto_front(pts, xl, yl)

    fig, ax = plt.subplots(figsize=(7, 5), dpi=120)
    for (px, py), name, rec in zip(pts, names, recs):
        ax.scatter(px, py, s=60, marker=MARKERS.get(rec["precision"], "o"),
                   color=COLORS.get(rec["role"], "tab:purple"), edgecolor="black", linewidth=0.6, zorder=3)
        below = rec["precision"] != "fp32"  # casts sit on their parent's x: label them below
        ax.annotate(name, (px, py), textcoords="offset points", xytext=(6, -10 if below else 4),
                    fontsize=7)
    fpts = sorted(pts[i] for i in front)
    ax.plot([p[0] for p in fpts], [p[1] for p in fpts], "--", color="black", linewidth=1,
            zorder=2, label="Pareto front")
    ax.scatter([p[0] for p in fpts], [p[1] for p in fpts], s=160, facecolors="none",
               edgecolors="black", linewidth=1.2, zorder=4)
    from matplotlib.ticker import FuncFormatter
    plain = FuncFormatter(lambda v, _: f"{v:g}")
    for axis, vals in ((ax.xaxis, [p[0] for p in pts]), (ax.yaxis, [p[1] for p in pts])):
        if _wants_log(vals):
            (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
            axis.set_major_formatter(plain)
            axis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:g}" if str(v)[0] in "25" else ""))
    ax.set_xlabel(label(df, x))
    ax.set_ylabel(label(df, y))
    ax.set_title(title or f"{y} vs {x}")
    ax.grid(True, which="both", alpha=0.3)
    from matplotlib.lines import Line2D
    handles = [Line2D([], [], linestyle="--", color="black", label="Pareto front")]
    handles += [Line2D([], [], marker="o", linestyle="", color=c, label=r)
                for r, c in COLORS.items() if r in {rec["role"] for rec in recs}]
    handles += [Line2D([], [], marker=mk, linestyle="", color="white", markeredgecolor="black", label=p)
                for p, mk in MARKERS.items() if p in {rec["precision"] for rec in recs}]
    ax.legend(handles=handles, fontsize=7, loc="best")
    fig.tight_layout()
    base = Path(out) if out else Path(f"pareto_{y}_vs_{x}")
    if base.suffix in (".png", ".svg"):
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = [base.with_suffix(".png"), base.with_suffix(".svg")]
    for p in paths:
        fig.savefig(p)
    plt.close(fig)
    return paths
