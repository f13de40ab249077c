"""A lip-sync suite's data: its layout, where it lies, which clips, and a fingerprint a
resumed run must match."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from ...errors import BadInput

LAYOUTS = ("lrs", "videos", "pairs")
# what the unmasked half of the generator's face input shows (see protocol.generate)
REFERENCES = {
    "frame": "the target frame itself (Wav2Lip inference.py)",
    "first": "the clip's first frame (the target frame is not shown unmasked)",
}


@dataclass(frozen=True)
class DataSpec:
    """A suite's data: ``layout`` lrs (Wav2Lip-preprocessed speaker/clip folders),
    videos (a folder of talking-head videos) or pairs (Wav2Lip's test_filelists);
    ``reference`` is the frame the generator sees unmasked (``REFERENCES``)."""
    layout: str
    root: Optional[str] = None
    filelist: Optional[str] = None
    limit: Optional[int] = None
    batch_size: int = 32
    name: str = ""
    reference: str = "frame"

    def describe(self) -> str:
        marker = Path(self.root) / "SYNTHETIC"
        what = f"{self.name or self.layout} at {self.root}"
        if self.filelist:
            what += f" (clips from {self.filelist})"
        if self.limit:
            what += f", first {self.limit} clips"
        if marker.is_file():
            lines = marker.read_text(errors="replace").strip().splitlines()
            what += ", synthetic" + (f": {lines[0]}" if lines else "")
        return what + f"; reference: {self.reference} ({REFERENCES[self.reference]})"

    def fingerprint(self) -> dict:
        """What a run folder's results were scored on; a resumed run must match it."""
        names = [item.name for item in items_of(self)]
        out = {"layout": self.layout, "root": self.root, "filelist": self.filelist,
               "limit": self.limit, "clips": len(names),
               "clips_sha256": hashlib.sha256("\n".join(names).encode()).hexdigest()}
        if self.reference != "frame":   # the default leaves earlier fingerprints as they were
            out["reference"] = self.reference
        return out

    @classmethod
    def from_suite(cls, data: dict, suite: str, root: Optional[str], limit: Optional[int]) -> "DataSpec":
        known = {"layout", "root", "filelist", "limit", "batch_size", "name", "reference", "synthetic"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BadInput(f"suite {suite}: data has no field {', '.join(map(repr, unknown))}; "
                           f"fields: {', '.join(sorted(known))}")
        layout = data.get("layout", "lrs")
        if layout not in LAYOUTS:
            raise BadInput(f"suite {suite}: data.layout '{layout}' is not one of {', '.join(LAYOUTS)}")
        reference = data.get("reference", "frame")
        if reference not in REFERENCES:
            raise BadInput(f"suite {suite}: data.reference {reference!r} is not one of "
                           + "; ".join(f"{k} ({v})" for k, v in REFERENCES.items()))
        root = root or data.get("root")
        if not root and data.get("synthetic") is not None:
            root = str(synthetic_root(data["synthetic"], suite))
        if not root:
            raise BadInput(f"suite {suite} scores generated video and needs data: pass --data-root "
                           f"DIR ({_LAYOUT_HELP[layout]})")
        if not Path(root).expanduser().is_dir():
            raise BadInput(f"suite {suite}: data root {root} is not a folder")
        filelist = data.get("filelist")
        if filelist and not Path(filelist).is_absolute():
            filelist = str(Path(root).expanduser() / filelist)
        limit = limit if limit is not None else data.get("limit")
        for field, value in (("limit", limit), ("batch_size", data.get("batch_size", 32))):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise BadInput(f"suite {suite}: data {field} (or --{field.replace('_', '-')}) must be a "
                               f"whole number of at least 1, got {value!r}")
        return cls(layout=layout, root=str(Path(root).expanduser()), filelist=filelist,
                   limit=limit, batch_size=data.get("batch_size", 32), name=data.get("name", ""),
                   reference=reference)


_LAYOUT_HELP = {
    "lrs": "the Wav2Lip-preprocessed LRS2/LRS3 folder: SPEAKER/CLIP/0.jpg, 1.jpg, ..., audio.wav",
    "videos": "a folder of talking-head videos with audio",
    "pairs": "the folder the pair list's video and audio paths are relative to",
}


def items_of(spec: DataSpec) -> list:
    from . import datasets
    if spec.layout == "lrs":
        items = datasets.lrs_items(spec.root, spec.filelist)
    elif spec.layout == "videos":
        items = datasets.video_folder_items(spec.root)
    else:
        if not spec.filelist:
            raise BadInput("data.layout 'pairs' needs data.filelist (a Wav2Lip test_filelists file)")
        items = datasets.pair_items(spec.filelist, spec.root)
    if not items:
        raise BadInput(f"no clips found under {spec.root} (layout {spec.layout}: {_LAYOUT_HELP[spec.layout]})")
    return items[:spec.limit] if spec.limit else items


def synthetic_root(raw, suite: str) -> Path:
    """``data.synthetic: {identities, clips_per_identity, seconds, ...}``: the harness's own
    synthetic talking heads (made once, cached); see ``synthetic.SyntheticSpec``."""
    from dataclasses import fields
    from .synthetic import SyntheticSpec, cached_dataset
    raw = raw or {}
    names = {f.name for f in fields(SyntheticSpec)}
    if not isinstance(raw, dict) or set(raw) - names:
        bad = sorted(set(raw) - names) if isinstance(raw, dict) else [type(raw).__name__]
        raise BadInput(f"suite {suite}: data.synthetic: unknown field(s) {', '.join(map(str, bad))}; "
                       f"fields: {', '.join(sorted(names))}")
    if isinstance(raw.get("splits"), list):
        raw = {**raw, "splits": tuple(raw["splits"])}
    spec = SyntheticSpec(**raw)
    spec.check(f"suite {suite}: data.synthetic")
    return cached_dataset(spec)
