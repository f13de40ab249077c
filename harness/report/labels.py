"""Point labels that do not overlap: each label tries offsets around its point, nearest
first, and takes the first whose box meets no other label, no marker and stays inside the
axes; a label placed away from its point gets a leader line."""
from __future__ import annotations

import math

ANGLES = (20, -20, 60, -60, 0, 90, -90, 120, -120, 160, -160, 180,   # degrees, right side first
          40, -40, 75, -75, 105, -105, 140, -140)
RADII = (7, 14, 24, 36, 52, 72, 96, 124, 160, 200, 250, 310, 380)      # pixels
LEADER_FROM = 10     # pixels: labels further out than this get a leader line
PAD = 3              # pixels kept clear around every marker


def _overlap(a, b) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    return w * h if w > 0 and h > 0 else 0.0


def _distance(box, p) -> float:
    dx = max(box[0] - p[0], 0, p[0] - box[2])
    dy = max(box[1] - p[1], 0, p[1] - box[3])
    return math.hypot(dx, dy)


def _box(x, y, w, h, angle):
    """The label's box (x0, y0, x1, y1) in pixels when offset along ``angle`` from (x, y):
    it grows away from the point (left-aligned to the right of it, right-aligned to the left)."""
    c, s = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    x0 = x if c > 0.3 else x - w if c < -0.3 else x - w / 2
    y0 = y if s > 0.3 else y - h if s < -0.3 else y - h / 2
    return (x0, y0, x0 + w, y0 + h)


def place_labels(ax, points, names, marker_px: float, fontsize: float = 7, order=None):
    """Annotate ``points`` (data coordinates) with ``names``; returns the text artists.
    ``order`` (indices) says who chooses first (the Pareto front, say)."""
    fig = ax.figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    inside = (frame.x0 + 2, frame.y0 + 2, frame.x1 - 2, frame.y1 - 2)
    px = [tuple(ax.transData.transform(p)) for p in points]
    m = marker_px + PAD
    taken = [(x - m, y - m, x + m, y + m) for x, y in px]
    to_pt = 72.0 / fig.dpi
    texts = [None] * len(points)
    for i in (order if order is not None else range(len(points))):
        probe = ax.text(0, 0, names[i], fontsize=fontsize, transform=None)
        ext = probe.get_window_extent(renderer)
        probe.remove()
        w, h = ext.width + 2, ext.height + 2
        best = None
        for r in RADII:
            for ang in ANGLES:
                ax_, ay = px[i][0] + r * math.cos(math.radians(ang)), px[i][1] + r * math.sin(math.radians(ang))
                box = _box(ax_, ay, w, h, ang)
                out = (max(0, inside[0] - box[0]) + max(0, box[2] - inside[2]) +
                       max(0, inside[1] - box[1]) + max(0, box[3] - inside[3]))
                # overlaps and leaving the axes rule; being read as another point's label
                # only breaks ties (in a tight cluster every spot is nearer to someone else)
                hits = [_overlap(box, t) for t in taken]
                cost = sum(1e4 + a for a in hits if a > 0) + out * 1e6
                own = _distance(box, px[i])
                cost += sum(1.0 for j, q in enumerate(px) if j != i and _distance(box, q) < own)
                if best is None or cost < best[0]:
                    best = (cost, r, ang, box, ax_, ay)
                if cost == 0:
                    break
            if best[0] == 0 or (best[0] < 1e4 and r >= 52):
                break
        _, r, a, box, ax_, ay = best
        taken.append(box)
        c, s = math.cos(math.radians(a)), math.sin(math.radians(a))
        ha = "left" if c > 0.3 else "right" if c < -0.3 else "center"
        va = "bottom" if s > 0.3 else "top" if s < -0.3 else "center"
        arrow = dict(arrowstyle="-", color="0.45", linewidth=0.6, shrinkA=0, shrinkB=marker_px * to_pt) \
            if r > LEADER_FROM else None
        texts[i] = ax.annotate(names[i], points[i], xytext=((ax_ - px[i][0]) * to_pt, (ay - px[i][1]) * to_pt),
                               textcoords="offset points", ha=ha, va=va, fontsize=fontsize,
                               arrowprops=arrow, zorder=6)
    return texts
