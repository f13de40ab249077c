"""The shipped efficiency suite end to end through the CLI (a subset of its variants)."""
import json

import pytest

from conftest import cli, records


@pytest.mark.slow
def test_efficiency_suite_run_table_plot(tmp_path):
    out = tmp_path / "eff"
    r = cli("run", "efficiency", "--variant", "wav2lip", "--variant", "nota-wav2lip", "--out", out)
    assert r.returncode == 0, r.stderr
    recs = records(out)
    metrics = {"params", "size_mb", "macs", "macs_outres", "latency_ms", "latency_ms_1t", "peak_mem_mb",
               "latency_ms@host-cpu"} | {f"latency_ms@jetson-{d}" for d in
                                         ("nano", "tx2", "xavier-nx", "agx-xavier", "orin-nano")}
    # NAME selects the suite's entries of that model: its casts and its @int8 / @mixed entries
    variants = {"wav2lip", "wav2lip@bf16", "wav2lip@int8",
                "nota-wav2lip", "nota-wav2lip@bf16", "nota-wav2lip@int8", "nota-wav2lip@mixed"}
    assert {x["variant"] for x in recs} == variants and {x["metric"] for x in recs} == metrics
    assert len(recs) == len(variants) * len(metrics)
    by = {(x["variant"], x["metric"]): x for x in recs}
    assert all(x["status"] == "ok" for x in recs), [x for x in recs if x["status"] != "ok"]
    assert by[("nota-wav2lip", "params")]["value"] == 1_258_143
    assert by[("wav2lip@bf16", "size_mb")]["value"] == pytest.approx(by[("wav2lip", "size_mb")]["value"] / 2, rel=0.01)
    lat = by[("nota-wav2lip", "latency_ms_1t")]
    assert lat["provenance"]["settings"]["threads"] == 1 and lat["n"] == 30
    assert {"p90_ms", "min_ms", "max_ms", "cv", "fps"} <= set(lat["stats"])
    assert by[("wav2lip", "latency_ms")]["value"] > by[("nota-wav2lip", "latency_ms")]["value"]
    assert by[("nota-wav2lip", "peak_mem_mb")]["value"] < by[("wav2lip", "peak_mem_mb")]["value"]
    for rec in recs:
        assert len(rec["suite_hash"]) == 64 and rec["lineage"][-1] == rec["variant"]
    run = json.loads((out / "run.json").read_text())
    assert run["suite"]["name"] == "efficiency" and run["versions"]["torch"]
    assert (out / "layers" / "wav2lip.macs-outres.csv").read_text().count("\n") > 50
    assert "28.9x fewer" in (out / "table.md").read_text()
    assert "28.9x fewer" in r.stdout
    assert "Latency, Jetson Xavier NX (est. ms) ↓" in r.stdout   # readable header, estimate said
    assert (out / "plans" / "nota-wav2lip@mixed.json").is_file()
    for name in ("table.tex", "table.csv", "plots/pareto_latency_ms_vs_params.png",
                 "plots/pareto_latency_ms_vs_params.svg",
                 "plots/pareto_latency_ms@jetson-xavier-nx_vs_params.png"):
        assert (out / name).exists(), name


def test_list_commands():
    for what, expect in [("variants", "nota-wav2lip"), ("metrics", "macs_outres"),
                         ("suites", "efficiency"), ("devices", "host-cpu")]:
        r = cli("list", what)
        assert r.returncode == 0 and expect in r.stdout, r.stderr
