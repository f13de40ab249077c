"""Paper-style comparison tables (Markdown, LaTeX, CSV, HTML) from run records."""
from __future__ import annotations

from typing import Optional

import pandas as pd

from ..errors import BadInput
from .common import display_value, fmt_number, label, metric_meta, ordered

RATIO_UNITS = {"count", "MAC", "MB", "ms"}
FORMATS = ("markdown", "latex", "csv", "html")


def _ratio_word(unit: str, ratio: float) -> str:
    if unit == "ms":
        return f"{ratio:.1f}x faster" if ratio >= 1 else f"{1 / ratio:.1f}x slower"
    return f"{ratio:.1f}x fewer" if ratio >= 1 else f"{1 / ratio:.1f}x more"


def build_frame(df: pd.DataFrame, baseline: Optional[str] = None, columns: Optional[list[str]] = None,
                ratios: Optional[list[str]] = None):
    """The table as rows of cells, plus footnotes. Returns (header, rows, best, notes, raw)."""
    variants = ordered(df["variant"])
    metrics = columns or ordered(df["metric"])
    unknown = [m for m in metrics if m not in set(df["metric"])]
    if unknown:
        raise BadInput(f"no records for metric(s) {', '.join(unknown)}; "
                       f"recorded: {', '.join(ordered(df['metric']))}")
    if baseline and baseline not in variants:
        raise BadInput(f"baseline '{baseline}' has no records; variants: {', '.join(variants)}")
    if baseline and ratios is None:
        ratios = [m for m in metrics if metric_meta(df, m)["unit"] in RATIO_UNITS]
    ratios = [m for m in (ratios or []) if m in metrics] if baseline else []

    header = ["variant", "precision"]
    for m in metrics:
        header.append(label(df, m))
        if m in ratios:
            header.append(f"{m} vs {baseline}")
    notes, rows, raw = [], [], []
    reasons: dict[str, str] = {}
    best: dict[int, set] = {}
    values: dict[int, list] = {}
    col_metric: dict[int, str] = {}
    precision = {v: df[df["variant"] == v]["precision"].iloc[0] for v in variants}
    role = {v: df[df["variant"] == v]["role"].iloc[0] for v in variants}
    lineage = {v: list(df[df["variant"] == v]["lineage"].iloc[0] or [v]) for v in variants}
    references = {v for v in variants if role[v] == "reference"}
    # reference models (and their casts) are shown but not ranked or compared
    ranked = {v for v in variants if not references & set(lineage[v])}
    for i, v in enumerate(variants):
        row, raw_row = [v, str(precision[v])], [v, str(precision[v])]
        col = 2
        for m in metrics:
            x, status, rec = display_value(df, v, m)
            col_metric[col] = m
            if status == "ok":
                row.append(fmt_number(x))
                raw_row.append(x)
                if v in ranked:
                    values.setdefault(col, []).append((x, i))
            else:
                why = ""
                if rec is not None:
                    why = rec.get("reason") or str(rec.get("error") or "").splitlines()[0]
                mark = {"skipped": "skipped", "failed": "failed"}.get(status, "—")
                if why:
                    n = reasons.setdefault(why, str(len(reasons) + 1))
                    mark += f" [{n}]"
                row.append(mark)
                raw_row.append(None)
            col += 1
            if m in ratios:
                b, bstatus, _ = display_value(df, baseline, m)
                if status == "ok" and bstatus == "ok" and x and baseline in lineage[v]:
                    r = b / x if metric_meta(df, m)["direction"] == "lower" else x / b
                    row.append(_ratio_word(metric_meta(df, m)["unit"], r))
                    raw_row.append(r)
                else:
                    row.append("—")
                    raw_row.append(None)
                col += 1
        rows.append(row)
        raw.append(raw_row)
    for col, vals in values.items():
        direction = metric_meta(df, col_metric[col])["direction"]
        target = (min if direction == "lower" else max)(x for x, _ in vals)
        if len(vals) > 1:  # ties are all best
            best[col] = {i for x, i in vals if x == target}
    for why, n in reasons.items():
        notes.append(f"[{n}] {why}")
    notes += _provenance_notes(df, metrics)
    return header, rows, best, notes, raw


def _provenance_notes(df: pd.DataFrame, metrics: list[str]) -> list[str]:
    notes = []
    for m in metrics:
        ok = df[(df["metric"] == m) & (df["status"] == "ok")]
        if ok.empty:
            continue
        prov = ok.iloc[0].get("provenance") or {}
        settings = prov.get("settings") or {}
        if prov.get("measured_on"):
            kind = "estimated for" if prov.get("estimated") else "measured on"
            extra = ", ".join(f"{k} {settings[k]}" for k in ("threads", "batch_size", "device") if k in settings)
            notes.append(f"{m}: {kind} {prov['measured_on']}" + (f" ({extra})" if extra else "")
                         + (f", per-layer roofline over {ok.iloc[0]['n']} layers" if prov.get("estimated")
                            else ", median of %s calls" % ok.iloc[0]["n"] if m.startswith("latency") else ""))
        elif prov.get("backend"):
            notes.append(f"{m}: {prov['backend']}")
        notes += _quality_caveats(m, ok)
    random = df[[str((p or {}).get("weights", "")).startswith("random init") if isinstance(p, dict) else False
                 for p in df["provenance"]]]
    if not random.empty:
        # a record scored on generated samples says how they were made
        scored = random["provenance"].map(lambda p: isinstance(p, dict) and "generation" in p)
        quality = random[scored & (random["status"] == "ok")]
        if quality.empty:
            notes.append("weights: random initialisation (efficiency metrics do not depend on weight values)")
        else:
            names = ", ".join(sorted(set(quality["variant"]) - {"ground-truth"}))
            notes.append(f"weights: random initialisation for {names}: their quality scores "
                         "describe untrained generators, not the published models")
    unverified = sorted({w.get("file", "?") for p in df["provenance"] if isinstance(p, dict)
                         for w in _weights_of(p) if w.get("check") == "unverified"})
    if unverified:
        notes.append("weights not verified against their canonical hash: " + ", ".join(unverified))
    data = {str(p["generation"].get("data")) for p in df["provenance"]
            if isinstance(p, dict) and isinstance(p.get("generation"), dict)}
    if data:
        notes.append("data: " + "; ".join(sorted(data)))
    return notes


def _quality_caveats(metric: str, ok: pd.DataFrame) -> list[str]:
    """What a quality number in the table does not say by itself: a small-sample warning,
    clips left out because the generator left no detectable face."""
    out = []
    stats = [(r["variant"], r.get("stats") if isinstance(r.get("stats"), dict) else {})
             for _, r in ok.iterrows()]
    warnings = sorted({st["warning"] for _, st in stats if st.get("warning")})
    out += [f"{metric}: {w}" for w in warnings[:2]]
    for variant, st in stats:
        short = st.get("clips_too_short") or []
        if short:
            out.append(f"{metric}: {variant}: {len(short)} clip(s) shorter than one sync window left out")
        faceless = st.get("clips_without_face") or {}
        if faceless:
            out.append(f"{metric}: {variant}: {len(faceless)} clip(s) with no detectable face in the "
                       f"generated frames left out ({', '.join(list(faceless)[:3])})")
    return out


def _weights_of(prov: dict) -> list[dict]:
    w = (prov.get("settings") or {}).get("weights")
    return [x for x in (w if isinstance(w, list) else [w]) if isinstance(x, dict)]


def _latex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("_", r"\_"), ("%", r"\%"), ("&", r"\&"), ("#", r"\#"),
                 ("↓", r"$\downarrow$"), ("↑", r"$\uparrow$"), ("—", "--")):
        s = s.replace(a, b)
    return s


def make_table(df: pd.DataFrame, fmt: str = "markdown", baseline: Optional[str] = None,
               columns: Optional[list[str]] = None, ratios: Optional[list[str]] = None) -> str:
    """Render the run's records (``load_run``) as a comparison table."""
    if fmt not in FORMATS:
        raise BadInput(f"unknown table format '{fmt}'; one of {', '.join(FORMATS)}")
    if df.empty:
        raise BadInput("the run has no records yet")
    header, rows, best, notes, raw = build_frame(df, baseline, columns, ratios)
    if fmt == "csv":
        return pd.DataFrame(raw, columns=header).to_csv(index=False)
    if fmt == "html":
        body = pd.DataFrame(rows, columns=header).to_html(index=False, escape=True)
        return body + "".join(f"<p><small>{n}</small></p>\n" for n in notes)
    if fmt == "latex":
        lines = [r"\begin{table}[t]", r"\centering", r"\small",
                 r"\begin{tabular}{ll" + "r" * (len(header) - 2) + "}", r"\toprule",
                 " & ".join(_latex_escape(h) for h in header) + r" \\", r"\midrule"]
        for i, row in enumerate(rows):
            cells = [_latex_escape(c) for c in row]
            for col, who in best.items():
                if i in who:
                    cells[col] = r"\textbf{" + cells[col] + "}"
            lines.append(" & ".join(cells) + r" \\")
        lines += [r"\bottomrule", r"\end{tabular}",
                  r"\caption{" + _latex_escape("; ".join(notes)) + "}", r"\end{table}"]
        return "\n".join(lines) + "\n"
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * (len(header) - 2)) + "|"]
    for i, row in enumerate(rows):
        cells = list(row)
        for col, who in best.items():
            if i in who:
                cells[col] = f"**{cells[col]}**"
        out.append("| " + " | ".join(cells) + " |")
    if notes:
        out.append("")
        out += [f"- {n}" for n in notes]
    return "\n".join(out) + "\n"
