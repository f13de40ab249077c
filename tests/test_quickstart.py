"""The quickstart suite end to end at a reduced size: the same suite file with less data
and a few steps per recipe, so every stage (data, expert, evaluator, teacher, KD and
scratch students, INT8 / mixed copies, scoring, tables, plots, curves) runs."""
import json

import pytest
import yaml

from conftest import ROOT, cli


def reduced_quickstart(path, steps=3):
    q = yaml.safe_load((ROOT / "suites" / "quickstart.yaml").read_text())
    q["data"]["synthetic"] = {"identities": 3, "clips_per_identity": 1, "seconds": 1.2,
                              "splits": [1, 1, 1], "frame_size": 96, "crop_size": 64}
    for entry in q["models"] + [v for v in q["variants"] if isinstance(v, dict)]:
        spec = entry.get("train") or entry.get("distill")
        spec.update(steps=steps, batch_size=2, eval_every=steps, eval_batches=1, checkpoint_every=steps)
    for m in q["metrics"]:
        if isinstance(m, dict) and m["name"] == "latency_ms":
            m["options"] = {"threads": 1, "warmup": 1, "rounds": 1, "reps": 1}
    path.write_text(yaml.safe_dump(q, sort_keys=False))
    return path


def test_the_quickstart_suite_validates_and_names_every_stage():
    q = yaml.safe_load((ROOT / "suites" / "quickstart.yaml").read_text())
    names = [v if isinstance(v, str) else v["name"] for v in q["variants"]]
    assert {"ground-truth", "reference-copy", "teacher", "nota-kd", "nota-scratch",
            "nota-kd@int8", "nota-kd@mixed"} <= set(names)
    kd = next(v for v in q["variants"] if isinstance(v, dict) and v["name"] == "nota-kd")["distill"]
    scratch = next(v for v in q["variants"] if isinstance(v, dict) and v["name"] == "nota-scratch")["train"]
    # KD and its ablation run the same schedule (the same overrides of recipes whose
    # schedules are equal)
    same = {k: v for k, v in kd.items() if k not in ("recipe", "teacher")}
    assert same == {k: v for k, v in scratch.items() if k != "recipe"}
    from harness.train.recipe import load_recipe
    schedule = lambda r: r.model_dump(exclude={"name", "task", "description", "losses"})   # noqa: E731
    assert schedule(load_recipe(kd["recipe"])) == schedule(load_recipe(scratch["recipe"]))


@pytest.mark.slow
def test_quickstart_end_to_end_at_a_reduced_size(tmp_path):
    suite = reduced_quickstart(tmp_path / "quickstart.yaml")
    r = cli("run", suite, "--out", tmp_path / "run", "--no-progress", timeout=900)
    assert r.returncode == 0, r.stderr[-4000:]
    recs = [json.loads(x) for x in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    by = {(x["variant"], x["metric"]): x for x in recs}
    for v in ("ground-truth", "reference-copy", "teacher", "nota-kd", "nota-scratch", "nota-kd@int8",
              "nota-kd@mixed"):
        assert by[(v, "psnr_mouth")]["status"] == "ok", (v, by[(v, "psnr_mouth")])
        assert by[(v, "lse_d")]["status"] == "ok", (v, by[(v, "lse_d")])
    assert "not comparable" in by[("teacher", "lse_d")]["provenance"]["settings"]["comparable"]
    assert by[("nota-kd", "psnr")]["provenance"]["training"]["recipe"] == "quickstart-distill"
    assert by[("nota-kd@int8", "psnr")]["provenance"]["quantize"]["calibration"]["source"] == "training data"
    assert by[("fid" and "teacher", "fid")]["status"] == "skipped"      # no canonical weights in tests
    for f in ("table.md", "table.tex", "table.csv", "plots/pareto_psnr_mouth_vs_params.png",
              "training/teacher.png", "training/nota-kd.png", "training/nota-scratch.png"):
        assert (tmp_path / "run" / f).is_file(), f
    table = (tmp_path / "run" / "table.md").read_text()
    assert "synthetic" in table and "trained by the harness" in table
