"""The lip-sync generation protocol and quality suites on tiny made-up data in the
Wav2Lip-preprocessed layout: windows, paste-back, caching, the ground-truth row, missing
weights recorded as skipped while the rest of the table is written."""
import numpy as np
import pytest
import torch
import yaml

from conftest import cli, make_lrs_tree, records
from harness.families.lipsync.protocol import FACE_SIZE, generate, mel_chunk_count


def _wav2lip_chunks(n_columns, fps=25.0):
    """Wav2Lip inference's loop, written out as it reads."""
    chunks, i = 0, 0
    while True:
        start = int(i * 80.0 / fps)
        if start + 16 > n_columns:
            return chunks + 1
        chunks += 1
        i += 1


@pytest.mark.parametrize("n", [16, 17, 19, 20, 33, 80, 81, 161])
def test_mel_chunk_count_follows_wav2lip_inference(n):
    assert mel_chunk_count(n) == _wav2lip_chunks(n)


class Recorder(torch.nn.Module):
    """Returns the unmasked face and keeps what it was given."""
    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, mel, face):
        self.seen.append((mel.clone(), face.clone()))
        return face[:, 3:6]


def test_generate_masks_lower_half_feeds_bgr_and_pastes_back():
    import cv2
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(3, 120, 100, 3), dtype=np.uint8)
    boxes = np.array([[10, 20, 70, 100]] * 3)
    mel = rng.standard_normal((80, 30)).astype(np.float32)
    model = Recorder()
    fake, src = generate(model, frames, boxes, mel, batch_size=2)
    n = mel_chunk_count(30)
    assert n == 6 and len(fake) == n == len(src)
    assert (src[3] == frames[0]).all() and (src[4] == frames[1]).all()   # frames reused cyclically
    mel_in, face_in = model.seen[0]
    assert face_in.shape[1:] == (6, FACE_SIZE, FACE_SIZE) and mel_in.shape[1:] == (1, 80, 16)
    assert (face_in[:, :3, FACE_SIZE // 2:] == 0).all()          # lower half of the target masked
    crop = cv2.resize(cv2.cvtColor(frames[0][20:100, 10:70], cv2.COLOR_RGB2BGR), (FACE_SIZE, FACE_SIZE))
    assert torch.allclose(face_in[0, 3:], torch.from_numpy(crop.transpose(2, 0, 1) / 255.0).float())
    assert torch.equal(mel_in[1, 0], torch.from_numpy(mel[:, 3:19]))  # window 1 starts at int(3.2)
    # outside the box nothing changes; inside is the face through 96x96 and back
    assert (fake[0][:20] == frames[0][:20]).all() and (fake[0][:, 70:] == frames[0][:, 70:]).all()
    back = cv2.resize((face_in[0, 3:].numpy().transpose(1, 2, 0) * 255.0).astype(np.uint8), (60, 80))
    assert (fake[0][20:100, 10:70] == cv2.cvtColor(back, cv2.COLOR_BGR2RGB)).all()


def test_generate_with_first_reference_shows_the_first_face_and_masks_the_target():
    import cv2
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=(4, 120, 100, 3), dtype=np.uint8)
    boxes = np.array([[10, 20, 70, 100], [12, 18, 72, 98], [8, 22, 68, 102], [10, 20, 70, 100]])
    mel = rng.standard_normal((80, 30)).astype(np.float32)

    def crop(i):
        x1, y1, x2, y2 = boxes[i % 4]
        bgr = cv2.resize(cv2.cvtColor(frames[i % 4][y1:y2, x1:x2], cv2.COLOR_RGB2BGR), (FACE_SIZE, FACE_SIZE))
        return torch.from_numpy(bgr.transpose(2, 0, 1) / 255.0).float()
    model = Recorder()
    generate(model, frames, boxes, mel, batch_size=4, reference="first")
    faces = torch.cat([f for _, f in model.seen])
    assert len(faces) == mel_chunk_count(30) == 6
    for i, face in enumerate(faces):
        assert torch.allclose(face[3:], crop(0))                           # first frame's face
        assert torch.allclose(face[:3, :FACE_SIZE // 2], crop(i)[:, :FACE_SIZE // 2])   # target, upper half
        assert (face[:3, FACE_SIZE // 2:] == 0).all()
    # the default is Wav2Lip's: the target frame unmasked, byte for byte as before
    default, frame = Recorder(), Recorder()
    a, _ = generate(default, frames, boxes, mel, batch_size=4)
    b, _ = generate(frame, frames, boxes, mel, batch_size=4, reference="frame")
    assert (a == b).all() and torch.allclose(default.seen[1][1][1, 3:], crop(5))
    from harness.errors import BadInput
    with pytest.raises(BadInput, match="reference 'last'"):
        generate(Recorder(), frames, boxes, mel, reference="last")


def test_reference_rule_in_the_data_spec_keys_and_provenance(tmp_path):
    from types import SimpleNamespace
    from harness.derive import get_variant
    from harness.errors import BadInput
    from harness.families.lipsync.dataspec import DataSpec
    from harness.families.lipsync.protocol import _reference_note, reference_rule
    root = make_lrs_tree(tmp_path / "lrs", frames=6)
    plain = DataSpec.from_suite({"layout": "lrs"}, "s", str(root), None)
    first = DataSpec.from_suite({"layout": "lrs", "reference": "first"}, "s", str(root), None)
    assert plain.reference == "frame" and "reference" not in plain.fingerprint()
    assert first.fingerprint() == {**plain.fingerprint(), "reference": "first"}
    assert "reference: frame" in plain.describe() and "reference: first" in first.describe()
    with pytest.raises(BadInput, match="suite s: data.reference 'last' is not one of frame"):
        DataSpec.from_suite({"layout": "lrs", "reference": "last"}, "s", str(root), None)
    gt, copy = get_variant("ground-truth"), get_variant("reference-copy")
    assert gt.ground_truth and not copy.ground_truth and copy.role == "reference"
    assert "first mouth" in copy.description
    face = torch.rand(2, 6, 96, 96)
    out = copy.build()(torch.zeros(2, 1, 80, 16), face)
    assert torch.equal(out[:, :, :48], face[:, 0:3, :48]) and torch.equal(out[:, :, 48:], face[:, 3:6, 48:])
    cell = lambda v, spec: SimpleNamespace(variant=v, data=spec)
    assert reference_rule(cell(copy, first)) == "first" and reference_rule(cell(copy, plain)) == "frame"
    assert reference_rule(cell(gt, first)) == "frame"           # the ground truth stays the real frames
    assert "ground-truth variant is given the target frame" in _reference_note(cell(gt, first))


def test_first_reference_suite_scores_the_copy_floor_below_the_ground_truth(tmp_path):
    from PIL import Image
    root = make_lrs_tree(tmp_path / "lrs", frames=8)
    # frames that differ clearly: a smooth pattern sliding 5 pixels per frame
    x = np.tile(np.arange(48), (48, 1))
    for i in range(8):
        img = 128 + 90 * np.sin((x + 5 * i) / 6.0)[..., None] * np.array([1.0, 0.6, -0.4])
        Image.fromarray(img.astype(np.uint8)).save(root / "spk1/00001" / f"{i}.jpg", quality=95)
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "tiny-first", "family": "lipsync",
        "data": {"layout": "lrs", "batch_size": 8, "reference": "first"},
        "variants": ["ground-truth", "reference-copy"], "metrics": ["psnr"]}))
    r = cli("run", suite, "--out", tmp_path / "run", "--data-root", root, "--no-progress",
            env={"AVATARBENCH_CACHE": str(tmp_path / "cache")})     # other tests count the shared cache
    assert r.returncode == 0, r.stderr
    recs = {x["variant"]: x for x in records(tmp_path / "run")}
    gt, copy = recs["ground-truth"], recs["reference-copy"]
    assert gt["provenance"]["generation"]["reference"].startswith("frame")
    assert copy["provenance"]["generation"]["reference"].startswith("first")
    assert copy["provenance"]["generation"]["key"]["reference"] == "first"
    assert "reference" not in gt["provenance"]["generation"]["key"]
    assert copy["provenance"]["weights"] == "none (the model has no parameters)"
    # the frames move, so the first frame copied is far from the truth
    assert gt["value"] > copy["value"] + 10


def test_generate_rejects_nan_output():
    class Nan(torch.nn.Module):
        def forward(self, mel, face):
            return face[:, :3] * float("nan")
    frames = np.zeros((2, 32, 32, 3), np.uint8)
    from harness.errors import BadInput
    with pytest.raises(BadInput, match="NaN"):
        generate(Nan(), frames, np.array([[0, 0, 32, 32]] * 2), np.zeros((80, 20), np.float32))


def _quality_suite(path, metrics, variants=("ground-truth", "nota-wav2lip")):
    path.write_text(yaml.safe_dump({
        "name": "tiny-lrs", "family": "lipsync", "data": {"layout": "lrs", "batch_size": 8},
        "variants": list(variants), "metrics": metrics}, sort_keys=False))
    return path


def test_suite_without_weights_skips_those_cells_and_writes_the_rest(tmp_path):
    root = make_lrs_tree(tmp_path / "lrs", clips=("spk1/00001", "spk2/00002"), frames=10)
    suite = _quality_suite(tmp_path / "s.yaml", ["fid", "lse_d", "psnr", "ssim", "params"])
    # a cache of its own: the videos counted below are this test's, whatever ran before
    env = {"AVATARBENCH_WEIGHTS": str(tmp_path / "no-weights"), "AVATARBENCH_CACHE": str(tmp_path / "cache")}
    r = cli("run", suite, "--out", tmp_path / "run", "--data-root", root, "--no-progress", env=env)
    assert r.returncode == 0, r.stderr
    recs = {(x["variant"], x["metric"]): x for x in records(tmp_path / "run")}
    for v in ("ground-truth", "nota-wav2lip"):
        fid = recs[(v, "fid")]
        assert fid["status"] == "skipped" and "pt_inception-2015-12-05-6726825d.pth" in fid["reason"]
        assert "github.com/mseitzer" in fid["reason"] and str(tmp_path / "no-weights") in fid["reason"]
        assert recs[(v, "lse_d")]["status"] == "skipped" and "syncnet_v2.model" in recs[(v, "lse_d")]["reason"]
        for m in ("psnr", "ssim"):
            assert recs[(v, m)]["status"] == "ok" and recs[(v, m)]["n"] > 0
        gen = recs[(v, "psnr")]["provenance"]["generation"]
        assert gen["clips"] == 2
    assert recs[("ground-truth", "params")]["status"] == "skipped"
    assert recs[("nota-wav2lip", "params")]["value"] == 1258143
    # the ground truth through the same path is much closer to the real frames than a random model
    assert recs[("ground-truth", "psnr")]["value"] > recs[("nota-wav2lip", "psnr")]["value"] + 5
    table = (tmp_path / "run" / "table.md").read_text()
    assert "ground-truth" in table and "skipped [" in table

    # a second run over a fresh folder reuses the cached videos (same files, not rewritten)
    cache = tmp_path / "cache" / "generated"
    before = {p: p.stat().st_mtime_ns for p in cache.rglob("*.mp4")}
    assert len(before) == 4
    r = cli("run", suite, "--out", tmp_path / "run2", "--data-root", root, "--no-progress",
            "--variant", "ground-truth", env=env)
    assert r.returncode == 0, r.stderr
    assert {p: p.stat().st_mtime_ns for p in cache.rglob("*.mp4")} == before


def test_quality_suite_needs_a_data_root(tmp_path):
    suite = _quality_suite(tmp_path / "s.yaml", ["psnr"])
    r = cli("run", suite, "--out", tmp_path / "run", "--no-progress")
    assert r.returncode == 2 and "--data-root" in r.stderr and "SPEAKER/CLIP" in r.stderr
    r = cli("run", suite, "--out", tmp_path / "run", "--no-progress", "--data-root", tmp_path / "nope")
    assert r.returncode == 2 and "is not a folder" in r.stderr
    r = cli("run", suite, "--out", tmp_path / "run", "--no-progress", "--data-root", tmp_path, "--limit", "0")
    assert r.returncode == 2 and "limit" in r.stderr and "at least 1" in r.stderr


def test_resuming_on_other_data_is_refused_and_keeps_the_records(tmp_path):
    root = make_lrs_tree(tmp_path / "lrs", clips=("spk1/00001", "spk2/00002"), frames=8)
    suite = _quality_suite(tmp_path / "s.yaml", ["psnr"], variants=["ground-truth"])
    run = tmp_path / "run"
    r = cli("run", suite, "--out", run, "--data-root", root, "--limit", "1", "--no-progress")
    assert r.returncode == 0, r.stderr
    before = (run / "records.jsonl").read_text()
    r = cli("run", suite, "--out", run, "--data-root", root, "--no-progress")
    assert r.returncode == 2 and "other data" in r.stderr and "limit 1 -> None" in r.stderr
    assert (run / "records.jsonl").read_text() == before
    r = cli("run", suite, "--out", run, "--data-root", root, "--no-progress", "--fresh")
    assert r.returncode == 0, r.stderr
    assert records(run)[0]["provenance"]["generation"]["clips"] == 2


def test_builtin_lrs_suites_validate_and_order_columns_like_wav2lip():
    from harness.suite import load_suite
    for name in ("lrs2", "lrs3"):
        s = load_suite(name)
        assert s.report.columns[:3] == ["lse_d", "lse_c", "fid"]
        assert "ground-truth" in [v.name for v in s.variants]


@pytest.mark.slow
def test_video_folder_layout_detects_faces_and_generates(tmp_path):
    """A real face (scikit-image's astronaut photo) drifting across 10 frames, as a video
    with audio: faces are found, the ground truth and a model go through the protocol."""
    from skimage.data import astronaut
    from harness.data.video import write_video
    img = astronaut()[:320, 60:380]
    frames = np.stack([np.roll(img, (i, 2 * i), axis=(0, 1)) for i in range(10)])
    t = np.arange(int(16000 * 0.4)) / 16000
    (tmp_path / "videos").mkdir()
    write_video(tmp_path / "videos" / "astronaut.mp4", frames, 25.0,
                audio=(0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32))
    suite = tmp_path / "s.yaml"
    suite.write_text(yaml.safe_dump({
        "name": "tiny-videos", "family": "lipsync", "data": {"layout": "videos"},
        "variants": ["ground-truth", "nota-wav2lip"], "metrics": ["psnr", "ssim"]}))
    r = cli("run", suite, "--out", tmp_path / "run", "--data-root", tmp_path / "videos", "--no-progress")
    assert r.returncode == 0, r.stderr
    recs = {(x["variant"], x["metric"]): x for x in records(tmp_path / "run")}
    gt, model = recs[("ground-truth", "psnr")]["value"], recs[("nota-wav2lip", "psnr")]["value"]
    # outside the face box the frames are the source frames (up to video coding), so even a
    # random generator scores well above noise; the ground truth scores higher still
    assert gt > model > 15
