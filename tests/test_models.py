"""The baselines against data derived from the official public definitions."""
import json
from pathlib import Path

import pytest
import torch

from harness import get_variant
from harness.derive import materialize

OFFICIAL = json.loads((Path(__file__).parent / "data" / "official_state_dicts.json").read_text())


@pytest.mark.parametrize("name", sorted(OFFICIAL))
def test_state_dict_names_and_shapes_match_official(name):
    model, _ = get_variant(name).build_float()
    ours = {k: list(v.shape) for k, v in model.state_dict().items()}
    # order is not part of the contract (Nota's base class registers audio_encoder first)
    assert ours == dict(OFFICIAL[name]["state_dict"])
    assert len(ours) == len(OFFICIAL[name]["state_dict"])
    assert sum(p.numel() for p in model.parameters()) == OFFICIAL[name]["params"]


@pytest.mark.parametrize("name,params", [("wav2lip", 36_298_035), ("nota-wav2lip", 1_258_143),
                                         ("wav2lip-syncnet", 16_435_072), ("wav2lip-disc-qual", 14_113_793)])
def test_parameter_counts(name, params):
    model, _ = get_variant(name).build_float()
    assert sum(p.numel() for p in model.parameters()) == params


def test_ladder_sits_between_teacher_and_student():
    counts = {n: sum(p.numel() for p in get_variant(n).build_float()[0].parameters())
              for n in ["wav2lip", "wav2lip-w2", "wav2lip-w4", "wav2lip-nores", "wav2lip-nores-w2",
                        "nota-wav2lip"]}
    assert counts["nota-wav2lip"] < min(v for k, v in counts.items() if k != "nota-wav2lip")
    assert counts["wav2lip"] > max(v for k, v in counts.items() if k != "wav2lip")
    assert counts["wav2lip-nores-w2"] < counts["wav2lip-nores"] < counts["wav2lip"]


@pytest.mark.parametrize("name", ["wav2lip", "nota-wav2lip"])
def test_window_input_equals_frame_by_frame(name):
    torch.manual_seed(0)
    model, _ = get_variant(name).build_float()
    mel = torch.randn(2, 5, 1, 80, 16)
    face = torch.rand(2, 6, 5, 96, 96)
    with torch.no_grad():
        window = model(mel, face)
        frames = torch.stack([model(mel[:, t], face[:, :, t]) for t in range(5)], dim=2)
    assert window.shape == (2, 3, 5, 96, 96)
    torch.testing.assert_close(window, frames, rtol=1e-5, atol=1e-6)


def test_expert_outputs_unit_embeddings():
    v = get_variant("wav2lip-syncnet")
    model, _ = v.build_float()
    with torch.no_grad():
        audio, face = model(*v.inputs(3))
    assert audio.shape == face.shape == (3, 512)
    torch.testing.assert_close(audio.norm(dim=1), torch.ones(3))


def test_cast_variant_carries_precision_and_lineage():
    v = get_variant("nota-wav2lip@bf16")
    assert v.precision == "bf16" and v.role == "quantized" and v.parent == "nota-wav2lip"
    assert v.lineage() == ["wav2lip", "nota-wav2lip", "nota-wav2lip@bf16"]
    model = materialize(v).model
    assert next(model.parameters()).dtype == torch.bfloat16
    out = model(*v.inputs(1))
    assert out.dtype == torch.bfloat16 and out.shape == (1, 3, 96, 96)


def test_quality_discriminator_has_the_official_names_and_reads_lower_halves():
    model = get_variant("wav2lip-disc-qual").build()
    sd = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert sd["face_encoder_blocks.0.0.conv_block.0.weight"] == (32, 3, 7, 7)
    assert sd["face_encoder_blocks.1.0.conv_block.0.weight"] == (64, 32, 5, 5)
    assert sd["face_encoder_blocks.6.1.conv_block.0.weight"] == (512, 512, 1, 1)
    assert sd["binary_pred.0.weight"] == (1, 512, 1, 1) and len(sd) == 28   # 13 convolutions + the head
    windows = torch.rand(2, 3, 5, 96, 96)
    p = model(windows)
    assert p.shape == (10, 1) and ((p > 0) & (p < 1)).all()
    # only the lower halves matter; windows flatten time-major (frame 0 of each clip first)
    changed = windows.clone()
    changed[:, :, :, :48] = 0
    assert torch.equal(model(changed), p)
    assert torch.allclose(model(windows[:, :, 1]), p[2:4])
