import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

TINY_PLUGIN = '''
import time
from torch import nn
from harness import Result, register_metric, register_variant

class TinyGenerator(nn.Module):
    def __init__(self):
        super().__init__()
        self.face = nn.Conv2d(6, 8, 3, padding=1)
        self.out = nn.Conv2d(8, 3, 1)

    def forward(self, audio_sequences, face_sequences):
        return self.out(self.face(face_sequences).relu()).sigmoid()

@register_variant("tiny-generator", family="lipsync", role="student", parent="wav2lip")
def tiny_generator():
    return TinyGenerator()

@register_variant("tiny-generator-2", family="lipsync", role="student", parent="wav2lip")
def tiny_generator_2():
    return TinyGenerator()

@register_metric("slow_params", direction="lower", unit="count", options={"sleep": 0.4})
def slow_params(cell):
    time.sleep(cell.options["sleep"])
    return Result(sum(p.numel() for p in cell.model().parameters()), backend="test")
'''


def cli(*args, cwd=None, env=None, timeout=600):
    """Run the avatarbench CLI in a fresh process; returns CompletedProcess."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "harness.cli", *map(str, args)], cwd=cwd or ROOT,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def tiny_plugin(tmp_path):
    p = tmp_path / "tiny_plugin.py"
    p.write_text(TINY_PLUGIN)
    return p


def write_suite(path, **overrides):
    import yaml
    suite = {"name": "tiny", "family": "lipsync", "variants": ["nota-wav2lip"],
             "metrics": ["params", "size_mb"]}
    suite.update(overrides)
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return path


def records(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "records.jsonl").read_text().splitlines()]


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Quantized models, host measurements and generated videos go to a per-session folder,
    never ~/.cache; canonical weights are looked for only where a test puts them."""
    os.environ["AVATARBENCH_CACHE"] = str(tmp_path_factory.mktemp("avatarbench-cache"))
    os.environ["TORCH_HOME"] = str(tmp_path_factory.mktemp("torch-home-empty"))
    os.environ.pop("AVATARBENCH_WEIGHTS", None)
    os.environ.pop("AVATARBENCH_ALLOW_UNVERIFIED_WEIGHTS", None)
    yield


def make_lrs_tree(root, clips=("spk1/00001",), frames=12, size=48, seconds=None, rate=16000, seed=0):
    """A tiny dataset in the Wav2Lip-preprocessed LRS2/LRS3 layout (synthetic: smooth
    random faces-sized images and a tone with noise). Returns the root."""
    import numpy as np
    from PIL import Image
    from scipy.io import wavfile
    rng = np.random.default_rng(seed)
    root = Path(root)
    for k, clip in enumerate(clips):
        d = root / clip
        d.mkdir(parents=True, exist_ok=True)
        base = rng.integers(40, 215, size=(size // 8, size // 8, 3)).astype(np.uint8)
        for i in range(frames):
            img = np.asarray(Image.fromarray(base).resize((size, size), Image.BILINEAR)).astype(np.int16)
            img = np.clip(img + rng.integers(-12, 13, size=img.shape), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(d / f"{i}.jpg", quality=95)
        n = int(rate * (seconds if seconds is not None else frames / 25.0))
        t = np.arange(n) / rate
        wav = 0.3 * np.sin(2 * np.pi * (180 + 40 * k) * t) + 0.05 * rng.standard_normal(n)
        wavfile.write(d / "audio.wav", rate, (wav * 32767).astype(np.int16))
    return root
