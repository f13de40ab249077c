"""Canonical weights: look-up order, hash-prefix checks, the unverified escape hatch, and
what `avatarbench weights` and a missing file tell the user."""
import json

import pytest
import torch

from conftest import cli
from harness import canonical_weights as cw
from harness.errors import BadInput

INCEPTION = "pt_inception-2015-12-05-6726825d.pth"


def _tiny_state(path):
    torch.save({"w": torch.arange(4.0)}, path)
    return path


def test_catalog_names_source_prefix_and_licence():
    for name in (INCEPTION, "alexnet-owt-7be5be79.pth", "20180402-114759-vggface2.pt", "syncnet_v2.model"):
        c = cw.CATALOG[name]
        assert c.source.startswith("http") and c.licence and c.metrics
    assert cw.CATALOG[INCEPTION].hash_prefix == "6726825d"
    assert cw.CATALOG["alexnet-owt-7be5be79.pth"].hash_prefix == "7be5be79"
    assert cw.CATALOG["20180402-114759-vggface2.pt"].hash_prefix is None   # a date, not a hash


def test_lookup_prefers_avatarbench_weights_then_hub_cache(tmp_path, monkeypatch):
    own, hub = tmp_path / "own", tmp_path / "torch"
    (hub / "hub" / "checkpoints").mkdir(parents=True)
    own.mkdir()
    monkeypatch.setenv("TORCH_HOME", str(hub))
    monkeypatch.setenv("AVATARBENCH_WEIGHTS", str(own))
    _tiny_state(hub / "hub" / "checkpoints" / INCEPTION)
    assert cw.locate(INCEPTION) == hub / "hub" / "checkpoints" / INCEPTION
    _tiny_state(own / INCEPTION)
    assert cw.locate(INCEPTION) == own / INCEPTION


def test_hash_mismatch_refused_unless_allowed_and_then_marked(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATARBENCH_WEIGHTS", str(tmp_path))
    _tiny_state(tmp_path / INCEPTION)
    with pytest.raises(BadInput, match="does not start with 6726825d"):
        cw.load_state(INCEPTION)
    monkeypatch.setenv("AVATARBENCH_ALLOW_UNVERIFIED_WEIGHTS", "1")
    state, prov = cw.load_state(INCEPTION)
    assert torch.equal(state["w"], torch.arange(4.0))
    assert prov["check"] == "unverified" and prov["sha256"] == cw.sha256_of(tmp_path / INCEPTION)


def test_file_whose_name_has_no_hash_is_checked_against_the_published_sha256(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATARBENCH_WEIGHTS", str(tmp_path))
    _tiny_state(tmp_path / "20180402-114759-vggface2.pt")
    with pytest.raises(BadInput, match="281cebca8662831a"):
        cw.load_state("20180402-114759-vggface2.pt")
    monkeypatch.setenv("AVATARBENCH_ALLOW_UNVERIFIED_WEIGHTS", "1")
    assert cw.load_state("20180402-114759-vggface2.pt")[1]["check"] == "unverified"


def test_pickled_code_in_a_canonical_file_is_refused(tmp_path, monkeypatch):
    import pickle

    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))
    monkeypatch.setenv("AVATARBENCH_WEIGHTS", str(tmp_path))
    monkeypatch.setenv("AVATARBENCH_ALLOW_UNVERIFIED_WEIGHTS", "1")
    with open(tmp_path / INCEPTION, "wb") as f:
        pickle.dump({"w": Boom()}, f)
    with pytest.raises(BadInput, match="refusing to load"):
        cw.load_state(INCEPTION)


def test_missing_file_message_names_file_source_and_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATARBENCH_WEIGHTS", str(tmp_path / "w"))
    with pytest.raises(cw.MissingWeights) as err:
        cw.load_state(INCEPTION)
    msg = str(err.value)
    assert INCEPTION in msg and cw.CATALOG[INCEPTION].source in msg and str(tmp_path / "w") in msg


def test_weights_cli_status_and_verify(tmp_path):
    env = {"AVATARBENCH_WEIGHTS": str(tmp_path)}
    r = cli("weights", "status", "--json", env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["search_folders"][0] == str(tmp_path)
    assert {row["file"] for row in out["canonical"]} >= {INCEPTION, "syncnet_v2.model"}
    assert not any(row["present"] for row in out["canonical"])
    assert any(row["file"] == "shape_predictor_68_face_landmarks.dat" for row in out["packaged"])

    _tiny_state(tmp_path / INCEPTION)
    r = cli("weights", "verify", env=env)
    assert r.returncode == 2 and "MISMATCH" in r.stdout and "6726825d" in r.stderr
    r = cli("weights", "verify", "--allow-unverified-weights", env=env)
    # the one file present is accepted as unverified; the missing ones fail the check
    assert r.returncode == 2 and "unverified" in r.stdout, r.stdout + r.stderr
    assert "syncnet_v2.model" in r.stderr
    for f in cw.CATALOG:
        if not (tmp_path / f).exists():
            (tmp_path / f).write_bytes(b"stand-in")
    r = cli("weights", "verify", "--allow-unverified-weights", env=env)
    assert r.returncode == 0 and r.stdout.count(" unverified ") == len(cw.CATALOG), r.stdout + r.stderr
    r = cli("weights", "verify", "alexnet-owt-7be5be79.pth", env=env)
    assert r.returncode == 2 and "download.pytorch.org" in r.stderr
    r = cli("weights", "verify", "nosuch.pth", env=env)
    assert r.returncode == 2 and "unknown canonical weight file 'nosuch.pth'" in r.stderr
    r = cli("list", "weights", env=env)
    assert r.returncode == 0 and INCEPTION in r.stdout
