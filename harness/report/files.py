"""Write a run's tables and plots into its folder, as its suite's report section asks."""
from __future__ import annotations

from pathlib import Path

from ..errors import BadInput
from ..records import load_run, read_run_json
from .plot import plot_pareto
from .render import make_table


def write_reports(run_dir: Path) -> list[Path]:
    """Write table.md/.tex/.csv and the suite's plots; table.md comes first in the list."""
    df = load_run(run_dir)
    if df.empty:
        return []
    suite = read_run_json(run_dir, strict=False).get("suite", {}) or {}
    written = []
    for fmt, name in (("markdown", "table.md"), ("latex", "table.tex"), ("csv", "table.csv")):
        (run_dir / name).write_text(make_table(df, fmt))   # as `avatarbench table` gives it
        written.append(run_dir / name)
    for spec in (suite.get("report") or {}).get("plots") or []:
        stem = spec.get("name") or f"pareto_{spec['y']}_vs_{spec['x']}"
        try:
            written += plot_pareto(df, spec["x"], spec["y"], run_dir / "plots" / stem)
        except BadInput as exc:  # a plot whose metrics were all skipped is no reason to fail
            print(f"warning: plot {stem} not drawn: {exc}")
    return written
