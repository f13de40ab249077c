"""Accuracy/cost scatter plots with the Pareto front marked, from run records."""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import pandas as pd

from ..errors import BadInput
from .common import display_value, label, metric_meta, ordered, title, detail, unstable
from .labels import place_labels

MARKERS = {"fp32": "o", "bf16": "s", "fp16": "D", "int8": "^", "mixed": "P"}
COLORS = {"teacher": "tab:red", "student": "tab:blue", "quantized": "tab:green", "reference": "tab:gray"}
DRAW_ORDER = {"quantized": 0, "reference": 1, "student": 2, "teacher": 3}   # the teacher on top
CASTS = ("bf16", "fp16")
LEGEND = ("outside", "none", "best", "upper left", "upper right", "lower left", "lower right",
          "center left", "center right", "upper center", "lower center", "center")
FORMATS = ("png", "svg", "pdf")


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


def log_ticks(lo: float, hi: float) -> list[float]:
    """1-2-5 ticks over at most two decades, else every decade (every other beyond six)."""
    k0, k1 = math.floor(math.log10(lo)), math.ceil(math.log10(hi))
    steps = (1, 2, 5) if hi / lo <= 150 else (1,)
    ticks = [m * 10.0 ** k for k in range(k0, k1 + 1) for m in steps]
    ticks = [float(f"{t:.12g}") for t in ticks if lo <= t <= hi]
    if k1 - k0 > 6:
        ticks = ticks[::2]
    return ticks


def _color_role(df: pd.DataFrame, rec) -> str:
    """A cast (NAME@bf16) takes its parent's role: the marker says its precision."""
    role, lineage = rec["role"], list(rec.get("lineage") or [])
    if role == "quantized" and rec["precision"] in CASTS and len(lineage) > 1:
        parent = df[df["variant"] == lineage[-2]]
        if not parent.empty:
            return str(parent.iloc[0]["role"])
        try:
            from ..variants import get_variant
            return get_variant(lineage[-2]).role
        except Exception:   # a plugin's variant that is not loaded here
            return role
    return role


def draw_pareto(df: pd.DataFrame, x: str, y: str, *, title_text: Optional[str] = None,
                xlabel: Optional[str] = None, ylabel: Optional[str] = None, legend: str = "outside",
                size: tuple[float, float] = (7.0, 4.6), dpi: int = 150):
    """The figure, its axes and the label artists (for inspection); ``plot_pareto`` saves it."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    for m in (x, y):
        if m not in set(df["metric"]):
            raise BadInput(f"no records for metric '{m}'; recorded: {', '.join(ordered(df['metric']))}")
    if legend not in LEGEND:
        raise BadInput(f"legend position '{legend}': one of {', '.join(LEGEND)}")
    pts, names, recs, flagged = [], [], [], []
    for v in ordered(df["variant"]):
        xv, xs, xr = display_value(df, v, x)
        yv, ys, yr = display_value(df, v, y)
        if xs == "ok" and ys == "ok":
            pts.append((xv, yv))
            names.append(v)
            recs.append(xr)
            flagged.append(bool(unstable(xr) or unstable(yr)))
    if not pts:
        raise BadInput(f"no variant has ok records for both '{x}' and '{y}'")
    # reference rows with no x (the ground truth, a floor): a level line for the y metric
    refs = []
    for v in ordered(df["variant"]):
        yv, ys, yr = display_value(df, v, y)
        if v not in names and ys == "ok" and display_value(df, v, x)[1] != "ok" \
                and yr is not None and yr.get("role") == "reference":
            refs.append((v, yv))
    xl, yl = metric_meta(df, x)["direction"] == "lower", metric_meta(df, y)["direction"] == "lower"
    stable = [i for i in range(len(pts)) if not flagged[i]]
    # an unstable measurement is drawn hollow and takes no part in the front
    front = [stable[i] for i in pareto_front([pts[i] for i in stable], xl, yl)]

    fig, ax = plt.subplots(figsize=size, dpi=dpi)
    roles = [_color_role(df, r) for r in recs]
    for i in sorted(range(len(pts)), key=lambda i: DRAW_ORDER.get(roles[i], 1)):
        color = COLORS.get(roles[i], "tab:purple")
        ax.scatter(*pts[i], s=55, marker=MARKERS.get(recs[i]["precision"], "o"),
                   facecolors="white" if flagged[i] else color, edgecolors=color if flagged[i] else "black",
                   linewidths=1.4 if flagged[i] else 0.6, zorder=3 + DRAW_ORDER.get(roles[i], 1) / 10)
    if front:
        fpts = sorted(pts[i] for i in front)
        if len(fpts) > 1:
            ax.plot([p[0] for p in fpts], [p[1] for p in fpts], "--", color="black", linewidth=0.9, zorder=2)
        ax.scatter([p[0] for p in fpts], [p[1] for p in fpts], s=150, facecolors="none",
                   edgecolors="black", linewidth=1.0, zorder=2.5)
    for v, yv in refs:
        ax.axhline(yv, linestyle=":", color="tab:gray", linewidth=1.0, zorder=1)
        ax.annotate(v, xy=(0.995, yv), xycoords=("axes fraction", "data"), ha="right", va="bottom",
                    fontsize=7, color="dimgray")
    for axis, vals, set_scale in ((ax.xaxis, [p[0] for p in pts], ax.set_xscale),
                                  (ax.yaxis, [p[1] for p in pts] + [r[1] for r in refs], ax.set_yscale)):
        if _wants_log(vals):
            set_scale("log")
            lo, hi = min(vals) / 1.35, max(vals) * 1.35
            (ax.set_xlim if axis is ax.xaxis else ax.set_ylim)(lo, hi)
            axis.set_major_locator(FixedLocator(log_ticks(lo, hi)))
            axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            axis.set_minor_formatter(NullFormatter())
        else:
            span = (max(vals) - min(vals)) or abs(max(vals)) or 1.0
            (ax.set_xlim if axis is ax.xaxis else ax.set_ylim)(min(vals) - 0.08 * span, max(vals) + 0.08 * span)
    ax.set_xlabel(xlabel if xlabel is not None else label(df, x))
    ax.set_ylabel(ylabel if ylabel is not None else label(df, y))
    name = lambda m: title(df, m) + (f" ({detail(df, m)})" if detail(df, m) else "")  # noqa: E731
    ax.set_title(title_text if title_text is not None else f"{name(y)} vs {name(x)}")
    ax.grid(True, which="major", alpha=0.3)
    # the handle shows what marks the front: the ring, and the dashed line when there are two
    # points or more (a single-point front has no line)
    handles = [Line2D([], [], linestyle="--" if len(front) > 1 else "", marker="o", markersize=9,
                      markerfacecolor="none", markeredgecolor="black", color="black", linewidth=0.9,
                      label="Pareto front" if len(front) > 1 else "Pareto front\n(one point)")] if front else []
    handles += [Line2D([], [], marker="o", linestyle="", color=c, markeredgecolor="black", label=r)
                for r, c in COLORS.items() if r in roles]
    handles += [Line2D([], [], marker=mk, linestyle="", color="white", markeredgecolor="black", label=p)
                for p, mk in MARKERS.items() if p in {r["precision"] for r in recs}]
    if refs:
        handles.append(Line2D([], [], linestyle=":", color="tab:gray", label="reference row\n(no model)"))
    if any(flagged):
        handles.append(Line2D([], [], marker="o", linestyle="", color="white", markeredgecolor="tab:gray",
                              markeredgewidth=1.4, label="unstable\nmeasurement"))
    if legend == "outside":
        ax.legend(handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    elif legend != "none":
        ax.legend(handles=handles, fontsize=7, loc=legend)
    fig.tight_layout()
    order = front + [i for i in range(len(pts)) if i not in front]
    texts = place_labels(ax, pts, names, marker_px=4.5 * dpi / 72, order=order)
    return fig, ax, texts


def plot_pareto(df: pd.DataFrame, x: str, y: str, out: Optional[str | Path] = None, title: str = "",
                *, xlabel: Optional[str] = None, ylabel: Optional[str] = None, legend: str = "outside",
                size: tuple[float, float] = (7.0, 4.6), formats: tuple[str, ...] = ("png", "svg"),
                dpi: int = 150) -> list[Path]:
    """Scatter ``y`` against ``x`` for every variant with both values; mark the Pareto front.
    Writes one file per format to ``out`` (a path without suffix; default: the run's
    ``plots/pareto_Y_vs_X``, beside the records ``load_run`` read); returns the paths."""
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise BadInput(f"plot format(s) {', '.join(bad) or '(none)'}: one of {', '.join(FORMATS)}")
    if out is None:
        run_dir = df.attrs.get("run_dir")
        if not run_dir:
            raise BadInput("plot_pareto: these records carry no run folder (load them with load_run), "
                           "so give out=PATH")
        out = Path(run_dir) / "plots" / f"pareto_{y}_vs_{x}"
    import matplotlib.pyplot as plt
    fig, _, _ = draw_pareto(df, x, y, title_text=title or None, xlabel=xlabel, ylabel=ylabel, legend=legend,
                            size=size, dpi=dpi)
    base = Path(out)
    if base.suffix.lstrip(".") in FORMATS:
        base = base.with_suffix("")
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = [base.with_name(f"{base.name}.{f}") for f in formats]
    for p in paths:
        fig.savefig(p, bbox_inches="tight")
    plt.close(fig)
    return paths
