"""A trained model is keyed by the content of the data it learned from and by its recipe:
another data seed trains another model, the same suite twice trains once, and a resume onto
other data is refused naming both digests."""
import json

from conftest import cli, write_suite

SHORT = {"steps": 2, "batch_size": 2, "eval_every": 2, "eval_batches": 1, "checkpoint_every": 1,
         "sync": None}


def _synthetic(seed):
    return {"identities": 3, "clips_per_identity": 1, "seconds": 1.2, "splits": [1, 1, 1],
            "frame_size": 80, "crop_size": 56, "seed": seed}


def _training(run_dir):
    recs = [json.loads(x) for x in (run_dir / "records.jsonl").read_text().splitlines()]
    return next(r for r in recs if r["variant"] == "small")["provenance"]["training"]


def test_another_data_seed_trains_another_model_and_the_same_suite_trains_once(tmp_path):
    cache = {"AVATARBENCH_CACHE": str(tmp_path / "cache")}
    runs = {}
    for seed in (0, 1, 0):
        suite = tmp_path / f"s{seed}.yaml"
        write_suite(suite, name=f"seed{seed}", data={"layout": "lrs", "filelist": "filelists/test.txt",
                                                     "synthetic": _synthetic(seed)},
                    variants=[{"name": "small", "from": "nota-wav2lip", "train": {"recipe": "scratch", **SHORT}}],
                    metrics=["params"])
        out = tmp_path / f"run-{seed}-{len(runs)}"
        r = cli("run", suite, "--out", out, "--no-progress", env=cache)
        assert r.returncode == 0, r.stderr
        runs[len(runs)] = _training(out)
    first, other, again = runs[0], runs[1], runs[2]
    assert first["data"]["sha256"] != other["data"]["sha256"]
    assert first["checkpoint"] != other["checkpoint"]
    assert not other.get("cached")
    assert first["data"]["files"] > 0 and first["data"]["synthetic"] is True
    # the same suite again: the model of the first run, not trained again
    assert again.get("cached") is True and again["checkpoint_sha256"] == first["checkpoint_sha256"]
    trained = list((tmp_path / "cache" / "trained").iterdir())
    assert len(trained) == 2, trained


def test_a_resume_onto_other_data_is_refused_naming_both_digests(tmp_path):
    from harness.families.lipsync.synthetic import SyntheticSpec, generate_dataset
    a = generate_dataset(tmp_path / "a", SyntheticSpec(**{**_synthetic(0), "splits": (1, 1, 1)}), videos=False)
    b = generate_dataset(tmp_path / "b", SyntheticSpec(**{**_synthetic(1), "splits": (1, 1, 1)}), videos=False)
    args = ["train", "scratch", "--out", tmp_path / "t", "--no-progress", "--steps", "2", "--batch-size", "2",
            "--set", "eval_every=1", "--set", "checkpoint_every=1", "--set", "eval_batches=1", "--set", "sync=null"]
    env = {"AVATARBENCH_CACHE": str(tmp_path / "cache")}
    r = cli(*args, "--data-root", a, env=env)
    assert r.returncode == 0, r.stderr
    before = sorted((tmp_path / "t" / "checkpoints").iterdir())
    log = (tmp_path / "t" / "log.jsonl").read_text()
    r = cli(*args, "--data-root", b, env=env)
    assert r.returncode == 2, r.stderr
    assert "another training data" in r.stderr and r.stderr.count("sha256") >= 2, r.stderr
    assert "Traceback" not in r.stderr
    assert sorted((tmp_path / "t" / "checkpoints").iterdir()) == before
    assert (tmp_path / "t" / "log.jsonl").read_text() == log
    # the same data resumes
    r = cli(*args, "--data-root", a, env=env)
    assert r.returncode == 0 and "resumed at step 2" in r.stdout, r.stdout + r.stderr
