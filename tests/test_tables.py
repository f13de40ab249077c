"""The comparison table: one builder behind the CLI and make_table, flags and footnotes,
significant digits, LaTeX that compiles (where a LaTeX engine is installed) and is
well-formed (everywhere)."""
import csv
import io
import re
import shutil
import subprocess

import pytest

from conftest import cli
from harness import load_run, make_table
from harness.cli import main
from harness.report.common import fmt_number
from harness.records import append_record, write_json_atomic

SUITE = {"name": "tiny", "metrics": ["params", "latency_ms", "latency_ms@jetson-nano", "lse_c"],
         "report": {"baseline": "wav2lip", "ratios": ["params", "latency_ms", "latency_ms@jetson-nano"]}}


def _rec(variant, metric, value, *, unit="count", direction="lower", scale=1.0, dunit="", role="student",
         precision="fp32", lineage=None, status="ok", stats=None, settings=None, estimated=False, **extra):
    return {"variant": variant, "metric": metric, "metric_name": metric, "value": value, "unit": unit,
            "direction": direction, "display": {"scale": scale, "unit": dunit}, "role": role,
            "precision": precision, "lineage": lineage or (["wav2lip"] if variant == "wav2lip" else
                                                           ["wav2lip", variant]),
            "status": status, "stats": stats or {}, "n": 30,
            "provenance": {"backend": "test", "settings": settings or {}, "estimated": estimated,
                           "measured_on": "test device" if unit == "ms" else ""}, **extra}


def _lat(variant, value, *, unstable=False, **kw):
    stats = {"cv": 2.1 if unstable else 0.05, "unstable": unstable,
             "unstable_reason": "CV 2.10 > 0.5 (after 3 measurement(s))" if unstable else ""}
    return _rec(variant, "latency_ms", value, unit="ms", dunit="ms", stats=stats,
                settings={"threads": 2, "device": "cpu"}, **kw)


def _est(variant, value, precision="fp32", **kw):
    fb = {"bf16": "fp16"} if precision == "bf16" else {}
    return _rec(variant, "latency_ms@jetson-nano", value, unit="ms", dunit="ms", precision=precision,
                estimated=True, settings={"device": "jetson-nano", "precisions": [fb.get(precision, precision)],
                                          "fallback": fb}, **kw)


@pytest.fixture
def run_dir(tmp_path):
    d = tmp_path / "run"
    d.mkdir()
    write_json_atomic(d / "run.json", {"suite": SUITE})
    gt = "ground truth: no model to measure"
    for r in [
        _rec("ground-truth", "params", None, status="skipped", reason=gt, role="reference",
             lineage=["ground-truth"]),
        _rec("ground-truth", "latency_ms", None, unit="ms", status="skipped", reason=gt, role="reference",
             lineage=["ground-truth"]),
        _rec("ground-truth", "latency_ms@jetson-nano", None, unit="ms", status="skipped", reason=gt,
             role="reference", lineage=["ground-truth"]),
        _rec("ground-truth", "lse_c", 8.1234, unit="", direction="higher", role="reference",
             lineage=["ground-truth"]),
        _rec("wav2lip", "params", 36_298_035, scale=1e-6, dunit="M", role="teacher"),
        _lat("wav2lip", 26.3, role="teacher"),
        _est("wav2lip", 87.9, role="teacher"),
        _rec("wav2lip", "lse_c", 7.8, unit="", direction="higher", role="teacher"),
        _rec("wav2lip@bf16", "params", 36_298_035, scale=1e-6, dunit="M", role="quantized", precision="bf16"),
        _lat("wav2lip@bf16", 0.5, unstable=True, role="quantized", precision="bf16"),
        _est("wav2lip@bf16", 44.3, precision="bf16", role="quantized"),
        _rec("wav2lip@bf16", "lse_c", 7.7, unit="", direction="higher", role="quantized", precision="bf16"),
        _rec("nota-wav2lip", "params", 1_258_143, scale=1e-6, dunit="M"),
        _lat("nota-wav2lip", 0.92),
        _est("nota-wav2lip", 2.12),
        _rec("nota-wav2lip", "lse_c", None, unit="", direction="higher", status="skipped",
             reason="syncnet_v2.model not found"),
    ]:
        append_record(d, r)
    return d


def _row(text, variant):
    return next(line for line in text.splitlines() if line.startswith(f"| {variant} "))


def test_cli_and_make_table_give_the_same_table(run_dir, capsys):
    """`avatarbench table RUN` and make_table(load_run(RUN)) share one builder and take the
    suite's report settings (baseline, ratios) alike."""
    for fmt in ("markdown", "latex", "csv", "csv-long", "html"):
        assert main(["table", str(run_dir), "--format", fmt]) == 0
        assert capsys.readouterr().out == make_table(load_run(run_dir), fmt), fmt
    r = cli("table", run_dir)   # and from a fresh process, as a user runs it
    assert r.returncode == 0, r.stderr
    assert r.stdout == make_table(load_run(run_dir)) and "vs wav2lip" in r.stdout


def test_unstable_latency_has_a_dagger_no_ratio_and_is_not_ranked(run_dir):
    md = make_table(load_run(run_dir))
    cast = _row(md, "wav2lip@bf16").split(" | ")
    header = md.splitlines()[0].split(" | ")
    lat = header.index("Latency, 2 threads (ms) ↓")
    assert cast[lat] == "0.500†"                      # not bold, though the lowest
    assert cast[lat + 1] == "—†"                      # no "52.6x faster" from it
    assert "**0.920**" in _row(md, "nota-wav2lip")    # the best of the stable ones
    assert "† latency_ms: unstable measurement" in md and "CV 2.10 > 0.5" in md
    rows = list(csv.DictReader(io.StringIO(make_table(load_run(run_dir), "csv"))))
    assert {r["variant"]: r["latency_ms_unstable"] for r in rows[1:]}["wav2lip@bf16"] == "true"


def test_not_applicable_cells_baseline_row_and_fallback_precision(run_dir):
    md = make_table(load_run(run_dir))
    gt = _row(md, "ground-truth").split(" | ")
    assert gt[2:5] == ["—", "—", "—"] and "skipped" not in _row(md, "ground-truth")
    assert "— does not apply (ground truth: no model to measure)" in md
    base = _row(md, "wav2lip")
    assert "x fewer" not in base and "x faster" not in base   # no ratio on the baseline row
    assert "skipped [1]" in _row(md, "nota-wav2lip") and "[1] syncnet_v2.model not found" in md
    cast = _row(md, "wav2lip@bf16")
    assert "44.3‡" in cast and "1.98x faster‡" in cast
    assert "‡ estimated at the fp16 rate: Jetson Nano has no bf16 rate (1 variant(s): wav2lip@bf16)" in md


def test_significant_digits_are_consistent():
    assert [fmt_number(x) for x in (0.5, 0.92, 26.3, 713.4, 8132.2, 0.0755, 9.996, 0)] == \
        ["0.500", "0.920", "26.3", "713", "8,132", "0.0755", "10.0", "0"]
    assert fmt_number(1.258143, 4) == "1.258"


def test_columns_and_splitting_a_wide_table(run_dir):
    md = make_table(load_run(run_dir), columns=["lse_c", "params"], baseline="")
    assert md.splitlines()[0] == "| variant | precision | LSE-C ↑ | Params (M) ↓ |"
    parts = make_table(load_run(run_dir), max_columns=2)
    heads = [line for line in parts.splitlines() if line.startswith("| variant | precision |")]
    # each value beside its ratio: params, latency, the estimate, then LSE-C
    assert [h.count("|") - 3 for h in heads] == [2, 2, 2, 1]


def _check_latex_structure(tex: str) -> None:
    """What a LaTeX engine would reject or a reader would miss, checked without one."""
    assert tex.isascii()
    for env in ("table", "tabular", "minipage"):
        assert tex.count(r"\begin{%s}" % env) == tex.count(r"\end{%s}" % env) > 0 or env == "minipage"
    tabulars = re.findall(r"\\begin\{tabular\}\{@\{\}(\w+)@\{\}\}(.*?)\\end\{tabular\}", tex, re.S)
    assert tabulars
    for spec, body in tabulars:
        assert body.count(r"\toprule") == body.count(r"\midrule") == body.count(r"\bottomrule") == 1
        for line in body.split(r"\midrule")[1].split(r"\bottomrule")[0].strip().splitlines():
            assert line.count("&") == len(spec) - 1, line
        head = body.split(r"\toprule")[1].split(r"\midrule")[0]
        for row in re.findall(r"^(.*)\\\\$", head, re.M):
            spans = [int(n) for n in re.findall(r"\\multicolumn\{(\d+)\}", row)]
            assert row.count("&") + 1 + sum(n - 1 for n in spans) == len(spec), row
    assert re.search(r"\\caption\{[^}]{5,80}\}", tex) and r"\label{tab:tiny}" in tex
    body = tex.split("\n", 1)[1]   # after the "% needs booktabs" comment
    for ch in "_%#":
        assert not re.search(r"(?<!\\)" + re.escape(ch), body), f"unescaped {ch}"
    assert r"\small" in tex and "booktabs" in tex


@pytest.mark.parametrize("max_columns", [None, 2, 100])
def test_latex_table_is_well_formed_and_compiles_where_latex_is_installed(run_dir, tmp_path, max_columns):
    tex = make_table(load_run(run_dir), "latex", max_columns=max_columns)
    _check_latex_structure(tex)
    assert r"$^\dagger$" in tex and r"$^\ddagger$" in tex and r"\cmidrule" in tex
    assert "---" in tex and r"\textbf{" in tex
    engine = shutil.which("pdflatex")
    has_booktabs = engine and subprocess.run(["kpsewhich", "booktabs.sty"], capture_output=True,
                                             text=True).stdout.strip()
    if not has_booktabs:
        pytest.skip("no pdflatex with booktabs installed: structure checked, not compiled")
    doc = tmp_path / "doc.tex"
    doc.write_text("\\documentclass{article}\n\\usepackage{booktabs,graphicx}\n\\begin{document}\n" + tex +
                   "\\end{document}\n")
    r = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", doc.name], cwd=tmp_path,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout[-2000:]
    assert (tmp_path / "doc.pdf").stat().st_size > 1000
    # no part runs into the margin: a wide one is scaled down to the text width
    assert "Overfull \\hbox" not in (tmp_path / "doc.log").read_text(errors="replace")
