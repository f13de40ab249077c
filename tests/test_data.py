"""Data layer: audio features against their references, video I/O, bad input, face boxes
and the dataset layouts, all on small data made here."""
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.io import wavfile

from harness.data import audio as audio_mod
from harness.data import faces
from harness.data.audio import load_audio, mel_windows, syncnet_mfcc, wav2lip_mel
from harness.families.lipsync.datasets import Item, load_item, lrs_items, pair_items, video_folder_items
from harness.data.video import read_frames_folder, read_video, write_video
from harness.errors import BadInput

RATE = 16000


def speech_like(seconds: float, rate: int = RATE, seed: int = 0) -> np.ndarray:
    """A voiced tone with noise and a silent stretch (exercises the -100 dB floor)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * rate)) / rate
    voiced = 0.3 * np.sin(2 * np.pi * 180 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    wav = voiced + 0.03 * rng.standard_normal(len(t))
    wav[: len(t) // 5] *= 1e-6
    return np.clip(wav, -1, 1).astype(np.float32)


def write_wav16(path: Path, wav: np.ndarray, rate: int = RATE) -> Path:
    wavfile.write(str(path), rate, np.round(wav * 32767).astype(np.int16))
    return path


def smooth_frames(n: int, h: int = 64, w: int = 64) -> np.ndarray:
    """Gradients that move a little each frame: easy for H.264, hard to confuse."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = [np.stack([xx * 2 + 40 + 3 * i, yy * 2 + 30, 200 - xx - yy + 2 * i], -1) for i in range(n)]
    return np.clip(out, 0, 255).astype(np.uint8)


def make_clip_folder(folder: Path, n_frames: int, seconds: float, size: int = 32) -> Path:
    folder.mkdir(parents=True)
    for i, frame in enumerate(smooth_frames(n_frames, size, size)):
        Image.fromarray(frame).save(folder / f"{i}.jpg", quality=95)
    write_wav16(folder / "audio.wav", speech_like(seconds))
    return folder


# ------------------------------------------------------------------ audio features

def test_wav2lip_mel_matches_librosa_pipeline():
    """The same recipe computed with librosa (Wav2Lip's own calls: lfilter pre-emphasis,
    centred reflect-padded STFT, librosa's Slaney mel filters) agrees within 1e-5."""
    librosa = pytest.importorskip("librosa")
    from scipy.signal import lfilter
    wav = speech_like(1.3)
    ours = wav2lip_mel(wav)
    emphasised = lfilter([1, -0.97], [1], wav)
    spec = np.abs(librosa.stft(y=emphasised, n_fft=800, hop_length=200, win_length=800,
                               center=True, pad_mode="reflect"))
    basis = librosa.filters.mel(sr=16000, n_fft=800, n_mels=80, fmin=55, fmax=7600)
    db = 20 * np.log10(np.maximum(1e-5, basis @ spec)) - 20
    ref = np.clip(8 * ((db + 100) / 100) - 4, -4, 4)
    assert ours.shape == ref.shape == (80, 1 + len(wav) // 200)
    assert ours.dtype == np.float32
    assert np.abs(ours - ref).max() < 1e-5
    assert ours.min() == -4.0                    # the silent stretch hits the floor
    assert np.abs(audio_mod.slaney_mel_filters(16000, 800, 80, 55, 7600) - basis).max() < 1e-6


def test_syncnet_mfcc_equals_python_speech_features(tmp_path):
    psf = pytest.importorskip("python_speech_features")
    path = write_wav16(tmp_path / "a.wav", speech_like(0.8))
    wav, notes = load_audio(path)
    assert notes == [] and wav.dtype == np.float32
    rate, int16 = wavfile.read(str(path))
    ref = np.asarray(psf.mfcc(int16, rate)).T
    ours = syncnet_mfcc(wav)
    assert ours.shape == ref.shape and ours.shape[0] == 13
    assert np.array_equal(ours, ref)


def test_mel_windows_follow_wav2lip_inference_with_edge_padding():
    mel = np.arange(80 * 40, dtype=np.float32).reshape(80, 40)
    win = mel_windows(mel, 14, fps=25.0)
    assert win.shape == (14, 80, 16)
    for i, start in [(0, 0), (1, 3), (2, 6), (5, 16), (7, 22)]:      # int(i * 3.2)
        assert np.array_equal(win[i], mel[:, start:start + 16])
    for i in range(8, 14):                                        # int(8 * 3.2) + 16 > 40
        assert np.array_equal(win[i], mel[:, 24:40])
    assert np.array_equal(mel_windows(mel, 3, fps=40.0)[2], mel[:, 4:20])   # 80 / 40 = 2 per frame
    with pytest.raises(BadInput, match="one window needs 16"):
        mel_windows(mel[:, :15], 5)


def test_audio_at_44k_is_resampled_and_said_so(tmp_path):
    t = np.arange(int(0.5 * 44100)) / 44100
    tone = 0.5 * np.sin(2 * np.pi * 440 * t)
    stereo = np.stack([tone, tone * 0.5], 1)
    path = tmp_path / "cd.wav"
    wavfile.write(str(path), 44100, np.round(stereo * 32767).astype(np.int16))
    wav, notes = load_audio(path)
    assert len(wav) == 8000 and wav.dtype == np.float32
    assert notes == [f"audio {path}: resampled 44100 -> 16000 Hz"]
    spectrum = np.abs(np.fft.rfft(wav))
    assert abs(np.argmax(spectrum) * RATE / len(wav) - 440) <= 2       # tone kept
    assert abs(np.abs(wav[2000:6000]).max() - 0.75 / 2) < 0.02           # stereo mean


def test_bad_audio_is_bad_input(tmp_path):
    empty = tmp_path / "empty.wav"
    wavfile.write(str(empty), RATE, np.zeros(0, np.int16))
    with pytest.raises(BadInput, match="empty.wav"):
        load_audio(empty)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(range(40)))
    with pytest.raises(BadInput, match="junk.wav"):
        load_audio(junk)
    nan = tmp_path / "nan.wav"
    samples = np.zeros(3200, np.float32)
    samples[100] = np.nan
    wavfile.write(str(nan), RATE, samples)
    with pytest.raises(BadInput, match="nan.wav: NaN or infinite sample at index 100"):
        load_audio(nan)


# ------------------------------------------------------------------------- video

def test_video_round_trip_with_audio(tmp_path):
    frames = smooth_frames(10)
    sound = speech_like(0.4)
    path = write_video(tmp_path / "out.mp4", frames, 25.0, audio=sound)
    back, notes = read_video(path)
    assert back.shape == frames.shape and back.dtype == np.uint8
    diff = np.abs(back.astype(int) - frames.astype(int))
    assert diff.mean() < 3 and diff.max() < 40            # H.264 at crf 23
    assert notes == []
    heard, audio_notes = load_audio(path)
    assert audio_notes == [] and abs(len(heard) - len(sound)) <= 640     # within one frame (AAC)
    n = min(len(heard), len(sound))
    assert np.corrcoef(heard[:n], sound[:n])[0, 1] > 0.95
    odd = write_video(tmp_path / "odd.mp4", frames[:6, :33, :31])
    assert read_video(odd)[0].shape == (6, 33, 31, 3)    # odd sizes survive (4:4:4)


def test_other_frame_rate_is_converted_and_said_so(tmp_path):
    path = write_video(tmp_path / "thirty.mp4", smooth_frames(15), fps=30.0)
    frames, notes = read_video(path, fps=25.0)
    assert abs(len(frames) - 12.5) <= 1
    assert notes == [f"video {path}: converted 30 -> 25 fps (ffmpeg fps filter)"]


def test_corrupt_and_truncated_videos_are_bad_input(tmp_path):
    import imageio_ffmpeg
    junk = tmp_path / "random.mp4"
    junk.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(BadInput, match=r"random\.mp4.*\(.+\)"):
        read_video(junk)
    whole = write_video(tmp_path / "whole.mp4", smooth_frames(30))
    cut = tmp_path / "cut.mp4"
    data = whole.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(BadInput, match=r"cut\.mp4.*moov atom not found"):
        read_video(cut)
    # with the index at the front (faststart) the first half still decodes: caught by length
    fast = tmp_path / "fast.mp4"
    writer = imageio_ffmpeg.write_frames(str(fast), (64, 64), fps=25, codec="libx264", macro_block_size=1,
                                         output_params=["-movflags", "+faststart"], ffmpeg_log_level="error")
    writer.send(None)
    noise = np.random.default_rng(1).integers(0, 256, (30, 64, 64, 3), dtype=np.uint8)
    for frame in noise:             # frames of similar size, so half the file is about half the frames
        writer.send(frame)
    writer.close()
    cut_fast = tmp_path / "cut_fast.mp4"
    data = fast.read_bytes()
    cut_fast.write_bytes(data[: len(data) // 2])
    truncated = r"cut_fast\.mp4: truncated or damaged: decoded 1\d frames of about 30 .*partial file"
    with pytest.raises(BadInput, match=truncated):
        read_video(cut_fast)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(BadInput, match="empty.mp4: empty file"):
        read_video(empty)


def test_frames_folder_numeric_order_and_bad_images(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for i in range(12):
        Image.fromarray(np.full((8, 10, 3), i * 20, np.uint8)).save(folder / f"{i}.png")
    (folder / "notes.txt").write_text("ignored")
    frames = read_frames_folder(folder)
    assert frames.shape == (12, 8, 10, 3)
    assert [int(f[0, 0, 0]) for f in frames] == [i * 20 for i in range(12)]   # 10 after 9
    Image.fromarray(np.zeros((9, 10, 3), np.uint8)).save(folder / "12.png")
    with pytest.raises(BadInput, match=r"12\.png is 10x9 but 0\.png is 10x8"):
        read_frames_folder(folder)
    (folder / "12.png").write_bytes(b"not an image")
    with pytest.raises(BadInput, match=r"image 12\.png cannot be read"):
        read_frames_folder(folder)


# ------------------------------------------------------------------- face boxes

class FakeDetector:
    def __init__(self, boxes):
        self.boxes, self.calls = boxes, 0

    def __call__(self, frames):
        self.calls += 1
        return [None if b is None else np.asarray(b, float) for b in self.boxes[:len(frames)]]


def wav2lip_smoothing(boxes, T=5):
    """Wav2Lip's get_smoothened_boxes as its scripts run it (int array, in place)."""
    boxes = np.array(boxes)
    for i in range(len(boxes)):
        window = boxes[len(boxes) - T:] if i + T > len(boxes) else boxes[i:i + T]
        boxes[i] = np.mean(window, axis=0)
    return boxes


def test_face_boxes_pad_smooth_and_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATARBENCH_CACHE", str(tmp_path / "cache"))
    frames = smooth_frames(7, 48, 40)
    raw = [[3.7, 5.2, 20.9, 30.1], [4.1, -2.0, 22.5, 31.8], [5.0, 6.0, 21.0, 33.0],
           [2.2, 4.4, 19.9, 39.5], [6.6, 7.7, 25.5, 29.9], [3.0, 3.0, 18.0, 28.0], [4.0, 5.0, 45.0, 44.0]]
    fake = FakeDetector(raw)
    monkeypatch.setattr(faces, "_detect", fake)
    boxes = faces.face_boxes(frames, cache_key="spk/clip")
    # Wav2Lip: clip at 0, int, pad bottom by 10 (clipped to the 48 px height), then smooth
    padded = [[3, 5, 20, 40], [4, 0, 22, 41], [5, 6, 21, 43], [2, 4, 19, 48], [6, 7, 25, 39],
              [3, 3, 18, 38], [4, 5, 40, 48]]
    assert np.array_equal(faces.pad_boxes([np.asarray(b) for b in raw], (48, 40)), padded)
    assert boxes.shape == (7, 4) and boxes.dtype.kind == "i"
    assert np.array_equal(boxes, wav2lip_smoothing(padded))
    assert np.array_equal(boxes[0], np.mean(padded[:5], axis=0).astype(int))
    cached = list((tmp_path / "cache" / "faces").rglob("*.npy"))
    assert len(cached) == 1 and cached[0].name.startswith("spk_clip-")
    assert np.array_equal(faces.face_boxes(frames, cache_key="spk/clip"), boxes) and fake.calls == 1
    # without a key: named by the frames' sha256; other frames are detected again
    faces.face_boxes(frames)
    faces.face_boxes(frames)
    assert fake.calls == 2
    faces.face_boxes(frames[::-1].copy())
    assert fake.calls == 3
    assert len(list((tmp_path / "cache" / "faces").rglob("*.npy"))) == 3
    crops = faces.crop_faces(frames, boxes, 24)
    assert crops.shape == (7, 24, 24, 3) and crops.dtype == np.uint8


def test_frame_without_face_names_clip_and_frame(tmp_path, monkeypatch):
    monkeypatch.setenv("AVATARBENCH_CACHE", str(tmp_path / "cache"))
    box = [2, 2, 20, 20]
    monkeypatch.setattr(faces, "_detect", FakeDetector([box, box, box, None, box]))
    with pytest.raises(BadInput, match=r"spk/clip7: no face found in frame 3"):
        faces.face_boxes(smooth_frames(5), name="spk/clip7")
    assert not (tmp_path / "cache" / "faces").exists() or not any((tmp_path / "cache" / "faces").iterdir())


def test_mtcnn_finds_a_real_face(tmp_path, monkeypatch):
    """The real detector on the astronaut photo that ships with scikit-image."""
    data = pytest.importorskip("skimage.data")
    pytest.importorskip("facenet_pytorch")
    import cv2
    monkeypatch.setenv("AVATARBENCH_CACHE", str(tmp_path / "cache"))
    frame = cv2.resize(data.astronaut(), (128, 128), interpolation=cv2.INTER_AREA)
    boxes = faces.face_boxes(np.stack([frame] * 5))
    x1, y1, x2, y2 = boxes[0]
    assert (boxes == boxes[0]).all()
    assert 35 <= x1 < 55 and 5 <= y1 < 25 and 60 < x2 <= 75 and 45 < y2 <= 60    # her face


# ----------------------------------------------------------------------- datasets

def test_lrs_layout_and_filelist(tmp_path):
    root = tmp_path / "lrs2"
    for key in ["spk1/00001", "spk1/00002", "spk2/00003"]:
        make_clip_folder(root / key, 6, 0.24)
    items = lrs_items(root)
    assert [i.name for i in items] == ["spk1/00001", "spk1/00002", "spk2/00003"]
    assert items[0] == Item("spk1/00001", root / "spk1/00001", root / "spk1/00001/audio.wav", "lrs")
    filelist = tmp_path / "test.txt"
    filelist.write_text("spk2/00003 ignored tokens\n\nspk1/00001\n")
    assert [i.name for i in lrs_items(root, filelist)] == ["spk2/00003", "spk1/00001"]
    filelist.write_text("spk1/00001\nspk9/00042\n")
    with pytest.raises(BadInput, match=r"test\.txt, line 2 \('spk9/00042'\).*spk9/00042 does not exist"):
        lrs_items(root, filelist)
    (root / "spk1/00002/audio.wav").unlink()
    with pytest.raises(BadInput, match=r"spk1/00002.*audio\.wav is missing"):
        lrs_items(root)

    frames, wav, notes = load_item(items[0])
    assert frames.shape == (6, 32, 32, 3) and wav.dtype == np.float32 and len(wav) == 3840
    assert notes == []


def test_pair_lists_in_both_wav2lip_formats(tmp_path):
    root = tmp_path / "data"
    for name in ["main/111/00001.mp4", "main/222/00002.mp4", "sachin.mp4", "voice.wav"]:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    make_clip_folder(root / "spk/00009", 6, 0.24)
    lrs = tmp_path / "lrs2.txt"
    lrs.write_text("main/111/00001 main/222/00002\nspk/00009 main/111/00001\n")
    first, second = pair_items(lrs, root)
    # gen_videos_from_filelist.py: audio source first, video second, '.mp4' appended
    assert first == Item("main/222/00002+main/111/00001", root / "main/222/00002.mp4",
                         root / "main/111/00001.mp4", "pair")
    assert second.audio == root / "spk/00009/audio.wav" and second.video == root / "main/111/00001.mp4"
    resynced = tmp_path / "tts_pairs.txt"
    resynced.write_text("sachin.mp4 voice.wav\n")
    (item,) = pair_items(resynced, root)          # real_videos_inference.py: video first
    assert item.video == root / "sachin.mp4" and item.audio == root / "voice.wav"
    assert item.name == "sachin.mp4+voice.wav"
    lrs.write_text("main/111/00001 main/222/00002\nmain/111/00001 main/333/00003\n")
    with pytest.raises(BadInput, match=r"lrs2\.txt, line 2: video 'main/333/00003' not found"):
        pair_items(lrs, root)


def test_video_folder_items(tmp_path):
    for name in ["b.mp4", "a.MOV", "sub/c.mkv", "d.avi", "readme.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    items = video_folder_items(tmp_path)
    assert [i.name for i in items] == ["a", "b", "d", "sub/c"]
    assert all(i.audio == i.video and i.kind == "video" for i in items)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match="no videos"):
        video_folder_items(tmp_path / "empty")


def test_short_clip_and_mismatched_lengths(tmp_path):
    short = make_clip_folder(tmp_path / "s/short", 3, 0.12)
    with pytest.raises(BadInput, match="clip s/short has 3 frames; at least 5 needed"):
        load_item(Item("s/short", short, short / "audio.wav", "lrs"))
    long_audio = make_clip_folder(tmp_path / "s/long_audio", 10, 0.8)        # 20 frames of audio
    frames, wav, notes = load_item(Item("s/long_audio", long_audio, long_audio / "audio.wav", "lrs"))
    assert len(frames) == 10 and len(wav) == 6400
    assert notes == ["clip s/long_audio: audio is 0.80 s (20.0 frames) but the video has 10 frames "
                     "(0.40 s); audio trimmed to 0.40 s"]
    short_audio = make_clip_folder(tmp_path / "s/short_audio", 10, 0.25)     # 6.25 frames of audio
    frames, wav, notes = load_item(Item("s/short_audio", short_audio, short_audio / "audio.wav", "lrs"))
    assert len(frames) == 6 and len(wav) == 4000
    assert "video trimmed to 6 frames" in notes[0]
    close = make_clip_folder(tmp_path / "s/close", 10, 0.43)                 # 10.75 frames: kept
    frames, wav, notes = load_item(Item("s/close", close, close / "audio.wav", "lrs"))
    assert len(frames) == 10 and len(wav) == 6880 and notes == []
    nan = make_clip_folder(tmp_path / "s/nan", 6, 0.24)
    samples = speech_like(0.24)
    samples[7] = np.inf
    wavfile.write(str(nan / "audio.wav"), RATE, samples)
    with pytest.raises(BadInput, match=r"clip s/nan: audio .*audio\.wav: NaN or infinite sample"):
        load_item(Item("s/nan", nan, nan / "audio.wav", "lrs"))
