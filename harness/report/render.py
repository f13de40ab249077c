"""A built table (``table.Table``) as Markdown, LaTeX (booktabs), CSV (wide, or long) or HTML."""
from __future__ import annotations

import csv
import html
import io
import unicodedata
from typing import Optional

import pandas as pd

from ..errors import BadInput
from .common import ARROW, fmt_number
from .table import DAGGER, DDAGGER, Column, Table, build_table

FORMATS = ("markdown", "latex", "csv", "csv-long", "html")
LATEX_MAX_COLUMNS = 6   # data columns per stacked part of a LaTeX table


def render(t: Table, fmt: str, caption: str = "", label: str = "", max_columns=None) -> str:
    if fmt == "csv":
        return _csv_wide(t)
    if fmt == "csv-long":
        return _csv_long(t)
    if fmt == "latex":
        return _latex(t, caption, label, max_columns or LATEX_MAX_COLUMNS)
    parts = _parts(t, max_columns)
    if fmt == "html":
        return "".join(_html(t, p) for p in parts) + "".join(
            f"<p><small>{html.escape(n)}</small></p>\n" for n in _all_notes(t))
    out = []
    for p in parts:
        out += _markdown(t, p) + [""]
    out += [f"- {n}" for n in _all_notes(t)]
    return "\n".join(out).rstrip("\n") + "\n"


def _all_notes(t: Table) -> list[str]:
    return t.marks + t.notes + t.details


def _parts(t: Table, max_columns) -> list[list[int]]:
    """Column indices of each stacked part: whole header groups while they fit, a group
    wider than a part split between its values (a ratio stays beside its value)."""
    idx = list(range(len(t.columns)))
    if not max_columns:
        return [idx]
    units: list[list[int]] = []          # a value column and the ratio after it
    for j in idx:
        if units and t.columns[j].kind == "ratio":
            units[-1].append(j)
        else:
            units.append([j])
    groups: list[list[list[int]]] = []
    for u in units:
        if groups and _top(t, u[0]) and _top(t, u[0]) == _top(t, groups[-1][-1][0]):
            groups[-1].append(u)
        else:
            groups.append([u])
    parts: list[list[int]] = [[]]
    for g in groups:
        width = sum(len(u) for u in g)
        if parts[-1] and len(parts[-1]) + width > max_columns:
            parts.append([])
        for u in g:
            if parts[-1] and len(parts[-1]) + len(u) > max_columns:
                parts.append([])
            parts[-1] += u
    return parts


def _cell_text(t: Table, cell, col: Column, fmt: str) -> str:
    if cell.status in ("skipped", "failed"):
        if fmt == "latex":
            return cell.status + (f"$^{{{cell.note}}}$" if cell.note else "")
        return cell.status + (f" [{cell.note}]" if cell.note else "")
    if cell.status != "ok":
        text = "—"
    elif col.kind == "ratio" and fmt == "latex":
        text = fmt_number(cell.value) + "×"
    else:
        text = cell.text
    if fmt == "latex":
        text = _tex(text) + "".join({DAGGER: r"$^\dagger$", DDAGGER: r"$^\ddagger$"}[m] for m in cell.marks)
        return r"\textbf{" + text + "}" if cell.best else text
    text += cell.marks
    return f"**{text}**" if cell.best and fmt == "markdown" else text


def _markdown(t: Table, cols: list[int]) -> list[str]:
    header = ["variant", "precision"] + [t.columns[j].header() for j in cols]
    out = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * len(cols)) + "|"]
    for v, p, cells in t.rows:
        out.append("| " + " | ".join([v, p] + [_cell_text(t, cells[j], t.columns[j], "markdown")
                                               for j in cols]) + " |")
    return out


def _html(t: Table, cols: list[int]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in
                   ["variant", "precision"] + [t.columns[j].header() for j in cols])
    body = []
    for v, p, cells in t.rows:
        tds = [html.escape(v), html.escape(p)]
        for j in cols:
            text = html.escape(_cell_text(t, cells[j], t.columns[j], "html"))
            tds.append(f"<b>{text}</b>" if cells[j].best else text)
        body.append("<tr>" + "".join(f"<td>{x}</td>" for x in tds) + "</tr>")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(body) + "\n</tbody>\n</table>\n"


# ---- LaTeX -------------------------------------------------------------------------------

def _tex(s: str) -> str:
    out = []
    for ch in str(s):
        out.append({"\\": r"\textbackslash{}", "_": r"\_", "%": r"\%", "&": r"\&", "#": r"\#",
                    "$": r"\$", "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\^{}",
                    "↓": r"$\downarrow$", "↑": r"$\uparrow$", "—": "---", "†": r"\textdagger{}",
                    "‡": r"\textdaggerdbl{}", "×": r"$\times$", "µ": r"$\mu$", "≥": r"$\geq$",
                    "≤": r"$\leq$"}.get(ch, ch))
    # pdflatex knows few Unicode letters: the rest as their closest ASCII
    return unicodedata.normalize("NFKD", "".join(out)).encode("ascii", "ignore").decode()


def _top(t: Table, j: int) -> str:
    """First header row: a metric's title, with its unit where a second row names the detail;
    a ratio sits under the title of the value it compares."""
    col = t.columns[j]
    if col.kind == "ratio":
        prev = t.columns[j - 1] if j and t.columns[j - 1].key == col.key else None
        return _top(t, j - 1) if prev is not None else col.title
    if col.detail:
        unit = f" ({col.unit})" if col.unit else ""
        return f"{col.title}{unit} {ARROW[col.direction]}"
    return col.title


def _bottom(t: Table, j: int) -> str:
    col = t.columns[j]
    if col.kind == "ratio":
        return col.ratio_word
    if col.detail:   # the footnotes name the devices in full
        return col.detail.removeprefix("Jetson ")
    return (f"({col.unit}) " if col.unit else "") + ARROW[col.direction]


def _latex_part(t: Table, cols: list[int]) -> list[str]:
    lines = [r"\begin{tabular}{@{}ll" + "r" * len(cols) + "@{}}", r"\toprule"]
    tops, spans = [], []
    for j in cols:
        if spans and _top(t, j) == tops[-1] and tops[-1]:
            spans[-1][1] += 1
        else:
            tops.append(_top(t, j))
            spans.append([j, 1])
    row1 = ["", ""]
    rules = []
    start = 3
    for text, (_, n) in zip(tops, spans):
        row1.append(_tex(text) if n == 1 else r"\multicolumn{%d}{c}{%s}" % (n, _tex(text)))
        if n > 1:
            rules.append(r"\cmidrule(lr){%d-%d}" % (start, start + n - 1))
        start += n
    lines.append(" & ".join(row1) + r" \\")
    lines += rules
    lines.append(" & ".join(["Variant", "Prec."] + [_tex(_bottom(t, j)) for j in cols]) + r" \\")
    lines.append(r"\midrule")
    for v, p, cells in t.rows:
        lines.append(" & ".join([_tex(v), _tex(p)] + [_cell_text(t, cells[j], t.columns[j], "latex")
                                                    for j in cols]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}"]
    return lines


def _latex(t: Table, caption: str, label: str, max_columns: int) -> str:
    """One table float per part of a wide table (each fits a page on its own); the caption
    and label on each, the footnotes under the last."""
    caption = caption or (f"Results of the {t.suite} suite." if t.suite else "Results.")
    label = label or f"tab:{t.suite or 'results'}"
    parts = _parts(t, max_columns)
    lines = [r"% needs \usepackage{booktabs,graphicx}"]
    for k, cols in enumerate(parts):
        if k:
            lines.append(r"\end{table}")
        cont = f" (part {k + 1} of {len(parts)})" if len(parts) > 1 else ""
        lines += [r"\begin{table}[t]", r"\centering", r"\caption{" + _tex(caption + cont) + "}",
                  r"\label{" + label + (f"-{k + 1}" if k else "") + "}", r"\small",
                  r"\setlength{\tabcolsep}{3pt}"]
        # a part wider than the text is scaled down to the text width (never up)
        part = _latex_part(t, cols)
        lines += [r"\sbox0{" + part[0]] + part[1:-1] + [part[-1] + "}"]
        lines.append(r"\ifdim\wd0>\linewidth\resizebox{\linewidth}{!}{\usebox0}\else\usebox0\fi")
    notes = [_tex(m) for m in t.marks] + [_tex(n) for n in t.notes] + [_tex(d) for d in t.details]
    if notes:
        lines += [r"\par\smallskip", r"\begin{minipage}{\linewidth}\footnotesize\raggedright"]
        lines += [n + r"\par" for n in notes]
        lines.append(r"\end{minipage}")
    lines.append(r"\end{table}")
    return "\n".join(lines) + "\n"


# ---- CSV ---------------------------------------------------------------------------------

def _csv_wide(t: Table) -> str:
    """Plain headers (metric ids), a second row of units, values in the records' own units."""
    flagged = [j for j, c in enumerate(t.columns) if c.kind == "value"
               and any(DAGGER in row[2][j].marks for row in t.rows)]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["variant", "precision"] + [c.name for c in t.columns] +
               [f"{t.columns[j].key}_unstable" for j in flagged])
    w.writerow(["unit", ""] + [c.base_unit for c in t.columns] + ["" for _ in flagged])
    for v, p, cells in t.rows:
        w.writerow([v, p] + ["" if c.raw is None else repr(c.raw) for c in cells] +
                   [str(DAGGER in cells[j].marks).lower() for j in flagged])
    return buf.getvalue()


def _csv_long(t: Table) -> str:
    """One row per cell: variant, precision, metric, value, unit, status, flags, reason."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["variant", "precision", "metric", "value", "unit", "status", "unstable",
                "estimated_at_fallback", "reason"])
    for v, p, cells in t.rows:
        for c, cell in zip(t.columns, cells):
            w.writerow([v, p, c.name, "" if cell.raw is None else repr(cell.raw), c.base_unit, cell.status,
                        str(DAGGER in cell.marks).lower(), str(DDAGGER in cell.marks).lower(), cell.reason])
    return buf.getvalue()


def make_table(df: pd.DataFrame, fmt: str = "markdown", baseline: Optional[str] = None,
               columns: Optional[list[str]] = None, ratios: Optional[list[str]] = None,
               caption: str = "", label: str = "", max_columns: Optional[int] = None,
               digits: int = 3) -> str:
    """Render the run's records (``load_run``) as a comparison table. Without ``baseline``,
    ``columns`` and ``ratios`` it shows what the run's suite asks, as ``avatarbench table``
    does. ``max_columns`` splits a wide table into stacked parts (LaTeX: 8 by default)."""
    if fmt not in FORMATS:
        raise BadInput(f"unknown table format '{fmt}'; one of {', '.join(FORMATS)}")
    return render(build_table(df, baseline, columns, ratios, digits), fmt, caption=caption, label=label,
                  max_columns=max_columns)
