"""Run folders: run.json (provenance) and records.jsonl (one line per cell)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Iterable

RECORDS = "records.jsonl"
RUN_JSON = "run.json"


def cell_key(rec: dict) -> tuple[str, str]:
    return rec["variant"], rec["metric"]


def append_record(run_dir: Path, record: dict) -> None:
    """Append one record as one write of one complete line, then fsync.

    A reader never sees half a record unless the process dies inside that write; such a
    torn tail is cut off by ``repair_records`` before the next run appends."""
    data = (json.dumps(record, sort_keys=True, default=str) + "\n").encode()
    fd = os.open(run_dir / RECORDS, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        os.fsync(fd)
    finally:
        os.close(fd)


def repair_records(run_dir: Path) -> int:
    """Cut a torn last line (no newline: the process died mid-write). Returns bytes cut."""
    path = run_dir / RECORDS
    if not path.exists():
        return 0
    data = path.read_bytes()
    if not data or data.endswith(b"\n"):
        return 0
    keep = data.rfind(b"\n") + 1
    with open(path, "r+b") as f:
        f.truncate(keep)
    return len(data) - keep


def read_records(run_dir: str | Path, latest_only: bool = True) -> list[dict]:
    """Records of a run; with ``latest_only`` the last record of each cell wins."""
    path = Path(run_dir) / RECORDS
    if not path.exists():
        return []
    out: list[dict] = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            print(f"warning: {path}, line {i}: unreadable record skipped", file=sys.stderr)
    if latest_only:
        latest = {cell_key(r): r for r in out}
        out = list(latest.values())
    return out


def write_json_atomic(path: Path, obj: dict) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str))
    os.replace(tmp, path)


def read_run_json(run_dir: str | Path) -> dict:
    p = Path(run_dir) / RUN_JSON
    return json.loads(p.read_text()) if p.exists() else {}


def load_run(run_dir: str | Path):
    """The run's records as a pandas DataFrame, one row per cell (latest record wins)."""
    import pandas as pd
    from .errors import BadInput
    run_dir = Path(run_dir)
    if not (run_dir / RECORDS).exists():
        raise BadInput(f"{run_dir} is not a run folder (no {RECORDS})")
    recs = read_records(run_dir)
    cols = ["variant", "metric", "value", "unit", "direction", "status", "precision", "role",
            "lineage", "family", "n", "reason", "error", "wall_s", "suite_hash"]
    df = pd.DataFrame(recs) if recs else pd.DataFrame(columns=cols)
    for c in cols:
        if c not in df.columns:
            df[c] = None
    # the reports take the suite's report settings and the folder to write beside from here
    df.attrs.update(run=read_run_json(run_dir), run_dir=str(run_dir))
    return df


def iter_completed(records: Iterable[dict]) -> set[tuple[str, str]]:
    """Cells that need no recomputation on resume: ok or skipped (failed cells are retried)."""
    return {cell_key(r) for r in records if r.get("status") in ("ok", "skipped")}
