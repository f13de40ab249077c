"""Run folders: run.json (provenance) and records.jsonl, one typed ``Record`` per line.

A record is what a finished job leaves: the cell (variant, metric), its status and value,
and everything that changes the number (options, weights, backend, settings, where it
was measured). Tables, plots and ``load_run`` read records only."""
from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterable, Optional

from .cache import write_atomic

RECORDS = "records.jsonl"
RUN_JSON = "run.json"


STATUSES = ("ok", "skipped", "failed")


@dataclass
class Record:
    """One finished (variant, metric) cell. ``value`` is set when ``status`` is ok;
    ``reason`` says why a cell was skipped, ``error`` why it failed (``bad_input``: the
    failure was the user's input, not the harness)."""
    variant: str
    metric: str
    status: str
    value: Optional[float] = None
    n: int = 0
    metric_name: str = ""
    lineage: list = field(default_factory=list)
    role: str = ""
    family: str = ""
    precision: str = ""
    options: dict = field(default_factory=dict)
    unit: str = ""
    direction: str = ""
    display: dict = field(default_factory=dict)
    suite: str = ""
    suite_hash: str = ""
    device: str = ""
    time: str = ""
    wall_s: float = 0.0
    provenance: dict = field(default_factory=dict)
    stats: Optional[dict] = None
    reason: Optional[str] = None
    error: Optional[str] = None
    bad_input: Optional[bool] = None
    retry: Optional[bool] = None                # skipped for something a user can add
    extra: dict = field(default_factory=dict)   # fields this version does not know, kept

    @classmethod
    def from_dict(cls, d: dict) -> "Record":
        known = {f.name for f in fields(cls)} - {"extra"}
        missing = [k for k in ("variant", "metric", "status") if k not in d]
        if missing:
            raise ValueError(f"not a record: no {', '.join(missing)}")
        return cls(**{k: v for k, v in d.items() if k in known},
                   extra={k: v for k, v in d.items() if k not in known})

    def to_dict(self) -> dict:
        """The JSON form: optional fields that do not apply are left out."""
        d = asdict(self)
        extra = d.pop("extra")
        for k in ("stats", "reason", "error", "bad_input", "retry"):
            if d[k] is None:
                del d[k]
        if not d["metric_name"]:    # records written before metric names were recorded
            del d["metric_name"]
        return {**extra, **d}


def cell_key(rec: dict) -> tuple[str, str]:
    return rec["variant"], rec["metric"]


def append_record(run_dir: Path, record: "Record | dict") -> None:
    """Append one record as one write of one complete line, then fsync.

    A reader never sees half a record unless the process dies inside that write; such a
    torn tail is cut off by ``repair_records`` before the next run appends."""
    if isinstance(record, Record):
        record = record.to_dict()
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


def read_typed(run_dir: str | Path, latest_only: bool = True) -> list[Record]:
    """Records of a run; with ``latest_only`` the last record of each cell wins. A line
    that is not a record is skipped with a warning that names it."""
    path = Path(run_dir) / RECORDS
    if not path.exists():
        return []
    out: list[Record] = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            if not isinstance(raw, dict):
                raise ValueError(f"a {type(raw).__name__}, not a mapping")
            out.append(Record.from_dict(raw))
        except (ValueError, TypeError) as exc:
            print(f"warning: {path}, line {i}: unreadable record skipped ({exc})", file=sys.stderr)
    if latest_only:
        latest = {(r.variant, r.metric): r for r in out}
        out = list(latest.values())
    return out


def write_json_atomic(path: Path, obj: dict) -> None:
    write_atomic(path, json.dumps(obj, indent=2, sort_keys=True, default=str))


def read_run_json(run_dir: str | Path, strict: bool = True) -> dict:
    """The run folder's run.json ({} when there is none). An empty or unreadable one is
    bad input when ``strict`` (a run must not resume on it), else a warning."""
    p = Path(run_dir) / RUN_JSON
    if not p.exists():
        return {}
    try:
        meta = json.loads(p.read_text())
        if not isinstance(meta, dict):
            raise ValueError(f"a {type(meta).__name__}, not a mapping")
        return meta
    except (ValueError, UnicodeDecodeError) as exc:
        msg = (f"{p}: unreadable ({exc}); its records are kept, but a run cannot resume "
               "without it: pass --fresh to start over (the old folder is kept beside it)")
        if strict:
            from .errors import BadInput
            raise BadInput(msg) from None
        print(f"warning: {msg}", file=sys.stderr)
        return {}


def counting(records: Iterable[Record], suite_hash: Optional[str] = None) -> dict[tuple[str, str], Record]:
    """The one rule for which record of a cell counts, shared by resume and the reports:
    the latest one written under ``suite_hash`` (records of another version of the suite
    never count; with no hash, the latest one)."""
    out: dict[tuple[str, str], Record] = {}
    for r in records:
        if suite_hash is None or r.suite_hash == suite_hash:
            out[(r.variant, r.metric)] = r
    return out


def load_run(run_dir: str | Path):
    """The run's records as a pandas DataFrame, one row per cell (latest record wins)."""
    import pandas as pd
    from .errors import BadInput
    run_dir = Path(run_dir)
    if not (run_dir / RECORDS).exists():
        raise BadInput(f"{run_dir} is not a run folder (no {RECORDS})")
    suite_hash = read_run_json(run_dir, strict=False).get("suite_hash")
    recs = [r.to_dict() for r in counting(read_typed(run_dir, latest_only=False), suite_hash).values()]
    cols = ["variant", "metric", "value", "unit", "direction", "status", "precision", "role",
            "lineage", "family", "n", "reason", "error", "wall_s", "suite_hash"]
    df = pd.DataFrame(recs) if recs else pd.DataFrame(columns=cols)
    for c in cols:
        if c not in df.columns:
            df[c] = None
    # the reports take the suite's report settings and the folder to write beside from here
    df.attrs.update(run=read_run_json(run_dir, strict=False), run_dir=str(run_dir))
    return df


def iter_completed(records: Iterable[Record], suite_hash: Optional[str] = None) -> set[tuple[str, str]]:
    """Cells that need no recomputation on resume: those whose counting record is ok, or
    skipped for a reason that adding a file cannot change (failed cells, and cells
    skipped for a missing file, are tried again)."""
    return {k for k, r in counting(records, suite_hash).items()
            if r.status == "ok" or (r.status == "skipped" and not r.retry)}
