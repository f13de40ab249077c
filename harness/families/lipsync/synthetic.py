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
audio determines the lips as in real speech. Heads blink, and move in their crops as
detected faces do (version 2): the head turns (roll), grows and shrinks and drifts in the
frame on slow per-clip sinusoids, the face box is a noisy detection smoothed by a
tracker (so the crop jitters around the face), and the light's direction, colour and
brightness change over each clip, with a little sensor noise. ``tests/benchmarks/
synthetic_motion.py`` measures these statistics against a real talking face.

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

VERSION = 2
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


# field: (kind, low, high, what); every value is checked before anything is written
BOUNDS = {
    "identities": (int, 3, 2000, "identities (faces), split between train, val and test"),
    "clips_per_identity": (int, 1, 200, "clips of each identity"),
    "seconds": (float, 0.5, 60.0, "length of each clip"),
    "frame_size": (int, 64, 1024, "side of the square full frames (px)"),
    "crop_size": (int, 48, 512, "side of the face crops the LRS layout stores (px)"),
    "seed": (int, 0, 2**32 - 1, "seed of everything drawn"),
    "rotation": (float, 0.0, 45.0, "peak head roll (degrees)"),
    "scale": (float, 0.0, 0.4, "peak relative change of the head's size"),
    "shift": (float, 0.0, 0.2, "peak head drift in the frame, as a fraction of the frame"),
    "jitter": (float, 0.0, 0.2, "detector noise of the face box, std as a fraction of its side"),
    "tracking": (float, 0.0, 0.95, "tracker smoothing of the box (weight of the previous box)"),
    "lighting": (float, 0.0, 1.0, "peak change of the light's left-right gradient"),
    "colour": (float, 0.0, 0.5, "spread of each clip's colour gains"),
    "noise": (float, 0.0, 50.0, "sensor noise std (8-bit levels)"),
}
MAX_FRAMES = 300_000          # identities x clips x seconds x 25 fps: a few GB of crops at most


@dataclass(frozen=True)
class SyntheticSpec:
    """Every parameter of the synthetic data (``data.synthetic`` in a suite); ranges in
    ``BOUNDS``. The motion defaults are set from ``tests/benchmarks/synthetic_motion.py``
    (a real talking face against a synthetic clip, see the README)."""
    identities: int = 40
    clips_per_identity: int = 2
    seconds: float = 3.0
    frame_size: int = 160        # full frames are square
    crop_size: int = 112         # face crops (the LRS frames), resized to 96 by the protocol
    splits: tuple = (32, 4, 4)   # identities in train, val, test (disjoint)
    seed: int = 0
    rotation: float = 12.0
    scale: float = 0.06
    shift: float = 0.04
    jitter: float = 0.03
    tracking: float = 0.5
    lighting: float = 0.3
    colour: float = 0.08
    noise: float = 2.0

    def check(self, where: str = "synthetic data") -> None:
        import math
        for name, (kind, low, high, what) in BOUNDS.items():
            v = getattr(self, name)
            ok_type = isinstance(v, int) and not isinstance(v, bool) if kind is int else \
                isinstance(v, (int, float)) and not isinstance(v, bool)
            if not ok_type or (kind is float and not math.isfinite(v)) or not low <= v <= high:
                raise BadInput(f"{where}: field {name} ({what}) must be "
                               f"{'a whole number' if kind is int else 'a number'} in [{low}, {high}], got {v!r}")
        sp = self.splits
        if not isinstance(sp, (tuple, list)) or len(sp) != 3 or not all(
                isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in sp):
            raise BadInput(f"{where}: field splits must be three whole numbers of at least 1 "
                           f"(identities in train, val, test), got {sp!r}")
        if sum(sp) != self.identities:
            raise BadInput(f"{where}: field splits {list(sp)} must add up to identities ({self.identities})")
        if self.frame_size < self.crop_size + 16:
            raise BadInput(f"{where}: field frame_size ({self.frame_size}) must be at least crop_size + 16 "
                           f"({self.crop_size + 16})")
        frames = self.identities * self.clips_per_identity * self.seconds * FPS
        if frames > MAX_FRAMES:
            raise BadInput(f"{where}: {self.identities} identities x {self.clips_per_identity} clips x "
                           f"{self.seconds} s is {int(frames)} frames; at most {MAX_FRAMES} are made")

    def key(self) -> str:
        blob = json.dumps({**asdict(self), "splits": list(self.splits), "version": VERSION}, sort_keys=True)
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


def _draw_face(img: np.ndarray, idn: dict, cx: float, cy: float, opening: float, width: float,
               blink: float) -> None:
    """The face's shapes drawn onto ``img`` (float, in place), centred at (cx, cy)."""
    import cv2
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


def render(idn: dict, size: int, center: tuple[float, float], opening: float, width: float,
           blink: float, roll: float = 0.0, scale: float = 1.0, light: float | None = None,
           gain=(1.0, 1.0, 1.0)) -> np.ndarray:
    """One RGB float frame (0..255): the face at ``center`` (sub-pixel), turned by ``roll``
    degrees and scaled by ``scale``, over the static background, lit by a left-right
    gradient ``light`` (the identity's own by default) and colour ``gain``.

    The face is drawn once upright on black and once on white; the two give its colour
    and coverage (anti-aliased edges included), which are warped together and laid over
    the background."""
    import cv2
    half = size / 2
    black, white = np.zeros((size, size, 3)), np.full((size, size, 3), 255.0)
    _draw_face(black, idn, half, half, opening, width, blink)
    _draw_face(white, idn, half, half, opening, width, blink)
    alpha = 1.0 - (white - black).mean(axis=2, keepdims=True) / 255.0
    m = cv2.getRotationMatrix2D((half, half), roll, scale)
    m[:, 2] += (center[0] - half, center[1] - half)
    colour = cv2.warpAffine(black, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)
    cover = cv2.warpAffine(alpha, m, (size, size), flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
    img = colour + (1.0 - cover) * _background(idn, size)
    light = idn["light"] if light is None else light
    shade = 1 + light * np.linspace(-1, 1, size)[None, :, None]
    return np.clip(img * shade * np.asarray(gain)[None, None, :], 0, 255)


# ------------------------------------------------------------------------- dataset

def _wave(rng: np.random.Generator, n: int, low: float = 1.5, high: float = 4.0) -> np.ndarray:
    """A slow motion on [-1, 1] over ``n`` frames: two sinusoids of random periods
    (``low``..``high`` s and half that) and phases, mixed 3 : 1."""
    t = np.arange(n) / FPS
    period, phase = rng.uniform(low, high), rng.uniform(0, 2 * np.pi, 2)
    return 0.75 * np.sin(2 * np.pi * t / period + phase[0]) + 0.25 * np.sin(4 * np.pi * t / period + phase[1])


def tracked_boxes(rng: np.random.Generator, centres: np.ndarray, sides: np.ndarray, jitter: float,
                  tracking: float) -> np.ndarray:
    """(T, 3) box centre x, y and side as a detector and tracker give them: the true box
    plus Gaussian noise (std ``jitter`` x side on each), smoothed by an exponential
    moving average (``tracking`` = weight of the previous box)."""
    noisy = np.column_stack([centres, sides]) + rng.standard_normal((len(sides), 3)) * (jitter * sides)[:, None]
    out = noisy.copy()
    for f in range(1, len(out)):
        out[f] = tracking * out[f - 1] + (1 - tracking) * noisy[f]
    return out


def _crop(frame: np.ndarray, box: np.ndarray, size: int) -> np.ndarray:
    """The square box (centre x, y, side; sub-pixel) resized to ``size`` (bilinear)."""
    import cv2
    cx, cy, side = box
    k = size / side
    m = np.array([[k, 0, size / 2 - k * cx], [0, k, size / 2 - k * cy]])
    return cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def make_clip(spec: SyntheticSpec, idn: dict, rng: np.random.Generator):
    """(full frames (T, S, S, 3) uint8, face crops (T, C, C, 3) uint8, full-frame boxes
    (T, 4) int, audio, per-frame mouth, events, per-frame head pose (T, 4): roll degrees,
    scale, centre x, y)."""
    n_frames = int(round(spec.seconds * FPS))
    events = timeline(rng, spec.seconds)
    mouth = mouth_track(events, n_frames)
    audio = speech(rng, events, n_frames / FPS, idn["f0"])
    size = spec.frame_size
    roll = spec.rotation * _wave(rng, n_frames)
    scale = 1.0 + spec.scale * _wave(rng, n_frames)
    cx = size / 2 + spec.shift * size * _wave(rng, n_frames)
    cy = size / 2 + spec.shift * size * _wave(rng, n_frames)
    light = idn["light"] + spec.lighting * _wave(rng, n_frames, 2.0, 5.0)
    gain = 1.0 + spec.colour * rng.uniform(-1, 1, 3)
    flicker = 1.0 + 0.25 * spec.colour * _wave(rng, n_frames, 1.0, 3.0)
    blinks = set()
    for start in np.flatnonzero(rng.random(n_frames) < 0.02):
        blinks |= {int(start), int(start) + 1, int(start) + 2}
    # the crop's centre sits 4 px (at scale 1) below the face centre, as v1's did
    true_centres = np.column_stack([cx, cy + 4 * scale])
    boxes = tracked_boxes(rng, true_centres, spec.crop_size * scale, spec.jitter, spec.tracking)
    frames, crops = [], []
    for f in range(n_frames):
        blink = 1.0 if f in blinks and (f - 1) in blinks else 0.6 if f in blinks else 0.0
        img = render(idn, size, (cx[f], cy[f]), mouth[f, 0], mouth[f, 1], blink, roll=roll[f], scale=scale[f],
                     light=light[f], gain=gain * flicker[f])
        if spec.noise:
            img = img + rng.standard_normal(img.shape) * spec.noise
        full = np.clip(np.rint(img), 0, 255).astype(np.uint8)
        frames.append(full)
        crops.append(_crop(full, boxes[f], spec.crop_size))
    half = boxes[:, 2:3] / 2
    corners = np.rint(np.column_stack([boxes[:, :2] - half, boxes[:, :2] + half])).astype(np.int64)
    pose = np.column_stack([roll, scale, cx, cy])
    return np.stack(frames), np.stack(crops), corners, audio, mouth, events, pose


MANIFEST = "MANIFEST.json"     # sha256 of every file, written last, checked on every read


def _listing(root: Path) -> list[str]:
    return sorted(str(q.relative_to(root)) for q in root.rglob("*")
                  if q.is_file() and q.name != MANIFEST)


def verify_dataset(root: str | Path) -> list[str]:
    """What in ``root`` differs from its manifest (changed, missing or added files); empty
    when the data set is exactly what the generator wrote."""
    from ...cache import content_digests
    root = Path(root)
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        files = manifest["files"]
        if not isinstance(files, dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        return [f"{MANIFEST} missing or unreadable"]
    present = _listing(root)
    problems = [f"added: {rel}" for rel in present if rel not in files]
    problems += [f"missing: {rel}" for rel in files if not (root / rel).is_file()]
    try:
        digests = content_digests(root, [rel for rel in present if rel in files])
    except BadInput as exc:
        return problems + [str(exc)]
    problems += [f"changed: {rel}" for rel, sha in digests.items() if sha != files[rel]]
    return problems


def generate_dataset(root: str | Path, spec: SyntheticSpec = SyntheticSpec(), videos: bool = True) -> Path:
    """Write the dataset under ``root`` (made in a temporary folder, then renamed, so a
    half-written dataset is never read; a failed generation removes its partial folder).
    An existing data set is used only if it matches its manifest; otherwise it is made
    again, with a warning naming what differed. Returns ``root``."""
    spec.check()
    root = Path(root)
    if (root / "SYNTHETIC").is_file():
        problems = verify_dataset(root)
        if not problems:
            return root
        import warnings
        warnings.warn(f"synthetic data at {root} differs from its manifest ({'; '.join(problems[:3])}"
                      f"{'; ...' if len(problems) > 3 else ''}); making it again", stacklevel=2)
    tmp = root.with_name(f".{root.name}.partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write_dataset(tmp, spec, videos)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    shutil.rmtree(root, ignore_errors=True)
    tmp.rename(root)
    return root


def _write_clip(tmp: Path, spec: SyntheticSpec, idn: dict, i: int, k: int, videos: bool) -> str:
    """Clip ``k`` of identity ``i`` under ``tmp``; its own generator (seed, i, k) makes it
    the same in any process."""
    from PIL import Image
    from scipy.io import wavfile
    speaker = f"id{i:03d}"
    full, crops, boxes, audio, mouth, events, pose = make_clip(spec, idn, np.random.default_rng([spec.seed, i, k]))
    d = tmp / speaker / f"{k:05d}"
    d.mkdir(parents=True)
    for f, crop in enumerate(crops):
        Image.fromarray(crop).save(d / f"{f}.jpg", quality=95)
    wavfile.write(d / "audio.wav", RATE, (audio * 32767).astype(np.int16))
    (d / "visemes.json").write_text(json.dumps({
        "fps": FPS, "mouth_opening": np.round(mouth[:, 0], 4).tolist(),
        "mouth_width": np.round(mouth[:, 1], 4).tolist(),
        "head_roll_deg": np.round(pose[:, 0], 3).tolist(), "head_scale": np.round(pose[:, 1], 4).tolist(),
        "phonemes": [[p, round(a, 4), round(b, 4)] for p, a, b in events]}))
    if videos:
        from ...data.video import write_video
        (tmp / "full" / speaker).mkdir(parents=True, exist_ok=True)
        write_video(tmp / "full" / speaker / f"{k:05d}.mp4", full, FPS, audio=audio, rate=RATE)
        np.save(tmp / "full" / speaker / f"{k:05d}.boxes.npy", boxes)
    return f"{speaker}/{k:05d}"


def _write_dataset(tmp: Path, spec: SyntheticSpec, videos: bool) -> None:
    """Every clip, in worker threads (one a core, up to 4; OpenCV, NumPy, the JPEG encoder
    and ffmpeg release the GIL); each clip's files are the same as made alone."""
    import os
    from concurrent.futures import ThreadPoolExecutor
    from ...cache import file_sha256
    tmp.mkdir(parents=True)
    ids = [identity(np.random.default_rng([spec.seed, i])) for i in range(spec.identities)]
    names = {"train": [], "val": [], "test": []}
    bounds = np.cumsum((0,) + tuple(spec.splits))
    jobs = [(i, k) for i in range(spec.identities) for k in range(spec.clips_per_identity)]
    workers = min(4, os.cpu_count() or 1) if len(jobs) >= 16 else 1
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            made = list(pool.map(_write_clip, *zip(*[(tmp, spec, ids[i], i, k, videos) for i, k in jobs])))
    else:
        made = [_write_clip(tmp, spec, ids[i], i, k, videos) for i, k in jobs]
    for (i, _), name in zip(jobs, made):
        names[("train", "val", "test")[int(np.searchsorted(bounds, i, side="right")) - 1]].append(name)
    (tmp / "filelists").mkdir()
    for split, clips in names.items():
        (tmp / "filelists" / f"{split}.txt").write_text("\n".join(clips) + "\n")
    (tmp / "identities.json").write_text(json.dumps(ids, indent=1))
    (tmp / "SYNTHETIC").write_text(
        f"synthetic talking heads v{VERSION} (procedural faces, formant speech, head motion, "
        f"tracked face boxes, changing light), made by the harness: "
        f"{json.dumps({**asdict(spec), 'splits': list(spec.splits)})}\n")
    files = {rel: file_sha256(tmp / rel) for rel in _listing(tmp)}
    (tmp / MANIFEST).write_text(json.dumps({"version": VERSION, "files": files}))


def cached_dataset(spec: SyntheticSpec = SyntheticSpec()) -> Path:
    """The dataset for ``spec`` under ``$AVATARBENCH_CACHE/synthetic/`` (made once; keyed
    by the generator's version and every parameter, verified against its manifest on
    every read)."""
    from ...cache import cache_root
    return generate_dataset(cache_root() / "synthetic" / spec.key(), spec)
