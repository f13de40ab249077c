"""The comparison table of a run: one builder (``build_table``) behind the CLI's ``table``,
the files a run writes and the Python ``make_table``; renderers are in ``render.py``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import pandas as pd

from ..errors import BadInput
from .common import (ARROW, detail, display_value, fallback, fmt_number, metric_meta, ordered,
                     title, unit_text, unstable)

RATIO_UNITS = {"count", "MAC", "MB", "ms"}
DAGGER, DDAGGER = "†", "‡"
NOT_APPLICABLE = ("ground truth", "copies its input")   # skip reasons meaning the metric has nothing to measure


@dataclass
class Column:
    key: str            # metric id; a ratio column: the metric id it compares
    kind: str           # "value" or "ratio"
    title: str          # "Latency"
    detail: str         # "1 thread", "Jetson Nano", ""
    unit: str           # display unit ("est. ms", "M", ""); a ratio: ""
    base_unit: str      # the record's unit (CSV)
    direction: str
    baseline: str = ""
    compares: str = ""  # a ratio column: the unit of the values it compares

    @property
    def name(self) -> str:
        """Plain machine-readable name (CSV)."""
        return f"{self.key}_vs_{self.baseline}" if self.kind == "ratio" else self.key

    @property
    def ratio_word(self) -> str:
        return "speed-up" if self.compares == "ms" else "reduction"

    def header(self) -> str:
        """One-line header (Markdown, HTML)."""
        if self.kind == "ratio":
            return f"{self.title}{', ' + self.detail if self.detail else ''}: {self.ratio_word} vs {self.baseline}"
        unit = f" ({self.unit})" if self.unit else ""
        return f"{self.title}{', ' + self.detail if self.detail else ''}{unit} {ARROW[self.direction]}"


@dataclass
class Cell:
    value: Optional[float] = None   # display units; a ratio: the ratio
    text: str = "—"
    status: str = "ok"              # ok | na | skipped | failed | missing
    note: str = ""                  # footnote number of a skip or failure reason
    marks: str = ""                 # † unstable, ‡ estimated at a fallback precision
    best: bool = False
    raw: Optional[float] = None     # the record's value in its own unit (CSV)
    reason: str = ""


@dataclass
class Table:
    columns: list[Column]
    rows: list[tuple[str, str, list[Cell]]]      # (variant, precision, cells)
    notes: list[str] = field(default_factory=list)       # numbered: "[1] reason"
    marks: list[str] = field(default_factory=list)       # "† ...", "‡ ..."
    details: list[str] = field(default_factory=list)     # provenance, caveats
    baseline: str = ""
    suite: str = ""


def table_options(suite: dict, df: pd.DataFrame) -> dict:
    """Baseline, columns and ratios as the run's suite (run.json's ``suite``) asks; columns
    in suite order, then any other recorded metric."""
    report = suite.get("report", {}) or {}
    recorded = set(df["metric"])
    columns = report.get("columns") or [m.get("id") or m["name"] if isinstance(m, dict) else m
                                        for m in suite.get("metrics", [])]
    columns = [c for c in columns if c in recorded]
    columns += [m for m in dict.fromkeys(df["metric"]) if m not in columns]
    baseline = report.get("baseline")
    return {"baseline": baseline if baseline in set(df["variant"]) else None,
            "columns": columns or None, "ratios": report.get("ratios") or None}


def _ratio(x: float, b: float, direction: str) -> float:
    return b / x if direction == "lower" else x / b


def _ratio_text(unit: str, r: float) -> str:
    if unit == "ms":
        return f"{fmt_number(r)}x faster" if r >= 1 else f"{fmt_number(1 / r)}x slower"
    return f"{fmt_number(r)}x fewer" if r >= 1 else f"{fmt_number(1 / r)}x more"


def build_table(df: pd.DataFrame, baseline: Optional[str] = None, columns: Optional[list[str]] = None,
                ratios: Optional[list[str]] = None, digits: int = 3) -> Table:
    """Rows of cells with their marks and footnotes. ``baseline=None``, ``columns=None`` and
    ``ratios=None`` take what the run's suite asks (``df.attrs["run"]``, set by ``load_run``);
    ``baseline=""`` asks for no ratios."""
    if df.empty:
        raise BadInput("the run has no records yet")
    suite = ((df.attrs.get("run") or {}).get("suite") or {})
    asked = table_options(suite, df)
    ratios = ratios if ratios is not None else (asked["ratios"] if baseline is None else None)
    baseline = asked["baseline"] if baseline is None else (baseline or None)
    variants = ordered(df["variant"])
    metrics = columns or asked["columns"] or ordered(df["metric"])
    unknown = [m for m in metrics if m not in set(df["metric"])]
    if unknown:
        raise BadInput(f"no records for metric(s) {', '.join(unknown)}; "
                       f"recorded: {', '.join(ordered(df['metric']))}")
    if baseline and baseline not in variants:
        raise BadInput(f"baseline '{baseline}' has no records; variants: {', '.join(variants)}")
    if baseline and ratios is None:
        ratios = [m for m in metrics if metric_meta(df, m)["unit"] in RATIO_UNITS]
    ratios = [m for m in (ratios or []) if m in metrics] if baseline else []

    cols: list[Column] = []
    for m in metrics:
        meta = metric_meta(df, m)
        cols.append(Column(m, "value", title(df, m), detail(df, m), unit_text(df, m), meta["unit"] or "",
                           meta["direction"]))
        if m in ratios:
            cols.append(Column(m, "ratio", title(df, m), detail(df, m), "", "ratio", meta["direction"],
                               baseline, meta["unit"] or ""))
    table = Table(cols, [], baseline=baseline or "", suite=str(suite.get("name") or ""))
    first = df.drop_duplicates("variant").set_index("variant")
    lineage = {v: list(first.loc[v, "lineage"] or [v]) for v in variants}
    # reference models (and their casts) are shown but not ranked or compared
    references = {v for v in variants if first.loc[v, "role"] == "reference"}
    ranked = {v for v in variants if not references & set(lineage[v])}
    reasons: dict[str, str] = {}
    flagged: dict[str, list[str]] = {}
    fell_back: dict[tuple, list[str]] = {}     # (precision, used, variants) -> column details
    not_applicable: set[str] = set()
    for v in variants:
        cells = []
        for col in cols:
            x, status, rec = display_value(df, v, col.key)
            why_unstable = unstable(rec) if status == "ok" else ""
            fb = fallback(rec) if status == "ok" else {}
            if col.kind == "value":
                cell = Cell(x, status=status)
                if status == "ok":
                    cell.text, cell.raw = fmt_number(x, digits), float(rec["value"])
                    if why_unstable:
                        cell.marks += DAGGER
                        flagged.setdefault(col.key, []).append((v, why_unstable))
                    if fb:
                        cell.marks += DDAGGER
                        for p, used in fb.items():
                            fell_back.setdefault((col.key, p, used), []).append(v)
                else:
                    why = ""
                    if rec is not None:
                        why = rec.get("reason") or str(rec.get("error") or "").splitlines()[0]
                    if status == "skipped" and why.startswith(NOT_APPLICABLE):
                        cell.status = "na"
                        not_applicable.add(why)
                    elif why:
                        cell.note = reasons.setdefault(why, str(len(reasons) + 1))
                    cell.reason = why
                    cell.text = {"skipped": "skipped", "failed": "failed"}.get(cell.status, "—")
            else:
                cell = Cell(status="na")
                b, bstatus, brec = display_value(df, baseline, col.key)
                if v != baseline and status == "ok" and bstatus == "ok" and x and baseline in lineage[v]:
                    if why_unstable or unstable(brec):
                        cell.marks = DAGGER   # no ratio from an unstable measurement
                    else:
                        r = _ratio(x, b, col.direction)
                        cell = Cell(r, _ratio_text(col.compares, r), raw=r,
                                    marks=DDAGGER if fb or fallback(brec) else "")
            cells.append(cell)
        table.rows.append((v, str(first.loc[v, "precision"]), cells))
    _mark_best(table, ranked)
    table.notes = [f"[{n}] {why}" for why, n in reasons.items()]
    for why in sorted(not_applicable):
        table.notes.append(f"— does not apply ({why})")
    if baseline and ratios:
        table.notes.append(f"ratios against {baseline}, for the variants derived from it; "
                           "— where none is derived")
    for key, who in flagged.items():
        table.marks.append(_unstable_note(key, who, int(((df["metric"] == key) & (df["status"] == "ok")).sum())))
    merged: dict[tuple, list[str]] = {}   # one footnote for the devices that fell back alike
    for (key, p, used), who in fell_back.items():
        merged.setdefault((p, used, tuple(who)), []).append(detail(df, key) or key)
    for (p, used, who), where in merged.items():
        table.marks.append(f"{DDAGGER} estimated at the {used} rate: {', '.join(where)} "
                           f"{'have' if len(where) > 1 else 'has'} no {p} rate "
                           f"({len(who)} variant(s): {', '.join(who)})")
    from .notes import provenance_notes
    table.details = provenance_notes(df, metrics)
    return table


def _unstable_note(key: str, who: list[tuple[str, str]], measured: int) -> str:
    head = f"{DAGGER} {key}: unstable measurement, kept after re-measuring; no ratio is derived from it"
    if len(who) <= 3:
        return head + ": " + "; ".join(f"{v} ({why})" for v, why in who)
    cv = sum("CV " in why for _, why in who)
    load = sum("other processes" in why for _, why in who)
    return (f"{head}: {len(who)} of {measured} variants ({cv} with a CV above the threshold, {load} timed "
            "while other processes used the cores; each record's stats.unstable_reason says which)")


def _mark_best(table: Table, ranked: set[str]) -> None:
    for j, col in enumerate(table.columns):
        if col.kind != "value":
            continue
        vals = [(row[2][j].value, i) for i, row in enumerate(table.rows)
                if row[0] in ranked and row[2][j].status == "ok" and DAGGER not in row[2][j].marks]
        if len(vals) < 2:
            continue
        target = (min if col.direction == "lower" else max)(x for x, _ in vals)
        for x, i in vals:   # ties are all best
            table.rows[i][2][j].best = x == target
