"""What tables and plots share: column order, display scaling, labels. Records only."""
from __future__ import annotations

import math

import pandas as pd

ARROW = {"lower": "↓", "higher": "↑"}


def ordered(values) -> list:
    seen, out = set(), []
    for v in values:
        if v not in seen:
            seen.add(v)
            out.append(v)
    return out


def metric_meta(df: pd.DataFrame, metric: str) -> dict:
    rows = df[df["metric"] == metric]
    if rows.empty:
        return {"direction": "lower", "unit": "", "scale": 1.0, "display_unit": ""}
    r = rows.iloc[0]
    disp = r.get("display") if isinstance(r.get("display"), dict) else {}
    return {"direction": r["direction"], "unit": r["unit"], "scale": float(disp.get("scale", 1.0)),
            "display_unit": disp.get("unit", r["unit"] or "")}


def estimated(df: pd.DataFrame, metric: str) -> bool:
    rows = df[(df["metric"] == metric) & (df["status"] == "ok")]
    return any(isinstance(p, dict) and p.get("estimated") for p in rows["provenance"])


def label(df: pd.DataFrame, metric: str, arrow: bool = True) -> str:
    """Column label: name, display unit ("est." when the numbers are estimates), arrow."""
    m = metric_meta(df, metric)
    est = "est. " if estimated(df, metric) else ""
    unit = f" ({est}{m['display_unit']})" if m["display_unit"] else (" (est.)" if est else "")
    return f"{metric}{unit}" + (f" {ARROW[m['direction']]}" if arrow else "")


def display_value(df: pd.DataFrame, variant: str, metric: str):
    """(value in display units or None, status, record)."""
    rows = df[(df["variant"] == variant) & (df["metric"] == metric)]
    if rows.empty:
        return None, "missing", None
    r = rows.iloc[-1]
    if r["status"] != "ok" or r["value"] is None or (isinstance(r["value"], float) and math.isnan(r["value"])):
        return None, r["status"], r
    return float(r["value"]) * metric_meta(df, metric)["scale"], "ok", r


def fmt_number(x: float) -> str:
    ax = abs(x)
    if ax == 0:
        return "0"
    if ax >= 1000:
        return f"{x:,.0f}"
    if ax >= 100:
        return f"{x:.1f}"
    if ax >= 10:
        return f"{x:.2f}"
    if ax >= 1:
        return f"{x:.3f}"
    return f"{x:.3g}"
