"""Pareto plots: labels that do not overlap, colours by role, hollow unstable points,
readable names, clean log ticks, options, output beside the run."""
import pytest
from matplotlib.text import Text

from conftest import cli
from harness import load_run, plot_pareto
from harness.report.plot import COLORS, draw_pareto, log_ticks
from harness.records import append_record, write_json_atomic


def _rec(variant, metric, value, *, unit="count", role="student", precision="fp32", lineage=None, stats=None,
         scale=1.0, dunit=""):
    return {"variant": variant, "metric": metric, "metric_name": metric, "value": value, "unit": unit,
            "direction": "lower", "display": {"scale": scale, "unit": dunit}, "role": role,
            "precision": precision, "lineage": lineage or [variant], "status": "ok", "n": 30,
            "stats": stats or {}, "provenance": {"backend": "test", "settings": {"threads": 2, "device": "cpu"}
                                                 if unit == "ms" else {}}}


def _write(d, recs):
    d.mkdir()
    write_json_atomic(d / "run.json", {"suite": {"name": "crowd"}})
    for r in recs:
        append_record(d, r)
    return d


@pytest.fixture
def crowded(tmp_path):
    """24 variants, most of them piled into one corner (several on the very same spot)."""
    recs = [_rec("teacher", "params", 36e6, role="teacher", scale=1e-6, dunit="M"),
            _rec("teacher", "latency_ms", 40.0, unit="ms", dunit="ms", role="teacher"),
            _rec("teacher@bf16", "params", 36e6, role="quantized", precision="bf16",
                 lineage=["teacher", "teacher@bf16"], scale=1e-6, dunit="M"),
            _rec("teacher@bf16", "latency_ms", 20.0, unit="ms", dunit="ms", role="quantized", precision="bf16",
                 lineage=["teacher", "teacher@bf16"], stats={"unstable": True, "unstable_reason": "CV 2 > 0.5"})]
    for i in range(22):
        name = f"student-{i:02d}-with-a-long-name"
        recs += [_rec(name, "params", (1.0 + (i % 4) * 0.05) * 1e6, scale=1e-6, dunit="M"),
                 _rec(name, "latency_ms", 2.0 + (i % 5) * 0.1, unit="ms", dunit="ms")]
    return _write(tmp_path / "run", recs)


def test_no_two_labels_overlap_in_a_crowded_plot(crowded):
    fig, ax, texts = draw_pareto(load_run(crowded), "params", "latency_ms")
    renderer = fig.canvas.get_renderer()
    # the text's own box (an Annotation's extent would include its leader line)
    fig.canvas.draw()
    boxes = []
    for t in texts:
        t.update_positions(renderer)
        boxes.append(Text.get_window_extent(t, renderer))
    assert len(boxes) == 24 and all(t.get_text() for t in texts)
    frame = ax.get_window_extent(renderer)
    for i, a in enumerate(boxes):
        assert frame.x0 - 1 <= a.x0 and a.x1 <= frame.x1 + 1 and frame.y0 - 1 <= a.y0 and a.y1 <= frame.y1 + 1
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), (a, b)


def test_casts_take_their_parents_colour_and_unstable_points_are_hollow(crowded):
    import matplotlib.colors as mc
    fig, ax, _ = draw_pareto(load_run(crowded), "params", "latency_ms")
    red = mc.to_rgba(COLORS["teacher"])
    faces = [tuple(c.get_facecolors()[0]) for c in ax.collections if len(c.get_offsets()) == 1]
    edges = [tuple(c.get_edgecolors()[0]) for c in ax.collections if len(c.get_offsets()) == 1]
    # the teacher filled red; its bf16 cast (unstable) hollow with a red edge, not "quantized" green
    assert red in faces and (1.0, 1.0, 1.0, 1.0) in faces and red in edges
    assert mc.to_rgba(COLORS["quantized"]) not in faces + edges
    assert ax.get_title() == "Latency (2 threads) vs Params"
    assert ax.get_xlabel() == "Params (M) ↓" and ax.get_ylabel() == "Latency, 2 threads (ms) ↓"
    assert "unstable\nmeasurement" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_log_ticks_are_one_kind_per_axis():
    assert log_ticks(0.9, 60) == [1, 2, 5, 10, 20, 50]
    assert log_ticks(0.004, 700) == [0.01, 0.1, 1, 10, 100]
    assert log_ticks(1e-3, 1e5) == [0.001, 0.1, 10, 1000, 100000]


def test_plot_defaults_beside_the_run_and_takes_options(crowded, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = set(tmp_path.iterdir())
    paths = plot_pareto(load_run(crowded), "params", "latency_ms")
    assert paths == [crowded / "plots" / "pareto_latency_ms_vs_params.png",
                     crowded / "plots" / "pareto_latency_ms_vs_params.svg"]
    assert set(tmp_path.iterdir()) == before     # nothing written into the working folder
    r = cli("plot", crowded, "--x", "params", "--y", "latency_ms", "--title", "Speed and size",
            "--xlabel", "Parameters", "--legend", "upper right", "--size", "5,4", "--format", "pdf", "svg",
            "--out", tmp_path / "fig")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(tmp_path / "fig.pdf"), str(tmp_path / "fig.svg")]
    svg = (tmp_path / "fig.svg").read_text()
    assert "Speed and size" in svg and "Parameters" in svg
    r = cli("plot", crowded, "--x", "params", "--y", "latency_ms", "--size", "big")
    assert r.returncode == 2 and "--size big" in r.stderr


def test_reference_rows_without_a_model_are_level_lines(tmp_path):
    """The ground truth and a floor have a quality score but no params: each is a dotted
    line the students can be read against, inside the axis range."""
    recs = [_rec("teacher", "params", 5e6, role="teacher"), _rec("teacher", "psnr", 22.0, role="teacher"),
            _rec("student", "params", 1e6), _rec("student", "psnr", 21.0),
            _rec("ground-truth", "psnr", 35.0, role="reference"), _rec("floor", "psnr", 30.0, role="reference"),
            {**_rec("floor", "params", None, role="reference"), "status": "skipped", "reason": "no model"}]
    df = load_run(_write(tmp_path / "run", recs))
    fig, ax, _ = draw_pareto(df, "params", "psnr")
    levels = sorted(line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == ":")
    assert levels == [30.0, 35.0]
    assert ax.get_ylim()[1] > 35.0 and ax.get_ylim()[0] < 21.0
    assert {"ground-truth", "floor"} <= {t.get_text() for t in ax.texts}


def test_a_one_point_front_is_a_ring_without_a_line_in_the_legend_too(tmp_path):
    """When one variant dominates every other, the front is that point alone: no dashed
    line is drawn, and the legend's entry says so instead of showing a line."""
    recs = [_rec("teacher", "params", 5e6, role="teacher"), _rec("teacher", "psnr", 22.0, role="teacher"),
            _rec("student", "params", 1e6), _rec("student", "psnr", 21.0)]   # lower is better here
    df = load_run(_write(tmp_path / "run", recs))
    fig, ax, _ = draw_pareto(df, "params", "psnr")
    assert not [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    entry = next(h for h, t in zip(ax.get_legend().legend_handles, ax.get_legend().get_texts())
                 if t.get_text().startswith("Pareto front"))
    assert ax.get_legend().get_texts()[0].get_text() == "Pareto front\n(one point)"
    assert entry.get_linestyle() == "None" and entry.get_marker() == "o"
