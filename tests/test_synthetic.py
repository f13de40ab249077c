"""The synthetic talking-head dataset: deterministic, identities disjoint across splits,
readable by the LRS reader, marked synthetic, and lips driven by the audio's timeline."""
import hashlib

import numpy as np

from harness.families.lipsync.dataspec import DataSpec
from harness.families.lipsync.datasets import load_item, lrs_items
from harness.families.lipsync.synthetic import (CONSONANTS, FPS, RATE, VOWELS, SyntheticSpec,
                                                 generate_dataset, mouth_track, speech, timeline)

SMALL = SyntheticSpec(identities=3, splits=(1, 1, 1), clips_per_identity=2, seconds=1.0)


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix != ".mp4":    # the video encoder may stamp its version
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def test_same_spec_same_data_and_another_seed_other_data(tmp_path):
    a = generate_dataset(tmp_path / "a", SMALL, videos=False)
    b = generate_dataset(tmp_path / "b", SMALL, videos=False)
    c = generate_dataset(tmp_path / "c", SyntheticSpec(**{**SMALL.__dict__, "seed": 1}), videos=False)
    assert _digest(a) == _digest(b) != _digest(c)
    assert not list(tmp_path.glob(".*partial"))


def test_splits_have_disjoint_identities_and_read_as_lrs(tmp_path):
    root = generate_dataset(tmp_path / "syn", SMALL)
    speakers = {}
    for split in ("train", "val", "test"):
        clips = (root / "filelists" / f"{split}.txt").read_text().split()
        assert len(clips) == 2
        speakers[split] = {c.split("/")[0] for c in clips}
    assert not (speakers["train"] & speakers["val"] or speakers["train"] & speakers["test"]
                or speakers["val"] & speakers["test"])
    items = lrs_items(root, root / "filelists" / "test.txt")
    frames, wav, notes = load_item(items[0])
    assert frames.shape == (25, 112, 112, 3) and len(wav) == RATE and notes == []
    boxes = np.load(root / "full" / f"{items[0].name}.boxes.npy")
    assert boxes.shape == (25, 4) and (boxes[:, 2] - boxes[:, 0] == 112).all()
    spec = DataSpec.from_suite({"layout": "lrs", "filelist": "filelists/test.txt"}, "s", str(root), None)
    assert "synthetic" in spec.describe()


def test_the_timeline_drives_both_the_audio_and_the_lips():
    rng = np.random.default_rng(3)
    events = timeline(rng, 10.0)
    n = int(10.0 * FPS)
    mouth = mouth_track(events, n)
    wav = speech(rng, events, n / FPS, 140.0)

    def frames_of(kinds):
        return [f for f in range(n)
                if next((p for p, a, b in events if a <= (f + 0.5) / FPS < b), "_") in kinds]
    bilabial, open_vowel = frames_of("pbm"), frames_of("a")
    assert len(bilabial) >= 5 and len(open_vowel) >= 5
    # closed lips on p, b, m (softened only by the neighbouring frames), wide open on 'a'
    assert mouth[bilabial, 0].mean() < 0.35 and mouth[open_vowel, 0].mean() > 0.6
    pauses = [(a, b) for p, a, b in events if p == "_" and b - a > 0.05]
    quiet = np.concatenate([wav[int(a * RATE) + 10:int(b * RATE) - 10] for a, b in pauses])
    loud = np.concatenate([wav[int(a * RATE):int(b * RATE)] for p, a, b in events if p in VOWELS])
    assert np.abs(quiet).max() < 1e-3 < np.sqrt((loud ** 2).mean())
    assert set(CONSONANTS) >= {"p", "b", "m"}
