"""Tables and plots are derived from records alone."""
import csv
import io

import pandas as pd
import pytest

from conftest import cli
from harness import BadInput, load_run, make_table, plot_pareto
from harness.report.plot import pareto_front
from harness.records import append_record


def _rec(variant, metric, value, *, unit="count", direction="lower", scale=1.0, dunit="",
         role="student", precision="fp32", lineage=None, status="ok", **extra):
    return {"variant": variant, "metric": metric, "value": value, "unit": unit, "direction": direction,
            "display": {"scale": scale, "unit": dunit}, "role": role, "precision": precision,
            "lineage": lineage or ["wav2lip", variant] if variant != "wav2lip" else ["wav2lip"],
            "status": status, "provenance": {"backend": "test"}, **extra}


@pytest.fixture
def run_dir(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    for r in [
        _rec("wav2lip", "params", 36_298_035, scale=1e-6, dunit="M", role="teacher"),
        _rec("wav2lip", "latency_ms", 40.0, unit="ms", dunit="ms", role="teacher"),
        _rec("wav2lip", "lse_c", 7.8, unit="", direction="higher", role="teacher"),
        _rec("nota-wav2lip", "params", 1_258_143, scale=1e-6, dunit="M"),
        _rec("nota-wav2lip", "latency_ms", 4.0, unit="ms", dunit="ms"),
        _rec("nota-wav2lip", "lse_c", None, unit="", direction="higher", status="skipped",
             reason="syncnet_v2.model not found"),
        _rec("wav2lip-syncnet", "params", 16_435_072, scale=1e-6, dunit="M", role="reference",
             lineage=["wav2lip-syncnet"]),
        _rec("wav2lip-syncnet", "latency_ms", 1.0, unit="ms", dunit="ms", role="reference",
             lineage=["wav2lip-syncnet"]),
    ]:
        append_record(d, r)
    return d


def test_load_run_is_a_dataframe(run_dir):
    df = load_run(run_dir)
    assert isinstance(df, pd.DataFrame) and len(df) == 8
    assert set(df["variant"]) == {"wav2lip", "nota-wav2lip", "wav2lip-syncnet"}


def test_markdown_arrows_ratios_best_and_skip_reason(run_dir):
    md = make_table(load_run(run_dir), "markdown", baseline="wav2lip")
    header = md.splitlines()[0]
    assert "Params (M) ↓" in header and "Latency (ms) ↓" in header and "LSE-C ↑" in header
    nota = next(line for line in md.splitlines() if line.startswith("| nota-wav2lip "))
    assert "28.9x fewer" in nota and "10.0x faster" in nota and "**1.26**" in nota
    assert "skipped [1]" in nota and "[1] syncnet_v2.model not found" in md
    sync = next(line for line in md.splitlines() if line.startswith("| wav2lip-syncnet "))
    assert "**" not in sync and "faster" not in sync   # references are shown, not ranked


def test_latex_bolds_best_and_escapes(run_dir):
    tex = make_table(load_run(run_dir), "latex")
    assert r"\textbf{1.26}" in tex and r"\textbf{4.00}" in tex
    assert r"\textbf{7.80}" not in tex  # the only ok value of its column is not ranked
    assert "LSE-C" in tex and r"$\uparrow$" in tex and r"\toprule" in tex
    assert r"\textbf{1.00}" not in tex   # the reference's 1 ms is not the best


def test_csv_has_plain_headers_a_units_row_and_numbers(run_dir):
    """Headers are metric ids (no arrows, no units); the second row gives each column's
    unit; values are the records' own, unrounded."""
    rows = list(csv.DictReader(io.StringIO(make_table(load_run(run_dir), "csv", baseline="wav2lip"))))
    assert list(rows[0]) == ["variant", "precision", "params", "params_vs_wav2lip", "latency_ms",
                             "latency_ms_vs_wav2lip", "lse_c"]
    assert rows[0] == {"variant": "unit", "precision": "", "params": "count", "params_vs_wav2lip": "ratio",
                       "latency_ms": "ms", "latency_ms_vs_wav2lip": "ratio", "lse_c": ""}
    nota = next(r for r in rows if r["variant"] == "nota-wav2lip")
    assert float(nota["params"]) == 1_258_143
    assert float(nota["params_vs_wav2lip"]) == pytest.approx(36_298_035 / 1_258_143)
    assert nota["lse_c"] == ""   # skipped
    long = list(csv.DictReader(io.StringIO(make_table(load_run(run_dir), "csv-long"))))
    cell = next(r for r in long if r["variant"] == "nota-wav2lip" and r["metric"] == "lse_c")
    assert cell["status"] == "skipped" and cell["reason"] == "syncnet_v2.model not found"
    assert all("↓" not in k and "(" not in k for k in long[0])


def test_unknown_baseline_or_column(run_dir):
    with pytest.raises(BadInput, match="baseline 'wav2lp'"):
        make_table(load_run(run_dir), baseline="wav2lp")
    r = cli("table", run_dir, "--columns", "fid")
    assert r.returncode == 2 and "no records for metric(s) fid" in r.stderr
    r = cli("table", run_dir.parent / "nothing")
    assert r.returncode == 2 and "not a run folder" in r.stderr


def test_table_cli_formats(run_dir):
    for fmt in ("markdown", "latex", "csv", "html"):
        r = cli("table", run_dir, "--format", fmt, "--baseline", "wav2lip")
        assert r.returncode == 0, r.stderr
        assert "nota-wav2lip" in r.stdout


def test_pareto_front_respects_directions():
    pts = [(1, 5), (2, 2), (3, 1), (3, 3), (4, 4)]
    assert pareto_front(pts, True, True) == [0, 1, 2]
    assert pareto_front(pts, True, False) == [0]
    assert pareto_front([(1, 1), (2, 3), (3, 2)], True, False) == [0, 1]
    assert pareto_front([(1, 1), (1, 1)], True, True) == [0, 1]


def test_plot_writes_png_and_svg(run_dir, tmp_path):
    paths = plot_pareto(load_run(run_dir), "params", "latency_ms", tmp_path / "p")
    assert [p.suffix for p in paths] == [".png", ".svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "nota-wav2lip" in paths[1].read_text()
    r = cli("plot", run_dir, "--x", "params", "--y", "fid")
    assert r.returncode == 2 and "fid" in r.stderr
