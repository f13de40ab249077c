"""Registering variants without touching the harness: plugin files and entry points."""
import os

from conftest import cli, records


def test_plugin_variant_runs_in_the_efficiency_suite(tiny_plugin, tmp_path):
    out = tmp_path / "run"
    r = cli("run", "efficiency", "--plugin", tiny_plugin, "--variant", "tiny-generator",
            "--out", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    recs = records(out)
    tiny = {(x["variant"], x["metric"]): x for x in recs if x["variant"].startswith("tiny-generator")}
    # the suite's precisions apply to the plugin's variant too
    assert {v for v, _ in tiny} == {"tiny-generator", "tiny-generator@bf16"}
    assert tiny[("tiny-generator", "params")]["value"] == 6 * 8 * 9 + 8 + 8 * 3 + 3
    assert tiny[("tiny-generator", "params")]["lineage"] == ["wav2lip", "tiny-generator"]
    assert all(x["status"] == "ok" for x in tiny.values()), [x for x in tiny.values() if x["status"] != "ok"]
    # its fp32 and bf16 copies timed together, in interleaved rounds
    assert tiny[("tiny-generator", "latency_ms")]["provenance"]["settings"]["interleaved_with"] == 2
    assert "tiny-generator" in (out / "table.md").read_text()
    import json
    run = json.loads((out / "run.json").read_text())
    assert str(tiny_plugin) in run["plugins"]


def test_plugin_listing_and_bad_plugin(tiny_plugin, tmp_path):
    r = cli("list", "variants", "--plugin", tiny_plugin)
    assert r.returncode == 0 and "tiny-generator" in r.stdout
    broken = tmp_path / "broken.py"
    broken.write_text("def oops(:\n")
    r = cli("list", "variants", "--plugin", broken)
    assert r.returncode == 2 and "broken.py" in r.stderr and "line 1" in r.stderr
    clash = tmp_path / "clash.py"
    clash.write_text("from harness import register_variant\n"
                     "register_variant('wav2lip', family='lipsync', role='student')(lambda: None)\n")
    r = cli("list", "variants", "--plugin", clash)
    assert r.returncode == 2 and "duplicate variant name 'wav2lip'" in r.stderr and "clash.py" in r.stderr


def _install_fake_distribution(site, pkg="ab_ext", ep_group="avatarbench.variants"):
    """Lay out an installed distribution (package + dist-info with entry points) on a path."""
    (site / pkg).mkdir(parents=True)
    (site / pkg / "__init__.py").write_text(
        "from torch import nn\n"
        "from harness import register_variant\n"
        "@register_variant('ep-tiny', family='lipsync', role='student', parent='wav2lip')\n"
        "def ep_tiny():\n"
        "    class M(nn.Module):\n"
        "        def __init__(self):\n"
        "            super().__init__()\n"
        "            self.conv = nn.Conv2d(6, 3, 1)\n"
        "        def forward(self, audio_sequences, face_sequences):\n"
        "            return self.conv(face_sequences).sigmoid()\n"
        "    return M()\n")
    info = site / f"{pkg}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {pkg}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{ep_group}]\ntiny = {pkg}\n")
    (info / "RECORD").write_text("")


def test_entry_point_plugin_from_an_installed_package(tmp_path):
    site = tmp_path / "site"
    _install_fake_distribution(site)
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    r = cli("list", "variants", env=env)
    assert r.returncode == 0 and "ep-tiny" in r.stdout
    out = tmp_path / "run"
    suite = tmp_path / "s.yaml"
    suite.write_text("name: ep\nfamily: lipsync\nvariants: [ep-tiny]\nmetrics: [params, macs]\n")
    r = cli("run", suite, "--out", out, "--no-progress", env=env)
    assert r.returncode == 0, r.stderr
    recs = {x["metric"]: x for x in records(out)}
    assert recs["params"]["value"] == 6 * 3 + 3
    assert recs["macs"]["value"] == 6 * 3 * 96 * 96 + 3 * 96 * 96  # ptflops counts bias adds


def test_entry_point_that_fails_to_load_is_named(tmp_path):
    site = tmp_path / "site"
    _install_fake_distribution(site)
    (site / "ab_ext" / "__init__.py").write_text("raise ImportError('needs foo')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])}
    r = cli("list", "variants", env=env)
    assert r.returncode == 2 and "entry point 'tiny'" in r.stderr and "needs foo" in r.stderr
