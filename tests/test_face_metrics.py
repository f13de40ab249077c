"""Face and lip-sync metrics against their reference packages, on the same inputs and the
same (random) weights saved under the canonical file names.

Agreement tolerances: LSE-D / LSE-C 1e-5 absolute (offset exact); identity embeddings
and scores 1e-5 absolute; MTCNN crops and syncnet face crops bit-exact."""
from __future__ import annotations

import os
import types
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from harness.samples import Clip
from harness.errors import BadInput

SYNC_FILE = "syncnet_v2.model"
VGG_FILE = "20180402-114759-vggface2.pt"


# ------------------------------------------------------------------ fixtures

def _perturb_batchnorm(model: torch.nn.Module, seed: int) -> None:
    """Random running statistics, so a wrong eval/train mode or a lost buffer shows."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_((torch.rand(m.running_mean.shape, generator=g) - 0.5) * 0.2)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


@pytest.fixture(scope="module")
def syncnet_ref():
    from syncnet_python.SyncNetModel import S
    torch.manual_seed(0)
    model = S()
    _perturb_batchnorm(model, 1)
    return model.eval()


@pytest.fixture(scope="module")
def weights_dir(tmp_path_factory, syncnet_ref):
    """Random weights under the canonical names: SyncNet as a whole pickled module."""
    root = tmp_path_factory.mktemp("face-weights")
    (root / "w").mkdir()
    torch.save(syncnet_ref, root / "w" / SYNC_FILE)
    return root


@pytest.fixture
def env(weights_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("AVATARBENCH_WEIGHTS", str(weights_dir / "w"))
    monkeypatch.setenv("AVATARBENCH_ALLOW_UNVERIFIED_WEIGHTS", "1")
    monkeypatch.setenv("TORCH_HOME", str(weights_dir / "torch"))
    monkeypatch.setenv("AVATARBENCH_CACHE", str(tmp_path / "cache"))
    return weights_dir


@pytest.fixture(scope="module")
def vggface2_file(weights_dir, face_image):
    """Random InceptionResnetV1 (with its 8631-class head) saved where the harness looks
    (AVATARBENCH_WEIGHTS) and where facenet-pytorch looks ($TORCH_HOME/checkpoints).

    A freshly initialised network maps every input to nearly the same embedding (cosine
    ~0.999), which would hide preprocessing mistakes; its BatchNorm statistics are
    therefore estimated on a few face crops and noise images, after which different
    crops of the same face differ by ~1e-2 in cosine and noise by ~0.9."""
    from facenet_pytorch import InceptionResnetV1
    from harness.metrics.identity import align
    torch.manual_seed(2)
    model = InceptionResnetV1(classify=True, num_classes=8631)
    faces = [align(face_image), align(np.roll(face_image, 6, axis=0))]
    calibration = torch.cat([torch.randn(12, 3, 160, 160, generator=torch.Generator().manual_seed(3)),
                             torch.stack(faces + [faces[0].flip(-1)])])
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    for bn in bns:
        bn.reset_running_stats()
        bn.momentum = None                     # plain average over the calibration batch
    model.train()
    with torch.no_grad():
        model(calibration)
    for bn in bns:
        bn.momentum = 0.1
    path = weights_dir / "w" / VGG_FILE
    torch.save(model.state_dict(), path)
    for sub in ("checkpoints", "hub/checkpoints"):
        (weights_dir / "torch" / sub).mkdir(parents=True, exist_ok=True)
        os.link(path, weights_dir / "torch" / sub / VGG_FILE)
    return path


@pytest.fixture(scope="module")
def face_image():
    """A real photograph with one face (scikit-image's astronaut): the 256x256 region
    around the face, at 160x160 RGB (face about 50 px wide) to keep detection cheap."""
    data = pytest.importorskip("skimage.data", reason="scikit-image ships the sample face image")
    return cv2.resize(data.astronaut()[0:256, 94:350], (160, 160), interpolation=cv2.INTER_AREA)


def _noise(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# ------------------------------------------------------------------ (a) SyncNet model and converter

def test_syncnet_definition_matches_syncnet_python(syncnet_ref):
    from harness.metrics.syncnet_model import S, build
    mine = S()
    ref_state = syncnet_ref.state_dict()
    assert list(mine.state_dict()) == list(ref_state)
    assert all(mine.state_dict()[k].shape == v.shape for k, v in ref_state.items())
    assert sum(p.numel() for p in mine.parameters()) == 13_631_616
    model = build(ref_state)
    video = torch.rand(2, 3, 5, 224, 224) * 255
    mfcc = torch.randn(2, 1, 13, 20)
    with torch.no_grad():
        assert torch.allclose(model.forward_lip(video), syncnet_ref.forward_lip(video), atol=1e-5)
        assert torch.allclose(model.forward_aud(mfcc), syncnet_ref.forward_aud(mfcc), atol=1e-5)


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-format"])
def test_converter_reads_a_pickled_module(env, syncnet_ref, legacy, tmp_path, monkeypatch):
    from harness import canonical_weights
    from harness.metrics import syncnet_model
    folder = tmp_path / "w"
    folder.mkdir()
    torch.save(syncnet_ref, folder / SYNC_FILE, _use_new_zipfile_serialization=not legacy)
    monkeypatch.setenv("AVATARBENCH_WEIGHTS", str(folder))
    state, prov = canonical_weights.load_state(SYNC_FILE)
    ref = syncnet_ref.state_dict()
    assert list(state) == list(ref)
    assert all(torch.equal(state[k], v) for k, v in ref.items())
    assert prov["check"] == "unverified" and prov["file"] == SYNC_FILE
    cached = syncnet_model.converted_path(folder / SYNC_FILE, prov["sha256"])
    assert cached.is_file() and cached.name == f"syncnet_v2-{prov['sha256'][:12]}.pt"
    # the second load reads the converted state dict and never unpickles the module again
    monkeypatch.setattr(syncnet_model, "restricted_load", lambda p: pytest.fail("converted twice"))
    again = syncnet_model.convert_syncnet_v2(folder / SYNC_FILE)
    assert all(torch.equal(again[k], v) for k, v in ref.items())


def test_converter_reads_a_plain_state_dict(env, syncnet_ref, tmp_path):
    from harness.metrics.syncnet_model import convert_syncnet_v2
    path = tmp_path / SYNC_FILE
    state = syncnet_ref.state_dict()
    torch.save({k: v for k, v in state.items() if "num_batches_tracked" not in k}, path,
               _use_new_zipfile_serialization=False)
    out = convert_syncnet_v2(path)
    assert list(out) == list(state)
    assert all(torch.equal(out[k], v) for k, v in state.items() if "num_batches_tracked" not in k)


class _RunsCode:
    marker = ""

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy-format"])
def test_converter_refuses_a_pickle_that_runs_code(env, tmp_path, legacy):
    from harness.metrics.syncnet_model import convert_syncnet_v2
    marker = tmp_path / "code-ran"
    evil = _RunsCode()
    evil.marker = str(marker)
    path = tmp_path / SYNC_FILE
    torch.save({"netcnnaud.0.weight": torch.zeros(1), "x": evil}, path,
               _use_new_zipfile_serialization=not legacy)
    with pytest.raises(BadInput) as err:
        convert_syncnet_v2(path)
    assert str(path) in str(err.value) and "system" in str(err.value)
    assert not marker.exists()


def test_converter_rejects_wrong_layers(env, tmp_path):
    from harness.metrics.syncnet_model import convert_syncnet_v2
    path = tmp_path / SYNC_FILE
    torch.save({"netcnnaud.0.weight": torch.zeros(3)}, path)
    with pytest.raises(BadInput, match="do not fit syncnet_python"):
        convert_syncnet_v2(path)


# ------------------------------------------------------------------ (b) LSE against SyncNetInstance.evaluate

@pytest.fixture(scope="module")
def sync_clip(tmp_path_factory):
    """20 face-sized frames written as %06d.jpg and 0.8 s of int16 audio, the layout
    SyncNetInstance.evaluate reads; the frames decoded back with cv2.imread."""
    folder = tmp_path_factory.mktemp("syncnet-clip")
    rng = np.random.default_rng(0)
    base = cv2.resize(_noise((28, 28, 3)), (224, 224))
    for i in range(20):
        frame = np.clip(base.astype(int) + rng.integers(-30, 30, base.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{i + 1:06d}.jpg"), frame)
    audio = (rng.standard_normal(12800) * 3000).astype(np.int16)
    from scipy.io import wavfile
    wavfile.write(folder / "audio.wav", 16000, audio)
    faces = np.stack([cv2.imread(str(folder / f"{i + 1:06d}.jpg"))[..., ::-1] for i in range(20)])
    return folder, faces, audio


def _reference_lse(model, folder, vshift, batch_size=20):
    from syncnet_python.SyncNetInstance import SyncNetInstance
    opt = types.SimpleNamespace(tmp_dir=str(folder), batch_size=batch_size, vshift=vshift)
    return SyncNetInstance(model, device="cpu").evaluate(opt)     # offset, conf, minval


@pytest.mark.parametrize("vshift,batch_size", [(15, 20), (15, 3), (4, 7)])
def test_lse_matches_syncnet_python(env, syncnet_ref, sync_clip, vshift, batch_size):
    import harness.metrics.lse as lse
    folder, faces, audio = sync_clip
    offset, conf, minval = _reference_lse(syncnet_ref, folder, vshift)
    lse._SCORES.clear()
    clip = Clip("clip0", fake=faces, audio=audio.astype(np.float32) / 32768, extras={"faces224": faces})
    opts = {"vshift": vshift, "batch_size": batch_size}
    d, c = lse.lse_d([clip], opts), lse.lse_c([clip], opts)
    assert abs(d.value - minval) < 1e-5 and abs(c.value - conf) < 1e-5
    assert d.stats["offset"]["clip0"] == offset and abs(offset) <= vshift
    assert d.stats["per_clip"] == {"clip0": d.value} and d.n == 1
    assert d.settings["vshift"] == vshift and d.settings["weights"]["check"] == "unverified"


def test_lse_mean_over_clips(env, sync_clip):
    import harness.metrics.lse as lse
    _, faces, audio = sync_clip
    wav = audio.astype(np.float32) / 32768
    a = Clip("a", fake=faces, audio=wav, extras={"faces224": faces})
    b = Clip("b", fake=faces[::-1].copy(), audio=wav, extras={"faces224": faces[::-1].copy()})
    opts = {"vshift": 3}
    both = lse.lse_c([a, b], opts)
    assert both.n == 2
    assert both.value == pytest.approx(np.mean(list(both.stats["per_clip"].values())), abs=1e-12)
    assert both.stats["per_clip"]["a"] == pytest.approx(lse.lse_c([a], opts).value, abs=1e-12)


def test_syncnet_crop_geometry_matches_syncnet_python(tmp_path, monkeypatch):
    """The crop step of syncnet_python's pipeline, run on PNG frames with its video
    writer replaced by a recorder, gives exactly the harness's crops."""
    from syncnet_python import syncnet_pipeline as sp
    from harness.metrics.lse import syncnet_crops
    rng = np.random.default_rng(1)
    frames = _noise((20, 160, 200, 3), seed=1)
    paths = []
    for i, f in enumerate(frames):
        paths.append(str(tmp_path / f"{i:06d}.png"))
        cv2.imwrite(paths[-1], f)
    x1, y1 = 60 + rng.normal(0, 3, 20), 40 + rng.normal(0, 3, 20)
    boxes = np.stack([x1, y1, x1 + 70 + rng.normal(0, 4, 20), y1 + 80 + rng.normal(0, 4, 20)], 1)
    written = []

    class Recorder:
        def __init__(self, path, *args):
            self.path = path

        def write(self, image):
            written.append(image.copy())

        def release(self):
            Path(self.path).touch()

    monkeypatch.setattr(sp.cv2, "VideoWriter", Recorder)
    monkeypatch.setattr(sp.subprocess, "run", lambda *a, **k: None)
    pipeline = types.SimpleNamespace(cfg=sp.PipelineConfig())
    sp.SyncNetPipeline._crop(pipeline, {"frame": np.arange(20), "bbox": boxes}, paths, "a.wav",
                             tmp_path / "crops" / "00000")
    assert np.array_equal(np.stack(written), syncnet_crops(frames, boxes))   # BGR in, BGR out


def test_lse_from_boxes_equals_lse_from_crops(env, sync_clip):
    import harness.metrics.lse as lse
    _, _, audio = sync_clip
    frames = _noise((12, 120, 140, 3), seed=4)
    boxes = np.tile([30, 20, 100, 100], (12, 1))
    wav = audio.astype(np.float32) / 32768
    via_boxes = lse.lse_d([Clip("c", fake=frames, audio=wav, boxes=boxes)], {"vshift": 2})
    crops = lse.syncnet_crops(frames, boxes)
    via_crops = lse.lse_d([Clip("c", fake=frames, audio=wav, extras={"faces224": crops})], {"vshift": 2})
    assert via_boxes.value == pytest.approx(via_crops.value, abs=1e-6)
    assert via_boxes.settings["faces_from"] == ["clip boxes + syncnet_python crop"]
    assert via_boxes.stats["notes"] == ["c: audio lasts 0.800 s and video 0.480 s; scored the first "
                                        "12 frames, as syncnet_python does"]


def test_lse_leaves_out_clips_shorter_than_one_window(env, sync_clip):
    """A clip with no complete window is left out and named; with no clip left the cell
    is skipped with that reason (score exits 2 with it)."""
    import harness.metrics.lse as lse
    _, faces, audio = sync_clip
    wav = audio.astype(np.float32) / 32768
    short = Clip("tiny-clip", fake=faces[:5], audio=wav, extras={"faces224": faces[:5]})
    alone = lse.lse_d([short], {})
    assert alone.value is None and "tiny-clip: too short" in alone.reason
    full = Clip("full-clip", fake=faces, audio=wav, extras={"faces224": faces})
    both = lse.lse_d([short, full], {})
    assert both.n == 1 and both.value == pytest.approx(lse.lse_d([full], {}).value)
    assert "tiny-clip: too short" in both.stats["clips_too_short"][0]
    no_audio = Clip("silent-clip", fake=faces, extras={"faces224": faces})
    with pytest.raises(BadInput, match="silent-clip: no audio"):
        lse.lse_c([no_audio], {})
    other_rate = Clip("fast-clip", fake=faces, audio=audio.astype(np.float32) / 32768, fps=30,
                      extras={"faces224": faces})
    with pytest.raises(BadInput, match="fast-clip: 30 fps; syncnet_python's protocol needs 25 fps"):
        lse.lse_c([other_rate], {})


def test_lse_detects_faces_when_no_boxes_are_given(env, face_image):
    import harness.metrics.lse as lse
    from harness.data.faces import face_boxes
    frames = np.stack([np.roll(face_image, k, axis=1) for k in range(8)])
    wav = np.random.default_rng(9).standard_normal(8 * 640).astype(np.float32) * 0.1
    detected = lse.lse_d([Clip("astronaut", fake=frames, audio=wav)], {"vshift": 2})
    assert detected.settings["faces_from"] == ["harness.data.faces.face_boxes + syncnet_python crop"]
    boxes = face_boxes(frames)
    given = lse.lse_d([Clip("astronaut", fake=frames, audio=wav, boxes=boxes)], {"vshift": 2})
    assert detected.value == pytest.approx(given.value, abs=1e-6)


# ------------------------------------------------------------------ (c) identity (facenet-pytorch)

def test_identity_embedding_matches_facenet(env, vggface2_file, face_image):
    from facenet_pytorch import InceptionResnetV1
    from harness import canonical_weights
    from harness.metrics import identity
    state, prov = canonical_weights.load_state(VGG_FILE)
    crops = torch.cat([identity.align(face_image)[None], torch.randn(3, 3, 160, 160)])
    mine = identity.embed(identity.embedder(state, prov["sha256"]), crops, batch_size=2)
    reference = InceptionResnetV1(pretrained="vggface2").eval()      # loads $TORCH_HOME/checkpoints
    with torch.no_grad():
        theirs = reference(crops)
    assert mine.shape == (4, 512)
    assert (mine - theirs).abs().max() < 1e-5


def test_mtcnn_alignment_matches_facenet(face_image):
    from facenet_pytorch import MTCNN
    from PIL import Image
    from harness.metrics import identity
    theirs = MTCNN(image_size=160, margin=0, post_process=True, device="cpu")(Image.fromarray(face_image))
    mine = identity.align(face_image)
    assert mine is not None and torch.equal(mine, theirs)
    assert identity.align(_noise((128, 128, 3))) is None


def test_identity_metric_matches_facenet_pipeline(env, vggface2_file, face_image):
    from facenet_pytorch import MTCNN, InceptionResnetV1
    from PIL import Image
    from harness.metrics import identity
    shifted = np.roll(face_image, 4, axis=1)
    noisy = np.clip(face_image.astype(int) + _noise(face_image.shape, 5) // 8, 0, 255).astype(np.uint8)
    frames = np.stack([face_image, shifted, _noise(face_image.shape, 6), noisy])
    clip = Clip("astronaut", fake=frames, identity=face_image)
    result = identity.identity([clip], {})
    mtcnn = MTCNN(image_size=160, margin=0, post_process=True, device="cpu")
    net = InceptionResnetV1(pretrained="vggface2").eval()
    with torch.no_grad():
        ref = net(mtcnn(Image.fromarray(face_image))[None])
        faces = [mtcnn(Image.fromarray(f)) for f in frames]
        emb = net(torch.stack([f for f in faces if f is not None]))
    expected = torch.nn.functional.cosine_similarity(emb, ref.expand_as(emb)).mean().item()
    assert faces[2] is None and result.stats["frames_without_face"] == {"astronaut": 1}
    assert abs(result.value - expected) < 1e-5
    assert result.backend == "facenet-pytorch InceptionResnetV1 vggface2 + MTCNN"
    assert result.settings["weights"]["file"] == VGG_FILE
    # the source identity defaults to the first reference frame
    paired = Clip("astronaut", fake=frames, real=np.stack([face_image] * 4))
    assert abs(identity.identity([paired], {}).value - expected) < 1e-5


def test_identity_without_faces_in_generated_frames(env, vggface2_file, face_image):
    """Generated frames without a face are a result (the clip is left out and counted;
    with no face anywhere the cell is skipped with the reason); a source without a face
    is bad input."""
    from harness.metrics import identity
    noise = np.stack([_noise((96, 96, 3), s) for s in range(3)])
    result = identity.identity([Clip("noise-clip", fake=noise, identity=face_image)], {})
    assert result.value is None and "MTCNN finds no face in any generated frame" in result.reason
    assert "noise-clip (3 frames)" in result.reason
    good = Clip("face-clip", fake=np.stack([face_image] * 2), identity=face_image)
    both = identity.identity([Clip("noise-clip", fake=noise, identity=face_image), good], {})
    assert both.n == 1 and both.stats["clips_without_face"] == {"noise-clip": 3}
    assert both.value == pytest.approx(identity.identity([good], {}).value)
    with pytest.raises(BadInput, match="noise-source: MTCNN finds no face in the source identity"):
        identity.identity([Clip("noise-source", fake=face_image[None], identity=noise[0])], {})


# ------------------------------------------------------------------ (d) missing weights

def test_missing_weights_give_skipped_results(tmp_path, monkeypatch):
    from harness.metrics import identity, lse
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("AVATARBENCH_WEIGHTS", str(empty))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    frames = _noise((8, 64, 64, 3))
    clip = Clip("c", fake=frames, audio=np.zeros(5120, np.float32), identity=frames[0])
    for fn, file, url in [(lse.lse_d, SYNC_FILE, "robots.ox.ac.uk"), (lse.lse_c, SYNC_FILE, "robots.ox.ac.uk"),
                          (identity.identity, VGG_FILE, "github.com/timesler/facenet-pytorch")]:
        result = fn([clip], {})
        assert result.value is None
        assert file in result.reason and url in result.reason and str(empty) in result.reason


# ------------------------------------------------------------------ (e) dlib: identity_dlib and lmd

def test_identity_dlib_on_a_real_face(face_image):
    from harness.metrics import identity
    frames = np.stack([face_image, np.roll(face_image, 3, axis=1), _noise(face_image.shape, 7)])
    result = identity.identity_dlib([Clip("astronaut", fake=frames, identity=face_image)], {})
    assert result.value is not None and 0.98 < result.value <= 1.0 + 1e-9
    assert result.stats["frames_without_face"] == {"astronaut": 1}
    assert "dlib" in result.backend and result.settings["weights"][1]["sha256"]
    none = identity.identity_dlib([Clip("noise-clip", fake=frames[2:], identity=face_image)], {})
    assert none.value is None and "dlib finds no face in any generated frame" in none.reason


def test_lmd_on_a_real_face(face_image):
    from harness.metrics import lmd
    shift = 3
    real = np.stack([face_image, face_image])
    fake = np.stack([face_image, np.roll(face_image, shift, axis=1)])
    same = lmd.lmd([Clip("same", fake=real.copy(), real=real)], {})
    assert same.value == 0.0
    moved = lmd.lmd([Clip("moved", fake=fake, real=real)], {})
    # one frame identical, one moved by `shift` pixels: the mouth moves by about that much
    per_frame_px = 2 * moved.stats["per_clip_pixels"]["moved"]
    assert shift - 1.5 < per_frame_px < shift + 1.5
    iod = np.linalg.norm(np.subtract(*lmd.landmarks68(face_image)[[36, 45]]))
    assert moved.value == pytest.approx(moved.stats["per_clip_pixels"]["moved"] / iod)
    assert "inter-ocular" in moved.settings["normalisation"]


def test_lmd_errors(face_image):
    from harness.metrics import lmd
    noise = np.stack([_noise(face_image.shape, 8)])
    with pytest.raises(BadInput, match="noise-clip: dlib finds no face in any of its 1 reference frames"):
        lmd.lmd([Clip("noise-clip", fake=noise, real=noise.copy())], {})
    faceless = lmd.lmd([Clip("faceless", fake=noise, real=face_image[None])], {})
    assert faceless.value is None and "no face in any generated frame" in faceless.reason
    with pytest.raises(BadInput, match="lmd: clip unpaired has no reference frames"):
        lmd.lmd([Clip("unpaired", fake=noise)], {})
