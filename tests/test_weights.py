import pickle

import pytest
import torch

from conftest import cli
from harness import BadInput, get_variant
from harness.derive import materialize
from harness.checkpoints import load_into, read_state_dict


def test_official_checkpoint_format_loads_unchanged(tmp_path):
    """Official checkpoints: {'state_dict': {'module.<name>': tensor}} from DataParallel."""
    torch.manual_seed(1)
    src, _ = get_variant("nota-wav2lip").build_float()
    ckpt = tmp_path / "nota.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in src.state_dict().items()},
                "optimizer": {"step": torch.tensor(3)}, "global_step": 1000}, ckpt)
    v = get_variant("nota-wav2lip")
    made = materialize(v, weights=str(ckpt))
    model, sha = made.model, made.weights_sha256
    assert len(sha) == 64
    x = v.inputs(2)
    with torch.no_grad():
        torch.testing.assert_close(model(*x), src.eval()(*x))


def test_wrong_keys_are_listed(tmp_path):
    sd = get_variant("nota-wav2lip").build_float()[0].state_dict()
    sd.pop("output_block.1.weight")
    sd["extra.layer"] = torch.zeros(1)
    sd["audio_encoder.0.conv_block.0.weight"] = torch.zeros(1, 1, 3, 3)
    ckpt = tmp_path / "bad.pth"
    torch.save(sd, ckpt)
    with pytest.raises(BadInput) as e:
        load_into(get_variant("nota-wav2lip").build_float()[0], ckpt)
    msg = str(e.value)
    assert "missing keys (1): output_block.1.weight" in msg
    assert "unexpected keys (1): extra.layer" in msg
    assert "audio_encoder.0.conv_block.0.weight (1, 1, 3, 3) vs (8, 1, 3, 3)" in msg
    r = cli("profile", "nota-wav2lip", "--weights", ckpt, "--no-latency")
    assert r.returncode == 2 and "missing keys" in r.stderr and str(ckpt) in r.stderr


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoint_with_code_is_refused_and_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "evil.pth"
    torch.save({"state_dict": {"w": torch.zeros(1)}, "payload": _Exploit(str(marker))}, ckpt)
    with pytest.raises(BadInput, match="refusing to load it because unpickling could execute code"):
        read_state_dict(ckpt)
    r = cli("profile", "nota-wav2lip", "--weights", ckpt, "--no-latency")
    assert r.returncode == 2 and "evil.pth" in r.stderr
    assert not marker.exists()


def test_raw_pickle_with_code_is_refused(tmp_path):
    marker = tmp_path / "pwned2"
    ckpt = tmp_path / "evil.pkl"
    ckpt.write_bytes(pickle.dumps(_Exploit(str(marker))))
    with pytest.raises(BadInput):
        read_state_dict(ckpt)
    assert not marker.exists()


@pytest.mark.parametrize("content", [b"", b"not a checkpoint at all", b"PK\x03\x04truncated"])
def test_corrupt_checkpoint_is_bad_input(tmp_path, content):
    ckpt = tmp_path / "corrupt.pth"
    ckpt.write_bytes(content)
    with pytest.raises(BadInput, match="corrupt.pth"):
        read_state_dict(ckpt)


def test_truncated_checkpoint(tmp_path):
    ckpt = tmp_path / "t.pth"
    torch.save(get_variant("nota-wav2lip").build_float()[0].state_dict(), ckpt)
    ckpt.write_bytes(ckpt.read_bytes()[:5000])
    r = cli("profile", "nota-wav2lip", "--weights", ckpt, "--no-latency")
    assert r.returncode == 2 and "t.pth" in r.stderr and "Traceback" not in r.stderr


def test_missing_checkpoint(tmp_path):
    r = cli("profile", "nota-wav2lip", "--weights", tmp_path / "nope.pth", "--no-latency")
    assert r.returncode == 2 and "checkpoint not found" in r.stderr
