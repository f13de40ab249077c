"""FID, KID, LPIPS, PSNR and SSIM against their reference packages on identical inputs.

Weights are random (no network at test time), saved under the canonical file names both in
AVATARBENCH_WEIGHTS and in the torch hub cache of TORCH_HOME, so pytorch-fid and lpips load
exactly the file the harness loads."""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
import torch
from PIL import Image

import harness.metrics.fid as fid
import harness.metrics.image as image
import harness.metrics.kid as kid
import harness.metrics.perceptual as perceptual
from harness.canonical_weights import CATALOG, MissingWeights
from harness.samples import Clip
from harness.errors import BadInput
from harness.metrics import inception
from harness.metrics.base import get_metric

FID_OPTIONS = {"region": "frame", "batch_size": 50, "device": "cpu"}
KID_OPTIONS = {"region": "frame", "kid_subsets": 100, "kid_subset_size": 1000, "seed": 2020,
               "batch_size": 50, "device": "cpu"}
LPIPS_OPTIONS = {"batch_size": 4, "device": "cpu"}


# ---------------------------------------------------------------- random canonical weights

def random_inception_state(seed: int = 0) -> dict:
    """A state dict for pytorch-fid's FID Inception, built by pytorch-fid's own
    ``fid_inception_v3`` without a download: the torchvision network it starts from is
    captured, and the weight download it ends with returns that network's own (random)
    weights. The weights are then re-drawn with a fan-in scale and varied batch-norm
    statistics, so activations keep a useful size through all 40-odd layers."""
    import pytorch_fid.inception as fid_inception
    built = []
    make_torchvision = fid_inception._inception_v3

    def capture(*args, **kwargs):
        built.append(make_torchvision(*args, **kwargs))
        return built[-1]

    def own_weights(url, *args, **kwargs):
        return built[-1].state_dict()

    with mock.patch.object(fid_inception, "_inception_v3", capture), \
            mock.patch.object(fid_inception, "load_state_dict_from_url", own_weights):
        net = fid_inception.fid_inception_v3()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.Conv2d):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / m.weight[0].numel()) ** 0.5)
            elif isinstance(m, torch.nn.BatchNorm2d):
                n = m.num_features
                m.weight.copy_(0.5 + torch.rand(n, generator=g))
                m.bias.copy_(0.1 * torch.randn(n, generator=g))
                m.running_mean.copy_(0.1 * torch.randn(n, generator=g))
                m.running_var.copy_(0.5 + torch.rand(n, generator=g))
    return net.state_dict()


def random_alexnet_state(seed: int = 1) -> dict:
    import torchvision
    torch.manual_seed(seed)
    return torchvision.models.alexnet(weights=None).state_dict()


@pytest.fixture(scope="module")
def weights_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("random-weights")
    folder, hub = root / "weights", root / "torch" / "hub" / "checkpoints"
    folder.mkdir()
    hub.mkdir(parents=True)
    torch.save(random_inception_state(), folder / inception.WEIGHTS_FILE)
    torch.save(random_alexnet_state(), folder / perceptual.WEIGHTS_FILE)
    for f in (inception.WEIGHTS_FILE, perceptual.WEIGHTS_FILE):
        os.link(folder / f, hub / f)
    return root


@pytest.fixture
def random_weights(weights_root, monkeypatch) -> Path:
    monkeypatch.setenv("AVATARBENCH_WEIGHTS", str(weights_root / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(weights_root / "torch"))
    monkeypatch.setenv("AVATARBENCH_ALLOW_UNVERIFIED_WEIGHTS", "1")
    # an earlier torch.hub.set_dir would make the hub ignore TORCH_HOME
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    assert Path(torch.hub.get_dir()) == weights_root / "torch" / "hub"
    return weights_root


# ---------------------------------------------------------------- images

def make_frames(seed: int, n: int, h: int = 64, w: int = 64) -> np.ndarray:
    """Blocky colour fields with noise: some structure, different per frame."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (n, h // 8 + 1, w // 8 + 1, 3)).repeat(8, 1).repeat(8, 2)[:, :h, :w]
    return np.clip(coarse + rng.normal(0, 20, (n, h, w, 3)), 0, 255).astype(np.uint8)


def perturb(frames: np.ndarray, seed: int, sigma: float = 15.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shifted = np.roll(frames, 2, axis=2)
    return np.clip(shifted + rng.normal(0, sigma, frames.shape), 0, 255).astype(np.uint8)


def write_pngs(folder: Path, frames: np.ndarray) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, f in enumerate(frames):
        paths.append(folder / f"{i:04d}.png")
        Image.fromarray(f).save(paths[-1])
    return paths


def read_pngs(paths: list[Path]) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])


def as_clips(fake: np.ndarray, real: np.ndarray, parts: int = 2) -> list[Clip]:
    edges = np.linspace(0, len(fake), parts + 1).astype(int)
    return [Clip(f"clip{i}", fake=fake[a:b], real=real[a:b]) for i, (a, b) in enumerate(zip(edges, edges[1:]))]


@pytest.fixture(scope="module")
def small_sets():
    real = make_frames(10, 8)
    return perturb(real, 11), real


# ---------------------------------------------------------------- FID

def test_features_equal_pytorch_fid_activations(random_weights, tmp_path, small_sets):
    """pytorch-fid's own loader + network on PNG files vs the harness on the same pixels."""
    from pytorch_fid.fid_score import get_activations
    from pytorch_fid.inception import InceptionV3
    fake, _ = small_sets
    paths = write_pngs(tmp_path / "fake", fake)
    model = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]])      # loads from TORCH_HOME
    reference = get_activations(paths, model, batch_size=50, dims=2048, device="cpu", num_workers=0)
    ours = inception.features(read_pngs(paths))
    assert ours.shape == reference.shape == (8, 2048) and ours.dtype == np.float64
    assert np.abs(reference).max() > 1e-2            # the random network is not dead
    err = np.abs(ours - reference).max() / np.abs(reference).max()
    print(f"features: max abs difference relative to max |feature| = {err:.3g}")
    assert err <= 1e-6


def test_features_do_not_depend_on_clip_split_or_frame_size(random_weights, small_sets):
    fake, _ = small_sets
    whole = inception.features(fake)
    split = inception.features([fake[:3], fake[3:5], fake[5:]], batch_size=50)
    assert np.array_equal(whole, split)
    other = make_frames(3, 2, 40, 56)
    mixed = inception.features([fake[:2], other])
    assert np.allclose(mixed[:2], whole[:2], rtol=0, atol=1e-4 * np.abs(whole).max())
    with pytest.raises(BadInput, match="uint8"):
        inception.features(fake.astype(np.float32))


def _reference_frechet(*args):
    from pytorch_fid.fid_score import calculate_frechet_distance
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # sqrtm(disp=False) is deprecated in SciPy 1.16+
        return float(calculate_frechet_distance(*args))


@pytest.mark.parametrize("n", [400, 20])         # full-rank and rank-deficient covariances
def test_frechet_distance_equals_pytorch_fid(n):
    rng = np.random.default_rng(n)
    x = rng.normal(size=(n, 64))
    y = rng.normal(0.3, 1.2, size=(n, 64)) @ rng.normal(size=(64, 64)) / 8
    args = (x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False))
    ours, reference = fid.frechet_distance(*args), _reference_frechet(*args)
    assert ours == pytest.approx(reference, rel=1e-9)
    # a distribution against itself: zero, up to the square root's rounding
    assert fid.frechet_distance(args[0], args[1], args[0], args[1]) == pytest.approx(0, abs=1e-6 * np.trace(args[1]))


@pytest.mark.slow
def test_fid_equals_pytorch_fid_on_folders(random_weights, tmp_path, capsys):
    """The headline check: pytorch-fid's own calculate_fid_given_paths on two folders of
    PNGs vs the harness's fid on the same images (two 2048x2048 matrix square roots: slow)."""
    from pytorch_fid.fid_score import calculate_fid_given_paths
    real = make_frames(20, 30)
    fake = perturb(real, 21, sigma=25.0)
    fake_paths = write_pngs(tmp_path / "fake", fake)
    real_paths = write_pngs(tmp_path / "real", real)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # SciPy 1.17: sqrtm(disp=False) deprecated; singular matrix
        reference = float(calculate_fid_given_paths([str(tmp_path / "fake"), str(tmp_path / "real")],
                                                    batch_size=50, device="cpu", dims=2048, num_workers=0))
    capsys.readouterr()
    result = fid.score(as_clips(read_pngs(fake_paths), read_pngs(real_paths), 3), FID_OPTIONS)
    assert "fewer than 2048" in capsys.readouterr().err
    rel = abs(result.value - reference) / abs(reference)
    print(f"FID harness {result.value!r} pytorch-fid {reference!r} relative difference {rel:.3g}")
    assert reference > 0 and rel <= 1e-4
    assert result.n == 30 and result.settings["n_real"] == 30 and result.settings["dims"] == 2048
    assert result.settings["weights"]["check"] == "unverified"
    assert result.settings["weights"]["file"] == inception.WEIGHTS_FILE
    assert "2048" in result.stats["warning"]


def test_reference_statistics_are_cached(random_weights, small_sets):
    real = small_sets[1][:3]
    mu, sigma, first = inception.reference_statistics(real)
    mu2, sigma2, second = inception.reference_statistics([real[:1], real[1:]])
    assert first["cache"] in ("stored", "hit") and second == {"cache": "hit", "path": first["path"]}
    assert Path(first["path"]).is_file() and "/fid/" in first["path"]
    assert np.array_equal(mu, mu2) and np.array_equal(sigma, sigma2)
    assert np.allclose(mu, inception.features(real).mean(0))
    _, _, other = inception.reference_statistics(real, batch_size=3)   # a setting changes the key
    assert other["path"] != first["path"]
    altered = real.copy()
    altered[0, 0, 0, 0] ^= 1
    _, _, changed = inception.reference_statistics(altered)
    assert changed["path"] != first["path"]


# ---------------------------------------------------------------- KID

def test_kid_estimator_equals_torch_fidelity():
    from torch_fidelity.metric_kid import kid_features_to_metric
    rng = np.random.default_rng(5)
    fake = rng.gamma(2.0, 1.0, size=(300, 2048))
    real = rng.gamma(2.2, 1.0, size=(250, 2048))
    mean, std, used = kid.kid_from_features(fake, real, subsets=20, subset_size=100, seed=7)
    ref = kid_features_to_metric(torch.from_numpy(fake), torch.from_numpy(real), kid_subsets=20,
                                 kid_subset_size=100, rng_seed=7, verbose=False)
    assert used == 100
    assert mean == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-12, abs=1e-12)
    assert std == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-12, abs=1e-12)


def test_kid_metric_equals_torch_fidelity_on_inception_features(random_weights, small_sets):
    from torch_fidelity.metric_kid import kid_features_to_metric
    fake, real = small_sets
    result = kid.score(as_clips(fake, real), KID_OPTIONS)
    f, r = inception.features(fake), inception.features(real)
    ref = kid_features_to_metric(torch.from_numpy(f), torch.from_numpy(r), kid_subsets=100,
                                 kid_subset_size=len(f), rng_seed=2020, verbose=False)
    err = abs(result.value - ref["kernel_inception_distance_mean"])
    print(f"KID harness {result.value!r} torch-fidelity {ref['kernel_inception_distance_mean']!r} abs diff {err:.3g}")
    assert err <= 1e-5 * max(1.0, abs(ref["kernel_inception_distance_mean"]))
    assert result.stats["kid_std"] == pytest.approx(ref["kernel_inception_distance_std"], rel=1e-5, abs=1e-8)
    assert result.settings["kid_subset_size_used"] == 8 and "clipped" in result.stats["note"]
    assert result.settings["weights"]["file"] == inception.WEIGHTS_FILE


# ---------------------------------------------------------------- LPIPS

def _reference_lpips():
    """lpips.LPIPS(net='alex') exactly as users make it: torchvision loads AlexNet from the
    hub cache. torchvision insists on the hash its file name promises, which random weights
    cannot have, so only that check is switched off."""
    import lpips
    import torch.hub
    import torchvision.models._api as tv_api

    def without_hash_check(url, *args, **kwargs):
        return torch.hub.load_state_dict_from_url(url, *args, **{**kwargs, "check_hash": False})

    with mock.patch.object(tv_api, "load_state_dict_from_url", without_hash_check), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lpips.LPIPS(net="alex", version="0.1", verbose=False).eval()


def test_lpips_equals_lpips_package(random_weights):
    import lpips
    real = make_frames(30, 10)
    fake = perturb(real, 31)
    reference_model = _reference_lpips()
    ours_model, provenance = perceptual.load_model()
    for ours_p, ref_p in zip(ours_model.state_dict().values(), reference_model.state_dict().values()):
        assert torch.equal(ours_p, ref_p)         # same trunk file, same package heads
    with torch.no_grad():
        reference = np.array([reference_model(lpips.im2tensor(a), lpips.im2tensor(b)).item()
                              for a, b in zip(fake, real)])
    ours = perceptual.distances(ours_model, fake, real, batch_size=4)
    err = np.abs(ours - reference).max()
    print(f"LPIPS per-pair max abs difference {err:.3g} (values around {reference.mean():.3g})")
    assert err <= 1e-5
    result = perceptual.score(as_clips(fake, real), LPIPS_OPTIONS)
    assert abs(result.value - reference.mean()) <= 1e-5 and result.n == 10
    assert result.stats["per_clip"]["clip0"] == pytest.approx(reference[:5].mean(), abs=1e-5)
    assert result.settings["weights"]["file"] == perceptual.WEIGHTS_FILE
    assert result.settings["weights"]["heads"]["file"].endswith("alex.pth")


# ---------------------------------------------------------------- PSNR and SSIM

def test_psnr_ssim_equal_skimage(monkeypatch):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    clips = [Clip("a", fake=perturb(make_frames(40, 5, 48, 64), 41), real=make_frames(40, 5, 48, 64)),
             Clip("b", fake=perturb(make_frames(42, 4, 33, 29), 43, 40.0), real=make_frames(42, 4, 33, 29))]
    ref_psnr, ref_ssim = [], []
    for c in clips:
        ref_psnr.append([peak_signal_noise_ratio(r, f, data_range=255) for f, r in zip(c.fake, c.real)])
        ref_ssim.append([structural_similarity(r, f, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                               data_range=255, channel_axis=-1) for f, r in zip(c.fake, c.real)])
        assert np.abs(image.psnr_frames(c.fake, c.real) - ref_psnr[-1]).max() <= 1e-9
        assert np.abs(image.ssim_frames(c.fake, c.real) - ref_ssim[-1]).max() <= 1e-9
    p, s = image.psnr(clips, {}), image.ssim(clips, {})
    assert p.value == pytest.approx(np.mean(np.concatenate(ref_psnr)), abs=1e-5)
    assert s.value == pytest.approx(np.mean(np.concatenate(ref_ssim)), abs=1e-5)
    assert s.stats["per_clip"]["b"] == pytest.approx(np.mean(ref_ssim[1]), abs=1e-5)
    assert p.n == s.n == 9
    monkeypatch.setattr(image, "CHUNK_VALUES", 20000)     # several frames per step, then one
    assert np.abs(image.ssim_frames(clips[0].fake, clips[0].real) - ref_ssim[0]).max() <= 1e-9
    assert np.abs(image.psnr_frames(clips[0].fake, clips[0].real) - ref_psnr[0]).max() <= 1e-9
    assert get_metric("psnr").unit == "dB" and get_metric("ssim").direction == "higher"


@pytest.mark.parametrize("region", ["face", "mouth"])
def test_psnr_ssim_on_a_region_equal_skimage_on_the_crops(region):
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    real = make_frames(60, 6, 72, 80)
    fake = perturb(real, 61, 25.0)
    # boxes move, two frames share one, one reaches past the frame's right and bottom edge
    boxes = np.array([[10, 8, 50, 60], [12, 9, 52, 61], [10, 8, 50, 60],
                      [20, 14, 66, 70], [30, 30, 90, 84], [5, 2, 41, 40]])
    clips = [Clip("moving", fake=fake, real=real, boxes=boxes)]
    ref_psnr, ref_ssim = [], []
    for f, r, (x1, y1, x2, y2) in zip(fake, real, boxes):
        x2, y2 = min(x2, 80), min(y2, 72)
        if region == "mouth":
            y1 = y1 + (y2 - y1) // 2
        fc, rc = f[y1:y2, x1:x2], r[y1:y2, x1:x2]
        ref_psnr.append(peak_signal_noise_ratio(rc, fc, data_range=255))
        ref_ssim.append(structural_similarity(rc, fc, gaussian_weights=True, sigma=1.5,
                                              use_sample_covariance=False, data_range=255, channel_axis=-1))
    p, s = image.psnr(clips, {"region": region}), image.ssim(clips, {"region": region})
    assert p.n == s.n == 6
    assert p.value == pytest.approx(np.mean(ref_psnr), abs=1e-9)
    assert s.value == pytest.approx(np.mean(ref_ssim), abs=1e-9)
    assert p.settings["region"] == s.settings["region"] == region
    # the region changes the number: scoring the whole frame gives another value
    whole = image.psnr(clips, {"region": "frame"})
    assert whole.value == pytest.approx(image.psnr(clips, {}).value) and abs(whole.value - p.value) > 1e-3


def test_region_needs_boxes_and_a_known_name():
    frames = make_frames(62, 2, 40, 40)
    with pytest.raises(BadInput, match="psnr: clip noboxes has no face boxes; region=mouth"):
        image.psnr([Clip("noboxes", fake=perturb(frames, 63), real=frames)], {"region": "mouth"})
    with pytest.raises(BadInput, match="clip offside: frame 1's face box .* leaves no face region"):
        image.ssim([Clip("offside", fake=frames, real=frames, boxes=np.array([[0, 0, 20, 20], [45, 0, 60, 20]]))],
                   {"region": "face"})
    with pytest.raises(BadInput, match="option region='lips': expected one of frame, face, mouth"):
        get_metric("psnr").resolve_options({"region": "lips"}, "suite s.yaml: metrics[0]")
    assert get_metric("ssim").resolve_options({}, "x")["region"] == "frame"


def test_identical_frames_psnr_inf_ssim_one():
    frames = make_frames(50, 3)
    assert np.isinf(image.psnr_frames(frames, frames)).all()
    assert np.allclose(image.ssim_frames(frames, frames), 1.0)
    assert image.psnr([Clip("same", fake=frames, real=frames)], {}).stats["identical_frames"] == 3


def test_paired_metrics_refuse_bad_inputs():
    with pytest.raises(BadInput, match="tiny.*smaller than the 11x11"):
        image.ssim([Clip("tiny", fake=make_frames(1, 2, 8, 8), real=make_frames(2, 2, 8, 8))], {})
    with pytest.raises(BadInput, match="nor.*no reference"):
        image.psnr([Clip("nor", fake=make_frames(1, 2))], {})
    with pytest.raises(BadInput, match="clip sized: .*must pair one to one at one size"):
        image.psnr([Clip("sized", fake=make_frames(1, 2, 32, 32), real=make_frames(1, 2, 32, 40))], {})
    with pytest.raises(BadInput, match="region"):
        fid.score(as_clips(make_frames(1, 2), make_frames(2, 2)), {**FID_OPTIONS, "region": "mouth"})
    with pytest.raises(BadInput, match="no clip has reference"):
        fid.score([Clip("x", fake=make_frames(1, 2))], FID_OPTIONS)


# ---------------------------------------------------------------- weights missing or wrong

def test_missing_weights_give_a_skipped_result(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATARBENCH_WEIGHTS", str(tmp_path / "empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-empty"))
    monkeypatch.delenv("AVATARBENCH_ALLOW_UNVERIFIED_WEIGHTS", raising=False)
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    clips = as_clips(make_frames(1, 4), make_frames(2, 4))
    for metric, options, file in [(fid, FID_OPTIONS, inception.WEIGHTS_FILE),
                                  (kid, KID_OPTIONS, inception.WEIGHTS_FILE),
                                  (perceptual, LPIPS_OPTIONS, perceptual.WEIGHTS_FILE)]:
        result = metric.score(clips, options)
        assert result.value is None, metric.__name__
        assert file in result.reason and CATALOG[file].source in result.reason
        assert str(tmp_path / "empty") in result.reason


def test_corrupt_weights_are_refused(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / inception.WEIGHTS_FILE).write_bytes(b"not a checkpoint" * 100)
    monkeypatch.setenv("AVATARBENCH_WEIGHTS", str(folder))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-empty"))
    monkeypatch.delenv("AVATARBENCH_ALLOW_UNVERIFIED_WEIGHTS", raising=False)
    clips = as_clips(make_frames(1, 4), make_frames(2, 4))
    with pytest.raises(BadInput, match="6726825d") as info:
        fid.score(clips, FID_OPTIONS)
    assert not isinstance(info.value, MissingWeights)
    monkeypatch.setenv("AVATARBENCH_ALLOW_UNVERIFIED_WEIGHTS", "1")   # past the hash: still not a checkpoint
    with pytest.raises(BadInput, match=f"checkpoint .*{inception.WEIGHTS_FILE}") as info:
        kid.score(clips, KID_OPTIONS)
    assert not isinstance(info.value, MissingWeights)
