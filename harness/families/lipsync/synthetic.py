"""Synthetic talking heads: a lip-sync dataset the harness makes itself, deterministic by
seed, so training and scoring run anywhere without downloads. Everything it writes is
marked synthetic (a ``SYNTHETIC`` file that reports and records quote).

Each identity is procedural (face shape, skin tone, eyes, brows, nose, hair, background,
lighting, voice pitch). Each clip is driven by one phoneme timeline: syllables of a
consonant (bilabial p/b/m close the lips; t/d/k/s/n do not) and a vowel (a e i o u, each
with its formants and its mouth opening and width), with pauses between words. The
16 kHz audio is synthesised from that timeline (a glottal pulse train at the speaker's
pitch through formant resonators for vowels and nasals, shaped noise for bursts and
fricatives), and the mouth in every 25 fps frame is set from the same timeline, so the
audio determines the lips as in real speech. Heads move a little and blink.

Written in the Wav2Lip-preprocessed LRS layout the harness reads (``SPEAKER/CLIP/0.jpg
... audio.wav``, face crops), with ``filelists/{train,val,test}.txt`` whose identities
are disjoint, the per-frame mouth parameters beside each clip (``visemes.json``), and
the full frames as a video with audio plus the face box of every frame (``full/``)."""
from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ...errors import BadInput

VERSION = 1
RATE = 16000
FPS = 25
# vowel: (F1, F2, F3 Hz, mouth opening 0..1, mouth width 0..1)
VOWELS = {"a": (730, 1090, 2440, 1.0, 0.55), "e": (530, 1840, 2480, 0.55, 0.8),
          "i": (270, 2290, 3010, 0.2, 1.0), "o": (570, 840, 2410, 0.7, 0.3),
          "u": (300, 870, 2240, 0.25, 0.2)}
# consonant: (kind, mouth opening, mouth width); bilabials close the lips
CONSONANTS = {"p": ("burst", 0.0, 0.5), "b": ("burst", 0.0, 0.5), "m": ("nasal", 0.0, 0.5),
              "t": ("burst", 0.3, 0.6), "d": ("burst", 0.3, 0.6), "k": ("burst", 0.35, 0.5),
              "s": ("hiss", 0.15, 0.8), "n": ("nasal", 0.25, 0.6)}
REST = (0.05, 0.5)   # mouth opening and width in pauses


@dataclass(frozen=True)
class SyntheticSpec:
    identities: int = 12
    clips_per_identity: int = 4
    seconds: float = 3.0
    frame_size: int = 160        # full frames are square
    crop_size: int = 112         # face crops (the LRS frames), resized to 96 by the protocol
    splits: tuple = (8, 2, 2)    # identities in train, val, test (disjoint)
    seed: int = 0

    def check(self) -> None:
        if sum(self.splits) != self.identities or min(self.splits) < 1:
            raise BadInput(f"synthetic data: splits {self.splits} must be at least 1 each and add "
                           f"up to identities ({self.identities})")
        if self.seconds < 0.5 or self.clips_per_identity < 1 or self.crop_size < 48 \
                or self.frame_size < self.crop_size + 16:
            raise BadInput("synthetic data: seconds >= 0.5, clips_per_identity >= 1, crop_size >= 48 "
                           "and frame_size >= crop_size + 16")

    def key(self) -> str:
        blob = json.dumps({**asdict(self), "version": VERSION}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ------------------------------------------------------------------------- timeline

def timeline(rng: np.random.Generator, seconds: float) -> list[tuple[str, float, float]]:
    """(phoneme, start s, end s), '_' for pauses: words of 1-3 CV syllables."""
    out, t = [], float(rng.uniform(0.1, 0.3))
    out.append(("_", 0.0, t))
    while t < seconds:
        for _ in range(int(rng.integers(1, 4))):
            c = str(rng.choice(list(CONSONANTS)))
            v = str(rng.choice(list(VOWELS)))
            dc, dv = float(rng.uniform(0.06, 0.1)), float(rng.uniform(0.12, 0.22))
            out += [(c, t, t + dc), (v, t + dc, t + dc + dv)]
            t += dc + dv
        pause = float(rng.uniform(0.12, 0.35))
        out.append(("_", t, t + pause))
        t += pause
    return out


def mouth_track(events, n_frames: int) -> np.ndarray:
    """(n_frames, 2) mouth opening and width at each frame's centre, lightly smoothed
    (coarticulation)."""
    targets = np.zeros((n_frames, 2))
    for f in range(n_frames):
        t = (f + 0.5) / FPS
        ph = next((p for p, a, b in events if a <= t < b), "_")
        if ph in VOWELS:
            targets[f] = VOWELS[ph][3:5]
        elif ph in CONSONANTS:
            targets[f] = CONSONANTS[ph][1:3]
        else:
            targets[f] = REST
    padded = np.concatenate([targets[:1], targets, targets[-1:]])
    return 0.25 * padded[:-2] + 0.5 * padded[1:-1] + 0.25 * padded[2:]


def _resonate(x: np.ndarray, freqs, bandwidth: float = 90.0) -> np.ndarray:
    from scipy.signal import lfilter
    out = np.zeros_like(x)
    for f in freqs:
        r = np.exp(-np.pi * bandwidth / RATE)
        a = [1.0, -2 * r * np.cos(2 * np.pi * f / RATE), r * r]
        out += lfilter([1 - r], a, x)
    return out


def speech(rng: np.random.Generator, events, seconds: float, f0: float) -> np.ndarray:
    """16 kHz float32 audio of ``events`` at pitch ``f0``."""
    n = int(round(seconds * RATE))
    wav = np.zeros(n)
    for ph, a, b in events:
        i, j = int(a * RATE), min(n, int(b * RATE))
        if j <= i or ph == "_":
            continue
        m = j - i
        t = np.arange(m) / RATE
        env = np.minimum(1.0, np.minimum(t, t[::-1]) / 0.015)
        if ph in VOWELS or CONSONANTS.get(ph, ("",))[0] == "nasal":
            pitch = f0 * (1 + 0.05 * np.sin(2 * np.pi * 2.0 * (a + t)))
            phase = np.cumsum(pitch / RATE)
            pulses = (phase % 1.0) - 0.5     # a sawtooth: glottal pulse train
            freqs = VOWELS[ph][:3] if ph in VOWELS else (250, 1200, 2500)
            seg = _resonate(pulses, freqs) * (1.0 if ph in VOWELS else 0.35)
        else:
            noise = rng.standard_normal(m)
            kind = CONSONANTS[ph][0]
            seg = _resonate(noise, (4500, 6000) if kind == "hiss" else (1500, 3000), 900.0) * 0.3
            if kind == "burst":              # closure (silence), then a short release
                env = env * (t > 0.6 * t[-1])
        wav[i:j] += seg * env
    peak = np.abs(wav).max()
    return (0.5 * wav / peak if peak > 0 else wav).astype(np.float32)


# ------------------------------------------------------------------------- faces

def identity(rng: np.random.Generator) -> dict:
    skin = np.array([rng.uniform(90, 235), 0, 0])
    skin[1], skin[2] = skin[0] * rng.uniform(0.72, 0.85), skin[0] * rng.uniform(0.55, 0.7)
    return {"skin": skin.tolist(), "axes": [float(rng.uniform(30, 38)), float(rng.uniform(40, 47))],
            "eye_dx": float(rng.uniform(12, 16)), "eye_y": float(rng.uniform(-14, -9)),
            "eye_r": float(rng.uniform(3.0, 4.5)), "iris": rng.integers(20, 160, 3).tolist(),
            "brow": int(rng.integers(2, 4)), "brow_tilt": float(rng.uniform(-3, 3)),
            "nose": float(rng.uniform(7, 12)), "hair": rng.integers(10, 120, 3).tolist(),
            "hair_h": float(rng.uniform(0.3, 0.6)), "lips": [float(skin[0] * 0.75), float(skin[1] * 0.45),
                                                             float(skin[2] * 0.5)],
            "mouth_y": float(rng.uniform(20, 25)), "bg": rng.integers(30, 225, (2, 3)).tolist(),
            "light": float(rng.uniform(-0.25, 0.25)), "f0": float(rng.uniform(95, 230))}


def _background(idn: dict, size: int) -> np.ndarray:
    a, b = np.array(idn["bg"][0], float), np.array(idn["bg"][1], float)
    ramp = np.linspace(0, 1, size)[:, None, None]
    return np.broadcast_to(a + (b - a) * ramp, (size, size, 3)).copy()


def render(idn: dict, size: int, center: tuple[float, float], opening: float, width: float,
           blink: float) -> np.ndarray:
    """One RGB uint8 frame of the face at ``center`` with the given mouth and eyelids."""
    import cv2
    img = _background(idn, size)
    cx, cy = center
    ax, ay = idn["axes"]
    c = lambda x, y: (int(round(cx + x)), int(round(cy + y)))   # noqa: E731
    cv2.ellipse(img, c(0, -ay * 0.35), (int(ax * 1.08), int(ay * (0.7 + idn["hair_h"]))), 0, 180, 360,
                idn["hair"], -1, cv2.LINE_AA)
    cv2.ellipse(img, c(0, 0), (int(ax), int(ay)), 0, 0, 360, idn["skin"], -1, cv2.LINE_AA)
    for side in (-1, 1):
        ex, ey = idn["eye_dx"] * side, idn["eye_y"]
        lid = max(1, int(idn["eye_r"] * (1 - blink)))
        cv2.ellipse(img, c(ex, ey), (int(idn["eye_r"] * 1.6), lid), 0, 0, 360, (245, 245, 245), -1, cv2.LINE_AA)
        if blink < 0.6:
            cv2.circle(img, c(ex, ey), max(1, int(idn["eye_r"] * 0.8)), idn["iris"], -1, cv2.LINE_AA)
        cv2.line(img, c(ex - 6, ey - 7 - side * idn["brow_tilt"] / 2), c(ex + 6, ey - 7 + side * idn["brow_tilt"] / 2),
                 idn["hair"], idn["brow"], cv2.LINE_AA)
    cv2.line(img, c(0, -4), c(2, idn["nose"]), np.array(idn["skin"]) * 0.7, 2, cv2.LINE_AA)
    mw, mh = 7 + 9 * width, 1.5 + 10 * opening
    my = idn["mouth_y"]
    cv2.ellipse(img, c(0, my), (int(mw), max(1, int(mh))), 0, 0, 360, idn["lips"], -1, cv2.LINE_AA)
    if opening > 0.08:
        cv2.ellipse(img, c(0, my), (max(1, int(mw - 2.5)), max(1, int(mh - 2.5))), 0, 0, 360,
                    (40, 15, 20), -1, cv2.LINE_AA)
        if opening > 0.4:
            cv2.rectangle(img, c(-mw + 4, my - mh + 2), c(mw - 4, my - mh + 4), (235, 235, 225), -1)
    shade = 1 + idn["light"] * np.linspace(-1, 1, size)[None, :, None]
    return np.clip(img * shade, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------- dataset

def make_clip(spec: SyntheticSpec, idn: dict, rng: np.random.Generator):
    """(frames (T, S, S, 3), full-frame boxes (T, 4), audio, per-frame mouth, events)."""
    n_frames = int(round(spec.seconds * FPS))
    events = timeline(rng, spec.seconds)
    mouth = mouth_track(events, n_frames)
    audio = speech(rng, events, n_frames / FPS, idn["f0"])
    size, half = spec.frame_size, spec.crop_size // 2
    phase, period = rng.uniform(0, 2 * np.pi, 2), rng.uniform(2.0, 4.0, 2)
    blinks = set()
    for start in np.flatnonzero(rng.random(n_frames) < 0.02):
        blinks |= {int(start), int(start) + 1, int(start) + 2}
    frames, boxes = [], []
    for f in range(n_frames):
        t = f / FPS
        cx = size / 2 + 3 * np.sin(2 * np.pi * t / period[0] + phase[0])
        cy = size / 2 + 2 * np.sin(2 * np.pi * t / period[1] + phase[1])
        blink = 1.0 if f in blinks and (f - 1) in blinks else 0.6 if f in blinks else 0.0
        full = render(idn, size, (cx, cy), mouth[f, 0], mouth[f, 1], blink)
        x1 = int(np.clip(round(cx) - half, 0, size - 2 * half))
        y1 = int(np.clip(round(cy) - half + 4, 0, size - 2 * half))
        boxes.append((x1, y1, x1 + 2 * half, y1 + 2 * half))
        frames.append(full)
    return np.stack(frames), np.array(boxes), audio, mouth, events


def generate_dataset(root: str | Path, spec: SyntheticSpec = SyntheticSpec(), videos: bool = True) -> Path:
    """Write the dataset under ``root`` (made in a temporary folder, then renamed, so a
    half-written dataset is never read). Returns ``root``."""
    from PIL import Image
    from scipy.io import wavfile
    spec.check()
    root = Path(root)
    if (root / "SYNTHETIC").is_file():
        return root
    tmp = root.with_name(f".{root.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    rng = np.random.default_rng(spec.seed)
    ids = [identity(np.random.default_rng([spec.seed, i])) for i in range(spec.identities)]
    names = {"train": [], "val": [], "test": []}
    bounds = np.cumsum((0,) + tuple(spec.splits))
    for i, idn in enumerate(ids):
        split = ("train", "val", "test")[int(np.searchsorted(bounds, i, side="right")) - 1]
        speaker = f"id{i:03d}"
        for k in range(spec.clips_per_identity):
            clip_rng = np.random.default_rng([spec.seed, i, k])
            full, boxes, audio, mouth, events = make_clip(spec, idn, clip_rng)
            d = tmp / speaker / f"{k:05d}"
            d.mkdir(parents=True)
            for f, (x1, y1, x2, y2) in enumerate(boxes):
                Image.fromarray(full[f, y1:y2, x1:x2]).save(d / f"{f}.jpg", quality=95)
            wavfile.write(d / "audio.wav", RATE, (audio * 32767).astype(np.int16))
            (d / "visemes.json").write_text(json.dumps({
                "fps": FPS, "mouth_opening": np.round(mouth[:, 0], 4).tolist(),
                "mouth_width": np.round(mouth[:, 1], 4).tolist(),
                "phonemes": [[p, round(a, 4), round(b, 4)] for p, a, b in events]}))
            if videos:
                from ...data.video import write_video
                (tmp / "full" / speaker).mkdir(parents=True, exist_ok=True)
                write_video(tmp / "full" / speaker / f"{k:05d}.mp4", full, FPS, audio=audio, rate=RATE)
                np.save(tmp / "full" / speaker / f"{k:05d}.boxes.npy", boxes)
            names[split].append(f"{speaker}/{k:05d}")
    (tmp / "filelists").mkdir()
    for split, clips in names.items():
        (tmp / "filelists" / f"{split}.txt").write_text("\n".join(clips) + "\n")
    (tmp / "identities.json").write_text(json.dumps(ids, indent=1))
    (tmp / "SYNTHETIC").write_text(
        f"synthetic talking heads v{VERSION} (procedural faces, formant speech), made by the "
        f"harness: {json.dumps(asdict(spec))}\n")
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


def cached_dataset(spec: SyntheticSpec = SyntheticSpec()) -> Path:
    """The dataset for ``spec`` under ``$AVATARBENCH_CACHE/synthetic/`` (made once)."""
    from ...cache import cache_root
    return generate_dataset(cache_root() / "synthetic" / spec.key(), spec)
