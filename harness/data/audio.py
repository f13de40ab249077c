"""Audio input and the two audio features the lip-sync benchmark needs.

``wav2lip_mel`` is the spectrogram Wav2Lip's models were trained on and
``syncnet_mfcc`` is what syncnet_python scores with; each follows its reference exactly
(hyperparameters, padding, window, scaling), because a small difference in either
shifts LSE and generation quality by more than the gaps between compressed models.
Neither needs librosa at run time."""
from __future__ import annotations

import re
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import BadInput

RATE = 16000

# Wav2Lip's hparams.py (the facts its checkpoints were trained with)
PREEMPHASIS = 0.97
N_FFT = 800
HOP = 200
WIN = 800
N_MELS = 80
FMIN = 55.0
FMAX = 7600.0
MIN_LEVEL_DB = -100.0
REF_LEVEL_DB = 20.0
MAX_ABS = 4.0
MEL_STEP = 16            # mel columns per generator input (0.2 s = 5 video frames at 25 fps)
MEL_PER_SECOND = 80.0    # RATE / HOP


def load_audio(path, rate: int = RATE) -> tuple[np.ndarray, list[str]]:
    """Mono float32 samples in [-1, 1] at ``rate`` and notes on what was changed.

    ``.wav`` files are read with scipy (int16 / 32768, as librosa and soundfile scale
    them); other media go through the ffmpeg binary that imageio-ffmpeg ships, decoded at
    the file's own rate. Resampling uses a polyphase filter and is always reported."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"audio {path}: no such file")
    if path.stat().st_size == 0:
        raise BadInput(f"audio {path}: empty file")
    wav, source_rate = None, None
    if path.suffix.lower() == ".wav":
        wav, source_rate = _read_wav(path)
    if wav is None:
        wav, source_rate = _read_with_ffmpeg(path)
    if not source_rate or source_rate <= 0:
        raise BadInput(f"audio {path}: its header gives a sample rate of {source_rate} Hz")
    if wav.size == 0:
        raise BadInput(f"audio {path}: no samples (empty audio)")
    if not np.all(np.isfinite(wav)):
        bad = int(np.flatnonzero(~np.isfinite(wav))[0])
        raise BadInput(f"audio {path}: NaN or infinite sample at index {bad}")
    notes = []
    if source_rate != rate:
        wav = resample(wav, source_rate, rate)
        notes.append(f"audio {path}: resampled {source_rate} -> {rate} Hz")
    return wav.astype(np.float32), notes


def resample(wav: np.ndarray, source_rate: int, rate: int) -> np.ndarray:
    """Polyphase resampling (scipy.signal.resample_poly) by the reduced rate ratio."""
    from scipy.signal import resample_poly
    ratio = Fraction(int(rate), int(source_rate))
    out = resample_poly(wav.astype(np.float64), ratio.numerator, ratio.denominator)
    return out.astype(np.float32)


def _read_wav(path: Path):
    """(samples, rate) from a wav file, or (None, None) when scipy cannot parse it
    (compressed or unusual wav flavours then go through ffmpeg)."""
    import warnings
    from scipy.io import wavfile
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", wavfile.WavFileWarning)
            source_rate, data = wavfile.read(str(path))
    except Exception:  # scipy raises several types (even UnboundLocalError) on damaged files
        return None, None
    if data.ndim == 2:
        data = _to_float(data).mean(axis=1)
    else:
        data = _to_float(data)
    return data.astype(np.float32), int(source_rate)


def _to_float(data: np.ndarray) -> np.ndarray:
    if data.dtype == np.int16:
        return data.astype(np.float64) / 32768.0
    if data.dtype == np.int32:           # scipy also puts 24-bit samples here, left-aligned
        return data.astype(np.float64) / 2147483648.0
    if data.dtype == np.uint8:
        return (data.astype(np.float64) - 128.0) / 128.0
    return data.astype(np.float64)


def _read_with_ffmpeg(path: Path):
    import imageio_ffmpeg
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path),
           "-map", "0:a:0", "-vn", "-ac", "1", "-f", "s16le", "-acodec", "pcm_s16le", "-"]
    proc = subprocess.run(cmd, capture_output=True)
    log = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        raise BadInput(f"audio {path}: cannot be decoded ({ffmpeg_error_line(log, 'audio')})")
    m = re.search(r"Stream #\d+:\d+.*?: Audio: .*?(\d+) Hz", log)
    if m is None:
        raise BadInput(f"audio {path}: ffmpeg did not report a sample rate")
    samples = np.frombuffer(proc.stdout, dtype="<i2").astype(np.float64) / 32768.0
    return samples.astype(np.float32), int(m.group(1))


def ffmpeg_error_line(log: str, stream: str = "") -> str:
    """The one line of an ffmpeg log that says what went wrong, without the
    ``[component @ 0x...]`` prefixes; ``stream`` ('audio', 'video') names a missing stream."""
    if "matches no streams" in log or "does not contain any stream" in log:
        return f"no {stream} stream in the file".replace("  ", " ")
    lines = [re.sub(r"^(\[[^\]]*\]\s*)+", "", ln).strip() for ln in log.splitlines()]
    lines = [ln for ln in lines if ln]
    for key in ("partial file", "moov atom not found", "No such file", "Invalid data", "rror"):
        for ln in lines:
            if key in ln:
                return ln
    return lines[-1] if lines else "no message from ffmpeg"


# ----------------------------------------------------------------- Wav2Lip's mel

def wav2lip_mel(wav: np.ndarray) -> np.ndarray:
    """(80, T) float32 mel spectrogram exactly as Wav2Lip's ``audio.melspectrogram``.

    Pre-emphasis, a centred STFT with reflect padding and a periodic Hann window (what
    librosa 0.7's ``stft`` did), Slaney mel filters, dB relative to 20 dB, and the
    symmetric [-4, 4] normalisation with clipping. T = 1 + len(wav) // 200."""
    from scipy.signal import lfilter
    wav = np.asarray(wav)
    if wav.ndim != 1:
        raise BadInput(f"audio: expected mono samples (1-D), got shape {wav.shape}")
    if len(wav) <= N_FFT // 2:
        raise BadInput(f"audio: {len(wav)} samples is too short for one STFT frame "
                       f"(needs more than {N_FFT // 2})")
    emphasised = lfilter([1.0, -PREEMPHASIS], [1.0], wav)
    magnitude = np.abs(_stft(emphasised))
    mel = _mel_basis() @ magnitude
    min_level = np.exp(MIN_LEVEL_DB / 20.0 * np.log(10.0))
    db = 20.0 * np.log10(np.maximum(min_level, mel)) - REF_LEVEL_DB
    scaled = (2 * MAX_ABS) * ((db - MIN_LEVEL_DB) / (-MIN_LEVEL_DB)) - MAX_ABS
    return np.clip(scaled, -MAX_ABS, MAX_ABS).astype(np.float32)


def _stft(y: np.ndarray) -> np.ndarray:
    """(1 + N_FFT/2, frames) complex STFT, frames centred on multiples of HOP."""
    from scipy.signal import get_window
    padded = np.pad(y, N_FFT // 2, mode="reflect")
    n_frames = 1 + (len(padded) - N_FFT) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP][:n_frames]
    window = get_window("hann", WIN, fftbins=True)   # periodic; WIN == N_FFT, no centring pad
    return np.fft.rfft(frames * window, n=N_FFT, axis=1).T


_MEL_BASIS = None


def _mel_basis() -> np.ndarray:
    global _MEL_BASIS
    if _MEL_BASIS is None:
        _MEL_BASIS = slaney_mel_filters(RATE, N_FFT, N_MELS, FMIN, FMAX)
    return _MEL_BASIS


def _hz_to_mel(hz):
    """Slaney's auditory scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _mel_to_hz(mel):
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * (200.0 / 3)
    log_part = 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


def slaney_mel_filters(rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float) -> np.ndarray:
    """(n_mels, 1 + n_fft/2) triangular filters on the Slaney mel scale, each scaled to
    unit area (the 'slaney' normalisation)."""
    fft_hz = np.linspace(0.0, rate / 2.0, 1 + n_fft // 2)
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges_hz)
    distance = edges_hz[:, None] - fft_hz[None, :]
    rising = -distance[:-2] / widths[:-1, None]
    falling = distance[2:] / widths[1:, None]
    filters = np.maximum(0.0, np.minimum(rising, falling))
    filters *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]
    return filters


def mel_windows(mel: np.ndarray, n_frames: int, fps: float = 25.0) -> np.ndarray:
    """(n_frames, 80, 16) mel windows, one per video frame, as Wav2Lip inference cuts them:
    frame i starts at column int(i * 80 / fps); a window that would run past the end is
    the last 16 columns (edge padding), so every frame gets a full window."""
    mel = np.asarray(mel)
    if mel.ndim != 2:
        raise BadInput(f"mel: expected (bands, columns), got shape {mel.shape}")
    columns = mel.shape[1]
    if columns < MEL_STEP:
        raise BadInput(f"audio too short: {columns} mel columns ({columns / MEL_PER_SECOND:.3f} s); "
                       f"one window needs {MEL_STEP} ({MEL_STEP / MEL_PER_SECOND:.2f} s)")
    if n_frames < 1:
        raise BadInput(f"mel windows: need at least one video frame, got {n_frames}")
    step = MEL_PER_SECOND / fps
    starts = [min(int(i * step), columns - MEL_STEP) for i in range(n_frames)]
    return np.stack([mel[:, s:s + MEL_STEP] for s in starts])


# ------------------------------------------------------------- syncnet's MFCC

def to_int16(wav: np.ndarray) -> np.ndarray:
    """The int16 samples a 16-bit wav of ``wav`` holds (exact inverse of load_audio's / 32768)."""
    return np.clip(np.round(np.asarray(wav, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)


def syncnet_mfcc(wav: np.ndarray, rate: int = RATE) -> np.ndarray:
    """(13, T) MFCC as syncnet_python computes it: python_speech_features' defaults on the
    int16 samples its wav reader returns (4 columns per video frame at 25 fps)."""
    import python_speech_features
    if rate != RATE:
        raise BadInput(f"syncnet MFCC: audio must be {RATE} Hz (syncnet_python's rate), got {rate}; "
                       f"load it with load_audio(path, {RATE})")
    return np.asarray(python_speech_features.mfcc(to_int16(wav), rate)).T
