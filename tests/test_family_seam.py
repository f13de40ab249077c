"""The family is the seam: a plugin file brings a second family (its own example inputs,
data specification, sample producer and a metric on its samples) and a suite runs on it
end to end, with no change to the harness."""
import json

import yaml

from conftest import cli, records

TOY_FAMILY = '''
import numpy as np
import torch
from torch import nn
from harness import (BadInput, Consumes, Family, Result, register_family,
                     register_quality_metric, register_variant)


def cloud_inputs(batch_size=1):
    g = torch.Generator().manual_seed(0)
    return (torch.rand(batch_size, 3, 32, generator=g),)


class CloudSpec:
    def __init__(self, points, clouds):
        self.points, self.clouds = points, clouds

    def fingerprint(self):
        return {"points": self.points, "clouds": self.clouds}

    def describe(self):
        return f"{self.clouds} random clouds of {self.points} points (synthetic)"


def cloud_data(raw, where, root, limit):
    unknown = sorted(set(raw) - {"points", "clouds"})
    if unknown:
        raise BadInput(f"suite {where}: data has no field {unknown[0]!r}")
    return CloudSpec(int(raw.get("points", 16)), int(limit or raw.get("clouds", 2)))


def produce(cell):
    spec, model = cell.data, cell.model()
    out = []
    for i in range(spec.clouds):
        real = torch.rand(1, 3, spec.points, generator=torch.Generator().manual_seed(i))
        with torch.no_grad():
            out.append({"name": f"cloud{i}", "fake": model(real).numpy(), "real": real.numpy()})
    return out, {"data": spec.describe(), "clouds": len(out)}


register_family(Family("toy-points", cloud_inputs, "point cloud -> point cloud",
                       sample_type="points", data_spec=cloud_data, produce_samples=produce,
                       samples_key=lambda cell: {"variant": cell.variant.name}))


class Shift(nn.Module):
    def __init__(self, by):
        super().__init__()
        self.by = nn.Parameter(torch.full((1, 3, 1), float(by)))

    def forward(self, points):
        return points + self.by


register_variant("cloud-copy", family="toy-points", role="teacher")(lambda: Shift(0.0))
register_variant("cloud-shift", family="toy-points", role="student", parent="cloud-copy")(
    lambda: Shift(0.25))


@register_quality_metric("point_l1", direction="lower", unit="distance",
                         consumes=Consumes(sample="points"))
def point_l1(samples, options):
    d = [np.abs(s["fake"] - s["real"]).mean() for s in samples]
    return Result(float(np.mean(d)), n=len(d), backend="toy")
'''


def _suite(path, **over):
    suite = {"name": "clouds", "family": "toy-points", "variants": ["cloud-copy", "cloud-shift"],
             "data": {"points": 8, "clouds": 3},
             "metrics": ["params", "size_mb", "point_l1",
                         {"name": "latency_ms", "options": {"rounds": 1, "reps": 2, "warmup_s": 0.01}}],
             "report": {"plots": [{"x": "params", "y": "point_l1"}]}}
    suite.update(over)
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def test_a_second_family_from_a_plugin_runs_end_to_end(tmp_path):
    plugin = tmp_path / "toy_family.py"
    plugin.write_text(TOY_FAMILY)
    out = tmp_path / "run"
    r = cli("run", _suite(tmp_path / "clouds.yaml"), "--plugin", plugin, "--out", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    recs = {(x["variant"], x["metric"]): x for x in records(out)}
    assert all(x["status"] == "ok" for x in recs.values()), [x for x in recs.values() if x["status"] != "ok"]
    assert recs[("cloud-copy", "point_l1")]["value"] == 0.0
    assert abs(recs[("cloud-shift", "point_l1")]["value"] - 0.25) < 1e-6
    assert recs[("cloud-shift", "point_l1")]["n"] == 3
    assert recs[("cloud-shift", "point_l1")]["provenance"]["generation"]["clouds"] == 3
    assert recs[("cloud-shift", "params")]["value"] == 3
    assert recs[("cloud-shift", "latency_ms")]["provenance"]["settings"]["interleaved_with"] == 2
    assert "cloud-shift" in (out / "table.md").read_text()
    assert (out / "plots" / "pareto_point_l1_vs_params.png").is_file()
    assert json.loads((out / "run.json").read_text())["data"] == {"points": 8, "clouds": 3}
    # --limit reaches the family's data spec
    r = cli("run", _suite(tmp_path / "clouds.yaml"), "--plugin", plugin, "--out", tmp_path / "r2",
            "--limit", "1", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert {x["metric"]: x for x in records(tmp_path / "r2") if x["variant"] == "cloud-shift"}["point_l1"]["n"] == 1


def test_the_family_checks_its_data_and_the_metrics_it_can_feed(tmp_path):
    plugin = tmp_path / "toy_family.py"
    plugin.write_text(TOY_FAMILY)
    bad_data = _suite(tmp_path / "bad.yaml", data={"pointz": 8})
    r = cli("run", bad_data, "--plugin", plugin, "--out", tmp_path / "r1", "--no-progress")
    assert r.returncode == 2 and "bad.yaml" in r.stderr and "'pointz'" in r.stderr
    # a frames metric cannot score point clouds: said before anything runs
    wrong = _suite(tmp_path / "wrong.yaml", metrics=["params", "psnr"])
    r = cli("run", wrong, "--plugin", plugin, "--out", tmp_path / "r2", "--no-progress")
    assert r.returncode == 2 and "'psnr'" in r.stderr and "'frames'" in r.stderr and "'points'" in r.stderr
    assert not (tmp_path / "r2").exists()
