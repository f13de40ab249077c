"""The shipped lrs2 suite end to end on tiny made-up data in the Wav2Lip-preprocessed
layout (frames cut from a real face photograph, a synthetic tone as audio), with random
weights saved under every canonical file name and the unverified opt-in."""
import os

import numpy as np
import pytest
import torch

from conftest import cli, records


def _face_clip(folder, frames=14, size=96, seed=0):
    import cv2
    from PIL import Image
    from scipy.io import wavfile
    from skimage.data import astronaut
    rng = np.random.default_rng(seed)
    face = cv2.resize(astronaut()[10:250, 110:350], (size + 8, size + 8), interpolation=cv2.INTER_AREA)
    folder.mkdir(parents=True)
    for i in range(frames):
        dy, dx = rng.integers(0, 8, 2)
        Image.fromarray(face[dy:dy + size, dx:dx + size]).save(folder / f"{i}.jpg", quality=95)
    t = np.arange(int(16000 * frames / 25)) / 16000
    wav = 0.3 * np.sin(2 * np.pi * 200 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    wavfile.write(folder / "audio.wav", 16000, (wav * 20000).astype(np.int16))


@pytest.fixture(scope="module")
def canonical_random_weights(tmp_path_factory):
    from facenet_pytorch import InceptionResnetV1
    from syncnet_python.SyncNetModel import S
    from test_image_metrics import random_alexnet_state, random_inception_state
    folder = tmp_path_factory.mktemp("canonical-random")
    torch.save(random_inception_state(), folder / "pt_inception-2015-12-05-6726825d.pth")
    torch.save(random_alexnet_state(), folder / "alexnet-owt-7be5be79.pth")
    torch.manual_seed(0)
    torch.save(InceptionResnetV1(classify=True, num_classes=8631).state_dict(),
               folder / "20180402-114759-vggface2.pt")
    torch.save(S().state_dict(), folder / "syncnet_v2.model")
    return folder


@pytest.mark.slow
def test_lrs2_suite_on_tiny_made_up_data(tmp_path, canonical_random_weights):
    root = tmp_path / "lrs2"
    for k, clip in enumerate(("spk1/00001", "spk2/00002")):
        _face_clip(root / clip, seed=k)
    (root / "test.txt").write_text("spk1/00001\nspk2/00002\n")
    (root / "SYNTHETIC").write_text("frames cut from one photograph, tone audio\n")
    env = {"AVATARBENCH_WEIGHTS": str(canonical_random_weights)}
    r = cli("run", "lrs2", "--out", tmp_path / "run", "--data-root", root, "--no-progress",
            "--variant", "ground-truth", "--variant", "nota-wav2lip", env=env)
    # the canonical names promise hashes the random files cannot have
    assert r.returncode == 2 and "does not start with 6726825d" in r.stderr
    r = cli("run", "lrs2", "--out", tmp_path / "run", "--data-root", root, "--no-progress",
            "--variant", "ground-truth", "--variant", "nota-wav2lip", "--allow-unverified-weights",
            env=env)
    assert r.returncode == 0, r.stderr
    recs = {(x["variant"], x["metric"]): x for x in records(tmp_path / "run") if x["status"] != "failed"}
    for m in ("lse_d", "lse_c", "fid", "lpips", "psnr", "ssim"):
        for v in ("ground-truth", "nota-wav2lip"):
            assert recs[(v, m)]["status"] == "ok", (v, m, recs[(v, m)].get("reason"))
    gt = recs[("ground-truth", "identity")]
    assert gt["status"] == "ok" and gt["value"] > 0.9      # the real face through the same path
    fid = recs[("nota-wav2lip", "fid")]["provenance"]
    assert fid["settings"]["weights"]["check"] == "unverified"
    assert "warning" in recs[("nota-wav2lip", "fid")]["stats"]      # 2 x 14 frames < 2048
    lse = recs[("ground-truth", "lse_d")]["stats"]
    assert set(lse["per_clip"]) == {"spk1/00001", "spk2/00002"}
    assert recs[("ground-truth", "params")]["status"] == "skipped"
    table = (tmp_path / "run" / "table.md").read_text()
    header = table.splitlines()[0]
    assert header.index("LSE-D") < header.index("LSE-C") < header.index("FID") < header.index("LPIPS")
    assert "not verified against their canonical hash" in table and "synthetic" in table
    assert "untrained generators" in table
    assert (tmp_path / "run" / "plots").is_dir()
