"""What tables and plots share: column order, display scaling, readable names, number
formatting and the marks a cell carries. Records only."""
from __future__ import annotations

import math

import pandas as pd

ARROW = {"lower": "↓", "higher": "↑"}
# Readable names of the shipped metrics; a plugin's metric is shown by its name.
TITLES = {"params": "Params", "size_mb": "Size", "macs": "MACs", "macs_outres": "MACs (out-res.)",
          "latency_ms": "Latency", "latency_ms_remote": "Latency (remote)", "peak_mem_mb": "Peak memory",
          "fid": "FID", "kid": "KID", "lpips": "LPIPS", "lse_d": "LSE-D", "lse_c": "LSE-C",
          "identity": "Identity", "identity_dlib": "Identity (dlib)", "psnr": "PSNR", "ssim": "SSIM",
          "lmd": "LMD"}
WORDS = {"cpu": "CPU", "gpu": "GPU", "nx": "NX", "agx": "AGX", "tx2": "TX2", "pi": "Pi",
         "rtx3090": "RTX 3090", "cuda": "CUDA"}
DIGITS = 3   # significant digits of every number in a table


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
    ok = rows[rows["status"] == "ok"]
    r = (ok if not ok.empty else rows).iloc[0]
    disp = r.get("display") if isinstance(r.get("display"), dict) else {}
    return {"direction": r["direction"], "unit": r["unit"], "scale": float(disp.get("scale", 1.0)),
            "display_unit": disp.get("unit", r["unit"] or "")}


def _ok_rows(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    return df[(df["metric"] == metric) & (df["status"] == "ok")]


def estimated(df: pd.DataFrame, metric: str) -> bool:
    return any(isinstance(p, dict) and p.get("estimated") for p in _ok_rows(df, metric)["provenance"])


def settings_of(rec) -> dict:
    prov = rec.get("provenance") if rec is not None else None
    return (prov.get("settings") or {}) if isinstance(prov, dict) else {}


def device_name(device: str) -> str:
    """``jetson-xavier-nx`` -> ``Jetson Xavier NX``."""
    return " ".join(WORDS.get(w, w.capitalize()) for w in str(device).split("-"))


def title(df: pd.DataFrame, metric: str) -> str:
    rows = df[df["metric"] == metric]
    name = rows.iloc[0].get("metric_name") if not rows.empty and "metric_name" in rows else None
    name = (name if isinstance(name, str) and name else metric).partition("@")[0]
    return TITLES.get(name, name)


def detail(df: pd.DataFrame, metric: str) -> str:
    """What tells this column from others of the same metric: the device of an estimate,
    the threads of a CPU latency, or else the column's own id."""
    ok = _ok_rows(df, metric)
    settings = settings_of(ok.iloc[0]) if not ok.empty else {}
    base = metric.partition("@")[0]
    if "@" in metric:
        return device_name(metric.partition("@")[2])
    if base.startswith("latency_ms") and "threads" in settings:
        dev = str(settings.get("device", "cpu"))
        if dev.startswith("cuda"):
            return "GPU"
        t = settings["threads"]
        return f"{t} thread" + ("s" if t != 1 else "")
    if settings.get("region") in ("face", "mouth"):
        return f"{settings['region']} region"
    rows = df[df["metric"] == metric]
    name = rows.iloc[0].get("metric_name") if not rows.empty and "metric_name" in rows else None
    return metric if isinstance(name, str) and name.partition("@")[0] != base else ""


def unit_text(df: pd.DataFrame, metric: str) -> str:
    """"ms", "est. ms", "M" ... ("" for a unitless score)."""
    unit = metric_meta(df, metric)["display_unit"]
    if estimated(df, metric):
        return f"est. {unit}".strip()
    return unit


def label(df: pd.DataFrame, metric: str, arrow: bool = True) -> str:
    """One-line name: "Latency, 1 thread (ms) ↓", "Latency, Jetson Nano (est. ms) ↓"."""
    d, u = detail(df, metric), unit_text(df, metric)
    text = title(df, metric) + (f", {d}" if d else "") + (f" ({u})" if u else "")
    return text + (f" {ARROW[metric_meta(df, metric)['direction']]}" if arrow else "")


def display_value(df: pd.DataFrame, variant: str, metric: str):
    """(value in display units or None, status, record)."""
    rows = df[(df["variant"] == variant) & (df["metric"] == metric)]
    if rows.empty:
        return None, "missing", None
    r = rows.iloc[-1]
    if r["status"] != "ok" or r["value"] is None or (isinstance(r["value"], float) and math.isnan(r["value"])):
        return None, r["status"], r
    return float(r["value"]) * metric_meta(df, metric)["scale"], "ok", r


def unstable(rec) -> str:
    """The reason a record's measurement is flagged unstable ("" when it is not)."""
    st = rec.get("stats") if rec is not None else None
    if isinstance(st, dict) and st.get("unstable"):
        return str(st.get("unstable_reason") or "unstable")
    return ""


def fallback(rec) -> dict:
    """Precisions an estimate could not use on its device -> the one it used instead."""
    s = settings_of(rec)
    if isinstance(s.get("fallback"), dict):
        return s["fallback"]
    used, p = s.get("precisions"), rec.get("precision") if rec is not None else None
    if used and p in ("bf16", "fp16", "int8") and p not in used and len(used) == 1:
        return {p: used[0]}   # records written before "fallback" was recorded
    return {}


def fmt_number(x: float, digits: int = DIGITS) -> str:
    """``digits`` significant digits (trailing zeros kept); integer parts are never cut."""
    if x == 0 or not math.isfinite(x):
        return "0" if x == 0 else str(x)
    magnitude = math.floor(math.log10(abs(x)))
    decimals = digits - 1 - magnitude
    if decimals <= 0:
        return f"{x:,.0f}"
    text = f"{x:.{decimals}f}"
    if math.floor(math.log10(abs(float(text)))) > magnitude and decimals > 0:   # 9.996 -> 10.00
        text = f"{x:.{decimals - 1}f}"
    return text
