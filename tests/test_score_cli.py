"""`avatarbench score`: one metric on folders or videos, its errors and its JSON."""
import json

import numpy as np
from PIL import Image

from conftest import cli


def _folder(path, n=4, size=32, seed=0):
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path / f"{i}.png")
    return path


def test_score_psnr_json_matches_skimage(tmp_path):
    from skimage.metrics import peak_signal_noise_ratio
    a, b = _folder(tmp_path / "a", seed=1), _folder(tmp_path / "b", seed=2)
    r = cli("score", "psnr", "--real", a, "--fake", b, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    want = np.mean([peak_signal_noise_ratio(np.asarray(Image.open(a / f"{i}.png")),
                                            np.asarray(Image.open(b / f"{i}.png")), data_range=255)
                    for i in range(4)])
    assert out["metric"] == "psnr" and out["n"] == 4 and abs(out["value"] - want) < 1e-5


def test_score_fid_without_weights_exits_2_naming_file_source_and_folder(tmp_path):
    a, b = _folder(tmp_path / "a"), _folder(tmp_path / "b", seed=3)
    r = cli("score", "fid", "--real", a, "--fake", b, env={"AVATARBENCH_WEIGHTS": str(tmp_path / "w")})
    assert r.returncode == 2
    assert "pt_inception-2015-12-05-6726825d.pth" in r.stderr
    assert "https://github.com/mseitzer/pytorch-fid/releases" in r.stderr
    assert str(tmp_path / "w") in r.stderr


def test_score_bad_inputs_exit_2_with_what_and_where(tmp_path):
    a = _folder(tmp_path / "a")
    r = cli("score", "fidd", "--fake", a)
    assert r.returncode == 2 and "did you mean 'fid'" in r.stderr
    r = cli("score", "params", "--fake", a)
    assert r.returncode == 2 and "measures a model" in r.stderr
    b = _folder(tmp_path / "b", n=3)
    r = cli("score", "ssim", "--real", a, "--fake", b)
    assert r.returncode == 2 and "3 generated frames" in r.stderr and "4 reference frames" in r.stderr
    r = cli("score", "psnr", "--real", a, "--fake", tmp_path / "nope")
    assert r.returncode == 2 and "no such file or folder" in r.stderr
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    r = cli("score", "psnr", "--real", a, "--fake", bad)
    assert r.returncode == 2 and "broken.mp4" in r.stderr
    r = cli("score", "psnr", "--real", a, "--fake", a, "--option", "nosuch=1")
    assert r.returncode == 2 and "no option 'nosuch'" in r.stderr


def test_score_psnr_on_videos_paired_by_name(tmp_path):
    from harness.data.video import write_video
    rng = np.random.default_rng(0)
    for side in ("real", "fake"):
        (tmp_path / side).mkdir()
        for name in ("b", "a"):
            write_video(tmp_path / side / f"{name}.mp4",
                        rng.integers(0, 256, (6, 32, 32, 3), dtype=np.uint8), 25.0)
    r = cli("score", "psnr", "--real", tmp_path / "real", "--fake", tmp_path / "fake", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["n"] == 12 and set(out["stats"]["per_clip"]) == {"a", "b"}
    (tmp_path / "fake" / "b.mp4").rename(tmp_path / "fake" / "c.mp4")
    r = cli("score", "psnr", "--real", tmp_path / "real", "--fake", tmp_path / "fake")
    assert r.returncode == 2 and "no reference video named like c" in r.stderr
