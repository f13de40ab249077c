"""LSE with a harness-trained SyncNet_color evaluator (option ``evaluator``): the windows and
the offset search against a loop written out by hand, the recorded settings, and clear
errors for a missing or mismatched checkpoint."""
import cv2
import numpy as np
import pytest
import torch

from harness.checkpoints import sha256_of
from harness.data.audio import wav2lip_mel
from harness.derive import get_variant
from harness.errors import BadInput
from harness.metrics import lse, lse_expert
from harness.metrics.base import get_metric
from harness.samples import Clip

VSHIFT = 2


@pytest.fixture(scope="module")
def evaluator(tmp_path_factory):
    torch.manual_seed(0)
    model = get_variant("wav2lip-syncnet").build().eval()
    path = tmp_path_factory.mktemp("evaluator") / "syncnet_color.pt"
    torch.save(model.state_dict(), path)
    return path, model


def _clip(seed=0, n=12):
    """Smooth random frames with a face box that moves, and noise as the driving audio."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (n, 9, 9, 3)).astype(np.uint8)
    frames = np.stack([cv2.resize(c, (72, 72), interpolation=cv2.INTER_LINEAR) for c in coarse])
    boxes = np.array([[8 + i % 3, 6 + i % 2, 60 + i % 3, 64 + i % 2] for i in range(n)])
    audio = (0.2 * rng.standard_normal(n * 640)).astype(np.float32)
    return Clip(f"clip{seed}", fake=frames, audio=audio, boxes=boxes)


def _by_hand(model, clip, vshift):
    """Windows cut one by one and embedded in one batch; distances at each offset in plain loops."""
    mel = wav2lip_mel(clip.audio)
    windows = min(len(clip.fake), len(clip.audio) // 640) - 5
    videos, audios = [], []
    for t in range(windows):
        halves = []
        for k in range(5):
            x1, y1, x2, y2 = clip.boxes[t + k]
            face = cv2.resize(cv2.cvtColor(clip.fake[t + k][y1:y2, x1:x2], cv2.COLOR_RGB2BGR), (96, 96))
            halves.append(face[48:] / 255.0)
        videos.append(np.concatenate(halves, axis=2).transpose(2, 0, 1))     # (15, 48, 96)
        start = int(80 * t / 25)
        audios.append(mel[None, :, start:start + 16])                         # (1, 80, 16)
    with torch.no_grad():
        af, vf = model(torch.tensor(np.array(audios), dtype=torch.float32),
                       torch.tensor(np.array(videos), dtype=torch.float32))
    af, vf = af.numpy(), vf.numpy()
    mean_dist = []
    for offset in range(-vshift, vshift + 1):
        dists = []
        for t in range(windows):
            j = t + offset
            other = af[j] if 0 <= j < windows else np.zeros_like(af[0])
            dists.append(np.linalg.norm(vf[t] - other))
        mean_dist.append(np.mean(dists))
    mean_dist = np.array(mean_dist)
    best = int(np.argmin(mean_dist))
    return {"lse_d": mean_dist[best], "lse_c": np.median(mean_dist) - mean_dist[best],
            "offset": -(best - vshift), "windows": windows, "mean_dist": mean_dist}


def test_windows_and_offsets_equal_a_loop_written_by_hand(evaluator):
    path, model = evaluator
    clip = _clip()
    want = _by_hand(model, clip, VSHIFT)
    assert np.ptp(want["mean_dist"]) > 1e-4            # the offsets differ: the comparison means something
    loaded, prov = lse_expert.load_evaluator(str(path))
    s = lse_expert.expert_score(loaded, clip.fake, clip.boxes, clip.audio, VSHIFT, batch_size=3,
                                device="cpu", where="clip0")
    assert s.windows == want["windows"] == 7 and s.offset == want["offset"]
    assert s.lse_d == pytest.approx(want["lse_d"], abs=1e-5)
    assert s.lse_c == pytest.approx(want["lse_c"], abs=1e-5)
    assert prov == {"file": str(path), "sha256": sha256_of(path)}


def test_the_metric_scores_with_the_evaluator_and_says_it_is_not_comparable(evaluator):
    path, model = evaluator
    clips = [_clip(1), _clip(2, n=14)]
    options = get_metric("lse_d").resolve_options({"evaluator": str(path), "vshift": VSHIFT, "batch_size": 4},
                                                  "suite s.yaml: metrics[0]")
    lse._SCORES.clear()
    d, c = lse.lse_d(clips, options), lse.lse_c(clips, options)
    want = [_by_hand(model, clip, VSHIFT) for clip in clips]
    assert d.value == pytest.approx(np.mean([w["lse_d"] for w in want]), abs=1e-5)
    assert c.value == pytest.approx(np.mean([w["lse_c"] for w in want]), abs=1e-5)
    assert d.n == c.n == 2 and d.stats["windows"] == {"clip1": 7, "clip2": 9}
    sha = sha256_of(path)
    assert d.backend == f"harness-trained SyncNet_color evaluator, file sha256 {sha}"
    assert d.settings["comparable"] == lse_expert.NOT_COMPARABLE == c.settings["comparable"]
    assert d.settings["evaluator"] == str(path) and d.settings["weights"]["sha256"] == sha
    assert d.settings["faces_from"] == ["clip boxes + 96x96 protocol crop"]


def test_a_missing_or_mismatched_evaluator_is_bad_input(evaluator, tmp_path):
    clips = [_clip()]
    with pytest.raises(BadInput, match="LSE option evaluator='.*nope.pt': no such file"):
        lse.lse_d(clips, {"evaluator": str(tmp_path / "nope.pt")})
    wrong = tmp_path / "linear.pt"
    torch.save(torch.nn.Linear(4, 2).state_dict(), wrong)
    with pytest.raises(BadInput, match=r"linear.pt does not fit Wav2Lip's SyncNet_color.*\n.*missing keys"):
        lse.lse_c(clips, {"evaluator": str(wrong)})
    with pytest.raises(BadInput, match="evaluator must be a checkpoint path"):
        lse.lse_d(clips, {"evaluator": 3})
